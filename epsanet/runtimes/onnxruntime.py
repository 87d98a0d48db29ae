"""ONNX Runtime: a model as ONNX (opset 18, dynamic batch), run by onnxruntime's CPU provider.

The functions every runtime module has (:mod:`epsanet.runtimes`): :func:`convert` a model to the
runtime's graph, :func:`save` and :func:`load` it, :func:`compile` it into a callable, and
:func:`quantize` it to int8. ONNX Runtime's CPU provider computes in float32 (``fp32``) or, after
static quantization (QDQ, int8 weights per channel, uint8 activations), in int8.
"""
import contextlib
import io
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
    import onnx

__all__ = ["NAME", "SUFFIX", "PRECISIONS", "version", "convert", "save", "load", "compile",
           "compile_each_output", "quantize",
           "require_support"]

NAME = "onnxruntime"
SUFFIX = ".onnx"
PRECISIONS = ("fp32", "int8")
OPSET = 18

PathLike = Union[str, os.PathLike]


def version() -> str:
    """onnxruntime's version."""
    return require("onnxruntime", "export", "ONNX Runtime").__version__


def convert(model: nn.Module, example: torch.Tensor) -> "onnx.ModelProto":
    """``model`` (in eval mode) as an ONNX graph traced at ``example``'s shape, the batch size
    left dynamic; input ``input``, output ``logits``."""
    require("onnx", "export", "ONNX export")
    require("onnxscript", "export", "ONNX export")
    # The exporter prints its progress on stdout, which is the command's output.
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        program = torch.onnx.export(
            model.eval(), (example,), input_names=["input"], output_names=["logits"], opset_version=OPSET,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True, verbose=False,
        )
    return program.model_proto


def save(graph: "onnx.ModelProto", path: PathLike) -> Path:
    """Write ``graph`` to ``path`` (one file, weights inside)."""
    with atomic_file(path, SUFFIX) as tmp:
        tmp.write_bytes(graph.SerializeToString())
    return Path(path)


def load(path: PathLike) -> "onnx.ModelProto":
    """The ONNX graph in ``path``."""
    onnx = require("onnx", "export", "reading an ONNX file")
    return onnx.load(str(path))


def require_support(precision: str = "fp32") -> None:
    """A one-line error unless the ONNX exporter and ONNX Runtime are installed and its CPU
    provider computes in ``precision``."""
    require("onnx", "export", "ONNX export")
    require("onnxscript", "export", "ONNX export")
    require("onnxruntime", "export", "ONNX Runtime")
    if precision not in PRECISIONS:
        raise InvalidArgumentError(f"ONNX Runtime's CPU provider runs {' and '.join(PRECISIONS)}, not {precision}: "
                                   "use OpenVINO for bf16")


def compile(graph: "onnx.ModelProto", precision: str = "fp32",  # noqa: A001 - the runtimes' own word
            threads: Optional[int] = None, spinning: bool = True) -> Callable[[np.ndarray], np.ndarray]:
    """An onnxruntime session of ``graph`` on the CPU with ``threads`` intra-op threads (default:
    torch's), as a function from a float32 NCHW batch to the output. ``precision`` is that of the
    graph (int8 graphs come from :func:`quantize`); ONNX Runtime's CPU provider has no bf16.
    ``spinning=False`` lets the session's threads sleep between calls instead of spinning, so
    that many sessions timed in turn do not take each other's cores."""
    onnxruntime = require("onnxruntime", "export", "ONNX Runtime")
    require_support(precision)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]
    return run


def compile_each_output(module: nn.Module, inputs: Sequence[torch.Tensor], precision: str = "fp32",
                        threads: Optional[int] = None) -> List[Callable[[], np.ndarray]]:
    """``module`` (several inputs, several outputs) exported once; then each output extracted with
    the one input it reads (``onnx.utils.Extractor``) and compiled on its own, as a call on that
    input's value in ``inputs``."""
    onnx = require("onnx", "export", "ONNX export")
    input_names = [f"x{i}" for i in range(len(inputs))]
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        program = torch.onnx.export(module.eval(), tuple(inputs), input_names=input_names, opset_version=OPSET,
                                    dynamo=True, verbose=False)
    graph = program.model_proto
    extractor = onnx.utils.Extractor(graph)
    producers = {out: node for node in graph.graph.node for out in node.output}
    runs = []
    for output in graph.graph.output:
        name = _source_input(output.name, producers, set(input_names))
        run = compile(extractor.extract_model([name], [output.name]), precision, threads, spinning=False)
        feed = inputs[input_names.index(name)].numpy()
        runs.append(lambda run=run, feed=feed: run(feed))
    return runs


def _source_input(value: str, producers: dict, inputs: set) -> str:
    """The one graph input a value is computed from."""
    while value not in inputs:
        value = next(v for v in producers[value].input if v in inputs or v in producers)
    return value


def quantize(graph: "onnx.ModelProto", batches: Iterable[np.ndarray]) -> "onnx.ModelProto":
    """``graph`` in int8 by ONNX Runtime's static quantization: QDQ format, weights int8 per
    output channel, activations uint8 with ranges calibrated (min-max) on ``batches``."""
    onnx = require("onnx", "export", "ONNX quantization")
    quantization = require("onnxruntime.quantization", "export", "ONNX quantization")
    name = graph.graph.input[0].name

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(batches)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {name: batch}

    with tempfile.TemporaryDirectory(prefix="epsanet-quantize-") as folder:
        source, prepared, target = (Path(folder, f"{n}.onnx") for n in ("model", "prepared", "int8"))
        source.write_bytes(graph.SerializeToString())
        quantization.shape_inference.quant_pre_process(str(source), str(prepared))
        quantization.quantize_static(
            str(prepared), str(target), Reader(), quant_format=quantization.QuantFormat.QDQ, per_channel=True,
            activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8)
        return onnx.load(str(target))
