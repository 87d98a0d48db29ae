"""The import graph of a package read from its source with ``ast``, the cycles in it, and the
imports that point up its layers.

Every ``import`` statement counts, at module level or inside a function (a deferred import is a
dependency all the same). An import names the module it reaches: ``from .models import
create_model`` depends on ``epsanet.models`` (its ``__init__``), ``from . import hub`` on
``epsanet.hub``. A submodule's implicit import of its parent packages is not an edge.
"""
import ast
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

Graph = Dict[str, Set[str]]


def package_modules(roots: Mapping[str, Path]) -> Dict[str, Tuple[Path, bool]]:
    """``{module name: (file, is_package)}`` for package ``name -> directory`` roots (a package
    mapped to another folder, as setup.cfg's ``package_dir`` does, is one more root)."""
    modules: Dict[str, Tuple[Path, bool]] = {}
    for root_name, directory in roots.items():
        for path in sorted(directory.rglob("*.py")):
            parts = [root_name, *path.relative_to(directory).with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _imported(module: str, is_package: bool, node: ast.AST, modules: Mapping[str, object]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield submodule if submodule in modules else base


def import_graph(roots: Mapping[str, Path]) -> Graph:
    """``{module: modules of the package it imports}``."""
    modules = package_modules(roots)
    graph: Graph = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name].update(t for t in _imported(name, is_package, node, modules) if t in modules and t != name)
    return graph


def find_cycles(graph: Mapping[str, Set[str]]) -> List[List[str]]:
    """One cycle (``[a, b, ..., a]``) per group of modules that import each other (each strongly
    connected component of more than one module), found with Tarjan's algorithm."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(graph, sorted(component)) for component in components]


def _cycle_through(graph: Mapping[str, Set[str]], component: List[str]) -> List[str]:
    """The shortest path from the component's first module back to itself, inside the component."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for target in sorted(graph[node] & members):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    next_frontier.append(target)
        frontier = next_frontier
    raise AssertionError(f"{component} is not strongly connected")


def layer_of(module: str, layers: Sequence[Sequence[str]]) -> Optional[int]:
    """The index in ``layers`` (lowest first) of the layer that holds ``module``: its first name
    below the root package (``epsanet.hub.sources`` is in the layer that lists ``hub``; the root
    package itself is ``""``), or None for a module no layer lists."""
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else ""
    return next((rank for rank, members in enumerate(layers) if key in members), None)


def upward_imports(graph: Mapping[str, Set[str]], layers: Sequence[Sequence[str]]) -> List[Tuple[str, str]]:
    """``(importer, imported)`` for every import of a module of a higher layer than the importer's
    (deferred imports included, as in :func:`import_graph`); modules of one layer may import each other."""
    return sorted((module, target) for module, targets in graph.items() for target in targets
                  if layer_of(target, layers) > layer_of(module, layers))
