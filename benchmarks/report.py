"""BENCHMARKS.md tables, goal verdicts and the latency plot, from the runner's JSON result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def write_results(out: str | Path, result: dict[str, Any], text: str) -> None:
    """A benchmark's result as JSON at ``out`` and its Markdown ``text`` beside it (same name, ``.md``)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=float))
    path.with_suffix(".md").write_text(text)


SETTING_LABELS = {
    "off": "tinydancer, observability off",
    "metrics_logs": "tinydancer, metrics + logs",
    "spans_1pct": "tinydancer, + spans 1%",
    "spans_100pct": "tinydancer, + spans 100%",
}


def _key(rows: dict[Any, Any], n: int) -> Any:
    """Rows are keyed by int in memory and by str after a JSON round trip."""
    return n if n in rows else str(n)


def route_table(result: dict[str, Any]) -> list[str]:
    """Markdown rows: median / p95 per setting and the original, ratio tinydancer / original."""
    route = result["route"]
    original = route["original"]
    lines = [
        "| setting | N | median us | p95 us | original median us | original p95 us | ratio (median) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in route["tinydancer"].items():
        for n in result["config"]["counts"]:
            row = rows[_key(rows, n)]
            orig = original[_key(original, n)] if original else None
            ratio = f"{row['median_us'] / orig['median_us']:.2f}x" if orig else "n/a"
            orig_cols = f"{orig['median_us']:.1f} | {orig['p95_us']:.1f}" if orig else "n/a | n/a"
            lines.append(f"| {name} | {n} | {row['median_us']:.1f} | {row['p95_us']:.1f} | {orig_cols} | {ratio} |")
    return lines


#: Input kinds of the batch benchmark: feature rows, embeddings as numpy allocates them, 64-byte aligned embeddings.
BATCH_KINDS = ("features", "embeddings", "embeddings_aligned")


def batch_table(result: dict[str, Any]) -> list[str]:
    """Markdown rows of batch throughput, M candidates/s (median, best)."""
    lines = [
        "| input | N | tinydancer M/s median (best) | numpy M/s median (best) | tinydancer / numpy | max abs diff |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in BATCH_KINDS:
        for n, row in result["batch"].get(kind, {}).items():
            td, ref = row["tinydancer"], row["numpy"]
            lines.append(
                f"| {kind} | {int(n):,} | {td['median_per_s'] / 1e6:.2f} ({td['best_per_s'] / 1e6:.2f}) | "
                f"{ref['median_per_s'] / 1e6:.2f} ({ref['best_per_s'] / 1e6:.2f}) | "
                f"{td['median_per_s'] / ref['median_per_s']:.1f}x | {row['max_abs_diff']:.1e} |"
            )
    return lines


def training_table(result: dict[str, Any]) -> list[str]:
    """Markdown rows of the training comparison (or why it was not measured)."""
    t = result.get("training", {})
    if not t.get("measured"):
        return [f"Not measured: {t.get('why', 'absent from this result')}"]
    orig, target, full = (
        t["original_trainRouter"],
        t["tinydancer_fastgrnn_to_target"],
        t["tinydancer_fastgrnn_full_run"],
    )
    lines = [
        f"{t['rows']['train']:,} training rows, {t['rows']['val']:,} validation rows; the majority class alone is "
        f"{t['majority_val_accuracy']:.3f} accurate on them.",
        "",
        "| run | wall s | epochs | 1st epoch s | s / later epoch | val acc. | val AUROC | peak memory | XLA compiles |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
        f"| original `trainRouter` (node, its defaults) | {orig['seconds']:.2f} | {orig['epochsRun']} | - | "
        f"{orig['seconds'] / orig['epochsRun']:.3f} (mean) | {orig['val_accuracy']:.3f} | {orig['val_auroc']:.3f} | "
        f"node peak RSS {orig['max_rss_mib']:.0f} MiB | - |",
    ]
    for name, run in (("to trainRouter's val accuracy", target), ("full run (early stopping)", full)):
        per_epoch = run["seconds_per_epoch_after_first"]
        epoch_text = "-" if per_epoch is None else f"{per_epoch:.3f}"
        lines.append(
            f"| tinydancer FastGRNN, {name}, cold process | {run['seconds']:.2f} | {run['epochs_run']} | "
            f"{run['first_epoch_seconds']:.2f} | {epoch_text} | {run['val_accuracy']:.3f} | {run['val_auroc']:.3f} | "
            f"Python peak RSS {run['peak_rss_mib']:.0f} MiB (+{run['peak_rss_growth_mib']:.0f} MiB while training) | "
            f"{run.get('xla_compiles', '-')} ({run.get('xla_compile_seconds', float('nan')):.2f} s) |"
        )
    return lines


def goals(result: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    """(goal, met?, numbers) for each of issue 6's measurable goals."""
    out: list[tuple[str, bool | None, str]] = []
    route, counts = result["route"], result["config"]["counts"]
    original = route["original"]
    if original:
        for setting in ("metrics_logs", "spans_1pct"):
            rows = route["tinydancer"][setting]
            ratios = {n: rows[_key(rows, n)]["median_us"] / original[_key(original, n)]["median_us"] for n in counts}
            text = ", ".join(f"N={n}: {r:.2f}x" for n, r in ratios.items())
            ok = all(r < 1.0 for n, r in ratios.items() if n >= 10) and ratios.get(1, 0.0) <= 1.5
            out.append((f"route() {setting}: < 1.0x original at N >= 10, <= 1.5x at N = 1", ok, text))
    else:
        out.append(("route() vs original", None, "original not measured (no node/npm)"))
    batch = result["batch"]
    for kind, how in (
        ("embeddings", "numpy's own arrays, staged"),
        ("embeddings_aligned", "64-byte aligned, in place"),
    ):
        if kind in batch:
            emb = max(batch[kind].items(), key=lambda kv: int(kv[0]))
            rate = emb[1]["tinydancer"]["median_per_s"]
            out.append(
                (f"batch from 384-d embeddings >= 5 M/s ({how})", rate >= 5e6, f"{rate / 1e6:.2f} M/s at N={emb[0]}")
            )
    feat = max(batch["features"].items(), key=lambda kv: int(kv[0]))
    feat_rate = feat[1]["tinydancer"]["median_per_s"]
    out.append(("batch from feature rows >= 50 M/s", feat_rate >= 50e6, f"{feat_rate / 1e6:.2f} M/s at N={feat[0]}"))
    ahead = []
    for kind in BATCH_KINDS:
        for n, row in batch.get(kind, {}).items():
            if int(n) >= 1000:
                ahead.append((kind, int(n), row["tinydancer"]["median_per_s"] / row["numpy"]["median_per_s"]))
    text = ", ".join(f"{k} N={n}: {r:.1f}x" for k, n, r in ahead)
    out.append(("ahead of numpy at batch >= 1000", all(r > 1.0 for _, _, r in ahead), text))
    t = result.get("training", {})
    if t.get("measured"):
        orig, target = t["original_trainRouter"], t["tinydancer_fastgrnn_to_target"]
        ok = target["reached_target"] and target["seconds"] < orig["seconds"]
        text = (
            f"{target['seconds']:.2f} s to val accuracy {orig['val_accuracy']:.3f} vs {orig['seconds']:.2f} s "
            f"({t['speedup_to_target']:.2f}x); full runs {t['speedup_full_runs']:.2f}x"
        )
        out.append(("training faster than trainRouter to the same validation accuracy", ok, text))
    else:
        out.append(("training faster than trainRouter", None, f"not measured: {t.get('why')}"))
    cache = result["compile_check"]
    steady = cache["route_kernel_cache_before"] == cache["route_kernel_cache_after"]
    timed = route.get("timed_loop_compile_cache")
    if timed is not None:
        steady = steady and timed["route_kernel_cache_before"] == timed["route_kernel_cache_after"]
    out.append(("no recompiles in steady state", steady, f"route_kernel cache {cache}; during the timed loop {timed}"))
    return out


def plot_latency(result: dict[str, Any], path: Path) -> None:
    """Median route() latency vs candidate count, log-log, both routers (p95 dotted for the two headline rows)."""
    counts = result["config"]["counts"]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name, rows in result["route"]["tinydancer"].items():
        med = [rows[_key(rows, n)]["median_us"] for n in counts]
        p95 = [rows[_key(rows, n)]["p95_us"] for n in counts]
        (line,) = ax.plot(counts, med, marker="o", label=SETTING_LABELS.get(name, name))
        if name == "metrics_logs":
            ax.plot(counts, p95, linestyle=":", color=line.get_color(), label="  p95 of metrics + logs")
    original = result["route"]["original"]
    if original:
        med = [original[_key(original, n)]["median_us"] for n in counts]
        p95 = [original[_key(original, n)]["p95_us"] for n in counts]
        ax.plot(counts, med, marker="s", color="black", linewidth=2.5, label="original (node, @ruvector 0.1.22)")
        ax.plot(counts, p95, linestyle=":", color="black", label="  p95 of the original")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("candidates per request (embedding dim 384)")
    ax.set_ylabel("route() latency per call, microseconds (median)")
    load = result["machine"]["loadavg"]
    ax.set_title(f"route() latency vs candidates ({result['machine']['nproc']} shared cores, load {load[0]:.1f})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
