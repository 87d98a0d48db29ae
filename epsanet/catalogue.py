"""Reads ``weights/catalogue.toml``: the zoo's architectures and the checkpoints that exist.

timm's ``default_cfgs`` (:func:`timm_default_cfgs`), the torchvision-style weights enums
(:func:`weights_enum`) and :func:`list_pretrained` are all generated here from that one file.
"""
import fnmatch
import functools
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from timm.data import ImageNetInfo, create_transform
from torchvision.models import Weights, WeightsEnum

from .weights import CATALOGUE_PATH

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

__all__ = ["WeightsEntry", "model_info", "weights_entries", "list_pretrained", "timm_default_cfgs", "weights_enum"]

# PretrainedCfg fields whose TOML lists become tuples, as timm writes them.
_TUPLE_FIELDS = ("input_size", "test_input_size", "pool_size", "test_pool_size", "mean", "std", "notes")
# Catalogue fields that are not timm PretrainedCfg fields.
_CATALOGUE_FIELDS = ("model", "tag", "paper_top1", "paper_top5", "top1", "top5", "sha256")


@dataclass(frozen=True)
class WeightsEntry:
    """One checkpoint of the catalogue: ``name`` is ``model.tag``."""

    model: str
    tag: str
    cfg: Dict[str, Any]
    top1: Optional[float] = None
    top5: Optional[float] = None
    sha256: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    @property
    def enum_name(self) -> str:
        """torchvision-style member name: ``a1_in1k`` becomes ``IMAGENET1K_A1``."""
        recipe, _, dataset = self.tag.rpartition("_")
        dataset = {"in1k": "IMAGENET1K", "in22k": "IMAGENET22K"}.get(dataset, dataset.upper())
        return f"{dataset}_{recipe.upper()}" if recipe else dataset


@functools.lru_cache(maxsize=None)
def _catalogue() -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]], Tuple[WeightsEntry, ...]]:
    with open(CATALOGUE_PATH, "rb") as f:
        data = tomllib.load(f)
    defaults, models = data["defaults"], data["models"]
    for name, info in models.items():
        if "alias_of" in info:
            models[name] = dict(models[info["alias_of"]], description=f"{name}: the official code's name for {info['alias_of']}")
    entries = []
    for raw in data.get("weights", []):
        if raw["model"] not in models:
            raise ValueError(f"{CATALOGUE_PATH}: weights entry {raw['model']}.{raw['tag']} names no [models] section")
        cfg = _cfg(defaults, models[raw["model"]], raw)
        entries.append(WeightsEntry(
            raw["model"], raw["tag"], cfg, raw.get("top1"), raw.get("top5"), raw.get("sha256"),
            extra={k: raw[k] for k in _CATALOGUE_FIELDS if k in raw},
        ))
    return defaults, models, tuple(entries)


def _cfg(*layers: Mapping[str, Any]) -> Dict[str, Any]:
    cfg: Dict[str, Any] = {}
    for layer in layers:
        cfg.update({k: v for k, v in layer.items() if k not in _CATALOGUE_FIELDS})
    return {k: tuple(v) if k in _TUPLE_FIELDS else v for k, v in cfg.items()}


def model_info(name: str) -> Dict[str, Any]:
    """The catalogue's ``[models.<name>]`` section (description, paper, licence, paper accuracy)."""
    models = _catalogue()[1]
    if name not in models:
        raise ValueError(f"unknown model {name!r}: it has no [models.{name}] section in {CATALOGUE_PATH}")
    return dict(models[name])


def weights_entries(model: Optional[str] = None) -> List[WeightsEntry]:
    """Every checkpoint in the catalogue, or those of ``model``, default first."""
    return [e for e in _catalogue()[2] if model is None or e.model == model]


def list_pretrained(pattern: str = "*") -> List[str]:
    """Names (``model.tag``) of the checkpoints in the catalogue that match a shell-style pattern."""
    return [e.name for e in weights_entries() if fnmatch.fnmatch(e.name, pattern)]


def timm_default_cfgs() -> Dict[str, Dict[str, Any]]:
    """timm ``default_cfgs`` for every architecture: tagged entries for models with weights,
    one untagged entry (no weights) for the others."""
    defaults, models, entries = _catalogue()
    cfgs = {e.name: dict(e.cfg) for e in entries}
    for name, info in models.items():
        if not any(e.model == name for e in entries):
            cfgs[name] = _cfg(defaults, info)
    return cfgs


class _CatalogueWeightsEnum(WeightsEnum):
    """torchvision weights enum whose members also name their timm tag (``meta['timm_name']``)."""

    @classmethod
    def verify(cls, obj: Any) -> Any:
        """The member named by ``obj``: a member, its name (``"IMAGENET1K_A1"``, optionally
        prefixed by the enum's name) or its timm tag (``"a1_in1k"``); None stays None."""
        if obj is None or isinstance(obj, cls):
            return obj
        if not cls.__members__:
            raise ValueError(
                f"no pretrained weights exist for {cls.__name__} yet: build the model with "
                "weights=None (the README shows how to train and publish weights)"
            )
        if isinstance(obj, str):
            name = obj.replace(cls.__name__ + ".", "")
            for member_name, member in cls.__members__.items():
                if name in (member_name, member.meta["timm_name"].split(".", 1)[1]):
                    return member
        choices = ", ".join(cls.__members__)
        raise ValueError(f"unknown weights {obj!r} for {cls.__name__}: choose one of {choices}")

    def get_state_dict(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        from .hub import load_state_dict_from_cfg

        return load_state_dict_from_cfg(self.meta["pretrained_cfg"])


def _transforms(cfg: Mapping[str, Any]):
    size = cfg.get("test_input_size", cfg["input_size"])
    return functools.partial(
        create_transform, input_size=size, interpolation=cfg["interpolation"], mean=cfg["mean"],
        std=cfg["std"], crop_pct=cfg.get("test_crop_pct", cfg["crop_pct"]),
    )


def weights_enum(enum_name: str, model: str, module: str) -> type:
    """The torchvision-style ``WeightsEnum`` of ``model``, one member per catalogue entry plus
    ``DEFAULT``; empty when no weights exist for the model. ``module`` is where it is defined."""
    members: Dict[str, Weights] = {}
    categories = ImageNetInfo().label_descriptions()
    for entry in weights_entries(model):
        meta = {
            "timm_name": entry.name,
            "pretrained_cfg": entry.cfg,
            "categories": categories if entry.cfg["num_classes"] == 1000 else None,
            "min_size": (1, 1),
            "recipe": entry.cfg.get("origin_url"),
            "_metrics": {"ImageNet-1K": {"acc@1": entry.top1, "acc@5": entry.top5}},
            "_docs": entry.cfg.get("description", ""),
        }
        url = entry.cfg.get("url") or f"https://huggingface.co/{entry.cfg['hf_hub_id']}"
        members[entry.enum_name] = Weights(url=url, transforms=_transforms(entry.cfg), meta=meta)
    if members:
        members["DEFAULT"] = next(iter(members.values()))
    return _CatalogueWeightsEnum(enum_name, members, module=module)
