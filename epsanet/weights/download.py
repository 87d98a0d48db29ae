"""Hub files below the models: download, check and read the weights and ``config.json`` of a hub folder.

Downloads go through huggingface_hub into its standard cache (``HF_HUB_CACHE``), so
``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, tokens and revisions behave as everywhere else; every
downloaded weights file is checked against its sha256 (the Hub's LFS hash, and the catalogue's
where it records one) before it is read. Every failure is a :class:`HubError`: one line naming
the cause and the fix.

The models' builders resolve ``weights=`` through this module, which imports no model (as
torchvision's ``models/_api.py``); :mod:`epsanet.hub` builds, saves and publishes models on top of it.
"""
import contextlib
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, NamedTuple, Optional, Tuple, Union

import huggingface_hub
import huggingface_hub.constants
import huggingface_hub.errors
import huggingface_hub.utils
import torch
from huggingface_hub import hf_hub_download
from timm.models._hub import load_model_config_from_hf, load_model_config_from_path

from .._utils.errors import EpsanetError, InvalidArgumentError, first_line
from .._utils.paths import Kind, path_kind, require_existing, require_folder
from .catalogue import CATALOGUE_PATH, find_weights
from .checkpoint import read_state_dict
from .reachability import network_errors, require_reachable_or_cached, unreachable_and_not_cached

__all__ = [
    "HubError", "HubConfig", "read_hub_config", "download_file", "split_hub_id", "pretrained_state_dict",
    "load_catalogue_state_dict", "download_progress", "sha256_of", "verify_catalogue_file", "WEIGHTS_FILE",
]

PathLike = Union[str, os.PathLike]
StateDict = Dict[str, torch.Tensor]
WEIGHTS_FILE = "model.safetensors"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class HubError(EpsanetError, ValueError):
    """Downloading, reading or publishing hub weights failed; the message names cause and fix."""


class HubConfig(NamedTuple):
    """What a hub folder's ``config.json`` says: the zoo architecture, the builder arguments and
    the timm pretrained cfg (which also says where the weights are)."""

    architecture: str
    model_args: Dict[str, Any]
    pretrained_cfg: Dict[str, Any]


@contextlib.contextmanager
def download_progress(enabled: bool) -> Iterator[None]:
    """Show (or hide) huggingface_hub's download progress bars inside the block."""
    was_disabled = huggingface_hub.utils.are_progress_bars_disabled()
    if enabled == (not was_disabled):
        yield
        return
    (huggingface_hub.utils.enable_progress_bars if enabled else huggingface_hub.utils.disable_progress_bars)()
    try:
        yield
    finally:
        (huggingface_hub.utils.disable_progress_bars if enabled else huggingface_hub.utils.enable_progress_bars)()


@contextlib.contextmanager
def _hub_errors(what: str, endpoint: Optional[str] = None, cache_dir: Optional[PathLike] = None) -> Iterator[None]:
    """Turn huggingface_hub's exceptions about ``what`` (e.g. ``hf-hub:org/name@rev``) into one-line HubErrors."""
    errors = huggingface_hub.errors
    endpoint = endpoint or huggingface_hub.constants.ENDPOINT
    cache = os.fspath(cache_dir) if cache_dir is not None else huggingface_hub.constants.HF_HUB_CACHE
    try:
        yield
    except HubError:
        raise
    except (errors.OfflineModeIsEnabled, errors.LocalEntryNotFoundError) as e:
        if huggingface_hub.constants.HF_HUB_OFFLINE:
            raise HubError(
                f"{what} is not in the local Hugging Face cache ({cache}) and "
                "HF_HUB_OFFLINE is set: download it once online (unset HF_HUB_OFFLINE), or point HF_HUB_CACHE "
                "at a cache that has it"
            ) from None
        cause = e.__cause__ or e.__context__ or e
        raise HubError(unreachable_and_not_cached(endpoint, what, first_line(cause))) from None
    except errors.GatedRepoError:
        raise HubError(f"{what} is gated: request access on its Hub page, then log in (`hf auth login`)") from None
    except errors.RevisionNotFoundError:
        raise HubError(f"{what}: no such revision on {endpoint}: check the branch, tag or commit") from None
    except errors.RepositoryNotFoundError:
        raise HubError(
            f"{what}: no such repository, revision or file on {endpoint} (or it is private): check the id and "
            "revision, and log in (`hf auth login`) for private repositories"
        ) from None
    except errors.EntryNotFoundError:
        raise HubError(f"{what}: the file is not in the repository: is it a hub folder written by "
                       "epsanet.save_pretrained?") from None
    except errors.HfHubHTTPError as e:
        raise HubError(f"the Hub at {endpoint} refused {what} ({first_line(e)}): retry later, or check the "
                       "id and your token") from None
    except (ConnectionError, TimeoutError, *network_errors()) as e:
        raise HubError(f"cannot reach the Hub at {endpoint} for {what} ({first_line(e)}): check the network "
                       "and HF_ENDPOINT") from None


