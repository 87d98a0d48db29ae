"""MkDocs hooks: the pages that come from the code, generated at every build (nothing cached on disk).

- ``models/<family>.md``: one page per model family, from ``epsanet.list_models()``, the catalogue
  (``epsanet.weights.catalogue``), ``epsanet.tools.stats`` and the builders' signatures;
- the model table of ``models.md``, the weights table of ``weights.md`` and the benchmark table of
  ``gallery.md`` (markers in those pages; the last is what ``make bench-chart`` printed);
- ``reference/*.md``: the API reference, one ``:::`` entry per public name, from ``epsanet.__all__``
  and the ``__all__`` of the subpackages users call (layers, weights, hub, training, detection, YOLO);
- ``architecture.md``: ``ARCHITECTURE.md`` at the repository's root.

``tests/docs`` imports this file to check the built site against the same functions.
"""
import functools
import importlib
import importlib.util
import inspect
import re
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
IMG_SIZE = 224

# Model families, in the order of the navigation: (page, title, the paper's id in the catalogue).
FAMILIES: Tuple[Tuple[str, str, str], ...] = (
    ("epsanet", "EPSANet", "arXiv:2105.14447"),
    ("se", "SE-ResNet", "arXiv:1709.01507"),
    ("eca", "ECA-ResNet", "arXiv:1910.03151"),
    ("cbam", "CBAM-ResNet", "arXiv:1807.06521"),
    ("bam", "BAM-ResNet", "arXiv:1807.06514"),
    ("sa", "SA-ResNet (shuffle attention)", "arXiv:2102.00240"),
    ("polarized", "Polarized self-attention ResNet", "arXiv:2107.00782"),
    ("sge", "SGE-ResNet", "arXiv:1905.09646"),
    ("coord", "Coordinate attention ResNet", "arXiv:2103.02907"),
    ("gam", "GAM-ResNet", "arXiv:2112.05561"),
    ("ema", "EMA-ResNet", "arXiv:2305.13563"),
)

MODELS_TABLE_MARKER = "<!-- generated: models table -->"
WEIGHTS_TABLE_MARKER = "<!-- generated: weights table -->"
BENCH_TABLE_MARKER = "<!-- generated: bench table -->"
# What `make bench-chart` printed: the machine's line and the table (next to the chart it drew).
BENCH_TABLE = ROOT / "docs" / "gallery" / "bench.txt"


class ModelRow(NamedTuple):
    """What the docs say about one zoo model: measured by the code, read from the catalogue."""

    name: str
    family: str
    params: int
    gmacs: float
    info: Dict[str, Any]
    weights: Tuple[Any, ...]  # epsanet.weights.catalogue.WeightsEntry


def family_of(paper_ids: str) -> str:
    for page, _, paper in FAMILIES:
        if paper == paper_ids:
            return page
    raise ValueError(f"no model family in docs/hooks.py FAMILIES for the paper {paper_ids}: "
                     "add one, and its page to mkdocs.yml's nav")


@functools.lru_cache(maxsize=None)
def model_rows() -> Tuple[ModelRow, ...]:
    """Every zoo model, as ``epsanet models`` counts it: parameters, and GMACs of one 224 px image on
    the meta device (shapes only, no weights)."""
    import epsanet
    from epsanet.weights.catalogue import model_info, weights_entries

    rows = []
    for name in epsanet.list_models():
        model = epsanet.create_model(name, device="meta")
        info = model_info(name)
        rows.append(ModelRow(
            name, family_of(info["paper_ids"]), epsanet.count_params(model),
            round(epsanet.count_macs(model, (3, IMG_SIZE, IMG_SIZE)) / 1e9, 2), info, tuple(weights_entries(name)),
        ))
    return tuple(rows)


def _licence(row: ModelRow) -> str:
    licence, url = row.info.get("license"), row.info.get("origin_url") or ""
    if licence == "unknown":
        return "no licence file" if url.startswith("https://github.com/") else "-"
    return {"mit": "MIT", "apache-2.0": "Apache-2.0"}.get(licence or "", licence or "-")


def _code(row: ModelRow) -> str:
    url = row.info.get("origin_url")
    return f"[{url.split('://', 1)[-1].removeprefix('github.com/')}]({url})" if url else "no official code"


def _top1(value: Optional[float]) -> str:
    return f"{value:.2f}" if value is not None else "-"


def weights_size(entry: Any) -> str:
    """The evaluation size and crop of a catalogue entry, as ``epsanet weights`` prints them."""
    size = entry.cfg.get("test_input_size", entry.cfg["input_size"])
    crop = entry.cfg.get("test_crop_pct", entry.cfg["crop_pct"])
    return f"{size[1] if size[1] == size[2] else f'{size[1]}x{size[2]}'} ({crop})"


