"""Serving a model outside PyTorch: OpenVINO and ONNX Runtime on the CPU.

:func:`~.exported.export_for_runtime` writes a model for a runtime (OpenVINO IR or ONNX, fp32,
bf16 or int8) with each PSA branch computed the way measured fastest *in that runtime*
(:mod:`.plans`), checks the runtime's outputs against the model, and writes what the model holds
(classes, preprocessing, plans) next to the graph. :func:`~.exported.load_export` serves it back
as a module that :func:`epsanet.tools.predict.predict` and ``epsanet bench`` run like any other.
Each runtime is one module with the same functions (:mod:`.openvino`, :mod:`.onnxruntime`).
"""
from types import ModuleType
from typing import Dict

from .._utils.errors import InvalidArgumentError
from . import onnxruntime, openvino

__all__ = ["RUNTIMES", "get_runtime"]

RUNTIMES: Dict[str, ModuleType] = {"openvino": openvino, "onnxruntime": onnxruntime}


def get_runtime(name: str) -> ModuleType:
    """The module of runtime ``name`` (``"openvino"`` or ``"onnxruntime"``)."""
    if name not in RUNTIMES:
        raise InvalidArgumentError(f"unknown runtime {name!r}: use {' or '.join(RUNTIMES)}")
    return RUNTIMES[name]
