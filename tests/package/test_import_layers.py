"""epsanet's modules import each other one way: catalogue, then weights download, then models, then the hub."""
from pathlib import Path
from typing import Dict, Set

from import_graph import find_cycles, import_graph

ROOT = Path(__file__).resolve().parents[2]


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


def test_the_cycle_finder_names_a_cycle_closed_by_an_import_inside_a_function(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from .a import f\n")
    (package / "a.py").write_text("from . import b\n\ndef f():\n    return b.g()\n")
    (package / "b.py").write_text("from .c import h\n\ndef g():\n    return h()\n")
    (package / "c.py").write_text("def h():\n    from .a import f\n    return f\n")
    assert find_cycles(import_graph({"pkg": package})) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


def test_the_catalogue_imports_nothing_of_epsanet_but_its_toml_file():
    assert reachable(import_graph(epsanet_roots()), "epsanet.weights.catalogue") == {"epsanet.weights"}


def test_weights_download_and_weights_enums_import_no_model_and_not_the_hub():
    graph = import_graph(epsanet_roots())
    for module in ("epsanet.weights.download", "epsanet.models._api"):
        below = reachable(graph, module)
        assert not {m for m in below if m.startswith(("epsanet.models", "epsanet.hub"))}, module


def test_models_load_weights_without_the_hub_module_that_builds_models():
    graph = import_graph(epsanet_roots())
    assert "epsanet.hub" not in reachable(graph, "epsanet.models")
    assert "epsanet.models" in graph["epsanet.hub"]
