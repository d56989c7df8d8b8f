"""Which of the shipped alert rules would fire on a router's metrics, evaluated by promtool itself.

A notebook or benchmark snapshots ``router.metrics.samples()`` at a fixed interval (what a Prometheus
scrape would see), and :func:`evaluate_alerts` hands those series to ``promtool test rules`` with
the shipped ``alerts.yml``, expecting no alert; promtool reports every alert that does fire, with its
labels, and that report is parsed back. So the verdict comes from Prometheus's own rule engine.

Examples:
    >>> series = samples_to_series([[("tiny_dancer_circuit_breaker_state", {}, v)] for v in (0, 2, 2, 2, 2, 2)])
    >>> series
    {'tiny_dancer_circuit_breaker_state': [0.0, 2.0, 2.0, 2.0, 2.0, 2.0]}
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from tinydancer.errors import ConfigError, InvalidInputError
from tinydancer.observability.monitoring_assets import read_asset

_ALERT_BLOCK = re.compile(r"alertname: (\w+), time: ([0-9hms.]+),.*?got:\[(.*?)\n\s*\]", re.S)
_DURATION_PART = re.compile(r"([0-9.]+)(ms|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_LABELS = re.compile(r"Labels:\{(.*?)\}")
_LABEL_PAIR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class AlertFiring(NamedTuple):
    """One alert promtool reports firing at ``eval_time_s`` (seconds after the first sample)."""

    eval_time_s: float
    alert: str
    labels: dict[str, str]


def go_duration_s(text: str) -> float:
    """Seconds in a Go duration as promtool prints it.

    Examples:
        >>> go_duration_s("2m30s"), go_duration_s("1h"), go_duration_s("0s")
        (150.0, 3600.0, 0.0)
    """
    return sum(float(number) * _UNIT_S[unit] for number, unit in _DURATION_PART.findall(text))


def series_key(name: str, labels: Mapping[str, str]) -> str:
    """Prometheus series notation: ``name{k="v",...}``.

    Examples:
        >>> series_key("tiny_dancer_errors_total", {"error_type": "inference_error"})
        'tiny_dancer_errors_total{error_type="inference_error"}'
    """
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def samples_to_series(snapshots: Iterable[Iterable[Any]], names: Iterable[str] | None = None) -> dict[str, list[float]]:
    """Turn periodic snapshots of ``(name, labels, value)`` samples into one value list per series.

    Args:
        snapshots: one iterable of samples per scrape, e.g. ``router.metrics.samples()`` each time
            (any objects with ``name``, ``labels``, ``value`` attributes, or 3-tuples).
        names: keep only these sample names (default: all).

    Returns:
        series key -> values, one per snapshot (a series first seen late is back-filled with its first value).
    """
    wanted = None if names is None else set(names)
    rows: list[dict[str, float]] = []
    for snapshot in snapshots:
        row: dict[str, float] = {}
        for sample in snapshot:
            name, labels, value = (sample.name, sample.labels, sample.value) if hasattr(sample, "name") else sample
            if wanted is None or name in wanted:
                row[series_key(name, labels)] = float(value)
        rows.append(row)
    keys = sorted({k for row in rows for k in row})
    series: dict[str, list[float]] = {}
    for key in keys:
        first = next(row[key] for row in rows if key in row)
        values, last = [], first
        for row in rows:
            last = row.get(key, last)
            values.append(last)
        series[key] = values
    return series


def alert_names(rules_text: str) -> list[str]:
    """Names of the alerts in a Prometheus rules file.

    Examples:
        >>> alert_names(read_asset("alerts.yml"))
        ['HighErrorRate', 'CircuitBreakerOpen', 'HighLatency']
    """
    doc = yaml.safe_load(rules_text)
    return [rule["alert"] for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def evaluate_alerts(
    series: Mapping[str, Sequence[float]],
    interval_s: float,
    eval_times_s: Sequence[float],
    *,
    rules_text: str | None = None,
    promtool: str | None = None,
) -> list[AlertFiring]:
    """Ask promtool which alerts fire on ``series`` at each evaluation time.

    Args:
        series: series key -> one value per ``interval_s`` (see :func:`samples_to_series`).
        interval_s: seconds between consecutive values (the scrape interval).
        eval_times_s: when to evaluate, in seconds after the first value.
        rules_text: a rules file's text (default: the shipped ``alerts.yml``).
        promtool: the promtool executable (default: found on PATH).

    Returns:
        Every firing alert, in evaluation-time order.

    Raises:
        ConfigError: promtool is not installed, or it rejected the rules or series.
        InvalidInputError: no series, or series of different lengths.
    """
    exe = promtool or shutil.which("promtool")
    if exe is None:
        raise ConfigError("promtool not found: install Debian's prometheus package (make system-deps)")
    lengths = {len(v) for v in series.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise InvalidInputError(f"series: expected non-empty value lists of one length, got lengths {sorted(lengths)}")
    rules_text = rules_text if rules_text is not None else read_asset("alerts.yml")
    tests = [
        {"eval_time": f"{t:g}s", "alertname": name, "exp_alerts": []}
        for t in eval_times_s
        for name in alert_names(rules_text)
    ]
    spec = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": f"{interval_s:g}s",
        "tests": [
            {
                "interval": f"{interval_s:g}s",
                "input_series": [
                    {"series": key, "values": " ".join(f"{v:.17g}" for v in values)} for key, values in series.items()
                ],
                "alert_rule_test": tests,
            }
        ],
    }
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "rules.yml").write_text(rules_text, encoding="utf-8")
        Path(folder, "test.yml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        done = subprocess.run(
            [exe, "test", "rules", "test.yml"], cwd=folder, capture_output=True, text=True, timeout=120, check=False
        )
    output = done.stdout + done.stderr
    if done.returncode == 0:
        return []
    firings = [
        AlertFiring(go_duration_s(when), name, dict(_LABEL_PAIR.findall(labels)))
        for name, when, got in _ALERT_BLOCK.findall(output)
        for labels in _LABELS.findall(got)
    ]
    if not firings:
        raise ConfigError(f"promtool failed without reporting alerts:\n{output.strip()}")
    return sorted(firings, key=lambda f: (f.eval_time_s, f.alert))
