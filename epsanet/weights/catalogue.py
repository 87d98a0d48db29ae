"""Reads ``epsanet/weights/catalogue.toml``: the zoo's architectures and the checkpoints that exist.

timm's ``default_cfgs`` (:func:`timm_default_cfgs`) and :func:`list_pretrained` are generated
here from that one file, and so are the torchvision-style weights enums
(:func:`epsanet.models._api.weights_enum`). This module imports nothing else of epsanet's but its error
classes.
"""
import fnmatch
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .._utils.errors import InvalidArgumentError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

__all__ = [
    "CATALOGUE_PATH", "WeightsEntry", "model_info", "architecture_cfg", "canonical_model", "weights_entries",
    "find_weights", "licence", "list_pretrained", "timm_default_cfgs",
]

CATALOGUE_PATH = Path(__file__).with_name("catalogue.toml")
# PretrainedCfg fields whose TOML lists become tuples, as timm writes them.
_TUPLE_FIELDS = ("input_size", "test_input_size", "pool_size", "test_pool_size", "mean", "std", "notes")
# Catalogue fields that are not timm PretrainedCfg fields.
_CATALOGUE_FIELDS = (
    "model", "tag", "paper_top1", "paper_top5", "top1", "top5", "sha256", "citation", "metrics_source",
    "fetch_url", "fetch_file", "fetch_code", "alias_of",
)


# How each route loads the hub folder DIR that `epsanet convert` makes of weights fetched by hand.
FETCH_ROUTES: Dict[str, str] = {
    "python": "epsanet.{model}(weights='DIR') (torch.hub: torch.hub.load(REPO, '{model}', weights='DIR'))",
    "timm": "timm.create_model('local-dir:DIR', pretrained=True) after `import epsanet`",
    "cli-model": "`--model DIR`",
    "cli-pretrained": "`--pretrained DIR`",
}


@dataclass(frozen=True)
class WeightsEntry:
    """One checkpoint of the catalogue: ``name`` is ``model.tag``.

    ``cfg`` is its timm pretrained cfg. Weights on the Hub have ``cfg['hf_hub_id']``; weights that
    can only be fetched by hand have ``fetch_url`` (and ``fetch_file``, the file's name there).
    """

    model: str
    tag: str
    cfg: Dict[str, Any]
    top1: Optional[float] = None
    top5: Optional[float] = None
    sha256: Optional[str] = None
    fetch_url: Optional[str] = None
    fetch_file: Optional[str] = None
    citation: Optional[str] = None
    metrics_source: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    @property
    def by_hand(self) -> bool:
        """True when no program can download the file: a person fetches it from ``fetch_url``."""
        return self.fetch_url is not None

    @property
    def source(self) -> str:
        """Where the weights come from: ``hf-hub:org/name[@rev]`` or the page to fetch them from."""
        return self.fetch_url if self.by_hand else f"hf-hub:{self.cfg['hf_hub_id']}"

    @property
    def enum_name(self) -> str:
        """torchvision-style member name: ``a1_in1k`` becomes ``IMAGENET1K_A1``."""
        recipe, _, dataset = self.tag.rpartition("_")
        dataset = {"in1k": "IMAGENET1K", "in22k": "IMAGENET22K"}.get(dataset, dataset.upper())
        return f"{dataset}_{recipe.upper()}" if recipe else dataset

    def fetch_instructions(self, route: str = "python") -> str:
        """One line for weights no program can download: where to download the file (with the
        extraction code the page asks for), the ``epsanet convert`` command that makes a hub folder
        of it, and how ``route`` (a key of :data:`FETCH_ROUTES`) then loads that folder. Every route
        (builders and torch.hub, timm, the command line) says it through here."""
        file = self.fetch_file or "FILE"
        code = self.extra.get("fetch_code")
        page = f"{self.fetch_url} (extraction code {code})" if code else self.fetch_url
        return (
            f"weights {self.name} must be fetched by hand: download {self.fetch_file or 'the checkpoint'} from "
            f"{page}, convert it with `epsanet convert {file} --model {self.model} --tag {self.tag} --out DIR`, "
            f"then load DIR with {FETCH_ROUTES[route].format(model=self.model)}"
        )