def _source(entry: Any) -> str:
    if not entry.by_hand:
        return f"`{entry.source}` (downloaded)"
    code = entry.extra.get("fetch_code")
    return f"[fetch by hand]({entry.fetch_url})" + (f" (extraction code {code})" if code else "")


def weights_table(entries) -> str:
    lines = ["| weights | top-1 | top-5 | eval size (crop) | source | licence |", "|---|---:|---:|---:|---|---|"]
    for e in entries:
        lines.append(f"| `{e.name}` | {e.top1:g} | {e.top5:g} | {weights_size(e)} | {_source(e)} "
                     f"| {e.cfg.get('license')} |")
    return "\n".join(lines)


def models_table() -> str:
    lines = [f"| model | params | GMACs @{IMG_SIZE} | paper top-1 | official code | licence | pretrained weights |",
             "|---|---:|---:|---:|---|---|---|"]
    for r in model_rows():
        weights = ", ".join(f"`{e.name}`" for e in r.weights) or "none yet"
        lines.append(f"| [{r.name}](models/{r.family}.md#{r.name}) | {r.params:,} | {r.gmacs:.2f} | "
                     f"{_top1(r.info.get('paper_top1'))} | {_code(r)} | {_licence(r)} | {weights} |")
    return "\n".join(lines)


def readme_models_table() -> str:
    """The README's model table: the same numbers as the docs' (``python docs/hooks.py`` prints it)."""
    lines = [f"| model | params | GMACs @{IMG_SIZE} | paper top-1 | pretrained weights |", "|---|---:|---:|---:|---|"]
    for r in model_rows():
        alias = r.info.get("alias_of")
        name = f"`{r.name}`" + (f" (= `{alias}`)" if alias else "")
        weights = ", ".join(f"`{e.tag}`" for e in r.weights) or "none yet"
        lines.append(f"| {name} | {r.params:,} | {r.gmacs:.2f} | {_top1(r.info.get('paper_top1'))} | {weights} |")
    return "\n".join(lines)


def _signature(name: str, builder) -> str:
    """``epsanet.<name>(`` and one parameter a line, annotations without their module paths."""
    signature = inspect.signature(builder)
    short = functools.partial(re.sub, r"\b(?:[a-z_][a-z0-9_]*\.)+([A-Za-z_][A-Za-z0-9_]*)", r"\1")
    params = [short(str(p)) for p in signature.parameters.values()]
    if any(p.kind is p.KEYWORD_ONLY for p in signature.parameters.values()) and not any(
            p.kind is p.VAR_POSITIONAL for p in signature.parameters.values()):
        first_kw = next(i for i, p in enumerate(signature.parameters.values()) if p.kind is p.KEYWORD_ONLY)
        params.insert(first_kw, "*")
    returns = "" if signature.return_annotation is inspect.Signature.empty else (
        f" -> {short(inspect.formatannotation(signature.return_annotation))}")
    return f"epsanet.{name}(\n" + "".join(f"    {p},\n" for p in params) + f"){returns}"


def _usage(row: ModelRow) -> str:
    lines = ["import epsanet, timm", ""]
    hub = [e for e in row.weights if not e.by_hand]
    by_hand = [e for e in row.weights if e.by_hand]
    if hub:
        lines += [f'model = epsanet.{row.name}(weights="{hub[0].enum_name}")  # {hub[0].tag}: downloaded, checked',
                  f'model = timm.create_model("{hub[0].name}", pretrained=True)  # the same, through timm']
    if by_hand:
        lines.append(f'model = epsanet.{row.name}(weights="DIR")  # {by_hand[0].tag}, fetched and converted to DIR')
    lines += [f"model = epsanet.{row.name}(num_classes=10)  # random initialisation",
              f'backbone = timm.create_model("{row.name}", features_only=True)  # 5 feature maps']
    return "```python\n" + "\n".join(lines) + "\n```"


