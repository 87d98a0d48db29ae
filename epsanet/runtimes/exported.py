"""A model exported for a runtime, and served back from it.

:func:`export_for_runtime` writes the graph (``model.xml`` + ``model.bin`` for OpenVINO,
``model.onnx`` for ONNX Runtime) and, beside it, ``<graph file>.json``: what the model holds
(architecture, classes, preprocessing, from :func:`epsanet.hub.sources.source_info`), the
runtime and precision, the PSA plans (:mod:`.plans`), the check of the runtime's outputs
against the model, and, for int8, the accuracy before and after quantization.
:func:`load_export` reads both back as an :class:`ExportedModel`: a module whose forward runs the
runtime, with the ``pretrained_cfg`` and ``num_classes`` of the model it came from, so that
:func:`epsanet.tools.predict.predict` and ``source_info`` treat it as that model.
"""
import json
import os
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .._utils.errors import InvalidArgumentError, PathNotFoundError, RunFailedError
from .._utils.files import write_json
from .._utils.paths import WrongKindError, path_kind, require_existing
from ..hub.sources import SourceInfo, source_info
from ..tools.export import deploy
from . import RUNTIMES, get_runtime
from .plans import apply_plans, measure_plans, rule_plans

__all__ = ["ExportReport", "ExportedModel", "prepare", "serve", "export_for_runtime", "load_export", "metadata_path",
           "relative_error", "MAX_ERROR"]

PathLike = Union[str, os.PathLike]

# The relative error of the runtime's output against the model's above which an export is refused:
# float32 runtimes match to about 1e-6, bfloat16 ones to about 4e-3. An int8 graph is judged by
# its accuracy instead (``max_accuracy_drop``).
MAX_ERROR = {"fp32": 1e-4, "bf16": 5e-2}
# Images the int8 ranges are calibrated on, by default: a few hundred, as NNCF and ONNX Runtime advise.
CALIBRATION_IMAGES = 300


def metadata_path(graph: PathLike) -> Path:
    """Where the export of ``graph`` keeps its metadata: ``model.xml`` -> ``model.xml.json``."""
    return Path(f"{graph}.json")


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """``|actual - expected| / |expected|`` (Frobenius norms, in float64)."""
    return ((actual.double() - expected.double()).norm() / expected.double().norm()).item()


@dataclass
class ExportReport:
    """What :func:`export_for_runtime` wrote and measured (``metadata`` is the JSON beside the graph)."""

    path: Path
    metadata: Dict[str, Any]
    seconds: float

    def summary(self) -> str:
        """One line for the command's output."""
        meta = self.metadata
        _, height, width = meta["input_size"]
        error = meta["check"]["relative_error"]
        line = f"wrote {self.path} ({meta['runtime']} {meta['precision']}, input N x 3 x {height} x {width}; "
        if meta["precision"] == "int8":
            line += f"its outputs are {error:.1e} (relative) from the float model's"
        else:
            line += f"{meta['runtime']} matches the model to {error:.1e} relative error"
        accuracy = meta.get("accuracy")
        if accuracy:
            line += (f"; {accuracy['metric']} {accuracy['fp32']:.2f}% fp32 -> {accuracy['int8']:.2f}% int8 on "
                     f"{accuracy['images']} held-out images")
        return line + f"; PSA plans {meta['plans']['source']}; {self.seconds:.0f} s)"


