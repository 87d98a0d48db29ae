"""Hub folders that ``transformers`` loads: ``pipeline("image-classification", model=...)`` and
``AutoModelForImageClassification.from_pretrained`` through its timm wrapper (``TimmWrapper*``).

transformers recognises a timm ``config.json`` by its ``pretrained_cfg``, builds the model with
``timm.create_model(architecture, num_classes=num_labels, **model_args)`` and names the classes
from the root ``label_names``. So the file must not repeat ``num_classes`` inside ``model_args``
(a duplicate keyword: timm's own ``save_for_hf`` writes it there when the builder was given it) and
must carry the label names at the root (timm's loader reads them there too; they stay in
``pretrained_cfg`` as well). The zoo's
architectures exist in timm only after ``import epsanet``.
"""
import json
import os
from typing import Any, Dict, Union

from .._utils.files import write_json

__all__ = ["transformers_config", "adapt_hub_config"]

# Label fields read at the root of config.json by both timm's loader and transformers.
_LABEL_FIELDS = ("label_names", "label_descriptions")


def transformers_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """A timm hub ``config.json`` (as a dict) that transformers' timm wrapper also loads; timm and
    epsanet read it exactly as before (the root ``num_classes`` sets the classifier size)."""
    config = json.loads(json.dumps(config))
    model_args = config.get("model_args") or {}
    model_args.pop("num_classes", None)
    if "model_args" in config:
        config["model_args"] = model_args
    pretrained_cfg = config.get("pretrained_cfg") or {}
    for field in _LABEL_FIELDS:
        value = pretrained_cfg.get(field)
        if value and field not in config:
            config[field] = list(value) if isinstance(value, (list, tuple)) else value
    return config


def adapt_hub_config(path: Union[str, os.PathLike]) -> None:
    """Rewrite the ``config.json`` at ``path`` (atomically) with :func:`transformers_config`."""
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    write_json(path, transformers_config(config))
