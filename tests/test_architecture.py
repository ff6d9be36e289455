"""The package map of docs/architecture.md, kept true by walking every import with ``ast``.

Rules: no import cycle between modules (imports inside functions and under ``TYPE_CHECKING``
count too); packages import only downward (the layer table below); nothing in ``sim/`` but
``sim/cli.py`` imports ``loadtests``; another package's names are imported from the package
itself, not from one of its modules; every package says in its docstring what it owns.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS: dict[str, int] = {
    # foundation modules: they import nothing else of peaksim
    "sim": 0, "sim.errors": 0, "sim.units": 0, "sim.schema": 0, "sim.runio": 0, "sim.metrics": 0,
    "sim.parallel": 0, "sim.intervals": 0, "sim.termtable": 0, "sim.interrupts": 0,
    "sim.policies": 0,
    "sim.policies.autoscaling": 1,
    "sim.model": 2,
    "sim.policies.colocation": 3,
    "sim.cluster": 4,
    "sim.engine": 5,
    "sim.plan": 6,
    "sim.report": 7,
    "sim.runs": 8, "sim.bench": 8, "sim.console": 8,
    "sim.study": 9,
    "loadtests": 10,
    "sim.cli": 11,
    "sim.__main__": 12,
}
"""Each unit's layer: a unit may import units of a lower layer, and its own modules."""

FOUNDATION = {"sim", "sim.errors", "sim.units", "sim.schema", "sim.runio", "sim.metrics",
              "sim.parallel", "sim.intervals", "sim.termtable", "sim.interrupts"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    files = [*ROOT.joinpath("sim").rglob("*.py"), *ROOT.joinpath("loadtests").rglob("*.py")]
    return {module_name(p): p for p in files}


MODULES = all_modules()


def unit_of(module: str) -> str:
    """The longest prefix of ``module`` that the layer table names."""
    best = ""
    for unit in LAYERS:
        if (module == unit or module.startswith(unit + ".")) and len(unit) > len(best):
            best = unit
    assert best, f"{module} belongs to no layer: add its package to LAYERS and the docs"
    return best


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """(imported peaksim module, line) for every import anywhere in ``module``."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("sim", "loadtests"):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] not in ("sim", "loadtests"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in MODULES else target), node.lineno


EDGES = {m: sorted(set(imports_of(m))) for m in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        unit_of(module)


def test_no_import_cycles() -> None:
    graph = {m: {t for t, _ in edges if t in MODULES and t != m} for m, edges in EDGES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_packages_import_only_downward() -> None:
    bad = []
    for module, edges in EDGES.items():
        mine = unit_of(module)
        for target, line in edges:
            theirs = unit_of(target)
            if {mine, theirs} <= FOUNDATION:
                continue  # the foundation modules form one layer (the no-cycle test covers it)
            if theirs != mine and LAYERS[theirs] >= LAYERS[mine]:
                bad.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {mine} (layer "
                           f"{LAYERS[mine]}) imports {target} (layer {LAYERS[theirs]})")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_only_the_cli_imports_the_load_tester() -> None:
    bad = [f"{module}:{line} imports {target}"
           for module, edges in EDGES.items() for target, line in edges
           if module.startswith("sim") and module != "sim.cli"
           and target.startswith("loadtests")]
    assert not bad, "\n".join(bad)


def test_other_packages_are_used_through_their_public_names() -> None:
    bad = []
    for module, edges in EDGES.items():
        mine = unit_of(module)
        for target, line in edges:
            theirs = unit_of(target)
            if theirs in (mine, "loadtests") or theirs in FOUNDATION:
                continue
            if target != theirs:
                bad.append(f"{module}:{line} imports {target}: import from {theirs}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", sorted(m for m, p in MODULES.items()
                                           if p.name == "__init__.py"))
def test_every_package_says_what_it_owns(package: str) -> None:
    doc = ast.get_docstring(ast.parse(MODULES[package].read_text(encoding="utf-8")))
    assert doc and len(doc) > 40, f"{package}/__init__.py needs a docstring: what it owns"
