"""What the attention does: class activation maps (Grad-CAM and its kin, from the ``grad-cam``
package) for any zoo model, and the kernel sizes EPSANet's PSA modules choose.

- :func:`explain` computes a CAM per image (default layer: the model's last stage) with the
  top-5 classes, drawn by :func:`overlay_image` and compared across models by :func:`grid_image`.
- :func:`psa_scale_weights` reports, for every PSA block, the mean softmax weight each branch
  (kernel 3/5/7/9) receives over some images; :func:`plot_psa_scales` charts it per stage.
- :func:`explain_files` is the ``epsanet explain`` job: files in, PNGs and JSON out (atomically).

CAMs need the optional ``grad-cam`` package: ``pip install 'epsanet[explain]'``.
"""
import difflib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from timm.data import create_transform
from torch import nn
from torchvision.transforms import Compose

from .._utils.errors import InvalidArgumentError
from .._utils.files import atomic_file, write_json
from .._utils.optional import require
from .._utils.paths import require_existing, require_output_folder
from ..hub.sources import source_info
from ..layers import PSAModule
from .predict import find_images, load_image

__all__ = [
    "METHODS", "Explanation", "PSAScaleWeights", "explain", "psa_scale_weights", "default_target_layer",
    "describe_default_layer",
    "find_layer", "load_image", "overlay_image", "grid_image", "save_png",
    "plot_psa_scales", "explain_files", "require_grad_cam",
]

PathLike = Union[str, os.PathLike]
# --method name -> pytorch_grad_cam class
METHODS = {"gradcam": "GradCAM", "gradcam++": "GradCAMPlusPlus", "eigencam": "EigenCAM", "scorecam": "ScoreCAM"}
METHOD_TITLES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "eigencam": "Eigen-CAM", "scorecam": "Score-CAM"}
# Overlays are drawn at this size (the short side), whatever the model's input size.
DISPLAY_SIZE = 224
# The default CAM layer is the last stage whose map has at least this many cells a side.
MIN_CAM_CELLS = 4


def require_grad_cam():
    """The ``pytorch_grad_cam`` module, or a one-line :class:`MissingDependencyError` naming the extra."""
    return require("pytorch_grad_cam", "explain", "Grad-CAM")


# -- images ---------------------------------------------------------------------------------------

# -- model helpers --------------------------------------------------------------------------------

def default_target_layer(model: nn.Module) -> str:
    """The layer CAMs use by default: the model's last stage (``layer4`` for the zoo's ResNets at
    224 px), or, when its map is smaller than :data:`MIN_CAM_CELLS` cells a side at the model's
    input size (``layer4`` is 1x1 at 32 px), the last stage whose map is not."""
    info = getattr(model, "feature_info", None)
    if not info:
        raise InvalidArgumentError(f"{type(model).__name__} does not say which is its last stage: pass --layer NAME")
    size = min(source_info(model).input_size[1:])
    for stage in reversed(info):
        if math.ceil(size / stage["reduction"]) >= MIN_CAM_CELLS:
            return stage["module"]
    return info[-1]["module"]


