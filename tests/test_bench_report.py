"""The benchmark runner's report (goal verdicts, tables, plot) and its node timing script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from benchmarks.report import batch_table, goals, plot_latency, route_table, training_table
from tests._oracle import require_oracle

REPO = Path(__file__).resolve().parent.parent


def _summary(median: float) -> dict[str, float]:
    return {"calls": 10, "median_us": median, "p95_us": 2 * median, "mean_us": median, "min_us": median / 2}


def fake_result(ours_us: dict[int, float], theirs_us: dict[int, float], feat_rate: float) -> dict[str, Any]:
    settings = ("off", "metrics_logs", "spans_1pct", "spans_100pct")
    rate = {"median_per_s": feat_rate, "best_per_s": feat_rate, "reps": 3}
    slow = {"median_per_s": 1e6, "best_per_s": 1e6, "reps": 3}
    return {
        "config": {"counts": sorted(ours_us)},
        "machine": {"nproc": 2, "loadavg": [1.0, 1.0, 1.0]},
        "route": {
            "tinydancer": {s: {n: _summary(v) for n, v in ours_us.items()} for s in settings},
            # keys as strings: the report must also read results after a JSON round trip
            "original": {str(n): _summary(v) for n, v in theirs_us.items()},
        },
        "batch": {
            "features": {"1000000": {"tinydancer": rate, "numpy": slow, "max_abs_diff": 1e-7}},
            "embeddings": {"1000": {"tinydancer": slow, "numpy": rate, "max_abs_diff": 1e-7}},
            "embeddings_aligned": {"1000": {"tinydancer": rate, "numpy": slow, "max_abs_diff": 1e-7}},
        },
        "compile_check": {"route_kernel_cache_before": 4, "route_kernel_cache_after": 4, "calls": 40},
    }


def test_goals_follow_the_thresholds_of_issue_6() -> None:
    met = goals(fake_result({1: 140.0, 10: 90.0, 1000: 900.0}, {1: 100.0, 10: 100.0, 1000: 1000.0}, 60e6))
    by_name = {g: ok for g, ok, _ in met}
    assert by_name["route() metrics_logs: < 1.0x original at N >= 10, <= 1.5x at N = 1"] is True
    assert by_name["batch from feature rows >= 50 M/s"] is True
    assert by_name["batch from 384-d embeddings >= 5 M/s (numpy's own arrays, staged)"] is False
    assert by_name["batch from 384-d embeddings >= 5 M/s (64-byte aligned, in place)"] is True
    assert by_name["ahead of numpy at batch >= 1000"] is False  # embeddings at 1000 are behind numpy
    assert by_name["no recompiles in steady state"] is True
    missed = goals(fake_result({1: 160.0, 10: 90.0}, {1: 100.0, 10: 100.0}, 60e6))  # 1.6x at one candidate
    assert not dict((g, ok) for g, ok, _ in missed)["route() spans_1pct: < 1.0x original at N >= 10, <= 1.5x at N = 1"]


def test_training_goal_needs_the_target_reached_in_less_time() -> None:
    run = {"seconds": 2.0, "epochs_run": 1, "seconds_per_epoch_after_first": None, "val_accuracy": 0.8,
           "val_auroc": 0.6, "peak_rss_growth_mib": 10.0, "peak_rss_mib": 300.0, "first_epoch_seconds": 1.5,
           "reached_target": True}  # fmt: skip
    original = {"seconds": 3.0, "epochsRun": 40, "val_accuracy": 0.7, "val_auroc": 0.55, "max_rss_mib": 400.0}
    training = {"measured": True, "rows": {"train": 10, "val": 5}, "majority_val_accuracy": 0.8,
                "original_trainRouter": original, "tinydancer_fastgrnn_to_target": run,
                "tinydancer_fastgrnn_full_run": run, "speedup_to_target": 1.5, "speedup_full_runs": 1.5}  # fmt: skip
    result = fake_result({1: 100.0}, {1: 100.0}, 60e6) | {"training": training}
    name = "training faster than trainRouter to the same validation accuracy"
    assert dict((g, ok) for g, ok, _ in goals(result))[name] is True
    assert any("| 2.00 | 1 | 1.50 | - | 0.800 | 0.600 |" in line for line in training_table(result))
    slow = result | {"training": training | {"tinydancer_fastgrnn_to_target": run | {"seconds": 4.0}}}
    assert dict((g, ok) for g, ok, _ in goals(slow))[name] is False
    missing = fake_result({1: 100.0}, {1: 100.0}, 60e6) | {"training": {"measured": False, "why": "no data"}}
    assert dict((g, ok) for g, ok, _ in goals(missing))["training faster than trainRouter"] is None


def test_tables_show_ratios_and_rates() -> None:
    result = fake_result({1: 150.0, 10: 50.0}, {1: 100.0, 10: 100.0}, 60e6)
    rows = route_table(result)
    assert "| metrics_logs | 1 | 150.0 | 300.0 | 100.0 | 200.0 | 1.50x |" in rows
    assert "| off | 10 | 50.0 | 100.0 | 100.0 | 200.0 | 0.50x |" in rows
    assert any(
        line.startswith("| features | 1,000,000 | 60.00 (60.00) | 1.00 (1.00) | 60.0x |")
        for line in batch_table(result)
    )


def test_plot_is_written(tmp_path: Path) -> None:
    path = tmp_path / "latency.png"
    plot_latency(fake_result({1: 150.0, 10: 50.0}, {1: 100.0, 10: 100.0}, 1e6), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_node_script_times_the_original() -> None:
    oracle = require_oracle()
    opts = {"counts": [1, 3], "dim": 16, "budget_s": 0.05, "min_calls": 5, "warmup": 2, "samples": True}
    opts |= {"oracle_dir": str(oracle.root), "scratch": str(oracle.root)}
    proc = subprocess.run(
        [oracle.node, str(REPO / "benchmarks" / "original_route.js"), json.dumps(opts)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["package_version"] == "0.1.22"
    assert [row["n"] for row in result["rows"]] == [1, 3]
    for row in result["rows"]:
        assert row["calls"] == len(row["samples_us"]) >= 5
        assert 0 < row["min_us"] <= row["median_us"] <= row["p95_us"]
