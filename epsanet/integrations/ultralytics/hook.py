"""How the zoo's layers get into Ultralytics' model parser, with no edit and no copy of it.

Ultralytics' ``parse_model(d, ch, verbose)`` (``ultralytics.nn.tasks``) builds a model from a YAML
dict. It resolves a layer name in its own module's globals and, for a layer outside its own lists,
passes the YAML arguments unchanged and takes the output channels to be the input's: it never
tells such a layer its input channels, and cannot learn that a layer changes them. So
:func:`register` replaces ``ultralytics.nn.tasks.parse_model`` (which every Ultralytics model class
calls through that module attribute) by a wrapper that:

1. rewrites each row naming a zoo layer into a row Ultralytics knows, with the same channel
   bookkeeping: ``nn.Identity`` for attention modules and the zoo backbone, ``Conv [c2]`` for
   ``PSAModule``/``PSAConv``, ``C3k2 [c2, c3k, e]`` for ``C3k2EPSA``, so that Ultralytics scales
   output channels and repeats by the width and depth multiples exactly as for its own layers;
2. calls the original parser on the rewritten dict (YAML rows of other layers are untouched);
3. runs one forward pass of a zero image (128 px, no gradients) through the built layers, and
   replaces each stand-in, in order, by the zoo layer built for the channel count that reaches it
   (and the output channels and repeats Ultralytics gave the stand-in), before the pass goes on.

The model's saved ``yaml`` keeps the zoo names; names Ultralytics defines itself (``CBAM``,
``PSA``, ``C2PSA``...) are never rewritten and keep Ultralytics' meaning.

:func:`register` also adds the classes such a model pickles (epsanet's layers and models, and
timm's feature wrapper of ``EpsanetBackbone``) to torch's ``weights_only`` allow-list, so that its
checkpoints load under ``ULTRALYTICS_SAFE_LOAD=1`` as Ultralytics' own do.
"""
import contextlib
import functools
import importlib
import pkgutil
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import torch
from torch import nn
from ultralytics.nn import tasks
from ultralytics.nn.modules import Conv
from ultralytics.nn.modules.block import C3k
from ultralytics.utils import LOGGER

from ..._utils.errors import InvalidArgumentError
from .modules import ATTENTION_LAYERS, BACKBONE_LAYERS, BLOCK_LAYERS, CONV_LAYERS, LAYERS

__all__ = ["register", "is_registered", "yaml_names", "checkpoint_classes"]

# Side of the zero image that carries channel counts to the zoo layers (a multiple of 64, so P6 models work).
_PROBE_SIZE = 128


def yaml_names() -> List[str]:
    """The layer names the hook adds to Ultralytics' YAMLs: the zoo's names that the installed
    Ultralytics does not define itself."""
    return sorted(name for name in LAYERS if not hasattr(tasks, name))


def is_registered() -> bool:
    """Whether ``ultralytics.nn.tasks.parse_model`` is the zoo's wrapper."""
    return getattr(tasks.parse_model, "_epsanet_wrapper", False)


def checkpoint_classes() -> List[type]:
    """The classes a YOLO checkpoint with zoo layers holds besides torch's and Ultralytics' own:
    every ``nn.Module`` class defined in ``epsanet.layers``, ``epsanet.models`` and the YAML
    modules, and timm's ``FeatureListNet`` with the ``FeatureInfo`` and ``Format`` it keeps."""
    from timm.layers.format import Format
    from timm.models._features import FeatureInfo, FeatureListNet

    from ... import layers, models
    from . import modules

    sources = [modules] + [importlib.import_module(f"{package.__name__}.{info.name}")
                           for package in (layers, models) for info in pkgutil.iter_modules(package.__path__)]
    found = {obj for source in sources for obj in vars(source).values()
             if isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == source.__name__}
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}") + [FeatureListNet, FeatureInfo,
                                                                                    Format]


def register() -> None:
    """Make the zoo's layers usable by name in Ultralytics model YAMLs, and the models they build
    loadable by ``torch.load(weights_only=True)`` (idempotent)."""
    if is_registered():
        return
    if hasattr(torch.serialization, "add_safe_globals"):  # torch >= 2.4
        torch.serialization.add_safe_globals(checkpoint_classes())
    original = tasks.parse_model

    @functools.wraps(original)
    def parse_model(d: Dict[str, Any], ch: int, verbose: bool = True) -> Tuple[nn.Sequential, List[int]]:
        return _parse_model(original, d, ch, verbose)

    parse_model._epsanet_wrapper = True
    tasks.parse_model = parse_model


def _parse_model(original, d: Dict[str, Any], ch: int, verbose: bool) -> Tuple[nn.Sequential, List[int]]:
    names = set(yaml_names())
    rows = [list(row) for row in d["backbone"] + d["head"]]
    ours = {i: row for i, row in enumerate(rows) if row[2] in names}
    if not ours:
        return original(d, ch, verbose=verbose)
    stand_in = dict(d)
    rewritten = [_stand_in_row(i, row) if i in ours else row for i, row in enumerate(rows)]
    stand_in["backbone"], stand_in["head"] = rewritten[:len(d["backbone"])], rewritten[len(d["backbone"]):]
    model, save = original(stand_in, ch, verbose=False)
    _replace_stand_ins(model, rows, ours, ch)
    if verbose:
        _log_layers(model, rows)
    return model, save


