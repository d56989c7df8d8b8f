"""The library declares compatible ranges; make and CI install the exact tested set from constraints.txt."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def _declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in [*project["dependencies"], *extras]]


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: expected NAME==VERSION, got {line!r}"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_library_dependencies_are_ranges_not_exact_pins() -> None:
    exact = [str(r) for r in _declared() if any(s.operator in ("==", "===") for s in r.specifier)]
    assert exact == [], "pyproject.toml must not force exact versions on users; pin in constraints.txt"


def test_every_dependency_is_pinned_inside_its_declared_range() -> None:
    pins = _pins()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is declared but not pinned in constraints.txt"
        assert pins[name] in requirement.specifier, f"{name}=={pins[name]} is outside {requirement}"


def test_make_installs_from_the_constraints() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "-c constraints.txt" in makefile
