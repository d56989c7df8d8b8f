"""Monitoring assets shipped with tinydancer: Prometheus config, alert rules and tests, Grafana dashboard.

The files live in ``tinydancer/observability/assets/`` (package data) and are written out as-is by
:func:`write_assets`, ready for ``prometheus --config.file=prometheus.yml``, ``promtool test rules
alerts_test.yml quality_alerts_test.yml`` and Grafana's *Dashboards > Import* (choose a Prometheus data source for
``DS_PROMETHEUS``; for the HTTP API, wrap the JSON as ``{"dashboard": ..., "overwrite": true}``).

Examples:
    >>> "alerts.yml" in ASSET_NAMES
    True
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tinydancer.errors import InvalidInputError

__all__ = ["ASSET_NAMES", "read_asset", "write_assets"]

#: Every shipped asset: the scrape config (with ``rule_files``), the guide's three alert rules, their
#: promtool unit tests, the prompt router's three live-quality alert rules (:mod:`tinydancer.observability.outcomes`)
#: and their unit tests, and an importable Grafana dashboard.
ASSET_NAMES: tuple[str, ...] = (
    "prometheus.yml",
    "alerts.yml",
    "alerts_test.yml",
    "quality_alerts.yml",
    "quality_alerts_test.yml",
    "grafana-dashboard.json",
)


def read_asset(name: str) -> str:
    """Return the text of one shipped asset.

    Args:
        name: One of :data:`ASSET_NAMES`.

    Returns:
        The file's text (UTF-8).

    Raises:
        InvalidInputError: If ``name`` is not a shipped asset.

    Examples:
        >>> "job_name: 'tiny-dancer'" in read_asset("prometheus.yml")
        True
    """
    if name not in ASSET_NAMES:
        raise InvalidInputError(f"asset name: expected one of {ASSET_NAMES}, got {name!r}")
    return resources.files("tinydancer.observability").joinpath("assets", name).read_text(encoding="utf-8")


def write_assets(out_dir: str | Path, *, overwrite: bool = True) -> list[Path]:
    """Write every shipped asset into ``out_dir`` (created if missing), keeping their relative layout.

    ``prometheus.yml`` names ``alerts.yml`` and ``quality_alerts.yml`` in ``rule_files``, and
    ``alerts_test.yml`` / ``quality_alerts_test.yml`` name their rule file too, all relative to their own
    directory, so the written folder works as it is.

    Args:
        out_dir: Destination directory.
        overwrite: If False, refuse to replace an existing file.

    Returns:
        The written paths, in :data:`ASSET_NAMES` order.

    Raises:
        FileExistsError: If ``overwrite`` is False and one of the files already exists (nothing is
            written then).

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     [p.name for p in write_assets(d)] == list(ASSET_NAMES)
        True
    """
    out = Path(out_dir)
    targets = [out / name for name in ASSET_NAMES]
    if not overwrite:
        existing = [str(p) for p in targets if p.exists()]
        if existing:
            raise FileExistsError(f"refusing to overwrite existing asset file(s): {existing}")
    out.mkdir(parents=True, exist_ok=True)
    for path in targets:
        path.write_text(read_asset(path.name), encoding="utf-8")
    return targets