def _stand_in_row(index: int, row: List[Any]) -> List[Any]:
    f, n, name, args = row
    args = list(args)
    if not isinstance(f, int):
        raise InvalidArgumentError(f"layer {index} ({name}) reads {f}: it takes the output of one layer, not several")
    if name in ATTENTION_LAYERS or name in BACKBONE_LAYERS:
        return [f, n, "nn.Identity", []]
    if not args:
        raise InvalidArgumentError(f"layer {index} ({name}) needs its output channels as the first YAML argument, "
                                   f"e.g. [{f}, {n}, {name}, [256]]")
    if name in CONV_LAYERS:
        if n != 1:
            raise InvalidArgumentError(f"layer {index} ({name}) takes no repeats: write 1 as its number, not {n}")
        return [f, 1, "Conv", args[:1]]
    return [f, n, "C3k2", args[:3]]  # C3k2EPSA: Ultralytics scales channels and repeats as for its C3k2


def _replace_stand_ins(model: nn.Sequential, rows: List[List[Any]], ours: Dict[int, List[Any]], ch: int) -> None:
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    x = torch.zeros(1, ch, _PROBE_SIZE, _PROBE_SIZE, dtype=dtype)
    outputs: List[Any] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i, layer in enumerate(model):
                if i > max(ours):
                    break
                f = layer.f
                if isinstance(f, int):
                    inputs = x if f == -1 else outputs[f]
                else:
                    inputs = [x if j == -1 else outputs[j] for j in f]
                if i in ours:
                    layer = _build(i, rows, layer, inputs).eval()
                    model[i] = layer
                x = layer(inputs)
                outputs.append(x)
    finally:
        model.train(was_training)


def _build(index: int, rows: List[List[Any]], stand_in: nn.Module, inputs: Any) -> nn.Module:
    f, _, name, args = rows[index]
    if not isinstance(inputs, torch.Tensor):
        raise InvalidArgumentError(f"layer {index} ({name}) reads layer {f}, whose output is a list: read one of its "
                                   "tensors through an Index row")
    c1 = inputs.shape[1]
    cls = LAYERS[name]
    try:
        if name in CONV_LAYERS:
            with _default_activation(stand_in.act):
                layer = cls(c1, stand_in.conv.out_channels, *args[1:])
        elif name in BLOCK_LAYERS:
            expansion = args[2] if len(args) > 2 else 0.5
            with _default_activation(stand_in.cv1.act):
                layer = cls(c1, stand_in.cv2.conv.out_channels, len(stand_in.m), isinstance(stand_in.m[0], C3k),
                            expansion, *args[3:])
        else:
            repeats = len(stand_in) if isinstance(stand_in, nn.Sequential) else 1
            modules = [cls(c1, *args) for _ in range(repeats)]
            layer = modules[0] if repeats == 1 else nn.Sequential(*modules)
    except (ValueError, TypeError, KeyError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        raise InvalidArgumentError(f"layer {index} ({name} {args}) with {c1} input channels: {message}") from None
    if name in BACKBONE_LAYERS:
        _check_index_rows(index, rows, layer)
    layer.i, layer.f, layer.type = index, f, f"epsanet.integrations.ultralytics.{cls.__name__}"
    layer.np = sum(p.numel() for p in layer.parameters())
    return layer


def _check_index_rows(index: int, rows: List[List[Any]], backbone: nn.Module) -> None:
    """Each ``Index`` row reading the backbone must state the channels of the level it picks."""
    for j, (f, _, name, args) in enumerate(rows):
        reads_backbone = f == index or (f == -1 and j == index + 1)
        if name != "Index" or not reads_backbone:
            continue
        stated, level = args[0], args[1] if len(args) > 1 else 0
        if not -len(backbone.channels) <= level < len(backbone.channels):
            raise InvalidArgumentError(f"layer {j} (Index {args}) picks level {level}, but the {backbone.model_name} "
                                       f"backbone at layer {index} has {len(backbone.channels)} levels (strides "
                                       f"{backbone.strides})")
        if stated != backbone.channels[level]:
            raise InvalidArgumentError(
                f"layer {j} (Index {args}) states {stated} channels, but level {level} of {backbone.model_name} "
                f"(stride {backbone.strides[level]}) has {backbone.channels[level]}: write [{f}, 1, Index, "
                f"[{backbone.channels[level]}, {level}]]")


@contextlib.contextmanager
def _default_activation(act: nn.Module) -> Iterator[None]:
    """Build with the activation the YAML chose (Ultralytics sets ``Conv.default_act`` only while parsing)."""
    saved = Conv.default_act
    Conv.default_act = act
    try:
        yield
    finally:
        Conv.default_act = saved


def _log_layers(model: nn.Sequential, rows: Sequence[Sequence[Any]]) -> None:
    """Ultralytics' layer table, with each row's number and arguments as the YAML writes them."""
    LOGGER.info(f"\n{'':>3}{'from':>20}{'n':>3}{'params':>10}  {'module':<45}{'arguments':<30}")
    for layer, (f, n, _, args) in zip(model, rows):
        LOGGER.info(f"{layer.i:>3}{f!s:>20}{n:>3}{layer.np:10.0f}  {layer.type:<45}{args!s:<30}")