def describe_default_layer(model: nn.Module) -> str:
    """Why :func:`default_target_layer` chose its layer, for the user."""
    layer, last = default_target_layer(model), model.feature_info[-1]["module"]
    if layer == last:
        return "its last stage"
    size = "x".join(str(s) for s in source_info(model).input_size[1:])
    return (f"{last}, the last stage, has fewer than {MIN_CAM_CELLS}x{MIN_CAM_CELLS} cells at the model's {size} px "
            f"input; {layer} is the last stage with that many")


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule ``name`` (``layer4``, ``layer3.5.conv2``, ...), or a one-line error listing close names."""
    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    close = difflib.get_close_matches(name, [n for n in modules if n], n=4, cutoff=0.5)
    stages = [n for n in modules if re.fullmatch(r"layer\d+", n)]
    hint = f"did you mean {', '.join(close)}?" if close else f"the stages are {', '.join(stages) or 'unnamed'}"
    raise InvalidArgumentError(f"the model has no layer {name!r} ({hint}); layer names are those of "
                               "model.named_modules()")


def resolve_target(model: nn.Module, target: Union[int, str, None]) -> Optional[int]:
    """A ``--target`` (class index or class name) as a class index; ``None`` stays ``None`` (each image's top-1)."""
    if target is None:
        return None
    names = source_info(model).class_names
    if isinstance(target, int) or str(target).lstrip("-").isdigit():
        index = int(target)
        if not 0 <= index < len(names):
            raise InvalidArgumentError(f"--target {index} is not a class of a model with {len(names)} classes "
                                       f"(0..{len(names) - 1})")
        return index
    if target in names:
        return names.index(target)
    close = difflib.get_close_matches(str(target), names, n=3)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ": pass a class index"
    raise InvalidArgumentError(f"--target {target!r} is not a class name of the model{hint}")


def _transforms(model: nn.Module, display_size: int):
    """The model's evaluation transform, and the same resize and crop at ``display_size`` (short
    side) without normalisation, so the picture shows exactly what the model saw."""
    data_config = source_info(model).data_config
    channels, height, width = data_config["input_size"]
    scale = display_size / min(height, width)
    display_config = dict(data_config, input_size=(channels, round(height * scale), round(width * scale)))
    display = create_transform(**display_config)
    return create_transform(**data_config), Compose(display.transforms[:-2]), channels


# -- CAMs -----------------------------------------------------------------------------------------

@dataclass
class Explanation:
    """The CAM of one image: ``image`` (RGB, float in [0, 1], display size), ``cam`` (same
    height and width, in [0, 1]), the class it explains and the top-5 ``(class name, probability)``."""

    image: np.ndarray
    cam: np.ndarray
    target: int
    target_name: str
    top5: List[Tuple[str, float]]
    layer: str
    method: str

    @property
    def overlay(self) -> np.ndarray:
        """The heatmap on the image, RGB uint8."""
        from pytorch_grad_cam.utils.image import show_cam_on_image

        return show_cam_on_image(self.image.astype(np.float32), self.cam, use_rgb=True, image_weight=0.5)


def explain(model: nn.Module, images: Sequence[Image.Image], method: str = "gradcam", layer: Optional[str] = None,
            target: Union[int, str, None] = None, display_size: int = DISPLAY_SIZE,
            batch_size: int = 8) -> List[Explanation]:
    """Class activation maps of ``images`` (PIL, any size and mode) for ``model``.

    ``method`` is one of :data:`METHODS`; ``layer`` a module name (default: the last stage,
    :func:`default_target_layer`); ``target`` a class index or name (default: each image's
    top-1 prediction). Each image goes through the model's own evaluation preprocessing.
    """
    cam_module = require_grad_cam()
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if method not in METHODS:
        raise InvalidArgumentError(f"unknown CAM method {method!r}: choose one of {', '.join(METHODS)}")
    layer = layer or default_target_layer(model)
    target_layer = find_layer(model, layer)
    target_index = resolve_target(model, target)
    names = source_info(model).class_names
    transform, display_transform, channels = _transforms(model, display_size)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    results: List[Explanation] = []
    try:
        with getattr(cam_module, METHODS[method])(model=model, target_layers=[target_layer]) as cam:
            if method == "scorecam":
                cam.batch_size = 64
            for start in range(0, len(images), batch_size):
                batch = [image.convert("RGB") for image in images[start:start + batch_size]]
                model_inputs = [image.convert("L") if channels == 1 else image for image in batch]
                x = torch.stack([transform(image) for image in model_inputs]).to(device)
                targets = None if target_index is None else [ClassifierOutputTarget(target_index)] * len(batch)
                maps = cam(input_tensor=x, targets=targets)
                probabilities = cam.outputs.detach().float().softmax(dim=1).cpu()
                for image, cam_map, probs in zip(batch, maps, probabilities):
                    pixels = np.asarray(display_transform(image), dtype=np.float32) / 255.0
                    resized = np.asarray(Image.fromarray(cam_map.astype(np.float32), mode="F").resize(
                        (pixels.shape[1], pixels.shape[0]), Image.BILINEAR))
                    top = probs.topk(min(5, len(names)))
                    chosen = target_index if target_index is not None else int(top.indices[0])
                    results.append(Explanation(
                        image=pixels, cam=np.clip(resized, 0.0, 1.0), target=chosen, target_name=names[chosen],
                        top5=[(names[i], float(p)) for p, i in zip(top.values.tolist(), top.indices.tolist())],
                        layer=layer, method=method))
    finally:
        model.zero_grad(set_to_none=True)  # the CAM's backward passes leave gradients on the weights
        model.train(was_training)
    return results


# -- drawing --------------------------------------------------------------------------------------

def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def overlay_image(explanation: Explanation, title: Optional[str] = None) -> Image.Image:
    """The heatmap on the image with the top-5 classes written below it (the CAM's class marked)."""
    heat = Image.fromarray(explanation.overlay)
    width = heat.width
    size = max(10, width // 18)
    font = _font(size)
    lines = ([title] if title else []) + [
        f"{'>' if name == explanation.target_name else ' '} {name}  {100 * p:.1f}%" for name, p in explanation.top5]
    band = (size + 4) * len(lines) + 8
    canvas = Image.new("RGB", (width, heat.height + band), "white")
    canvas.paste(heat, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text((4, heat.height + 4 + i * (size + 4)), line, fill="black", font=font)
    return canvas


def grid_image(rows: Sequence[Sequence[Explanation]], column_titles: Sequence[str],
               title: Optional[str] = None) -> Image.Image:
    """The paper's figure: for each image (``rows[i]``: its explanations by each model), the image
    and one CAM per model with its top-1 below. Several models: one row per image, one column per
    model. One model: the images side by side, their CAMs below."""
    tiles = [[(Image.fromarray((explanations[0].image * 255).round().astype(np.uint8)), "")]
             + [(Image.fromarray(e.overlay), f"{e.top5[0][0]} {100 * e.top5[0][1]:.0f}%") for e in explanations]
             for explanations in rows]
    headers = ["image", *column_titles]
    if len(column_titles) == 1:
        return _tile_grid([list(t) for t in zip(*tiles)], headers, title, headers_on_rows=True)
    return _tile_grid(tiles, headers, title, headers_on_rows=False)


def _tile_grid(tiles: List[List[Tuple[Image.Image, str]]], headers: Sequence[str], title: Optional[str],
               headers_on_rows: bool) -> Image.Image:
    """Tiles with a caption below each, headers above each column (or above each row)."""
    cell = max(tile.width for row in tiles for tile, _ in row)
    cell_h = max(tile.height for row in tiles for tile, _ in row)
    size = max(10, min(cell, cell_h) // 10)
    font = _font(size)
    line = size + 6
    top = line * (2 if title else 1) if not headers_on_rows else (line if title else 0)
    row_height = cell_h + line + (line if headers_on_rows else 0)
    columns = max(len(row) for row in tiles)
    canvas = Image.new("RGB", (columns * (cell + 4) + 4, top + len(tiles) * (row_height + 4)), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 2), _fit(title, draw, font, canvas.width - 8), fill="black", font=font)
    if not headers_on_rows:
        for c, text in enumerate(headers):
            draw.text((4 + c * (cell + 4), top - line + 2), _fit(text, draw, font, cell), fill="black", font=font)
    for r, row in enumerate(tiles):
        y = top + r * (row_height + 4)
        if headers_on_rows:
            draw.text((4, y + 2), _fit(headers[r], draw, font, canvas.width - 8), fill="black", font=font)
            y += line
        for c, (tile, caption) in enumerate(row):
            canvas.paste(tile, (4 + c * (cell + 4), y))
            draw.text((4 + c * (cell + 4), y + cell_h + 2), _fit(caption, draw, font, cell), fill="black", font=font)
    return canvas


def _fit(text: str, draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, width: int) -> str:
    while len(text) > 1 and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…"
    return text


def save_png(image: Image.Image, path: PathLike) -> Path:
    """Write ``image`` as PNG atomically (a temporary file next to ``path``, then renamed)."""
    with atomic_file(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG", optimize=True)
    return Path(path)


# -- PSA scale weights ----------------------------------------------------------------------------

@dataclass
class PSABlockWeights:
    """One PSA block (``name``, e.g. ``layer2.0.conv2``) of stage ``stage``: ``weights[i, c]`` is the
    mean over the images of the softmax weight kernel ``kernel_sizes[i]`` receives in channel ``c``."""

    name: str
    stage: str
    block: int
    weights: torch.Tensor

    @property
    def mean(self) -> List[float]:
        """The mean weight of each kernel over the block's channels (sums to 1)."""
        return self.weights.mean(dim=1).tolist()


@dataclass
class PSAScaleWeights:
    """What :func:`psa_scale_weights` measures: per block, and per stage (mean over its blocks)."""

    kernel_sizes: List[int]
    images: int
    blocks: List[PSABlockWeights] = field(default_factory=list)

    def per_stage(self) -> Dict[str, List[float]]:
        stages: Dict[str, List[List[float]]] = {}
        for block in self.blocks:
            stages.setdefault(block.stage, []).append(block.mean)
        return {stage: np.mean(values, axis=0).tolist() for stage, values in stages.items()}

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready: kernel sizes, image count, per-stage and per-block mean weights."""
        return {
            "kernel_sizes": self.kernel_sizes, "images": self.images,
            "stages": [{"stage": stage, "weights": [round(w, 6) for w in weights]}
                       for stage, weights in self.per_stage().items()],
            "blocks": [{"name": b.name, "stage": b.stage, "block": b.block, "channels": b.weights.shape[1],
                        "weights": [round(w, 6) for w in b.mean]} for b in self.blocks],
        }


def _stage_and_block(name: str) -> Tuple[str, int]:
    parts = name.split(".")
    if len(parts) >= 2 and parts[1].isdigit():
        return parts[0], int(parts[1])
    return ".".join(parts[:-1]) or name, 0


@torch.no_grad()
def psa_scale_weights(model: nn.Module, images: torch.Tensor, batch_size: int = 32) -> PSAScaleWeights:
    """For every PSA block of ``model``, the mean softmax weight each branch (kernel 3/5/7/9)
    receives over ``images`` (preprocessed ``(N, C, H, W)``), per channel, block and stage.

    Forward hooks read each PSA module's input and ask it for its branch weights
    (:meth:`~epsanet.layers.PSAModule.branch_weights`, indexed by kernel size, not by the reversed
    order in which the forward pass concatenates the branches). A model without PSA raises
    :class:`InvalidArgumentError`.
    """
    modules = [(name, m) for name, m in model.named_modules() if isinstance(m, PSAModule)]
    if not modules:
        name = getattr(model, "pretrained_cfg", {}).get("architecture", type(model).__name__)
        raise InvalidArgumentError(f"{name} has no PSA modules: PSA scale weights exist only for EPSANets (e.g. "
                                   "epsanet50_small)")
    kernel_sizes = list(modules[0][1].kernel_sizes)
    sums: Dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(module: PSAModule, inputs: Tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            weights = module.branch_weights(inputs[0]).double().sum(dim=0)
            sums[name] = sums[name] + weights if name in sums else weights
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in modules]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for start in range(0, len(images), batch_size):
            model(images[start:start + batch_size].to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    result = PSAScaleWeights(kernel_sizes=kernel_sizes, images=len(images))
    for name, _ in modules:
        stage, block = _stage_and_block(name)
        result.blocks.append(PSABlockWeights(name, stage, block, (sums[name] / len(images)).float().cpu()))
    return result


def plot_psa_scales(scales: Dict[str, PSAScaleWeights], path: PathLike) -> Path:
    """A chart per model: stacked bars of the mean weight of each kernel size per stage (left),
    and the same per block through the network (right)."""
    matplotlib = require("matplotlib", "explain", "the PSA scale chart")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(scales), 2, figsize=(10, 3.4 * len(scales)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.2, 1.6]})
    colors = plt.get_cmap("viridis")
    for (label, s), (stage_ax, block_ax) in zip(scales.items(), axes):
        per_stage = s.per_stage()
        stages = list(per_stage)
        bottom = np.zeros(len(stages))
        k = len(s.kernel_sizes)
        for i, kernel in enumerate(s.kernel_sizes):
            values = np.array([per_stage[stage][i] for stage in stages])
            stage_ax.bar(stages, values, bottom=bottom, color=colors(i / max(k - 1, 1)), label=f"{kernel}x{kernel}")
            for x, (b, v) in enumerate(zip(bottom, values)):
                stage_ax.text(x, b + v / 2, f"{v:.2f}", ha="center", va="center", fontsize=8,
                              color="white" if i < k / 2 else "black")
            bottom += values
        stage_ax.set(ylim=(0, 1), ylabel="mean softmax weight", title=f"{label}: per stage ({s.images} images)")
        names = [f"{b.stage}.{b.block}" for b in s.blocks]
        for i, kernel in enumerate(s.kernel_sizes):
            block_ax.plot(range(len(names)), [b.mean[i] for b in s.blocks], marker="o",
                          color=colors(i / max(k - 1, 1)), label=f"kernel {kernel}x{kernel}")
        block_ax.axhline(1 / k, color="gray", lw=0.8, ls="--")
        block_ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 8 else 0, fontsize=7)
        block_ax.set(ylabel="mean softmax weight", title="per block (dashed: uniform)")
        block_ax.legend(fontsize=7, ncol=2)
        stage_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        block_ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        with atomic_file(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=80)
    finally:
        plt.close(fig)
    return Path(path)


# -- the epsanet explain job ----------------------------------------------------------------------

@dataclass
class ModelSpec:
    """One ``--model`` of ``epsanet explain``, with the ``--weights`` / ``--pretrained`` given after it."""

    source: str
    weights: Optional[str] = None
    pretrained: Optional[str] = None


def load_explain_model(spec: ModelSpec) -> nn.Module:
    """The model a :class:`ModelSpec` names: a zoo name (random weights, catalogue ``pretrained``
    tag, or ``weights``: a hub folder, an ``hf-hub:`` id or a checkpoint file), a hub folder, an
    ``hf-hub:`` id, or an ``epsanet train`` checkpoint."""
    from ..hub.sources import load_model
    from ..models import get_model_builder

    if spec.weights and spec.pretrained:
        raise InvalidArgumentError(f"--model {spec.source}: give --weights or --pretrained, not both")
    if spec.weights is None:
        return load_model(spec.source, spec.pretrained)
    if spec.weights.startswith("hf-hub:") or Path(spec.weights).is_dir():
        return get_model_builder(spec.source)(weights=spec.weights)
    require_existing(spec.weights, "--weights", "pass a hub folder, an hf-hub:org/name id or a checkpoint file")
    return load_model(spec.source, checkpoint=spec.weights)


def _label(spec: ModelSpec, model: nn.Module) -> str:
    architecture = source_info(model).architecture
    if spec.source.startswith("hf-hub:"):
        return spec.source.removeprefix("hf-hub:")
    if Path(spec.source).exists():
        return f"{architecture} ({Path(spec.source).name})"
    return f"{spec.source}.{spec.pretrained}" if spec.pretrained else spec.source


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "model"


def explain_files(inputs: Sequence[PathLike], models: Sequence[ModelSpec], out: PathLike, method: str = "gradcam",
                  layer: Optional[str] = None, target: Union[int, str, None] = None, psa_scales: bool = False,
                  display_size: int = DISPLAY_SIZE, device: str = "cpu", log=print) -> Dict[str, Any]:
    """The ``epsanet explain`` job. Writes into ``out``: ``<model>/<image>.png`` (overlay with the
    top-5), ``grid.png`` (images by models), ``explain.json``, and with ``psa_scales``
    ``psa_scales.json`` and ``psa_scales.png``. Returns the JSON summary."""
    require_grad_cam()
    if method not in METHODS:
        raise InvalidArgumentError(f"unknown CAM method {method!r}: choose one of {', '.join(METHODS)}")
    require_output_folder(out, "--out")
    paths = find_images(inputs)
    images = [load_image(p) for p in paths]
    loaded = [(spec, load_explain_model(spec).to(device)) for spec in models]
    if psa_scales:
        for spec, model in loaded:
            if not any(isinstance(m, PSAModule) for m in model.modules()):
                architecture = source_info(model).architecture
                raise InvalidArgumentError(f"--psa-scales: {spec.source} ({architecture}) has no PSA modules; PSA "
                                           "scale weights exist only for EPSANets (epsanet50_small, epsanet101_large, "
                                           "...)")
    out = Path(out)
    labels, per_model, scales = [], {}, {}
    stems = _unique_stems(paths)
    for spec, model in loaded:  # every model's CAMs first: a wrong --layer or --target leaves no files
        label = _label(spec, model)
        while label in labels:
            label += "'"
        labels.append(label)
        chosen_layer = layer or default_target_layer(model)
        why = "" if layer else f" ({describe_default_layer(model)}; choose another with --layer)"
        log(f"{label}: {METHOD_TITLES[method]} on layer {chosen_layer}{why}")
        explanations = explain(model, images, method, chosen_layer, target, display_size)
        folder = out / _file_name(label)
        per_model[label] = {"source": spec.source, "weights": spec.weights, "pretrained": spec.pretrained,
                            "layer": chosen_layer, "overlays": str(folder),
                            "images": [{"image": str(p), "cam_class": e.target_name,
                                        "top5": [[n, round(q, 6)] for n, q in e.top5]}
                                       for p, e in zip(paths, explanations)], "_explanations": explanations}
        if psa_scales:
            transform, _, channels = _transforms(model, display_size)
            x = torch.stack([transform(i.convert("L") if channels == 1 else i) for i in images])
            scales[label] = psa_scale_weights(model, x)
    for label in labels:
        folder = Path(per_model[label]["overlays"])
        folder.mkdir(parents=True, exist_ok=True)
        for stem, explanation in zip(stems, per_model[label]["_explanations"]):
            save_png(overlay_image(explanation, title=f"{label} | {METHOD_TITLES[method]} @ "
                                                      f"{per_model[label]['layer']}"), folder / f"{stem}.png")
    title = f"{METHOD_TITLES[method]}" + (f", class {target}" if target is not None else ", top-1 class")
    rows = [[per_model[label]["_explanations"][i] for label in labels] for i in range(len(images))]
    save_png(grid_image(rows, [f"{label} @ {per_model[label]['layer']}" for label in labels], title), out / "grid.png")
    for entry in per_model.values():
        del entry["_explanations"]
    summary: Dict[str, Any] = {"method": method, "target": target, "grid": str(out / "grid.png"), "models": per_model}
    if psa_scales:
        write_json(out / "psa_scales.json", {label: s.to_dict() for label, s in scales.items()})
        plot_psa_scales(scales, out / "psa_scales.png")
        summary["psa_scales"] = {label: s.to_dict()["stages"] for label, s in scales.items()}
    write_json(out / "explain.json", summary)
    return summary


def _unique_stems(paths: Sequence[Path]) -> List[str]:
    stems: List[str] = []
    for path in paths:
        stem = _file_name(path.stem)
        candidate, n = stem, 1
        while candidate in stems:
            n += 1
            candidate = f"{stem}-{n}"
        stems.append(candidate)
    return stems

