"""Loading checkpoints: the official training scripts' ``.pth.tar``, plain state dicts, safetensors."""
import argparse
import os
import pickle
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import torch
from safetensors.torch import load_file
from torch import nn

from .._utils.errors import EpsanetError, InvalidArgumentError, first_line
from .._utils.paths import Kind, WrongKindError, require_checkpoint

__all__ = [
    "CheckpointMismatchError", "load_checkpoint", "read_state_dict", "check_state_dict", "mismatch",
    "from_official_layout", "load_training_checkpoint",
]

StateDict = Dict[str, torch.Tensor]
# Wrappers whose prefixes a saved state_dict may carry: DataParallel / DDP, torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Where training scripts nest the weights inside a checkpoint dict, most specific first.
_STATE_DICT_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")
_SHOW = 5

# Official CBAM / BAM checkpoints (Jongchan/attention-module) name the attention modules' parts
# differently from the zoo: (pattern, replacement) pairs for ``re.sub``, applied to every key.
_OFFICIAL_CBAM_KEYS = (
    (r"\.cbam\.ChannelGate\.mlp\.1\.", ".cbam.channel_gate.fc1."),
    (r"\.cbam\.ChannelGate\.mlp\.3\.", ".cbam.channel_gate.fc2."),
    (r"\.cbam\.SpatialGate\.spatial\.", ".cbam.spatial_gate."),
)
# Inside one official ``bam<stage>.`` module.
_OFFICIAL_BAM_KEYS = (
    (r"^channel_att\.gate_c\.gate_c_fc_0\.", "channel_gate.fc1."),
    (r"^channel_att\.gate_c\.gate_c_bn_1\.", "channel_gate.bn."),
    (r"^channel_att\.gate_c\.gate_c_fc_final\.", "channel_gate.fc2."),
    (r"^spatial_att\.gate_s\.gate_s_conv_reduce0\.", "spatial_gate.reduce.conv."),
    (r"^spatial_att\.gate_s\.gate_s_bn_reduce0\.", "spatial_gate.reduce.bn."),
    (r"^spatial_att\.gate_s\.gate_s_conv_di_(\d+)\.", r"spatial_gate.dilated.\1.conv."),
    (r"^spatial_att\.gate_s\.gate_s_bn_di_(\d+)\.", r"spatial_gate.dilated.\1.bn."),
    (r"^spatial_att\.gate_s\.gate_s_conv_final\.", "spatial_gate.project."),
)
_OFFICIAL_BAM = re.compile(r"^bam(\d+)\.(.+)$")
_BLOCK = re.compile(r"^layer(\d+)\.(\d+)\.")


class CheckpointMismatchError(EpsanetError, ValueError):
    """A checkpoint does not fit a model: missing or unexpected keys, or shapes that differ."""


def read_state_dict(source: Union[str, os.PathLike, Mapping[str, torch.Tensor]]) -> StateDict:
    """The state_dict in ``source``: a ``.safetensors`` file, a ``torch.save`` file (read with
    ``weights_only=True``), or a mapping; nested under ``state_dict``/``model`` (as the official
    training scripts save it) or not, with ``module.`` / ``_orig_mod.`` prefixes removed."""
    if isinstance(source, Mapping):
        obj = source
    else:
        obj = _load_file(source)
    if not isinstance(obj, Mapping):
        raise InvalidArgumentError(f"checkpoint {os.fspath(source)} holds a {type(obj).__name__}, not a state_dict: "
                                   "save the model's state_dict() instead of the model or a list")
    for key in _STATE_DICT_KEYS:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    state = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            where = "" if isinstance(source, Mapping) else f" of {os.fspath(source)}"
            raise InvalidArgumentError(f"entry {key!r}{where} is a {type(value).__name__}, not a tensor: it is not a "
                                       "state_dict; pass a file saved from model.state_dict()")
        for prefix in _WRAPPER_PREFIXES:
            key = key[len(prefix):] if key.startswith(prefix) else key
        state[key] = value
    return state


def _load_file(source: Union[str, os.PathLike]) -> Mapping:
    """The object in a checkpoint file, read by its content (safetensors, or torch.save's zip or
    pickle format with ``weights_only=True``); anything else is a one-line error naming what it is."""
    info = require_checkpoint(source)
    path = info.path
    try:
        if info.kind is Kind.SAFETENSORS:
            return load_file(path)
        # timm's training checkpoints keep their arguments as an argparse.Namespace: plain data.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = re.search(r"GLOBAL (\S+)", str(e))
        if not str(e).startswith("Weights only load failed") or refused is None:
            raise InvalidArgumentError(f"cannot read checkpoint {path} ({_first_sentence(e)}): the file is truncated "
                                       "or corrupt; download or save it again") from None
        raise InvalidArgumentError(
            f"checkpoint {path} holds Python code or objects ({refused.group(1)}), which epsanet never runs "
            "(torch.load weights_only=True): re-save its state_dict in a trusted environment, or use safetensors"
        ) from None
    except Exception as e:
        raise InvalidArgumentError(f"cannot read checkpoint {path}, {info.description} ({_first_sentence(e)}): the "
                                   "file is truncated or corrupt; download or save it again") from None


