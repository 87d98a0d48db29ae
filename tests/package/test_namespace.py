"""The package's names: every subpackage's submodules stay reachable as modules (no function or
class of the same name hides one), the root stays small, and ``epsanet.__all__`` is true."""
import importlib
import pkgutil
import types
from pathlib import Path

import pytest

import epsanet
from epsanet import EpsanetError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(".".join(("epsanet", *init.parent.relative_to(ROOT / "epsanet").parts))
                  for init in (ROOT / "epsanet").rglob("__init__.py"))
# Every module but the entry point and the integrations (importing one hooks into its library).
MODULES = sorted(".".join(("epsanet", *path.relative_to(ROOT / "epsanet").with_suffix("").parts))
                 .removesuffix(".__init__") for path in (ROOT / "epsanet").rglob("*.py")
                 if path.name != "__main__.py" and "integrations" not in path.parts)


def shadowed_submodules(package: types.ModuleType) -> dict:
    """``{submodule name: type of the object the package holds under that name instead}``."""
    return {info.name: type(getattr(package, info.name)).__name__ for info in pkgutil.iter_modules(package.__path__)
            if not isinstance(getattr(package, info.name, None), (types.ModuleType, type(None)))}


@pytest.mark.parametrize("name", PACKAGES)
def test_no_attribute_of_a_package_hides_one_of_its_submodules(name):
    assert shadowed_submodules(importlib.import_module(name)) == {}


def test_the_shadow_finder_names_a_function_that_hides_its_module(tmp_path, monkeypatch):
    package = tmp_path / "shadowing"
    package.mkdir()
    (package / "__init__.py").write_text("from .transplant import transplant\nfrom . import data\n")
    (package / "transplant.py").write_text("def transplant():\n    pass\n")
    (package / "data.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert shadowed_submodules(importlib.import_module("shadowing")) == {"transplant": "function"}


def test_the_walk_covers_every_layer():
    assert {"epsanet", "epsanet._utils", "epsanet.layers", "epsanet.weights", "epsanet.models", "epsanet.hub",
            "epsanet.tools", "epsanet.training", "epsanet.detection", "epsanet.integrations",
            "epsanet.commands"} <= set(PACKAGES)


def test_the_root_holds_at_most_eight_modules():
    modules = sorted(p.name for p in (ROOT / "epsanet").glob("*.py"))
    assert len(modules) <= 8, f"epsanet/ holds {len(modules)} modules ({', '.join(modules)}): move some into a layer"


def test_every_name_of_epsanet_all_resolves_once():
    assert [name for name in epsanet.__all__ if not hasattr(epsanet, name)] == []
    assert len(set(epsanet.__all__)) == len(epsanet.__all__)


def test_every_exception_class_of_the_package_is_a_user_error_the_cli_prints_in_one_line():
    defined = {cls for name in MODULES for cls in vars(importlib.import_module(name)).values()
               if isinstance(cls, type) and issubclass(cls, BaseException) and cls.__module__ == name}
    assert len(defined) >= 14
    assert [cls.__qualname__ for cls in defined if not issubclass(cls, EpsanetError)] == []
