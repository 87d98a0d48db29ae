"""A Hugging Face Hub on 127.0.0.1 for the tests.

Downloads are served by olah (a Hub mirror server) in offline mode, from git repositories under
``<root>/mirrors/models/<org>/<name>``. olah has no upload API, so :class:`CommitServer` implements
the part of the Hub's API that ``huggingface_hub.HfApi`` uses to publish (create a repository,
a branch, a tag; preupload; commit) and writes into the same git repositories. As on the Hub,
weight files (``*.safetensors``, ``*.bin``, ``*.pth``, ``*.tar``) are stored with git LFS: the
commit holds a pointer and the bytes go to ``.git/lfs/objects``, so olah serves them with their
sha256 as ETag, as the Hub does.
"""
import base64
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Optional, Tuple

import yaml

LFS_SUFFIXES = (".safetensors", ".bin", ".pth", ".tar")
_GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="epsanet tests", GIT_AUTHOR_EMAIL="tests@epsanet.invalid",
                GIT_COMMITTER_NAME="epsanet tests", GIT_COMMITTER_EMAIL="tests@epsanet.invalid")
PROBE_REPO = "epsanet-tests/probe"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GitRepos:
    """The git repositories olah serves, one per model repository id."""

    def __init__(self, mirrors: Path) -> None:
        self.mirrors = mirrors
        self._lock = threading.Lock()

    def path(self, repo_id: str) -> Path:
        return self.mirrors / "models" / repo_id

    def exists(self, repo_id: str) -> bool:
        return (self.path(repo_id) / ".git").is_dir()

    def _git(self, repo_id: str, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.path(repo_id), env=_GIT_ENV, check=True,
                              capture_output=True, text=True).stdout.strip()

    def create(self, repo_id: str) -> None:
        with self._lock:
            path = self.path(repo_id)
            path.mkdir(parents=True)
            self._git(repo_id, "init", "-q", "-b", "main")
            attributes = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES)
            (path / ".gitattributes").write_text(attributes)
            self._git(repo_id, "add", ".gitattributes")
            self._git(repo_id, "commit", "-q", "-m", "initial commit")

    def commit(self, repo_id: str, files: Dict[str, bytes], message: str, branch: str = "main") -> str:
        """Commit ``files`` (path -> bytes) on ``branch``; returns the commit sha."""
        with self._lock:
            path = self.path(repo_id)
            self._git(repo_id, "checkout", "-q", branch)
            try:
                for name, data in files.items():
                    target = path / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(self._lfs_pointer(path, data) if name.endswith(LFS_SUFFIXES) else data)
                    self._git(repo_id, "add", name)
                self._git(repo_id, "commit", "-q", "--allow-empty", "-m", message)
                return self._git(repo_id, "rev-parse", "HEAD")
            finally:
                self._git(repo_id, "checkout", "-q", "main")

    @staticmethod
    def _lfs_pointer(repo: Path, data: bytes) -> bytes:
        oid = hashlib.sha256(data).hexdigest()
        store = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_bytes(data)
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n".encode()

    def branch(self, repo_id: str, branch: str, start: Optional[str]) -> bool:
        with self._lock:
            if branch in self._git(repo_id, "branch", "--format=%(refname:short)").split():
                return False
            self._git(repo_id, "branch", branch, start or "main")
            return True

    def tag(self, repo_id: str, tag: str, revision: str) -> bool:
        with self._lock:
            if tag in self._git(repo_id, "tag").split():
                return False
            self._git(repo_id, "tag", tag, revision)
            return True

    def resolve(self, repo_id: str, revision: str) -> str:
        return self._git(repo_id, "rev-parse", revision)


