"""rae reaches DSPy, CPython and its other libraries through their public interfaces only.

Every module of the package (and the benchmark) is parsed with ``ast``: the test fails on an import of a private name
(``from dspy.x import _y``, or any module path with a part that starts with ``_``, such as ``dspy._vendor``), and on
an attribute that starts with one underscore but that rae never defines itself (``predictor._forward_postprocess``,
``module._compiled``, ``os.environ._data``, ``model._ctx``): such a name can only belong to someone else.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "rae").rglob("*.py"), *(ROOT / "bench").rglob("*.py")])


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def own_names(files: list[Path]) -> set[str]:
    """Every private name rae defines: its functions and classes, attributes it sets on its own objects, names it binds."""
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add(node.attr)  # an attribute of rae's own objects (setting one on another's object is no definition)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return {name for name in names if private(name)}


def private_uses(files: list[Path]) -> list[str]:
    ours = own_names(files)
    found = []
    for path in files:
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                parts = node.module.split(".")
                if parts[0] != "rae" and parts[0] not in ("bench", "tests"):
                    if any(private(part) for part in parts):
                        found.append(f"{where}:{node.lineno}: from {node.module} import ...")
                    found += [f"{where}:{node.lineno}: from {node.module} import {a.name}" for a in node.names if private(a.name)]
            elif isinstance(node, ast.Import):
                found += [f"{where}:{node.lineno}: import {a.name}" for a in node.names if any(private(p) for p in a.name.split("."))]
            elif isinstance(node, ast.Attribute) and private(node.attr) and node.attr not in ours:
                found.append(f"{where}:{node.lineno}: .{node.attr}")
            elif _getattr_of_private(node, ours):
                found.append(f"{where}:{node.lineno}: getattr(..., {node.args[1].value!r})")
    return found


def _getattr_of_private(node: ast.AST, ours: set[str]) -> bool:
    """``getattr(x, "_name")`` / ``hasattr`` / ``setattr``: the same private attribute, by its name as a string."""
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr", "setattr")
        and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
        and private(node.args[1].value) and node.args[1].value not in ours
    )


def test_rae_uses_no_private_name_of_dspy_cpython_or_another_library():
    assert private_uses(SOURCES) == []


def test_the_check_finds_the_private_names_rae_once_used(tmp_path):
    """The same check on code that does what rae's hot path did: it must say so, line by line."""
    shadow = tmp_path / "shadow.py"
    shadow.write_text(
        "import os\n"
        "from dspy.clients.legacy_requests import _strict_json_schema\n"
        "from dspy._vendor.lm15 import Request\n"
        "def predicted(predictor, completions, signature):\n"
        "    raw = os.environ._data\n"
        "    also = getattr(os.environ, '_data', None)\n"
        "    predictor._compiled = False\n"
        "    return predictor._forward_postprocess(completions, signature)\n"
    )
    found = private_uses([shadow])
    assert any("_strict_json_schema" in f for f in found)
    assert any("dspy._vendor.lm15" in f for f in found)
    assert any(f.endswith("._data") for f in found) and any(f.endswith("._forward_postprocess") for f in found)
    assert any(f.endswith("._compiled") for f in found) and any("getattr(..., '_data')" in f for f in found)