def family_page(page: str, title: str) -> str:
    import epsanet

    # Shallow before deep, Small before Large, aliases (the official code's names) last.
    rows = sorted((r for r in model_rows() if r.family == page), key=lambda r: (
        "alias_of" in r.info, int(re.search(r"\d+", r.name).group()), r.name.endswith("_large"), r.name))
    info = rows[0].info
    paper = info["paper_ids"]
    out = [f"# {title}", "",
           f"*{info['paper_name']}* ([{paper}](https://arxiv.org/abs/{paper.split(':', 1)[1]})). "
           f"Official code: {_code(rows[0])} (licence: {_licence(rows[0])}).", "",
           "Parameters and GMACs (multiply-accumulates of one 224x224 image) are counted by the code, as "
           "`epsanet models` prints them; paper top-1 is the ImageNet-1k accuracy the paper reports. "
           "[All models](../models.md) · [weights and the Hub](../weights.md)", ""]
    for r in rows:
        builder = getattr(epsanet, r.name)
        alias = r.info.get("alias_of")
        out += [f"## {r.name} {{#{r.name}}}", "", r.info["description"] + ".", ""]
        notes = r.info.get("notes") or ()
        out += [" ".join([notes] if isinstance(notes, str) else notes), ""] if notes else []
        out += ["| params | GMACs @224 | paper top-1 | paper top-5 |", "|---:|---:|---:|---:|",
                f"| {r.params:,} | {r.gmacs:.2f} | {_top1(r.info.get('paper_top1'))} "
                f"| {_top1(r.info.get('paper_top5'))} |", ""]
        if r.weights:
            out += ["**Pretrained weights** (`epsanet weights`):", "", weights_table(r.weights), ""]
            for e in r.weights:
                if e.by_hand:
                    out += [f"- `{e.name}`: {e.fetch_instructions()}."]
            out += [""]
        else:
            out += ["**Pretrained weights:** none exist yet" + (f" (the same as `{alias}`)." if alias else "."), ""]
        out += ["**Builder** ([reference][epsanet." + r.name + "]):", "",
                f"```python\n{_signature(r.name, builder)}\n```", "", _usage(r), ""]
    citation = info.get("citation")
    if citation:
        out += ["## Citation", "", "```bibtex", citation.strip(), "```", ""]
    return "\n".join(out)


class ReferencePage(NamedTuple):
    page: str
    title: str
    intro: str
    # (module whose __all__ is documented, the prefix the entries are rendered under)
    modules: Tuple[str, ...]


REFERENCE_PAGES: Tuple[ReferencePage, ...] = (
    ReferencePage("models", "Models", "Building models: the builders, their weights enums, the registry and "
                  "the ResNet they all are.", ("epsanet.models",)),
    ReferencePage("layers", "Layers", "The attention modules and their registry (`create_attention`, "
                  "`list_attention`), usable on any NCHW tensor.", ("epsanet.layers",)),
    ReferencePage("weights", "Weights", "The catalogue of weights that exist, checkpoint files and downloads.",
                  ("epsanet.weights",)),
    ReferencePage("hub", "Hub", "Models as files: hub folders, loading a model from any source, converting "
                  "checkpoints, warm start from ResNet weights.", ("epsanet.hub",)),
    ReferencePage("tools", "Tools", "What is done with a model: counting, explaining, exporting, deploying, "
                  "predicting, benchmarking.", ("epsanet.tools.stats", "epsanet.tools.export",
                                                 "epsanet.tools.predict", "epsanet.tools.benchmark")),
    ReferencePage("runtimes", "Runtimes", "Serving a model from OpenVINO or ONNX Runtime: exports with PSA plans "
                  "measured in the runtime, int8, and the exports served back.",
                  ("epsanet.runtimes", "epsanet.runtimes.exported", "epsanet.runtimes.plans")),
    ReferencePage("training", "Training", "Training and evaluating classifiers (`epsanet train`, `epsanet eval`).",
                  ("epsanet.training",)),
    ReferencePage("detection", "Detection", "Faster/Mask R-CNN and RetinaNet on zoo backbones, COCO-format data "
                  "and evaluation (`epsanet detect`).", ("epsanet.detection", "epsanet.detection.engine")),
    ReferencePage("ultralytics", "YOLO integration", "The zoo's layers in Ultralytics YOLO YAMLs "
                  "(`import epsanet.integrations.ultralytics`; needs the `yolo` extra).",
                  ("epsanet.integrations.ultralytics",)),
)


def _public_names(module_name: str) -> List[str]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:  # a module without __all__: its public functions and classes defined there
        names = [n for n, v in vars(module).items() if not n.startswith("_") and getattr(v, "__module__", None)
                 == module_name and (inspect.isfunction(v) or inspect.isclass(v))]
    return list(names)


def _page_of(obj: Any) -> str:
    """The reference page of a name ``import epsanet`` exports: the layer it is defined in."""
    module = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", "epsanet.models")
    layer = module.split(".")[1] if module.count(".") else "models"
    return {"_utils": "weights"}.get(layer, layer)