class ExportedModel(nn.Module):
    """A model served by a runtime: ``forward`` takes a float32 NCHW batch and returns the logits
    (on the CPU), computed by the runtime. ``pretrained_cfg``, ``num_classes`` and ``metadata``
    are those of the export."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], metadata: Dict[str, Any]) -> None:
        super().__init__()
        self._run = run
        self.metadata = metadata
        self.num_classes = len(metadata["class_names"])
        self.pretrained_cfg = {
            "architecture": metadata["architecture"], "num_classes": self.num_classes,
            "label_names": tuple(metadata["class_names"]), "input_size": tuple(metadata["input_size"]),
            **{key: metadata[key] for key in ("interpolation", "mean", "std", "crop_pct", "crop_mode")}}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(self._run(batch))


def _describe(info: SourceInfo, height: int, width: int) -> Dict[str, Any]:
    return {"architecture": info.architecture, "class_names": list(info.class_names), "input_size": [3, height, width],
            "interpolation": info.interpolation, "mean": list(info.mean), "std": list(info.std),
            "crop_pct": info.crop_pct, "crop_mode": info.crop_mode}


def _images(dataset: Dataset, indices: Sequence[int], transform: Callable) -> Tuple[torch.Tensor, List[int]]:
    items = [dataset[i] for i in indices]
    for image, _ in items:
        if hasattr(image, "reason"):  # an image folder's file that could not be read
            raise InvalidArgumentError(f"cannot read image {image.path} ({image.reason}): replace or delete the file")
    images = [image if isinstance(image, torch.Tensor) else transform(image) for image, _ in items]
    return torch.stack(images), [int(label) for _, label in items]


def _batches(images: torch.Tensor, size: int = 16) -> List[np.ndarray]:
    return [np.ascontiguousarray(chunk.numpy()) for chunk in images.split(size)]


def _held_out_accuracy(fp32: Callable, int8: Callable, dataset: Dataset, indices: Sequence[int], transform: Callable,
                       labelled: bool, batch_size: int = 16) -> Dict[str, Any]:
    """Top-1 of the float32 and int8 graphs on the held-out images (read ``batch_size`` at a
    time): against the labels when they are the model's classes, else the int8 graph's agreement
    with the float32 one."""
    before: List[int] = []
    after: List[int] = []
    labels: List[int] = []
    for start in range(0, len(indices), batch_size):
        images, chunk_labels = _images(dataset, indices[start:start + batch_size], transform)
        batch = np.ascontiguousarray(images.numpy())
        before += [int(i) for i in fp32(batch).argmax(1)]
        after += [int(i) for i in int8(batch).argmax(1)]
        labels += chunk_labels
    if labelled:
        fp32_score = 100 * sum(p == t for p, t in zip(before, labels)) / len(labels)
        int8_score = 100 * sum(p == t for p, t in zip(after, labels)) / len(labels)
        metric = "top-1"
    else:
        fp32_score, int8_score = 100.0, 100 * sum(p == q for p, q in zip(before, after)) / len(labels)
        metric = "top-1 agreement with fp32"
    return {"metric": metric, "fp32": round(fp32_score, 3), "int8": round(int8_score, 3),
            "drop": round(fp32_score - int8_score, 3), "images": len(labels)}


def _split_calibration(calibration: Dataset, held_out: Optional[Dataset], images: int) -> Tuple[List[int], Dataset,
                                                                                               List[int]]:
    """Indices of the calibration images, and the held-out dataset and indices (the rest of
    ``calibration`` when no ``held_out`` is given): a fixed-seed shuffle, the same every run."""
    order = list(range(len(calibration)))
    random.Random(0).shuffle(order)
    if held_out is not None:
        return order[:images], held_out, list(range(len(held_out)))
    if len(order) < 2:
        raise InvalidArgumentError(f"the calibration data holds {len(order)} image: int8 needs images to calibrate on "
                                   "and others to measure the accuracy on")
    calibrate = order[:min(images, len(order) // 2)]
    return calibrate, calibration, order[len(calibrate):]


def _classes_match(dataset: Dataset, info: SourceInfo) -> bool:
    """Whether the dataset's labels are the model's classes: its class names are the model's own
    (a model without names, or with other ones, is never assumed to share the dataset's)."""
    return list(getattr(dataset, "classes", None) or []) == list(info.class_names)


def prepare(model: nn.Module, backend: ModuleType, example: torch.Tensor, precision: str = "fp32",
            plans: str = "measure", log: Optional[Callable[[str], None]] = None) -> Tuple[nn.Module, Any, Dict]:
    """``model``'s inference form (:func:`epsanet.deploy`) with its PSA plans for ``backend``
    (``plans``: ``"measure"`` or ``"rule"``), and its float graph in ``backend`` for inputs
    shaped as ``example`` (any batch size): ``(inference form, graph, plan)``. An int8 graph
    starts from this one, with the float32 plans (OpenVINO's: the rule's, which its int8 graphs
    ran faster with)."""
    log = log or (lambda message: None)
    if plans not in ("measure", "rule"):
        raise InvalidArgumentError(f"plans are 'measure' or 'rule', not {plans!r}")
    model = deploy(model)
    if plans == "measure" and precision == "int8" and backend.NAME == "openvino":
        # Plans are measured in float32. OpenVINO's int8 graphs ran faster with the eager rule's
        # plans than with those (epsanet50_small, twice: 0.73x / 0.78x of resnet50's int8 speed at
        # batch 1 / 16 against 0.65x / 0.69x): its int8 exports take the rule.
        plans = "rule"
    if plans == "measure":
        plan = measure_plans(model, backend, example, "fp32" if precision == "int8" else precision, log=log)
    else:
        plan = rule_plans(model, example)
    apply_plans(model, plan)
    log(f"converting to {backend.NAME}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace's deprecation, by the OpenVINO route
        return model, backend.convert(model, example), plan


def _build(model: nn.Module, backend: ModuleType, precision: str, img_size: Optional[Union[int, Tuple[int, int]]],
           plans: str, log: Callable[[str], None]) -> Tuple[nn.Module, Any, Dict[str, Any]]:
    """:func:`prepare` at the model's own input size (or ``img_size``): ``(inference form, float
    graph, metadata)``."""
    info = source_info(model)
    height, width = (info.input_size[1:] if img_size is None
                     else (img_size, img_size) if isinstance(img_size, int) else img_size)
    model, graph, plan = prepare(model, backend, torch.randn(2, 3, height, width), precision, plans, log)
    metadata = {"format": 1, "torch": torch.__version__, "runtime": backend.NAME, "runtime_version": backend.version(),
                "precision": precision, **_describe(info, height, width), "plans": plan}
    return model, graph, metadata


def serve(model: nn.Module, runtime: str = "openvino", precision: str = "fp32",
          img_size: Optional[Union[int, Tuple[int, int]]] = None, plans: str = "measure",
          log: Optional[Callable[[str], None]] = None) -> ExportedModel:
    """``model`` compiled in ``runtime`` as :func:`export_for_runtime` would write it, without
    writing anything (``precision`` ``"fp32"`` or ``"bf16"``: int8 needs calibration, so it is
    served from an int8 export, :func:`load_export`)."""
    backend = get_runtime(runtime)
    if precision == "int8":
        raise InvalidArgumentError("int8 needs calibration: export it with epsanet export --precision int8 "
                                   "--calibration DATA, then serve the export")
    backend.require_support(precision)
    _, graph, metadata = _build(model, backend, precision, img_size, plans, log or (lambda message: None))
    return ExportedModel(backend.compile(graph, precision), metadata)


def export_for_runtime(
    model: nn.Module,
    path: PathLike,
    runtime: str = "openvino",
    precision: str = "fp32",
    img_size: Optional[Union[int, Tuple[int, int]]] = None,
    plans: str = "measure",
    calibration: Optional[Dataset] = None,
    held_out: Optional[Dataset] = None,
    calibration_images: int = CALIBRATION_IMAGES,
    max_accuracy_drop: Optional[float] = 1.0,
    log: Optional[Callable[[str], None]] = None,
) -> ExportReport:
    """Write ``model`` for ``runtime`` (``"openvino"``: ``path`` ends in ``.xml``; ``"onnxruntime"``:
    ``.onnx``) computing in ``precision`` (``"fp32"``, ``"bf16"`` (OpenVINO), ``"int8"``), and its
    metadata beside it (:func:`metadata_path`).

    The model is exported in its inference form (:func:`epsanet.deploy`) at ``img_size`` (default:
    its own input size) with a dynamic batch size; each PSA branch is computed the way measured
    fastest in ``runtime`` (``plans="measure"``, :func:`~.plans.measure_plans`) or by the eager
    rule (``"rule"``). The runtime's outputs are checked against the model's (:data:`MAX_ERROR`).

    int8 needs ``calibration``, a dataset of ``(image, label)`` (PIL images, or tensors already
    preprocessed): its ranges are calibrated on ``calibration_images`` of them, and top-1 is
    measured before and after on ``held_out`` (default: the rest of ``calibration``), against the
    labels when the dataset's ``classes`` are the model's, else as agreement with the float32
    graph. A drop above ``max_accuracy_drop`` points raises :class:`RunFailedError` and writes nothing.
    """
    started = time.perf_counter()
    log = log or (lambda message: None)
    backend = get_runtime(runtime)
    path = Path(path)
    _check_destination(path, backend)
    backend.require_support(precision)
    if precision == "int8" and calibration is None:
        raise InvalidArgumentError("int8 needs calibration images: pass --calibration DATA (digits, or an image folder "
                                   "of the model's classes)")
    if calibration_images < 1:
        raise InvalidArgumentError(f"--calibration-images must be at least 1, got {calibration_images}")
    info = source_info(model)
    model, graph, metadata = _build(model, backend, precision, img_size, plans, log)
    x = torch.randn(2, 3, *metadata["input_size"][1:])
    with torch.no_grad():
        expected = model(x)
    if precision == "int8":
        graph, metadata["accuracy"] = _quantize(backend, graph, info, calibration, held_out, calibration_images,
                                                max_accuracy_drop, log)
    compiled = backend.compile(graph, precision)
    error = relative_error(torch.from_numpy(compiled(x.numpy())), expected)
    metadata["check"] = {"relative_error": float(f"{error:.3e}"), "batch": 2, "limit": MAX_ERROR.get(precision)}
    if precision in MAX_ERROR and not error < MAX_ERROR[precision]:
        # Our bug, not the user's: a traceback, not a one-line error.
        raise RuntimeError(f"{runtime}'s {precision} output differs from the model's by {error:.2e} (relative, limit "
                           f"{MAX_ERROR[precision]:.0e}): the export is wrong")
    backend.save(graph, path)
    write_json(metadata_path(path), metadata)
    return ExportReport(path, metadata, time.perf_counter() - started)


def _check_destination(path: Path, backend: ModuleType) -> None:
    if path.suffix != backend.SUFFIX:
        raise InvalidArgumentError(f"{backend.NAME} exports are *{backend.SUFFIX} files: name the output "
                                   f"{path.with_suffix(backend.SUFFIX).name}")
    kind = path_kind(path)
    if kind.is_folder:
        raise WrongKindError(f"output {path} is {kind.description}: name a file inside it, e.g. {path}/model"
                             f"{backend.SUFFIX}")
    if not path.parent.is_dir():
        raise PathNotFoundError(f"the directory of {path} does not exist: create it first")


def _quantize(backend: ModuleType, graph: Any, info: SourceInfo, calibration: Dataset, held_out: Optional[Dataset],
              images: int, max_accuracy_drop: Optional[float], log: Callable[[str], None]) -> Tuple[Any, Dict]:
    transform = info.transform()
    calibrate, measured_on, measured = _split_calibration(calibration, held_out, images)
    if not measured:
        raise InvalidArgumentError("the held-out images to measure int8's accuracy on are none: give the calibration "
                                   "data a val/ split with images")
    log(f"calibrating int8 on {len(calibrate)} images")
    calibration_images, _ = _images(calibration, calibrate, transform)
    quantized = backend.quantize(graph, _batches(calibration_images))
    log(f"measuring top-1 on {len(measured)} held-out images")
    accuracy = _held_out_accuracy(backend.compile(graph, "fp32"), backend.compile(quantized, "int8"), measured_on,
                                  measured, transform, _classes_match(measured_on, info))
    accuracy["calibration_images"] = len(calibrate)
    if max_accuracy_drop is not None and accuracy["drop"] > max_accuracy_drop:
        raise RunFailedError(
            f"int8 loses {accuracy['drop']:.2f} points of {accuracy['metric']} ({accuracy['fp32']:.2f}% -> "
            f"{accuracy['int8']:.2f}% on {accuracy['images']} held-out images), more than --max-accuracy-drop "
            f"{max_accuracy_drop:g}: nothing written; keep fp32, or calibrate on more images of your data")
    return quantized, accuracy


def load_export(path: PathLike, threads: Optional[int] = None) -> ExportedModel:
    """The export at ``path`` (an OpenVINO ``.xml`` or an ``.onnx`` written by
    :func:`export_for_runtime`) compiled in its runtime and precision, with ``threads`` threads."""
    path = Path(path)
    backend = next((module for module in RUNTIMES.values() if path.suffix == module.SUFFIX), None)
    if backend is None:
        raise InvalidArgumentError(f"{path} is not an export: pass the .xml of an OpenVINO export or an .onnx file "
                                   "written by epsanet export")
    backend.require_support()
    require_existing(path, "export")
    meta_path = metadata_path(path)
    if not meta_path.is_file():
        raise PathNotFoundError(f"{path} has no {meta_path.name} beside it (its classes and preprocessing): export it "
                                "with epsanet export")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgumentError(f"{meta_path} is not valid JSON ({e}): export the model again") from None
    if metadata.get("runtime") != backend.NAME:
        raise InvalidArgumentError(f"{meta_path} describes a {metadata.get('runtime')} export, not {path}: export the "
                                   "model again")
    return ExportedModel(backend.compile(backend.load(path), metadata["precision"], threads), metadata)
