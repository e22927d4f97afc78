"""The folders are the paper's loop, and a lower floor never imports a higher one.

Every module of the package is parsed with ``ast`` (nothing is imported), each import of ``rae.*`` is mapped to the
floor of its top-level part, and the test fails on an import of a higher floor, on an import inside a function (the
old way of dodging a loop), and on any cycle between top-level parts.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rae"

# Lowest first. A part may import its own floor's parts and any lower floor's, never a higher one.
FLOORS: list[set[str]] = [
    {"errors", "labels", "jsonout", "secrets", "tracking"},
    {"config"},
    {"stats"},
    {"datasets"},
    {"retrieve"},
    {"programs"},
    {"store", "lm"},
    {"annotate"},
    {"workspace"},
    {"scaleout"},
    {"evaluate"},
    {"studies"},
    {"optimize", "review", "interop", "improve"},
    {"bench", "cli", "api", "__main__", "__init__"},
]


def floor_of(part: str) -> int:
    for number, parts in enumerate(FLOORS):
        if part in parts:
            return number
    raise AssertionError(f"rae.{part} is on no floor: add it to FLOORS in {__file__}")


def top_part(module: Path, package: Path) -> str:
    return module.relative_to(package).parts[0].removesuffix(".py")


def rae_imports(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    """(imported top-level part, node) for every import of a ``rae`` module, at any depth."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "rae":
            parts = node.module.split(".")
            names = [a.name for a in node.names] if len(parts) == 1 else [parts[1]]
            found += [(name, node) for name in names]
        elif isinstance(node, ast.Import):
            found += [(a.name.split(".")[1], node) for a in node.names if a.name.startswith("rae.")]
    return found


def inside_a_function(tree: ast.AST) -> set[int]:
    """ids of import nodes that sit inside a function body."""
    nested = set()
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            nested |= {id(n) for n in ast.walk(function) if isinstance(n, ast.Import | ast.ImportFrom)}
    return nested


def violations(package: Path = PACKAGE) -> list[str]:
    found = []
    edges: dict[str, set[str]] = {}
    for module in sorted(package.rglob("*.py")):
        tree = ast.parse(module.read_text(), filename=str(module))
        here = top_part(module, package)
        nested = inside_a_function(tree)
        for part, node in rae_imports(tree):
            where = f"{module.relative_to(package.parent)}:{node.lineno}"
            if part != here:
                edges.setdefault(here, set()).add(part)
            if floor_of(part) > floor_of(here):
                found.append(f"{where}: rae.{here} (floor {floor_of(here)}) imports rae.{part} (floor {floor_of(part)}), a higher floor")
            if id(node) in nested:
                found.append(f"{where}: an import of rae.{part} inside a function")
    found += [f"import cycle: {' -> '.join(cycle)}" for cycle in _cycles(edges)]
    return found


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return cycles


def test_no_module_imports_a_higher_floor_or_dodges_a_loop():
    assert violations() == []


def test_the_rule_fails_on_a_deliberate_upward_import(tmp_path):
    """The same check on a copy of the package with one upward import added: it must say so."""
    import shutil

    copy = tmp_path / "rae"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "compiled", "data"))
    target = copy / "store" / "keys.py"
    target.write_text(target.read_text() + "\nfrom rae.studies.agreement import agreement_report  # upward\n")
    found = violations(copy)
    assert any(f"rae.store (floor {floor_of('store')}) imports rae.studies (floor {floor_of('studies')})" in v for v in found)
    assert any(v.startswith("import cycle:") for v in found)


@pytest.mark.parametrize("module", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(module):
    assert len(module.read_text().splitlines()) <= 400


def database_doors(package: Path = PACKAGE) -> list[str]:
    """Calls that open the store's database (an ORM session, a connection, a transaction) outside ``rae/store``."""
    found = []
    for module in sorted(package.rglob("*.py")):
        if module.relative_to(package).parts[0] == "store":
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("session", "connect", "begin"):
                owner = node.func.value
                named = owner.attr if isinstance(owner, ast.Attribute) else owner.id if isinstance(owner, ast.Name) else ""
                if named in ("store", "engine") or node.func.attr == "session":
                    found.append(f"{module.relative_to(package.parent)}:{node.lineno}: .{node.func.attr}()")
    return found


def test_only_the_store_opens_the_database():
    assert database_doors() == []
