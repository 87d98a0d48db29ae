"""OpenVINO: a model as OpenVINO IR (``.xml`` and its ``.bin``), compiled for the CPU plugin.

The functions every runtime module has (:mod:`epsanet.runtimes`): :func:`convert`, :func:`save`,
:func:`load`, :func:`compile`, :func:`quantize`. OpenVINO's CPU plugin computes in float32
(``fp32``), bfloat16 (``bf16``, on CPUs with avx512_bf16 or AMX) or, after NNCF's post-training
quantization, int8.
"""
import contextlib
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from .._utils.errors import InvalidArgumentError
from .._utils.files import atomic_file
from .._utils.optional import require

if TYPE_CHECKING:
    import openvino

__all__ = ["NAME", "SUFFIX", "PRECISIONS", "version", "convert", "save", "load", "compile",
           "compile_each_output", "quantize",
           "supports_bf16", "require_support"]

NAME = "openvino"
SUFFIX = ".xml"
PRECISIONS = ("fp32", "bf16", "int8")
# The precision OpenVINO computes the graph in. An int8 graph computes its quantized operations in
# int8 whatever the hint; the hint sets the rest, which stays float32 as the calibration saw it.
_PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}

PathLike = Union[str, os.PathLike]


def _openvino(purpose: str = "OpenVINO"):
    return require("openvino", "openvino", purpose)


def _nncf():
    # NNCF imports torch's C++ extension builder, which warns on every CPU-only machine that it
    # found no CUDA runtime: not news to someone quantizing for a CPU runtime.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    nncf = require("nncf", "openvino", "OpenVINO int8 quantization")
    nncf.set_log_level(logging.ERROR)
    return nncf


def version() -> str:
    """OpenVINO's release (``2026.4.1``; its build number left out)."""
    return _openvino().get_version().split("-")[0]


def convert(model: nn.Module, example: torch.Tensor) -> "openvino.Model":
    """``model`` (in eval mode) as an OpenVINO model for inputs of ``example``'s shape, the batch
    size left dynamic; input ``input``, output ``logits``."""
    ov = _openvino("OpenVINO export")
    model.eval()
    with torch.no_grad():
        # Traced first, without the tracer's second run: a fast PSA module decides its plan on
        # every call, and the converter refuses a module whose two traces differ.
        traced = torch.jit.trace(model, example, check_trace=False)
        converted = ov.convert_model(traced, example_input=example)
    converted.reshape([-1, *example.shape[1:]])
    converted.inputs[0].get_tensor().set_names({"input"})
    converted.outputs[0].get_tensor().set_names({"logits"})
    return converted


def save(graph: "openvino.Model", path: PathLike) -> Path:
    """Write ``graph`` as ``path`` (``.xml``, the graph) and the ``.bin`` beside it (the weights,
    kept in float32); the ``.bin`` is in place before the ``.xml`` that reads it."""
    ov = _openvino("OpenVINO export")
    path = Path(path)
    with atomic_file(path, SUFFIX) as tmp_xml, atomic_file(path.with_suffix(".bin"), ".bin") as tmp_bin:
        with tempfile.TemporaryDirectory(prefix=".openvino-", dir=path.parent) as folder:
            ov.save_model(graph, str(Path(folder, "model.xml")), compress_to_fp16=False)
            os.replace(Path(folder, "model.bin"), tmp_bin)
            os.replace(Path(folder, "model.xml"), tmp_xml)
    return path


def load(path: PathLike) -> "openvino.Model":
    """The OpenVINO model in ``path`` (``.xml``, with its ``.bin`` beside it)."""
    return _openvino("reading an OpenVINO model").Core().read_model(str(path))


def supports_bf16() -> bool:
    """Whether OpenVINO's CPU plugin computes bfloat16 on this CPU (avx512_bf16 or AMX)."""
    return "BF16" in _openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def require_support(precision: str = "fp32") -> None:
    """A one-line error unless OpenVINO (and NNCF, for int8) is installed and computes in
    ``precision`` on this CPU."""
    _openvino()
    if precision == "int8":
        _nncf()
    if precision not in PRECISIONS:
        raise InvalidArgumentError(f"OpenVINO runs {', '.join(PRECISIONS)}, not {precision}")
    if precision == "bf16" and not supports_bf16():
        raise InvalidArgumentError("this CPU has neither avx512_bf16 nor AMX, so OpenVINO cannot compute in bf16: "
                                   "use fp32 or int8")


def compile(graph: "openvino.Model", precision: str = "fp32",  # noqa: A001 - OpenVINO's own word
            threads: Optional[int] = None) -> Callable[[np.ndarray], np.ndarray]:
    """``graph`` compiled for the CPU, for latency (one stream) with ``threads`` threads (default:
    torch's), computing in ``precision``, as a function from a float32 NCHW batch to the output.

    OpenVINO computes in bf16 by default on CPUs that can: ``fp32`` asks for float32 explicitly."""
    ov = _openvino()
    require_support(precision)
    config = {"INFERENCE_NUM_THREADS": threads or torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
              "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": _PRECISION_HINTS[precision]}
    request = ov.Core().compile_model(graph, "CPU", config).create_infer_request()

    def run(x: np.ndarray) -> np.ndarray:
        return request.infer({0: x})[0].copy()  # the request reuses its output memory
    return run


def compile_each_output(module: nn.Module, inputs: Sequence[torch.Tensor], precision: str = "fp32",
                        threads: Optional[int] = None) -> List[Callable[[], np.ndarray]]:
    """``module`` (several inputs, several outputs) converted once; then each output compiled on
    its own, from the one input it reads, as a call on that input's value in ``inputs``."""
    ov = _openvino()
    with torch.no_grad():
        traced = torch.jit.trace(module.eval(), tuple(inputs), check_trace=False)
        graph = ov.convert_model(traced, example_input=tuple(inputs))
    parameters = list(graph.get_parameters())
    runs = []
    for output in graph.outputs:
        parameter = _source_parameter(output.get_node())
        run = compile(ov.Model([output], [parameter]), precision, threads)
        feed = inputs[parameters.index(parameter)].numpy()
        runs.append(lambda run=run, feed=feed: run(feed))
    return runs


def _source_parameter(node):
    """The one Parameter a node's value is computed from."""
    while node.get_type_name() != "Parameter":
        node = next(value.get_node() for value in node.input_values()
                    if value.get_node().get_type_name() != "Constant")
    return node


def quantize(graph: "openvino.Model", batches: Iterable[np.ndarray]) -> "openvino.Model":
    """``graph`` in int8 by NNCF's post-training quantization (the performance preset: symmetric
    int8 weights and activations), its ranges calibrated on ``batches``."""
    nncf = _nncf()
    batches = list(batches)
    # NNCF draws its progress bars on stdout, which is the command's output.
    with contextlib.redirect_stdout(io.StringIO()):
        return nncf.quantize(graph, nncf.Dataset(batches), subset_size=sum(len(b) for b in batches),
                             preset=nncf.QuantizationPreset.PERFORMANCE)
