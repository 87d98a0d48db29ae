"""``epsanet publish``: upload a hub folder to the Hugging Face Hub."""
import argparse

from ..hub.pretrained import publish


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="hub folder written by epsanet.save_pretrained or `epsanet convert`")
    parser.add_argument("--repo-id", required=True, help="Hub repository ORG/NAME (created if missing)")
    parser.add_argument("--revision", help="branch to commit to (created if missing; default: main)")
    parser.add_argument("--tag", help="tag the new commit, e.g. v1.0")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--message", help="commit message")
    parser.add_argument("--endpoint", help="Hub endpoint (default: HF_ENDPOINT or https://huggingface.co)")


def run(args: argparse.Namespace) -> int:
    sha = publish(args.directory, args.repo_id, revision=args.revision, tag=args.tag, private=args.private,
                  commit_message=args.message, endpoint=args.endpoint)
    target = f"{args.repo_id}@{args.tag or args.revision or 'main'}"
    print(f"published {args.directory} to {target} (commit {sha}); load it with "
          f"epsanet.from_pretrained('hf-hub:{args.repo_id}') or "
          f"timm.create_model('hf-hub:{args.repo_id}', pretrained=True) after `import epsanet`")
    return 0
