"""Weights on the Hugging Face Hub in timm's format: ``config.json`` + ``model.safetensors``."""
import contextlib
import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Union

import huggingface_hub.utils
import timm
import torch
from huggingface_hub import hf_hub_download
from safetensors.torch import load_file
from timm.models import save_for_hf

__all__ = ["save_pretrained", "from_pretrained", "load_state_dict_from_cfg", "download_progress"]


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


def save_pretrained(model: torch.nn.Module, directory: Union[str, os.PathLike],
                    model_args: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``model`` to ``directory`` in timm's hub format (``config.json`` with
    ``architecture``, ``num_classes``, ``model_args``, ``pretrained_cfg``; ``model.safetensors``).

    The folder appears complete or not at all: it is written next to its destination and renamed.
    ``model_args`` (default: the arguments the model was created with) are the builder keyword
    arguments needed to rebuild it, e.g. ``{"num_classes": 10}``.
    """
    directory = Path(directory)
    if any(not t.is_contiguous() for t in model.state_dict().values()):  # channels_last: safetensors needs contiguous
        model = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    if model_args is None:
        model_args = dict(getattr(model, "pretrained_model_args", {}) or {}, **getattr(model, "_model_args", {}))
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        save_for_hf(model, str(staging), model_args=model_args, safe_serialization=True)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def from_pretrained(name_or_path: Union[str, os.PathLike], **kwargs: Any) -> torch.nn.Module:
    """Load a model saved by :func:`save_pretrained`: a local folder or ``hf-hub:org/name[@rev]``.

    Keyword arguments go to the model builder (e.g. ``num_classes=10`` for a new head).
    """
    name = str(name_or_path)
    source = name if name.startswith("hf-hub:") else f"local-dir:{name}"
    return timm.create_model(source, pretrained=True, **kwargs)


def load_state_dict_from_cfg(cfg: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """The state_dict a catalogue entry points at (its ``hf_hub_id`` on the Hub)."""
    repo_id, _, revision = cfg["hf_hub_id"].partition("@")
    path = hf_hub_download(repo_id, cfg.get("hf_hub_filename", "model.safetensors"), revision=revision or None)
    return load_file(path)