def from_official_layout(state: Mapping[str, torch.Tensor]) -> StateDict:
    """``state`` with the keys of official CBAM and BAM ResNet checkpoints renamed to the zoo's
    layout; every other key (the zoo's own, official EPSANet, SA-Net and SGE ones, which need no
    renaming) is kept as it is. Give it a state_dict without wrapper prefixes, as
    :func:`read_state_dict` returns.

    - CBAM: ``layerS.B.cbam.ChannelGate.mlp.{1,3}`` becomes ``layerS.B.cbam.channel_gate.fc{1,2}``
      and ``cbam.SpatialGate.spatial.{conv,bn}`` becomes ``cbam.spatial_gate.{conv,bn}``.
    - BAM: the official ``bamS`` runs after stage ``S``; the zoo appends it to the stage, so
      ``bamS.*`` moves to ``layerS.<number of blocks in stage S>.*`` (``bam1`` to ``layer1.3`` in
      a ResNet-50), with ``channel_att.gate_c.gate_c_fc_0 / gate_c_bn_1 / gate_c_fc_final``
      becoming ``channel_gate.fc1 / bn / fc2`` and ``spatial_att.gate_s.gate_s_conv_reduce0 /
      gate_s_bn_reduce0 / gate_s_conv_di_I / gate_s_bn_di_I / gate_s_conv_final`` becoming
      ``spatial_gate.reduce.conv / reduce.bn / dilated.I.conv / dilated.I.bn / project``.
    """
    blocks: Dict[str, int] = {}
    for key in state:
        match = _BLOCK.match(key)
        if match:
            blocks[match[1]] = max(blocks.get(match[1], 0), int(match[2]) + 1)
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in _OFFICIAL_CBAM_KEYS:
            key = re.sub(pattern, replacement, key)
        match = _OFFICIAL_BAM.match(key)
        if match:
            stage, rest = match[1], match[2]
            if stage not in blocks:
                raise InvalidArgumentError(
                    f"official BAM key {key!r} follows stage {stage}, but the checkpoint has no layer{stage} "
                    "blocks: it is not a BAM-ResNet checkpoint"
                )
            for pattern, replacement in _OFFICIAL_BAM_KEYS:
                rest = re.sub(pattern, replacement, rest)
            key = f"layer{stage}.{blocks[stage]}.{rest}"
        renamed[key] = value
    return renamed


def mismatch(model: nn.Module, state: Mapping[str, torch.Tensor], ignore: Iterable[str] = ()) -> Optional[str]:
    """How ``state`` fails to fit ``model``: the first missing and unexpected keys and the shape
    conflicts, in one line; None when it has exactly the model's keys and shapes (keys in
    ``ignore`` may be missing, unexpected or of another shape)."""
    ignore = set(ignore)
    expected = {k: v for k, v in model.state_dict().items() if k not in ignore}
    state = {k: v for k, v in state.items() if k not in ignore}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    conflicts = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items() if k in state and state[k].shape != v.shape
    ]
    parts = [_summary(name, items) for name, items in
             (("missing", missing), ("unexpected", unexpected), ("shape conflicts", conflicts)) if items]
    return "; ".join(parts) or None


def _first_sentence(error: BaseException) -> str:
    return first_line(error).split(". ")[0]


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], ignore: Iterable[str] = ()) -> None:
    """Raise :class:`CheckpointMismatchError` naming the first missing and unexpected keys and
    the shape conflicts (see :func:`mismatch`), unless ``state`` fits ``model`` exactly."""
    problems = mismatch(model, state, ignore)
    if problems:
        raise CheckpointMismatchError(
            f"checkpoint does not fit {type(model).__name__} ({problems}): check that the "
            "model name matches the checkpoint, or convert it with `epsanet convert`"
        )


def _summary(name: str, items: List[str]) -> str:
    more = f", ... {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return f"{len(items)} {name}: {', '.join(items[:_SHOW])}{more}"


def load_checkpoint(
    model: nn.Module,
    source: Union[str, os.PathLike, Mapping[str, torch.Tensor]],
    strict: bool = True,
) -> Tuple[List[str], List[str]]:
    """Load ``source`` into ``model``: an official ``.pth.tar`` (``{'state_dict': {'module.…'}}``),
    a plain state_dict, a safetensors file, or a mapping. Official CBAM / BAM key names are
    renamed to the zoo's (:func:`from_official_layout`).

    With ``strict`` (the default) a checkpoint that does not fit raises
    :class:`CheckpointMismatchError` listing the first missing/unexpected keys and shape
    conflicts; otherwise the matching tensors are loaded. Returns (missing, unexpected) keys.
    """
    state = from_official_layout(read_state_dict(source))
    if strict:
        check_state_dict(model, state)
    else:
        expected = model.state_dict()
        state = {k: v for k, v in state.items() if k not in expected or expected[k].shape == v.shape}
    result = model.load_state_dict(state, strict=strict)
    return list(result.missing_keys), list(result.unexpected_keys)


def load_training_checkpoint(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """A checkpoint written by ``epsanet train`` (a run folder's ``last.pth``), read with
    ``weights_only=True``; a detector's checkpoint (``epsanet detect train``) is a one-line
    :class:`~epsanet._utils.paths.WrongKindError` pointing to ``epsanet detect``."""
    path = Path(path)
    require_checkpoint(path, "training checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = first_line(e)
        raise InvalidArgumentError(f"cannot read checkpoint {path} ({reason}): it is corrupt or not a training "
                                   "checkpoint; resume from another one or start a new --output-dir") from None
    if isinstance(state, dict) and "detection_config" in state:
        raise WrongKindError(f"{path} is a detector's checkpoint (`epsanet detect train`), not a classifier's: use it "
                             f"with `epsanet detect eval {path}` or `epsanet detect train --resume`")
    if not isinstance(state, dict) or "epoch" not in state or "config" not in state:
        raise InvalidArgumentError(f"{path} is not an epsanet training checkpoint (no epoch/config): "
                                   "to start from its weights, pass it to --pretrained instead")
    return state
