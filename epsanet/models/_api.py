"""The torchvision-style weights enums of the zoo's builders, generated from the catalogue.

As torchvision's ``models/_api.py``: every model file imports this module, which imports no model;
a member's weights download through :mod:`epsanet.weights.download`.
"""
import functools
import os
from typing import Any, Dict, Mapping

from timm.data import ImageNetInfo, create_transform
from torchvision.models import Weights, WeightsEnum

from .._utils.errors import InvalidArgumentError
from .._utils.paths import looks_like_path, require_existing
from ..weights.catalogue import find_weights, weights_entries
from ..weights.download import HubError, load_catalogue_state_dict

__all__ = ["weights_enum"]


class _CatalogueWeightsEnum(WeightsEnum):
    """torchvision weights enum whose members also name their timm tag (``meta['timm_name']``)."""

    @classmethod
    def verify(cls, obj: Any) -> Any:
        """The weights named by ``obj``: a member, its name (``"IMAGENET1K_A1"``, optionally prefixed
        by the enum's name) or its timm tag (``"a1_in1k"``); a hub folder written by
        :func:`epsanet.save_pretrained` or an ``"hf-hub:org/name[@revision]"`` id is returned as
        is (the builder loads it); None stays None. A path (see :func:`looks_like_path`) that does
        not exist is a :class:`PathNotFoundError` naming it."""
        if obj is None or isinstance(obj, str) and obj.startswith("hf-hub:"):
            return obj
        if isinstance(obj, (str, os.PathLike)) and (looks_like_path(obj) or os.path.isdir(obj)):
            require_existing(obj, "weights", "check the path, or pass a hub folder or 'hf-hub:org/name'")
            return obj
        member = obj if isinstance(obj, cls) else None
        if not cls.__members__:
            raise InvalidArgumentError(
                f"no pretrained weights exist for {cls.__name__} yet: build the model with weights=None, "
                "or pass a hub folder or 'hf-hub:org/name' (the README shows how to train and publish weights)"
            )
        if isinstance(obj, str):
            name = obj.replace(cls.__name__ + ".", "")
            member = next((m for member_name, m in cls.__members__.items()
                           if name in (member_name, m.meta["timm_name"].split(".", 1)[1])), None)
        if member is not None:
            member._require_downloadable()
            return member
        choices = ", ".join(cls.__members__)
        raise InvalidArgumentError(
            f"unknown weights {obj!r} for {cls.__name__}: choose one of {choices}, "
            "or pass an existing hub folder or 'hf-hub:org/name'"
        )

    def get_state_dict(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        """The weights' state_dict, downloaded (and checked) through the Hugging Face Hub cache."""
        self._require_downloadable()
        return load_catalogue_state_dict(self.meta["timm_name"])

    def _require_downloadable(self) -> None:
        """Weights fetched by hand: the one-line HubError telling how to get them and load them."""
        if self.meta["fetch_url"]:
            raise HubError(find_weights(*self.meta["timm_name"].split(".", 1)).fetch_instructions("python"))


def _transforms(cfg: Mapping[str, Any]):
    size = cfg.get("test_input_size", cfg["input_size"])
    return functools.partial(
        create_transform, input_size=size, interpolation=cfg["interpolation"], mean=cfg["mean"],
        std=cfg["std"], crop_pct=cfg.get("test_crop_pct", cfg["crop_pct"]),
    )


def weights_enum(enum_name: str, model: str, module: str) -> type:
    """The torchvision-style ``WeightsEnum`` of ``model``, one member per catalogue entry plus
    ``DEFAULT`` (the first entry); empty when no weights exist for the model. ``module`` is where
    it is defined. Members of weights fetched by hand have ``meta['fetch_url']``."""
    members: Dict[str, Weights] = {}
    categories = ImageNetInfo().label_descriptions()
    for entry in weights_entries(model):
        meta = {
            "timm_name": entry.name,
            "pretrained_cfg": entry.cfg,
            "categories": categories if entry.cfg["num_classes"] == 1000 else None,
            "min_size": (1, 1),
            "recipe": entry.cfg.get("origin_url"),
            "license": entry.cfg.get("license"),
            "citation": entry.citation,
            "sha256": entry.sha256,
            "fetch_url": entry.fetch_url,
            "_metrics": {"ImageNet-1K": {"acc@1": entry.top1, "acc@5": entry.top5}},
            "_docs": entry.cfg.get("description", ""),
        }
        url = entry.fetch_url or f"https://huggingface.co/{entry.cfg['hf_hub_id']}"
        members[entry.enum_name] = Weights(url=url, transforms=_transforms(entry.cfg), meta=meta)
    if members:
        members["DEFAULT"] = next(iter(members.values()))
    return _CatalogueWeightsEnum(enum_name, members, module=module)
