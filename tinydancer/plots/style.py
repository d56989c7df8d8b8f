"""Colours and line styles of every plot, defined here once; notebooks use them as ``td.plots.<NAME>``.

The colours are the Okabe-Ito colour-blind-safe palette, fixed per meaning (a routing decision, a request
outcome, a reference curve) so that every figure, the package's and the notebooks', reads the same way.
All mappings are read-only.

Examples:
    >>> DECISION_COLORS["lightweight"] == PALETTE["blue"], OUTCOME_COLORS["failure"]
    (True, '#D55E00')
    >>> dict(REFERENCE_CURVE_STYLES["oracle"])
    {'color': '#009E73', 'ls': ':'}
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: The Okabe-Ito palette by colour name.
PALETTE: Mapping[str, str] = MappingProxyType(
    {
        "blue": "#0072B2",
        "orange": "#E69F00",
        "green": "#009E73",
        "vermillion": "#D55E00",
        "sky_blue": "#56B4E9",
        "grey": "#999999",
    }
)
#: Routing decision -> colour (``Collector.decisions().decision`` values).
DECISION_COLORS: Mapping[str, str] = MappingProxyType({"lightweight": PALETTE["blue"], "powerful": PALETTE["orange"]})
#: Request outcome -> colour (``Collector.requests().outcome`` values), in the order plots stack them.
OUTCOME_COLORS: Mapping[str, str] = MappingProxyType(
    {"success": PALETTE["green"], "failure": PALETTE["vermillion"], "rejected": PALETTE["grey"]}
)
#: Matplotlib line style of each reference curve of a routing-curve plot: random routing and the oracle.
REFERENCE_CURVE_STYLES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "random": MappingProxyType({"color": "grey", "ls": "--"}),
        "oracle": MappingProxyType({"color": PALETTE["green"], "ls": ":"}),
    }
)


def axes_or_new(ax: Axes | None) -> Axes:
    """``ax``, or the axes of a new 6 x 4 inch figure made with ``matplotlib.pyplot`` (so notebooks show it).

    Examples:
        >>> from matplotlib.figure import Figure
        >>> given = Figure().subplots()
        >>> axes_or_new(given) is given
        True
    """
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new_ax = plt.subplots(figsize=(6, 4), layout="constrained")
    return new_ax
