"""epsanet's modules import each other one way, up its layers (ARCHITECTURE.md):

    _utils < layers, weights < models < hub < tools, runtimes < epsanet/__init__ < training < detection
    < integrations < commands, cli, __main__

A module imports only modules of its own layer or of lower ones, at module level or inside a
function. The root ``epsanet/__init__`` re-exports from the layers up to tools, so it sits above
them: no module of those layers imports ``epsanet`` itself. There are no cycles.
"""
from pathlib import Path
from typing import Dict, Set

from import_graph import find_cycles, import_graph, layer_of, upward_imports

ROOT = Path(__file__).resolve().parents[2]
LAYERS = [
    ["_utils"], ["layers", "weights"], ["models"], ["hub"], ["tools", "runtimes"], [""], ["training"], ["detection"],
    ["integrations"], ["commands", "cli", "__main__"],
]


def epsanet_roots() -> Dict[str, Path]:
    return {"epsanet": ROOT / "epsanet"}


def reachable(graph: Dict[str, Set[str]], start: str) -> Set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_no_module_of_epsanet_imports_itself_through_others():
    cycles = find_cycles(import_graph(epsanet_roots()))
    assert not cycles, "import cycles in epsanet/: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_every_module_of_epsanet_belongs_to_a_layer():
    assert [m for m in import_graph(epsanet_roots()) if layer_of(m, LAYERS) is None] == []


def test_no_module_of_epsanet_imports_a_module_of_a_higher_layer():
    upward = upward_imports(import_graph(epsanet_roots()), LAYERS)
    assert not upward, "imports pointing up the layers: " + "; ".join(f"{a} -> {b}" for a, b in upward)


def test_the_layer_check_names_an_import_inside_a_function_that_points_up(tmp_path):
    package = tmp_path / "pkg"
    (package / "low").mkdir(parents=True)
    (package / "high").mkdir()
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "a.py").write_text("def f():\n    from ..high import b\n    return b\n")
    (package / "high" / "__init__.py").write_text("")
    (package / "high" / "b.py").write_text("from ..low import a\n")
    layers = [["low"], ["high"], [""]]
    assert upward_imports(import_graph({"pkg": package}), layers) == [("pkg.low.a", "pkg.high.b")]


def test_the_cycle_finder_names_a_cycle_closed_by_an_import_inside_a_function(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from .a import f\n")
    (package / "a.py").write_text("from . import b\n\ndef f():\n    return b.g()\n")
    (package / "b.py").write_text("from .c import h\n\ndef g():\n    return h()\n")
    (package / "c.py").write_text("def h():\n    from .a import f\n    return f\n")
    assert find_cycles(import_graph({"pkg": package})) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


def test_the_catalogue_imports_nothing_of_epsanet_but_its_error_classes():
    assert reachable(import_graph(epsanet_roots()), "epsanet.weights.catalogue") == {"epsanet._utils.errors"}


def test_weights_download_and_weights_enums_import_no_model_and_not_the_hub():
    graph = import_graph(epsanet_roots())
    for module in ("epsanet.weights.download", "epsanet.models._api"):
        below = reachable(graph, module)
        assert not {m for m in below if m.startswith(("epsanet.models", "epsanet.hub"))}, module
