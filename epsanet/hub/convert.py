"""Converters: checkpoints of other code bases into hub folders (``epsanet convert``).

A checkpoint is read safely (``weights_only=True`` or safetensors), unwrapped (``state_dict`` /
``model``, ``module.`` prefixes; official CBAM / BAM key names renamed by
:func:`epsanet.weights.checkpoint.from_official_layout`), recognised by its keys (never by an ``arch`` field: ECA-Net's
released ``eca_resnet50_k3557.pth.tar`` says ``se_resnet50``), loaded strictly into the named
zoo model and written with :func:`epsanet.save_pretrained`. A plain ResNet fits no attention
model exactly: it is transplanted (:func:`epsanet.transplant`) only when asked to.
"""
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

import torch

from .._utils.errors import InvalidArgumentError, PathExistsError
from .._utils.paths import Kind, require_output_folder
from ..models import create_model, get_model_builder, list_models
from ..weights.catalogue import WeightsEntry, architecture_cfg, canonical_model, find_weights
from ..weights.checkpoint import CheckpointMismatchError, from_official_layout, mismatch, read_state_dict
from ..weights.download import WEIGHTS_FILE, HubError, download_file, sha256_of, split_hub_id
from .pretrained import save_pretrained
from .warm_start import TransplantReport, transplant

__all__ = ["Conversion", "LAYOUTS", "detect_layout", "convert_checkpoint"]

StateDict = Dict[str, torch.Tensor]


def _has(fragment: str) -> Callable[[StateDict], bool]:
    return lambda state: any(fragment in key for key in state)


_PLAIN_RESNET_KEY = re.compile(r"(conv1|bn1|fc|layer\d+\.\d+\.(conv[123]|bn[123]|downsample\.[01]))\.")


def _is_plain_resnet(state: StateDict) -> bool:
    return any(".conv3." in key for key in state) and all(_PLAIN_RESNET_KEY.match(key) for key in state)


# Checkpoint layouts recognised by their keys (after from_official_layout): name -> (description,
# test). All of them use torchvision's ResNet names, which the zoo keeps.
LAYOUTS: Dict[str, tuple] = {
    "epsanet": ("an official EPSANet checkpoint (murufeng/EPSANet)", _has(".conv2.conv_1.weight")),
    "eca": ("an official ECA-Net checkpoint (BangguWu/ECANet)", _has(".eca.conv.weight")),
    "cbam": ("an official CBAM-ResNet checkpoint (Jongchan/attention-module)", _has(".cbam.channel_gate.")),
    "bam": ("an official BAM-ResNet checkpoint (Jongchan/attention-module)", _has(".spatial_gate.dilated.")),
    "sge": ("an official SGE-ResNet checkpoint (implus/PytorchInsight)", _has(".sge.weight")),
    "sa": ("an official SA-ResNet checkpoint (wofmanaf/SA-Net)", _has(".sa.cweight")),
    "se": ("an SE-ResNet in timm's seresnet layout", _has(".se.fc1.weight")),
    "resnet": ("a plain bottleneck ResNet (torchvision / timm)", _is_plain_resnet),
}


def detect_layout(state: StateDict) -> Optional[str]:
    """The name of the first :data:`LAYOUTS` entry that recognises ``state``, or None."""
    return next((name for name, (_, test) in LAYOUTS.items() if test(state)), None)


@dataclass
class Conversion:
    """The outcome of :func:`convert_checkpoint`."""

    directory: Path
    name: str
    layout: Optional[str]
    num_params: int
    num_classes: int
    transplant: Optional[TransplantReport] = None

    def __str__(self) -> str:
        what = LAYOUTS[self.layout][0] if self.layout else "a checkpoint"
        line = (f"converted {what} into {self.directory} as {self.name} "
                f"({self.num_params:,} parameters, {self.num_classes} classes)")
        return f"{line}; {self.transplant}" if self.transplant else line


def _read_source(source: Union[str, os.PathLike], cache_dir: Optional[Union[str, os.PathLike]],
                 entry: Optional[WeightsEntry]) -> StateDict:
    """The state_dict of a file or ``hf-hub:`` id, checked against the sha256 the catalogue
    records for ``entry`` (if any)."""
    name = os.fspath(source)
    expected = entry.sha256 if entry is not None else None
    if name.startswith("hf-hub:"):
        repo_id, revision = split_hub_id(name)
        return read_state_dict(download_file(repo_id, WEIGHTS_FILE, revision, cache_dir=cache_dir, sha256=expected))
    if expected is not None and Path(name).is_file():
        actual = sha256_of(name)
        if actual != expected:
            raise HubError(f"{name} is not the file of {entry.name} (sha256 {actual[:12]}..., the catalogue says "
                           f"{expected[:12]}...): download it again from {entry.fetch_url or entry.source}")
    return from_official_layout(read_state_dict(source))


