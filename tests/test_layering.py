"""Imports flow one way between the wings: read every module's imports from its source and check them.

model and datasets use only the shared leaves; observability never imports routing; routing and learning
use the model wing; nothing but the package entry points imports the command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinydancer"
LEAVES = {"errors", "validation", "runtime", "_version"}
#: wing -> the wings (besides itself and the shared leaves) its modules may import.
ALLOWED: dict[str, set[str]] = {
    "leaf": set(),
    "model": set(),
    "datasets": set(),
    "observability": set(),
    "routing": {"model", "observability"},
    "learning": {"model", "datasets"},
    "plots": {"observability", "learning", "model", "datasets"},
    "examples": {"model", "datasets", "routing", "observability", "learning", "plots"},
    "cli": {"model", "datasets", "routing", "observability", "learning", "plots", "examples"},
    "package": {"model", "datasets", "routing", "observability", "learning", "plots", "examples"},
}


def _wing(module: str) -> str:
    """'tinydancer.routing.router' -> 'routing'; top-level leaves -> 'leaf'; the package itself -> 'package'."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__init__":
        return "package"
    if parts[1] in LEAVES:
        return "leaf"
    if parts[1] == "__main__":
        return "cli"
    return parts[1]


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1] if len(parts) > 2 else [*parts[:-1], "__init__"]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every tinydancer module a source file imports (top-level, function-level and TYPE_CHECKING alike)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("tinydancer")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tinydancer"):
            # `from tinydancer import datasets` imports a wing, `from tinydancer.x import name` module x.
            if node.module == "tinydancer":
                found |= {f"tinydancer.{alias.name}" for alias in node.names if (PACKAGE / alias.name).exists()}
                found |= {"tinydancer"} if any(not (PACKAGE / a.name).exists() for a in node.names) else set()
            else:
                found.add(node.module)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_known_wing() -> None:
    unknown = {str(p.relative_to(PACKAGE)) for p in MODULES if _wing(_module_name(p)) not in ALLOWED}
    assert unknown == set(), "add the new wing to ALLOWED with the directions it may import"


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_imports_flow_one_way(path: Path) -> None:
    wing = _wing(_module_name(path))
    allowed = ALLOWED[wing] | {wing, "leaf"}
    wrong = sorted(m for m in _imports(path) if _wing(m) not in allowed)
    assert wrong == [], f"{wing} may import {sorted(allowed)}, but {path.name} imports {wrong}"


def test_the_check_sees_a_wrong_direction(tmp_path: Path) -> None:
    # The checker itself: an observability module importing routing is reported.
    bad = tmp_path / "bad.py"
    bad.write_text("from tinydancer.routing.router import Router\nimport tinydancer.model.fastgrnn\n")
    assert _imports(bad) == {"tinydancer.routing.router", "tinydancer.model.fastgrnn"}
    assert _wing("tinydancer.routing.router") not in ALLOWED["observability"]
    assert _wing("tinydancer.cli.learn") not in ALLOWED["package"]
