"""One ResNet family for the whole zoo.

Every model is timm's :class:`~timm.models.resnet.ResNet` (stem, stages, head, features, grad
checkpointing, ``forward_intermediates``) built from the one :class:`Bottleneck` below, whose 3x3
convolution can be EPSANet's PSA module and which can add an attention module after ``bn3``.
State-dict keys follow torchvision: ``conv1, bn1, layer1..4.N.{conv1, bn1, conv2, bn2, conv3, bn3,
downsample.0, downsample.1}, fc``; the attention module sits under its own name
(``layer1.0.se``, ``layer1.0.eca``, ...) as in the official checkpoints. An attention module
between stages (BAM) is the last entry of its stage (``layer1.3`` after three blocks).
"""
import functools
import math
import os
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Type, Union

import torch
from timm.layers import create_aa, register_notrace_module
from timm.models import build_model_with_cfg, resolve_pretrained_cfg
from timm.models.resnet import ResNet as _TimmResNet
from torch import nn
from torchvision.models import WeightsEnum

from .._utils.errors import InvalidArgumentError
from ..layers import PSAModule, create_attention, get_attention, list_attention
from ..weights.catalogue import canonical_model
from ..weights.checkpoint import check_state_dict, from_official_layout
from ..weights.download import HubError, download_progress, pretrained_state_dict, read_hub_config

__all__ = ["Bottleneck", "ResNet"]

AttnKwargs = Union[Dict[str, Any], Sequence[Dict[str, Any]]]

