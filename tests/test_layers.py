"""The layout is the architecture: each subpackage of livecomp imports only the layers below it,
and no module of livecomp imports itself back through others (lazy imports inside functions
count too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "livecomp"

# layer -> the layers it may import (livecomp/__init__.py and files.py are below them all)
MAY_IMPORT = {
    "io": set(),
    "timing": {"io"},
    "music": {"io"},
    "model": {"io", "music"},
    "perform": {"io", "timing", "music", "model"},
    "cli": {"io", "timing", "music", "model", "perform"},
}
BASE = {"livecomp", "livecomp.files"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The livecomp modules a file imports, anywhere in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("livecomp"):
                continue
            for alias in node.names:                   # "from . import midi": the module livecomp.io.midi
                sub = f"{target}.{alias.name}"
                found.add(sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists()
                          or (PACKAGE.parent / sub.replace(".", "/")).is_dir() else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("livecomp")}
    return {m for m in found if m.split(".")[0] == "livecomp" and m != name}


GRAPH = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in MAY_IMPORT else None


def test_every_module_lives_in_a_layer():
    loose = [m for m in GRAPH if layer_of(m) is None and m not in BASE and not m.startswith("livecomp.exported")]
    assert loose == []


def test_no_layer_imports_one_above_it():
    wrong = [(m, t) for m, targets in GRAPH.items() for t in targets
             if layer_of(m) and t not in BASE and layer_of(t) != layer_of(m)
             and layer_of(t) not in MAY_IMPORT[layer_of(m)]]
    assert wrong == []


def test_the_base_modules_import_no_layer():
    assert all(not GRAPH[m] - BASE for m in BASE)


def test_no_module_imports_itself_back():
    def reaches(start: str, goal: str, seen: set) -> bool:
        for t in GRAPH.get(start, ()):
            if t == goal or (t not in seen and not seen.add(t) and reaches(t, goal, seen)):
                return True
        return False

    circles = [m for m in GRAPH if reaches(m, m, set())]
    assert circles == []