def sha256_of(path: PathLike) -> str:
    """The sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_catalogue_file(name: str, path: PathLike) -> str:
    """Check a local file against the sha256 that catalogue entry ``name`` (``model.tag``) records
    and return that digest: the check a file gets before its entry is published, or after it was
    fetched by hand. An unknown entry, an entry without a sha256 and a different file are each a
    one-line :class:`~epsanet._utils.errors.InvalidArgumentError`."""
    model, _, tag = name.partition(".")
    entry = find_weights(model, tag)
    if entry is None:
        raise InvalidArgumentError(f"no catalogue entry {name!r}: see `epsanet weights`")
    require_existing(path, "file")
    actual = sha256_of(path)
    if entry.sha256 is None:
        raise InvalidArgumentError(f"catalogue entry {name} records no sha256: add sha256 = \"{actual}\" (this "
                                   f"file's) to it in {CATALOGUE_PATH} if {path} is its file")
    if actual != entry.sha256.lower():
        raise InvalidArgumentError(f"{path} has sha256 {actual}, not the {entry.sha256} of catalogue entry {name}: "
                                   f"it is another file or a damaged copy; download it again from {entry.source}")
    return actual


def _verify(path: Path, what: str, expected: Optional[str]) -> None:
    """Check a downloaded file against the catalogue's sha256 and against the Hub's (a cache blob
    of an LFS file is named by its sha256); a corrupt cached copy is removed so the next try
    downloads it afresh."""
    blob = path.resolve()
    declared = blob.name if _SHA256.fullmatch(blob.name) else None
    if expected is None and declared is None:
        return
    actual = sha256_of(blob)
    if declared is not None and actual != declared:
        blob.unlink()
        raise HubError(
            f"the cached copy of {what} is corrupt (sha256 {actual[:12]}..., the Hub says {declared[:12]}...): it was "
            "removed from the cache; run again to download it afresh"
        )
    if expected is not None and actual != expected.lower():
        raise HubError(
            f"{what} has sha256 {actual[:12]}..., not the catalogue's {expected[:12]}...: the repository changed "
            "since the catalogue was written; pin the catalogue's revision or update its sha256"
        )


def download_file(repo_id: str, filename: str, revision: Optional[str] = None, *, cache_dir: Optional[PathLike] = None,
                  sha256: Optional[str] = None) -> Path:
    """Download ``filename`` of Hub repository ``repo_id`` into the Hugging Face cache (or take it
    from there) and check its sha256; returns the local path."""
    what = f"hf-hub:{repo_id}{'@' + revision if revision else ''}/{filename}"
    with _hub_errors(what, cache_dir=cache_dir):
        require_reachable_or_cached(repo_id, filename, revision, what, cache_dir, HubError)
        path = Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir))
    _verify(path, what, sha256)
    return path


def split_hub_id(hub_id: str) -> Tuple[str, Optional[str]]:
    """``(repo_id, revision or None)`` of ``[hf-hub:]org/name[@revision]``."""
    repo_id, _, revision = hub_id.removeprefix("hf-hub:").partition("@")
    return repo_id, revision or None


def read_hub_config(name_or_path: PathLike, cache_dir: Optional[PathLike] = None) -> HubConfig:
    """The ``config.json`` of a hub folder or of ``hf-hub:org/name[@revision]`` (downloaded)."""
    name = os.fspath(name_or_path)
    if name.startswith("hf-hub:"):
        with _hub_errors(f"{name}/config.json", cache_dir=cache_dir):
            repo_id, revision = split_hub_id(name)
            require_reachable_or_cached(repo_id, "config.json", revision, f"{name}/config.json", cache_dir, HubError)
            cfg, architecture, model_args = load_model_config_from_hf(name.removeprefix("hf-hub:"), cache_dir=cache_dir)
    else:
        info = path_kind(name)
        if info.kind is Kind.MISSING:
            raise HubError(f"hub folder {name} does not exist: check the path, or pass 'hf-hub:org/name'")
        if not info.is_folder:
            raise HubError(f"{name} is {info.description}, not a hub folder: pass the folder written by "
                           "epsanet.save_pretrained or `epsanet convert`, or 'hf-hub:org/name'")
        if info.kind is Kind.TRAINING_RUN:
            best = Path(name) / "best"
            if (best / "config.json").is_file():
                raise HubError(f"{name} is a training run folder, not a hub folder: pass its best model, {best}")
            raise HubError(f"{name} is a training run folder without a best model yet, not a hub folder: let it "
                           f"finish an epoch, then pass {best}")
        if not (Path(name) / "config.json").is_file():
            raise HubError(
                f"{name} is not a hub folder (no config.json): write one with epsanet.save_pretrained or "
                "`epsanet convert`, or pass 'hf-hub:org/name'"
            )
        try:
            cfg, architecture, model_args = load_model_config_from_path(name)
        except (ValueError, KeyError) as e:
            raise HubError(f"{name}/config.json is not a timm hub config ({first_line(e)}): write the folder "
                           "again with epsanet.save_pretrained") from None
    return HubConfig(architecture, dict(model_args or {}), dict(cfg))


def _local_weights_file(directory: Path) -> Path:
    for name in (WEIGHTS_FILE, "pytorch_model.bin"):
        if (directory / name).is_file():
            return directory / name
    raise HubError(f"{directory} has no {WEIGHTS_FILE}: write the folder again with epsanet.save_pretrained")


def pretrained_state_dict(cfg: Mapping[str, Any], cache_dir: Optional[PathLike] = None) -> StateDict:
    """The state_dict a timm pretrained cfg points at.

    Sources, as timm orders them: ``state_dict``, a hub folder (``source='local-dir'``), a
    ``file``, ``hf_hub_id`` (downloaded and checked), ``url``. A catalogue entry whose weights are
    fetched by hand raises a :class:`HubError` telling how to get them.
    """
    if cfg.get("state_dict") is not None:
        return read_state_dict(cfg["state_dict"])
    if cfg.get("source") == "local-dir":
        require_folder(cfg["file"], "hub folder", "pass the folder written by epsanet.save_pretrained")
        return read_state_dict(_local_weights_file(Path(cfg["file"])))
    if cfg.get("file") and cfg.get("source") != "hf-hub":
        return read_state_dict(cfg["file"])
    if cfg.get("hf_hub_id"):
        repo_id, revision = split_hub_id(cfg["hf_hub_id"])
        entry = find_weights(cfg.get("architecture") or "", cfg.get("tag"))
        expected = entry.sha256 if entry is not None and entry.cfg.get("hf_hub_id") == cfg["hf_hub_id"] else None
        path = download_file(repo_id, cfg.get("hf_hub_filename") or WEIGHTS_FILE, revision, cache_dir=cache_dir,
                             sha256=expected)
        return read_state_dict(path)
    if cfg.get("url"):
        try:
            state = torch.hub.load_state_dict_from_url(
                cfg["url"], model_dir=cache_dir, map_location="cpu", check_hash=True, weights_only=True,
                progress=not huggingface_hub.utils.are_progress_bars_disabled())
        except (OSError, RuntimeError) as e:
            raise HubError(f"cannot download {cfg['url']} ({first_line(e)}): check the network and the URL") from None
        return read_state_dict(state)
    architecture = cfg.get("architecture") or "this model"
    entry = find_weights(architecture, cfg.get("tag"))
    if entry is not None and entry.by_hand:
        raise HubError(entry.fetch_instructions("timm"))
    raise HubError(
        f"no pretrained weights exist for {architecture}: build it with weights=None (pretrained=False), or "
        "load a hub folder or 'hf-hub:org/name' with weights=..."
    )


def load_catalogue_state_dict(name: str, cache_dir: Optional[PathLike] = None) -> StateDict:
    """The state_dict of catalogue entry ``name`` (``model.tag``), downloaded through the Hub cache."""
    model, _, tag = name.partition(".")
    entry = find_weights(model, tag)
    if entry is None:
        raise HubError(f"no catalogue entry {name!r}: see epsanet.list_pretrained(include_by_hand=True)")
    return pretrained_state_dict(dict(entry.cfg, architecture=model, tag=tag), cache_dir=cache_dir)