def _models_that_fit(state: StateDict, num_classes: int) -> List[str]:
    fits = []
    for name in list_models():
        if canonical_model(name) != name:  # an alias builds the same model
            continue
        expected = create_model(name, device="meta", num_classes=num_classes).state_dict()
        if expected.keys() == state.keys() and all(v.shape == state[k].shape for k, v in expected.items()):
            fits.append(name)
    return fits


def convert_checkpoint(source: Union[str, os.PathLike], model: str, out: Union[str, os.PathLike], *,
                       tag: Optional[str] = None, warm_start: bool = False, overwrite: bool = False,
                       cache_dir: Optional[Union[str, os.PathLike]] = None) -> Conversion:
    """Convert a checkpoint into a hub folder of zoo model ``model``.

    Args:
        source: a checkpoint file (official ``.pth.tar``, a ``torch.save`` state_dict, safetensors)
            or ``hf-hub:org/name[@revision]`` (its ``model.safetensors``, e.g. timm's weights).
        model: the zoo model the weights are for, e.g. ``eca_resnet50``.
        out: the hub folder to write (``config.json``, ``model.safetensors``, ``README.md``).
        tag: the catalogue entry the file is (``k3557_in1k`` for ``eca_resnet50``): the folder then
            carries its preprocessing, accuracy, licence and citation, and a file whose sha256 the
            catalogue records is checked against it.
        warm_start: initialise ``model`` from a plain ResNet with :func:`epsanet.transplant`
            instead of requiring an exact fit.
        overwrite: replace ``out`` if it exists.
    """
    get_model_builder(model)  # a misspelt name is found before the file is read
    out = Path(out)
    existing = require_output_folder(out, "--out", "choose another output folder")
    if existing.kind is not Kind.MISSING and not overwrite:
        raise PathExistsError(f"{out} already exists: choose another output folder, or replace it (--force)")
    entry = find_weights(model, tag) if tag else None
    if tag and entry is None:
        raise InvalidArgumentError(f"no catalogue entry {model}.{tag}: see `epsanet weights`, or leave out the tag")
    state = _read_source(source, cache_dir, entry)
    layout = detect_layout(state)
    num_classes = state["fc.weight"].shape[0] if "fc.weight" in state else 0
    cfg = dict(entry.cfg) if entry is not None else architecture_cfg(model)
    origin = "warm-started by epsanet.transplant from" if warm_start else "converted by `epsanet convert` from"
    provenance = f"{origin} {Path(os.fspath(source)).name}"
    cfg.update(architecture=model, tag=tag, notes=(provenance,))
    net = get_model_builder(model)(pretrained_cfg=cfg, num_classes=num_classes)
    # BatchNorm's num_batches_tracked counters (PyTorch >= 0.4.1) are missing from older checkpoints.
    counters = [k for k in net.state_dict() if k.endswith(".num_batches_tracked")]
    state.update({k: torch.tensor(0) for k in counters
                  if k not in state and k.rpartition(".")[0] + ".running_mean" in state})
    report = None
    if warm_start:
        report = transplant(state, net)
    else:
        problems = mismatch(net, state)
        if problems and layout == "resnet":
            raise CheckpointMismatchError(
                f"{source} is {LAYOUTS['resnet'][0]}, without weights for {model}'s attention modules: "
                "initialise from it with --warm-start (epsanet.transplant)"
            )
        if problems:
            fits = _models_that_fit(state, num_classes)
            hint = f": it fits {', '.join(fits)}" if fits else ": check the model name"
            raise CheckpointMismatchError(f"{source} does not fit {model} ({problems}){hint}")
        net.load_state_dict(state)
    description = f"{cfg.get('description', model)}; {provenance}"
    save_pretrained(net, out, model_card={"description": description})
    name = f"{model}.{tag}" if tag else model
    return Conversion(out, name, layout, sum(p.numel() for p in net.parameters()), num_classes, report)
