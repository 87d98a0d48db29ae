"""Optional dependencies, imported where a feature needs them.

A missing one is reported in one line that names the extra bringing it: without scikit-learn,
``require("sklearn.datasets", "train", "the digits dataset")`` raises a
:class:`MissingDependencyError` saying ``the digits dataset needs scikit-learn: pip install
'epsanet[train]'``, which ``epsanet`` commands print as ``epsanet train: error: ...`` (exit status 2).
"""
import importlib
from types import ModuleType

from .errors import EpsanetError

__all__ = ["MissingDependencyError", "require"]

# Import name -> the distribution pip installs, where the two differ.
DISTRIBUTIONS = {"sklearn": "scikit-learn", "pytorch_grad_cam": "grad-cam", "cv2": "opencv-python"}


class MissingDependencyError(EpsanetError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import and return ``module`` (e.g. ``"sklearn.datasets"``), which ``purpose`` (e.g. ``"the
    digits dataset"``) needs; if it is not installed, raise :class:`MissingDependencyError` naming
    the ``epsanet[extra]`` that installs it.

    Only the absence of ``module`` itself (or of its parent package) is reported so: an installed
    package that fails to import (a broken install, a missing dependency of its own) raises its own
    error, which installing the extra would not fix.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or not (module == e.name or module.startswith(e.name + ".")):
            raise
        distribution = DISTRIBUTIONS.get(e.name.partition(".")[0], e.name.partition(".")[0])
        raise MissingDependencyError(
            f"{purpose} needs {distribution}: pip install 'epsanet[{extra}]'", name=e.name) from None