# torch.fx feature extraction (timm, torchvision) treats the fast PSA as one leaf: its forward
# picks a computation from the input's device, dtype and grad mode, which symbolic tracing cannot follow.
register_notrace_module(PSAModule)


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1, 3x3, 1x1) with optional PSA and post-``bn3`` attention.

    Accepts every argument timm's ``make_blocks`` passes to a block, plus:

    Args:
        psa_groups: the four PSA branch group counts; when given, ``conv2`` is a
            :class:`~epsanet.layers.PSAModule` instead of a 3x3 convolution (an EPSA block).
        psa_kernel_sizes: the four PSA branch kernel sizes.
        psa_layer: name of the PSA implementation: ``"psa"`` (the fast default) or
            ``"psa_reference"`` (the official formulation, for comparisons); same parameters.
        attn_layer: name of an attention module (see :func:`~epsanet.layers.create_attention`)
            applied to the output of ``bn3`` before the residual add; stored under that name.
        attn_kwargs: keyword arguments for the attention module.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: Optional[nn.Module] = None,
        cardinality: int = 1,
        base_width: int = 64,
        reduce_first: int = 1,
        dilation: int = 1,
        first_dilation: Optional[int] = None,
        act_layer: Type[nn.Module] = nn.ReLU,
        norm_layer: Type[nn.Module] = nn.BatchNorm2d,
        aa_layer: Optional[Type[nn.Module]] = None,
        drop_block: Optional[Callable[[], nn.Module]] = None,
        drop_path: Optional[nn.Module] = None,
        psa_groups: Optional[Sequence[int]] = None,
        psa_kernel_sizes: Sequence[int] = (3, 5, 7, 9),
        psa_layer: str = "psa",
        attn_layer: Optional[str] = None,
        attn_kwargs: Optional[Dict[str, Any]] = None,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        width = int(math.floor(planes * (base_width / 64)) * cardinality)
        first_planes = width // reduce_first
        outplanes = planes * self.expansion
        first_dilation = first_dilation or dilation
        use_aa = aa_layer is not None and (stride == 2 or first_dilation != dilation)
        conv2_stride = 1 if use_aa else stride

        self.conv1 = nn.Conv2d(inplanes, first_planes, kernel_size=1, bias=False, **dd)
        self.bn1 = norm_layer(first_planes, **dd)
        self.act1 = act_layer(inplace=True)
        if psa_groups is not None:
            if cardinality != 1:
                raise InvalidArgumentError("a PSA bottleneck sets its groups with psa_groups: leave cardinality at 1")
            self.conv2 = get_attention(psa_layer)(
                first_planes, width, kernel_sizes=psa_kernel_sizes, groups=psa_groups,
                stride=conv2_stride, dilation=first_dilation, **dd,
            )
        else:
            self.conv2 = nn.Conv2d(
                first_planes, width, kernel_size=3, stride=conv2_stride, padding=first_dilation,
                dilation=first_dilation, groups=cardinality, bias=False, **dd,
            )
        self.bn2 = norm_layer(width, **dd)
        self.drop_block = drop_block() if drop_block is not None else nn.Identity()
        self.act2 = act_layer(inplace=True)
        self.aa = create_aa(aa_layer, channels=width, stride=stride, enable=use_aa, **dd)
        self.conv3 = nn.Conv2d(width, outplanes, kernel_size=1, bias=False, **dd)
        self.bn3 = norm_layer(outplanes, **dd)
        self.attn_name = attn_layer or ""
        if attn_layer:
            self.add_module(attn_layer, create_attention(attn_layer, outplanes, **(attn_kwargs or {}), **dd))
        self.act3 = act_layer(inplace=True)
        self.downsample = downsample
        self.drop_path = drop_path

    def zero_init_last(self) -> None:
        """Zero the last BatchNorm's scale so that every block starts as the identity."""
        nn.init.zeros_(self.bn3.weight)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        # The attention module is registered under its own name so that state_dict keys match
        # the official checkpoints (``se.fc1``, ``eca.conv``, ...). TorchScript only accepts
        # literal attribute names, so look it up among the children instead of with getattr.
        for name, module in self.named_children():
            if name == self.attn_name:
                x = module(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.drop_block(self.bn2(self.conv2(x))))
        x = self.aa(x)
        x = self._attend(self.bn3(self.conv3(x)))
        if self.drop_path is not None:
            x = self.drop_path(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        x += shortcut
        return self.act3(x)


def _stage_block(**block_kwargs: Any) -> Callable[..., Bottleneck]:
    block = functools.partial(Bottleneck, **block_kwargs)
    block.expansion = Bottleneck.expansion  # timm's make_blocks reads it from each stage's block
    return block


class ResNet(_TimmResNet):
    """ResNet whose bottlenecks can hold PSA and attention modules, with optional attention
    between stages.

    Args:
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)`` for 50 layers.
        psa_groups, psa_kernel_sizes, psa_layer: make every ``conv2`` a PSA module (see
            :class:`Bottleneck`).
        attn_layer: attention module added after every ``bn3``, by name.
        attn_kwargs: its keyword arguments: one dict for all stages, or a list of four dicts,
            one per stage (e.g. ECA-Net's per-stage kernel sizes).
        stage_attn_layer: attention module added at the end of every stage but the last (where
            the next stage downsamples, as BAM), by name. It is appended to the stage's
            ``nn.Sequential`` (``layer1.3`` after three blocks), so timm's forward_features,
            forward_intermediates, features_only and grad checkpointing include it.
        stage_attn_kwargs: its keyword arguments.
        **kwargs: the arguments of timm's ResNet (``num_classes``, ``in_chans``, ``base_width``,
            ``global_pool``, ``drop_rate``, ``drop_path_rate``, ``output_stride``, ``norm_layer``,
            ``zero_init_last``, ``device``, ``dtype``, ...). Unknown names raise ``TypeError``.
    """

    def __init__(
        self,
        layers: Sequence[int],
        psa_groups: Optional[Sequence[int]] = None,
        psa_kernel_sizes: Sequence[int] = (3, 5, 7, 9),
        psa_layer: str = "psa",
        attn_layer: Optional[str] = None,
        attn_kwargs: Optional[AttnKwargs] = None,
        stage_attn_layer: Optional[str] = None,
        stage_attn_kwargs: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        block_attn_kwargs = _per_stage(attn_kwargs, len(layers))
        blocks = tuple(
            _stage_block(psa_groups=psa_groups, psa_kernel_sizes=psa_kernel_sizes, psa_layer=psa_layer,
                         attn_layer=attn_layer, attn_kwargs=stage_kwargs)
            for stage_kwargs in block_attn_kwargs
        )
        super().__init__(block=blocks, layers=tuple(layers), **kwargs)
        if stage_attn_layer:
            dd = {"device": kwargs.get("device"), "dtype": kwargs.get("dtype")}
            for info in self.feature_info[1:-1]:  # layer1 .. the stage before the last
                getattr(self, info["module"]).append(
                    create_attention(stage_attn_layer, info["num_chs"], **(stage_attn_kwargs or {}), **dd))

    @torch.jit.ignore
    def init_weights(self, zero_init_last: bool = True) -> None:
        """timm's initialisation (Kaiming for every convolution, zero last BatchNorm per block),
        then the initialisation each attention module's official code gives it, where it has one
        (its ``reset_parameters``), which timm's would otherwise overwrite."""
        super().init_weights(zero_init_last)
        attention_types = tuple(get_attention(name) for name in list_attention())
        for module in self.modules():
            if isinstance(module, attention_types) and hasattr(module, "reset_parameters"):
                module.reset_parameters()


def _per_stage(attn_kwargs: Optional[AttnKwargs], num_stages: int) -> Tuple[Dict[str, Any], ...]:
    if attn_kwargs is None or isinstance(attn_kwargs, dict):
        return (dict(attn_kwargs or {}),) * num_stages
    if len(attn_kwargs) != num_stages:
        raise InvalidArgumentError(
            f"attn_kwargs needs one dict per stage ({num_stages}), got {len(attn_kwargs)}: "
            "pass a single dict to use the same arguments in every stage"
        )
    return tuple(dict(kw) for kw in attn_kwargs)


def _resnet(arch: str, model_args: Dict[str, Any], weights: Union[WeightsEnum, str, os.PathLike, None],
            progress: bool, **kwargs: Any) -> ResNet:
    """Build zoo model ``arch`` through timm's ``build_model_with_cfg``.

    Serves both callers of a builder: torchvision style (``weights=`` a member of the model's
    weights enum, a hub folder or ``"hf-hub:org/name[@revision]"``; ``progress=``) and timm's
    ``create_model``, which passes ``pretrained``, ``pretrained_cfg``, ``cache_dir``, ... in
    ``kwargs``. A hub folder's ``config.json`` supplies the builder arguments (``kwargs`` win)
    and must name this architecture. Weights are read by epsanet (downloads checked, one-line
    errors) and must fit exactly; a different ``num_classes`` keeps the backbone weights and gives
    a freshly initialised classifier, as timm does.
    """
    pretrained = kwargs.pop("pretrained", False)
    cache_dir = kwargs.pop("cache_dir", None)
    if isinstance(weights, WeightsEnum):
        pretrained = True
        kwargs["pretrained_cfg"] = weights.meta["timm_name"].split(".", 1)[1]
    elif weights is not None:
        config = read_hub_config(weights, cache_dir=cache_dir)
        if not _same_architecture(arch, config.architecture):
            raise HubError(
                f"{os.fspath(weights)} holds {config.architecture} weights, not {arch}: build "
                f"epsanet.{config.architecture}(weights=...) or call epsanet.from_pretrained({os.fspath(weights)!r})"
            )
        kwargs = dict(config.model_args, **kwargs)
        kwargs.update(pretrained_cfg=config.pretrained_cfg, pretrained_model_args=config.model_args)
        pretrained = True
    recorded_args = {k: v for k, v in kwargs.items() if k not in _RUNTIME_ARGS}
    source_cfg = None
    if pretrained:
        source_cfg = resolve_pretrained_cfg(
            arch, kwargs.pop("pretrained_cfg", None), kwargs.pop("pretrained_cfg_overlay", None)).to_dict()
        with download_progress(progress):
            state_dict = from_official_layout(pretrained_state_dict(source_cfg, cache_dir=cache_dir))
        # timm's load_pretrained then adapts the classifier / first conv and loads strictly. It
        # takes the weights from the cfg's state_dict, but deep-copies the cfg on the way: hand it a
        # placeholder and the weights through the filter instead.
        kwargs["pretrained_cfg"] = dict(source_cfg, state_dict=_WEIGHTS_PLACEHOLDER, source=None)
        kwargs["pretrained_filter_fn"] = functools.partial(_fit_pretrained, state_dict)
    model = build_model_with_cfg(ResNet, arch, pretrained, **dict(model_args, **kwargs))
    if source_cfg is not None:
        model.pretrained_cfg.update(state_dict=None, source=source_cfg.get("source"))
    model._model_args = recorded_args
    return model


# Builder arguments that say how or where to build, not what: not recorded with the model.
_RUNTIME_ARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "pretrained_model_args", "device", "dtype",
                 "features_only", "out_indices", "feature_cls")


def _same_architecture(arch: str, other: str) -> bool:
    try:
        return canonical_model(arch) == canonical_model(other)
    except ValueError:
        return False


def _without_input_channels(weight: torch.Tensor) -> Tuple[int, ...]:
    return (weight.shape[0], *weight.shape[2:])


_WEIGHTS_PLACEHOLDER = {"weights come through pretrained_filter_fn": torch.zeros(())}


def _fit_pretrained(state_dict: Dict[str, torch.Tensor], placeholder: Dict[str, torch.Tensor],
                    model: nn.Module) -> Dict[str, torch.Tensor]:
    """timm's ``pretrained_filter_fn`` (with the weights bound first): check that they fit
    ``model`` before timm loads them, with a one-line error; the classifier may differ (a new
    ``num_classes``) and the first convolution's input channels (a new ``in_chans``), which timm
    adapts."""
    cfg = model.pretrained_cfg
    ignore = []
    if model.num_classes != cfg["num_classes"]:
        ignore += [f"{cfg['classifier']}.weight", f"{cfg['classifier']}.bias"]
    first_conv = f"{cfg['first_conv']}.weight"
    expected, given = model.state_dict().get(first_conv), state_dict.get(first_conv)
    if (expected is not None and given is not None
            and _without_input_channels(expected) == _without_input_channels(given)):
        ignore.append(first_conv)
    check_state_dict(model, state_dict, ignore=ignore)
    return state_dict