@functools.lru_cache(maxsize=None)
def reference_entries() -> Dict[str, List[str]]:
    """page -> the dotted names documented on it. Every name of ``epsanet.__all__`` is documented as
    ``epsanet.<name>``; then each subpackage's other public names, each object once."""
    import epsanet

    entries: Dict[str, List[str]] = {p.page: [] for p in REFERENCE_PAGES}
    seen = set()
    for name in epsanet.__all__:
        if name == "__version__":
            continue
        obj = getattr(epsanet, name)
        entries[_page_of(obj)].append(f"epsanet.{name}")
        seen.add(id(obj))
    for ref in REFERENCE_PAGES:
        for module_name in ref.modules:
            module = importlib.import_module(module_name)
            for name in _public_names(module_name):
                obj = getattr(module, name)
                if id(obj) in seen or isinstance(obj, (str, int, float, Path, tuple, list, dict)) and name.isupper():
                    continue
                seen.add(id(obj))
                defined = getattr(obj, "__module__", None) or ""
                # Rendered where it is defined: griffe reads the source and cannot follow `import *`.
                path = (f"{defined}.{obj.__qualname__}" if defined.startswith("epsanet.")
                        and (inspect.isclass(obj) or inspect.isfunction(obj)) else f"{module_name}.{name}")
                entries[ref.page].append(path)
    return entries


def _shadowed(path: str) -> Optional[str]:
    """Where to render ``epsanet.<name>`` when griffe would read it as the submodule of the same name
    (``epsanet.transplant``, the function of ``epsanet/hub/transplant.py``): its definition."""
    import epsanet

    if path.count(".") != 1:
        return None
    obj = getattr(epsanet, path.split(".")[1])
    if inspect.ismodule(obj) or not (inspect.isfunction(obj) or inspect.isclass(obj)):
        return None
    package = obj.__module__.rsplit(".", 1)[0]
    if importlib.util.find_spec(f"{package}.{obj.__name__}") is None:
        return None
    return f"{obj.__module__}.{obj.__qualname__}"


def reference_page(ref: ReferencePage) -> str:
    out = [f"# {ref.title}", "", ref.intro, ""]
    for path in reference_entries()[ref.page]:
        definition = _shadowed(path)
        # An autorefs anchor keeps `epsanet.<name>` a link target when the entry renders its definition.
        out += [f"[](){{#{path}}}", f"::: {definition}", ""] if definition else [f"::: {path}", ""]
    return "\n".join(out)


def reference_index() -> str:
    import epsanet

    out = ["# API reference", "",
           f"Every name `import epsanet` exports (`epsanet.__all__`; version `{epsanet.__version__}`, "
           "`epsanet.__version__`), and the entry points of the subpackages, rendered from their docstrings. "
           "`import epsanet` also registers every model with timm (`timm.create_model`) and torchvision "
           "(`torchvision.models.get_model`).", "", "| name | page |", "|---|---|"]
    titles = {p.page: p.title for p in REFERENCE_PAGES}
    for page, paths in reference_entries().items():
        for path in paths:
            if path.count(".") == 1:
                out.append(f"| [`{path}`][{path}] | [{titles[page]}]({page}.md) |")
    out += ["", "Subpackages: " + ", ".join(f"[{p.title}]({p.page}.md)" for p in REFERENCE_PAGES[2:]) + ".", ""]
    return "\n".join(out)


def architecture_page() -> str:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    return text.replace("](README.md)", "](index.md)")


def generated_pages() -> Dict[str, str]:
    pages = {f"models/{page}.md": family_page(page, title) for page, title, _ in FAMILIES}
    pages.update({f"reference/{ref.page}.md": reference_page(ref) for ref in REFERENCE_PAGES})
    pages["reference/index.md"] = reference_index()
    pages["architecture.md"] = architecture_page()
    return pages


def on_files(files, config):
    from mkdocs.structure.files import File

    for src_uri, content in generated_pages().items():
        files.append(File.generated(config, src_uri, content=content))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MODELS_TABLE_MARKER in markdown:
        markdown = markdown.replace(MODELS_TABLE_MARKER, models_table())
    if WEIGHTS_TABLE_MARKER in markdown:
        from epsanet.weights.catalogue import weights_entries

        markdown = markdown.replace(WEIGHTS_TABLE_MARKER, weights_table(weights_entries()))
    if BENCH_TABLE_MARKER in markdown:
        machine, _, table = BENCH_TABLE.read_text().strip().partition("\n\n")
        markdown = markdown.replace(BENCH_TABLE_MARKER, f"{machine}\n\n{table}" if table else machine)
    return markdown


if __name__ == "__main__":
    print(readme_models_table())
