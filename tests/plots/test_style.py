"""Plot colours and styles are defined once (tinydancer.plots.style) and used from there, notebooks included."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

import tinydancer as td
from tinydancer.learning.evaluation import routing_curve
from tinydancer.plots import plot_confidence, plot_routing_curves

REPO = Path(__file__).resolve().parents[2]
HEX = re.compile(r"#[0-9A-Fa-f]{6}\b")


def test_colours_are_public_read_only_and_from_one_palette() -> None:
    for name in ("PALETTE", "DECISION_COLORS", "OUTCOME_COLORS", "REFERENCE_CURVE_STYLES"):
        assert name in td.plots.__all__
    assert set(td.plots.DECISION_COLORS.values()) | set(td.plots.OUTCOME_COLORS.values()) <= set(
        td.plots.PALETTE.values()
    )
    with pytest.raises(TypeError):
        td.plots.OUTCOME_COLORS["failure"] = "red"  # type: ignore[index]


def test_only_the_style_module_spells_a_colour() -> None:
    spelled = {p.name for p in (REPO / "tinydancer" / "plots").glob("*.py") if HEX.search(p.read_text())}
    assert spelled == {"style.py"}


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")))
def test_notebooks_take_colours_from_the_package(name: str) -> None:
    cells = json.loads((REPO / "notebooks" / name).read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert HEX.findall(code) == [], "use td.plots.PALETTE / DECISION_COLORS / OUTCOME_COLORS / REFERENCE_CURVE_STYLES"


def test_plots_draw_in_the_shared_colours() -> None:
    frame = pd.DataFrame({"confidence": [0.95, 0.3], "use_lightweight": [True, False]})
    ax = plot_confidence(frame, Figure().subplots(), bins=2)
    assert {to_hex(p.get_facecolor()).lower() for p in ax.patches} == {
        c.lower() for c in td.plots.DECISION_COLORS.values()
    }
    c = routing_curve(np.array([0.9, 0.1]), np.array([0, 1]), np.array([1, 1]), np.array([0.5]))
    lines = plot_routing_curves({"oracle": c}, Figure().subplots()).get_lines()
    assert to_hex(lines[0].get_color()).lower() == td.plots.REFERENCE_CURVE_STYLES["oracle"]["color"].lower()
    assert lines[0].get_linestyle() == ":"