class CommitServer(ThreadingHTTPServer):
    """The Hub's write API (create repo / branch / tag, preupload, commit) over :class:`GitRepos`."""

    daemon_threads = True

    def __init__(self, repos: GitRepos) -> None:
        super().__init__(("127.0.0.1", 0), _CommitHandler)
        self.repos = repos
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def start(self) -> "CommitServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _CommitHandler(BaseHTTPRequestHandler):
    server: CommitServer
    _REPO_ROUTE = re.compile(r"/api/models/([^/]+/[^/]+)/(preupload|commit|branch|tag)/([^?]+)")

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def _reply(self, status: int, body: dict, error_code: Optional[str] = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error_code:
            self.send_header("X-Error-Code", error_code)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_POST(self) -> None:
        repos = self.server.repos
        body = self._body()
        if self.path.split("?")[0] == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body)["content"])
        if self.path.split("?")[0] == "/api/repos/create":
            payload = json.loads(body)
            repo_id = f"{payload['organization']}/{payload['name']}"
            if repos.exists(repo_id):
                return self._reply(409, {"error": "You already created this model repo",
                                         "url": f"{self.server.url}/{repo_id}"})
            repos.create(repo_id)
            return self._reply(200, {"url": f"{self.server.url}/{repo_id}", "name": repo_id})
        match = self._REPO_ROUTE.fullmatch(self.path.split("?")[0])
        if not match:
            return self._reply(404, {"error": f"no route {self.path}"})
        repo_id, action, revision = match.groups()
        revision = urllib.request.unquote(revision)
        if not repos.exists(repo_id):
            return self._reply(404, {"error": f"Repository {repo_id} not found"}, "RepoNotFound")
        if action == "preupload":
            files = json.loads(body)["files"]
            return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                               for f in files]})
        if action == "branch":
            created = repos.branch(repo_id, revision, json.loads(body or b"{}").get("startingPoint"))
            return self._reply(200 if created else 409, {} if created else {"error": "Branch already exists"})
        if action == "tag":
            created = repos.tag(repo_id, json.loads(body)["tag"], repos.resolve(repo_id, revision))
            return self._reply(200 if created else 409, {} if created else {"error": "Tag already exists"})
        message, files = self._read_commit(body)
        sha = repos.commit(repo_id, files, message, branch=revision)
        return self._reply(200, {"commitUrl": f"{self.server.url}/{repo_id}/commit/{sha}", "commitOid": sha,
                                 "success": True, "pullRequestUrl": None})

    def _validate_yaml(self, readme: str) -> None:
        """The model card's metadata block must be a YAML mapping, as on the Hub."""
        _, found, rest = readme.partition("---\n")
        try:
            metadata = yaml.safe_load(rest.partition("\n---")[0]) if found else {}
        except yaml.YAMLError as e:
            return self._reply(400, {"error": f"Invalid metadata in README.md: {e}"})
        if not isinstance(metadata, dict):
            return self._reply(400, {"error": "Invalid metadata in README.md: not a mapping"})
        return self._reply(200, {"errors": [], "warnings": []})

    @staticmethod
    def _read_commit(body: bytes) -> Tuple[str, Dict[str, bytes]]:
        message, files = "", {}
        for line in body.splitlines():
            item = json.loads(line)
            if item["key"] == "header":
                message = item["value"]["summary"]
            elif item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            else:
                raise ValueError(f"the test hub does not support commit operations of kind {item['key']!r}")
        return message, files


class Olah:
    """olah (``olah-cli``) serving the repositories under ``mirrors`` on ``port``, offline."""

    def __init__(self, olah_cli: Path, root: Path, mirrors: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = root / "olah.log"
        config = root / "olah.toml"
        config.write_text(
            "[basic]\n"
            f'host = "127.0.0.1"\nport = {port}\n'
            f'repos-path = "{root / "olah-cache"}"\n'
            f'mirror-scheme = "http"\nmirror-netloc = "127.0.0.1:{port}"\nmirror-lfs-netloc = "127.0.0.1:{port}"\n'
            f'mirrors-path = ["{mirrors}"]\n'
            "[accessibility]\noffline = true\n"
        )
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([str(olah_cli), "-c", str(config), "--log-path", str(root / "olah-logs")],
                                            stdout=log, stderr=subprocess.STDOUT, cwd=root)

    def wait_ready(self, probe: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"olah exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(urllib.request.Request(f"{self.url}/{probe}", method="HEAD"), timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"olah did not answer within {timeout} s:\n{self.log.read_text()[-3000:]}"
                    ) from err
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class LocalHub:
    """olah for downloads plus :class:`CommitServer` for uploads, over one set of git repositories."""

    def __init__(self, olah_cli: Path, root: Path, port: int) -> None:
        self.repos = GitRepos(root / "mirrors")
        (root / "mirrors" / "models").mkdir(parents=True)
        self.repos.create(PROBE_REPO)
        self.repos.commit(PROBE_REPO, {"config.json": b'{"probe": true}\n'}, "probe")
        self.commits = CommitServer(self.repos).start()
        self.olah = Olah(olah_cli, root, root / "mirrors", port)
        self.url = self.olah.url
        self.upload_url = self.commits.url
        try:
            self.olah.wait_ready(f"{PROBE_REPO}/resolve/main/config.json")
        except RuntimeError:
            self.commits.stop()
            raise

    def stop(self) -> None:
        self.olah.stop()
        self.commits.stop()
