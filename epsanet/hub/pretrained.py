"""Weights on the Hugging Face Hub in timm's format: ``config.json`` + ``model.safetensors`` + a model card.

:func:`save_pretrained` writes a hub folder, :func:`from_pretrained` builds the model one holds and
:func:`publish` uploads one. Downloading and checking files is :mod:`epsanet.weights.download`'s (below the
models, which load their ``weights=`` through it; :mod:`epsanet.hub` re-exports its names). Every failure
is a :class:`HubError`: one line naming the cause and the fix.
"""
import copy
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import huggingface_hub.constants
import torch
from huggingface_hub import CommitOperationAdd, HfApi
from timm.models import save_for_hf
from timm.models._hub import generate_readme

from .._utils.files import atomic_directory
from ..models import get_model_builder
from ..weights.catalogue import find_weights, model_info
from ..weights.download import HubError, PathLike, _hub_errors, _local_weights_file, read_hub_config
from .transformers_config import adapt_hub_config

__all__ = ["save_pretrained", "from_pretrained", "publish"]

# The model card's usage snippet names the repository; publish() fills in the real id.
REPO_PLACEHOLDER = "ORG/NAME"


def _model_card(model: torch.nn.Module, overrides: Optional[Mapping[str, Any]]) -> str:
    cfg = model.pretrained_cfg
    architecture = cfg["architecture"]
    info = model_info(architecture)
    params = sum(p.numel() for p in model.parameters())
    papers = [info.get("paper_ids"), cfg.get("paper_ids")]
    details = {
        "Model Type": "Image classification / feature backbone",
        "Architecture": f"{architecture} (epsanet zoo)",
        "Params (M)": round(params / 1e6, 2),
        "Classes": model.num_classes,
        "Image size": "x".join(str(s) for s in cfg["input_size"][1:]),
        "Papers": [p for p in dict.fromkeys(papers) if p],
        "Original": cfg.get("origin_url") or info.get("origin_url"),
    }
    usage = (
        "```python\n"
        "import epsanet  # registers the zoo's architectures with timm\n"
        "import timm\n\n"
        f'model = timm.create_model("hf-hub:{REPO_PLACEHOLDER}", pretrained=True).eval()\n'
        f'# or, torchvision style: epsanet.{architecture}(weights="hf-hub:{REPO_PLACEHOLDER}")\n'
        "data_config = timm.data.resolve_model_data_config(model)\n"
        "transform = timm.data.create_transform(**data_config, is_training=False)\n"
        "```\n"
    )
    card = {
        "tags": ["image-classification", "timm", "epsanet"],
        "license": cfg.get("license") or info.get("license", "other"),
        "description": cfg.get("description") or info.get("description", architecture),
        "details": details,
        "usage": usage,
        "citation": [c for c in dict.fromkeys([info.get("citation"), find_citation(cfg)]) if c],
    }
    card.update(overrides or {})
    return generate_readme(card, architecture)


def find_citation(cfg: Mapping[str, Any]) -> Optional[str]:
    """The citation of the catalogue entry a pretrained cfg comes from, if any."""
    entry = find_weights(cfg.get("architecture") or "", cfg.get("tag"))
    return entry.citation if entry is not None else None


def save_pretrained(model: torch.nn.Module, directory: PathLike, model_args: Optional[Dict[str, Any]] = None,
                    model_card: Optional[Mapping[str, Any]] = None) -> Path:
    """Write ``model`` to ``directory`` in timm's hub format: ``config.json`` (``architecture``,
    ``num_classes``, ``label_names``, ``model_args``, ``pretrained_cfg``), ``model.safetensors``
    and a model card ``README.md`` whose usage snippet imports epsanet (timm cannot build zoo
    models without it). After ``import epsanet``, transformers loads the folder too
    (``pipeline("image-classification", model=directory)``, see :mod:`epsanet.hub.transformers_config`).

    The folder appears complete or not at all (written next to its destination, then renamed);
    an existing folder is replaced. ``model_args`` adds builder arguments to those the model was
    created with; ``model_card`` overrides fields of the card (``description``, ``license``,
    ``details``, ``citation``, as timm's ``generate_readme`` takes them).
    """
    directory = Path(directory)
    if any(not t.is_contiguous() for t in model.state_dict().values()):  # channels_last: safetensors needs contiguous
        model = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    with atomic_directory(directory) as staging:
        save_for_hf(model, str(staging), model_args=model_args, safe_serialization=True)
        adapt_hub_config(staging / "config.json")  # transformers' timm wrapper loads it too
        (staging / "README.md").write_text(_model_card(model, model_card), encoding="utf-8")
    return directory


def from_pretrained(name_or_path: PathLike, **kwargs: Any) -> torch.nn.Module:
    """Build the model a hub folder or ``hf-hub:org/name[@revision]`` holds, with its weights.

    The architecture, builder arguments and number of classes come from its ``config.json``;
    keyword arguments go to the builder and win (e.g. ``num_classes=10`` for a new head,
    ``cache_dir=...``). The same as ``epsanet.<architecture>(weights=name_or_path)``.
    """
    config = read_hub_config(name_or_path, cache_dir=kwargs.get("cache_dir"))
    try:
        builder = get_model_builder(config.architecture)
    except ValueError:
        raise HubError(
            f"{os.fspath(name_or_path)} holds a {config.architecture!r}, which is not an epsanet zoo model: load it "
            "with timm.create_model instead"
        ) from None
    return builder(weights=name_or_path, **kwargs)


def publish(directory: PathLike, repo_id: str, *, revision: Optional[str] = None, tag: Optional[str] = None,
            private: bool = False, commit_message: Optional[str] = None, token: Optional[str] = None,
            endpoint: Optional[str] = None) -> str:
    """Upload a hub folder (written by :func:`save_pretrained` or ``epsanet convert``) to the Hub
    repository ``repo_id``, creating the repository (and branch ``revision``) if needed, and
    optionally tag the new commit. The model card's usage snippet gets the real repository id.
    Returns the commit's sha. Token and endpoint default to huggingface_hub's (``HF_TOKEN``,
    ``hf auth login``, ``HF_ENDPOINT``).
    """
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise HubError("cannot publish while HF_HUB_OFFLINE is set: unset it to upload")
    directory = Path(directory)
    config = read_hub_config(directory)
    try:
        model_info(config.architecture)
    except ValueError:
        raise HubError(f"{directory} holds a {config.architecture!r}, not an epsanet zoo model: publish it with "
                       "timm.models.push_to_hf_hub") from None
    _local_weights_file(directory)
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError(f"repository id {repo_id!r} must be ORG/NAME")
    operations = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "README.md" and path.parent == directory:
            data = data.replace(REPO_PLACEHOLDER.encode(), repo_id.encode())
        operations.append(CommitOperationAdd(path.relative_to(directory).as_posix(), data))
    api = HfApi(endpoint=endpoint, token=token)
    what = f"hf-hub:{repo_id}{'@' + revision if revision else ''}"
    with _hub_errors(what, api.endpoint):
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.create_commit(
            repo_id, operations, revision=revision,
            commit_message=commit_message or f"Add {config.architecture} weights ({directory.name})",
        )
        if tag:
            api.create_tag(repo_id, tag=tag, revision=commit.oid)
    return commit.oid