@functools.lru_cache(maxsize=None)
def _catalogue() -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]], Tuple[WeightsEntry, ...]]:
    with open(CATALOGUE_PATH, "rb") as f:
        data = tomllib.load(f)
    defaults, models = data["defaults"], data["models"]
    for name, info in models.items():
        if "alias_of" in info:
            models[name] = dict(models[info["alias_of"]], alias_of=info["alias_of"],
                                description=f"{name}: the official code's name for {info['alias_of']}")
    entries = []
    for raw in data.get("weights", []):
        name = f"{raw['model']}.{raw['tag']}"
        if raw["model"] not in models:
            raise ValueError(f"{CATALOGUE_PATH}: weights entry {name} names no [models] section")
        if ("hf_hub_id" in raw) == ("fetch_url" in raw):
            raise ValueError(f"{CATALOGUE_PATH}: weights entry {name} needs exactly one of hf_hub_id and fetch_url")
        cfg = _cfg(defaults, models[raw["model"]], raw)
        if "fetch_url" in raw:
            cfg["notes"] = (f"fetch by hand from {raw['fetch_url']}, then `epsanet convert`",)
        entries.append(WeightsEntry(
            raw["model"], raw["tag"], cfg, raw.get("top1"), raw.get("top5"), raw.get("sha256"),
            raw.get("fetch_url"), raw.get("fetch_file"), raw.get("citation") or models[raw["model"]].get("citation"),
            raw.get("metrics_source"), extra={k: raw[k] for k in _CATALOGUE_FIELDS if k in raw},
        ))
    return defaults, models, tuple(entries)


def _cfg(*layers: Mapping[str, Any]) -> Dict[str, Any]:
    cfg: Dict[str, Any] = {}
    for layer in layers:
        cfg.update({k: v for k, v in layer.items() if k not in _CATALOGUE_FIELDS})
    return {k: tuple(v) if k in _TUPLE_FIELDS else v for k, v in cfg.items()}


def model_info(name: str) -> Dict[str, Any]:
    """The catalogue's ``[models.<name>]`` section (description, paper, licence, citation, paper accuracy)."""
    models = _catalogue()[1]
    if name not in models:
        raise InvalidArgumentError(f"unknown model {name!r}: it has no [models.{name}] section in {CATALOGUE_PATH}")
    return dict(models[name])


# The catalogue's licences (the Hugging Face Hub's lower-case ids) by their SPDX ids.
_SPDX = {"mit": "MIT", "apache-2.0": "Apache-2.0", "bsd-3-clause": "BSD-3-Clause", "cc-by-4.0": "CC-BY-4.0"}


def licence(cfg: Mapping[str, Any]) -> str:
    """The licence of a catalogue model or weights entry (``cfg`` holds ``license`` and
    ``origin_url``) in words for a table: its SPDX id (``MIT``, ``Apache-2.0``); for the catalogue's
    "unknown", "no licence file" when the code is on GitHub without one, else "-" (no code)."""
    value = cfg.get("license")
    if value and value != "unknown":
        return _SPDX.get(value.lower(), value)
    return "no licence file" if (cfg.get("origin_url") or "").startswith("https://github.com/") else "-"


def architecture_cfg(name: str) -> Dict[str, Any]:
    """The timm pretrained cfg of architecture ``name`` itself, without weights: preprocessing,
    head layout, paper and licence (what a checkpoint trained from scratch inherits)."""
    return _cfg(_catalogue()[0], model_info(name))


def canonical_model(name: str) -> str:
    """The architecture ``name`` builds: aliases (``epsanet50``) resolve to their model (``epsanet50_small``)."""
    return model_info(name).get("alias_of", name)


def weights_entries(model: Optional[str] = None) -> List[WeightsEntry]:
    """Every checkpoint in the catalogue, or those of ``model`` (aliases included), default first."""
    model = canonical_model(model) if model is not None else None
    return [e for e in _catalogue()[2] if model is None or e.model == model]


def find_weights(model: str, tag: Optional[str]) -> Optional[WeightsEntry]:
    """The catalogue entry ``model.tag`` (aliases resolved), or None."""
    return next((e for e in weights_entries(model) if e.tag == tag), None)


def list_pretrained(pattern: str = "*", include_by_hand: bool = False) -> List[str]:
    """Names (``model.tag``) of the catalogue's checkpoints matching a shell-style pattern.

    By default only weights that ``pretrained=True`` downloads by itself (as ``timm.list_pretrained``);
    ``include_by_hand=True`` adds the official checkpoints a person has to fetch.
    """
    return [e.name for e in weights_entries()
            if fnmatch.fnmatch(e.name, pattern) and (include_by_hand or not e.by_hand)]


def timm_default_cfgs() -> Dict[str, Dict[str, Any]]:
    """timm ``default_cfgs`` for every architecture: tagged entries for models with weights (an
    alias gets its model's), one untagged entry (no weights) for the others."""
    _, models, entries = _catalogue()
    cfgs = {}
    for name, info in models.items():
        own = [e for e in entries if e.model == info.get("alias_of", name)]
        cfgs.update({f"{name}.{e.tag}": dict(e.cfg) for e in own})
        if not own:
            cfgs[name] = architecture_cfg(name)
    return cfgs
