"""Every scorer on both MMLU splits and on small data, several seeds, bootstrap intervals: EVALUATION.md's tables.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.evaluate_scorers [--seeds 5] [--boot 200] \
        [--out benchmarks/results/scorers_eval.json]

(``make evaluate-scorers``; without ``--out`` the JSON and markdown go to the git-ignored ``.cache/bench/results``.)

Splits, each with seeds ``0 .. seeds-1``:

- ``random``: :func:`tinydancer.learning.split_rows` (test 40%, calibration 10%, validation 10%, train 40%);
- ``subject``: the same shares with whole subjects in the test split (out of domain);
- ``small``: inside one MMLU subject group (STEM, humanities, social sciences, other; each seed of each group is
  one run), ``--small-train`` rows (80% train, 20% validation for early stopping), 200 calibration rows, and
  every other row of that group as test rows.

Every scorer is fitted through :func:`tinydancer.learning.fit_and_score` (train rows, ``val=`` the validation
rows) on the default recipe's target (``strong_gain``) and scored by :func:`tinydancer.learning.scorer_metrics`;
the ``*_weak_fails`` rows are the same scorers trained on ``1 - weak`` (the target before the recipe). A split's
figure is the mean over its runs; APGR's 95% interval is a percentile bootstrap of that mean (each replicate
resamples every run's test rows), and ``dAPGR vs tfidf`` is the paired bootstrap of the difference from
``tfidf_lr`` (same resampled rows for both). Model bytes: the served weights (FastGRNN: parameters and n-gram
bag, float32; the WordLlama table every embedding scorer shares is not counted), the fitted TF-IDF vocabulary
and coefficients as pickled, the kNN memory bank.
"""

from __future__ import annotations

import argparse
import pickle
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.report import write_results
from benchmarks.training import SCRATCH_RESULTS
from tinydancer import configure_jax
from tinydancer.datasets import MMLU_GROUPS, load
from tinydancer.learning import (
    DEFAULT_FEATURIZER,
    FastGRNNScorer,
    KNNEmbeddingScorer,
    OracleScorer,
    PromptStatsScorer,
    RandomScorer,
    ScorerRun,
    TfidfLogisticScorer,
    apgr,
    fit_and_score,
    routing_curve,
    scorer_metrics,
    split_rows,
)
from tinydancer.model import model_size_bytes

SMALL_CAL_ROWS = 200
TABLE_COLUMNS = ("apgr", "cpt50", "cpt80", "auroc", "auroc_gain", "ece", "prompts_per_s")


def small_data_rows(frame: pd.DataFrame, group: str, n_train: int, seed: int) -> dict[str, np.ndarray]:
    """``n_train`` rows of one subject group (80% train, 20% validation), 200 calibration rows, the rest test."""
    in_group = np.flatnonzero(frame["subject"].map(MMLU_GROUPS).to_numpy() == group)
    order = np.random.default_rng(seed).permutation(in_group)
    n_fit = round(0.8 * n_train)
    parts = {
        "train": order[:n_fit],
        "val": order[n_fit:n_train],
        "cal": order[n_train : n_train + SMALL_CAL_ROWS],
        "test": order[n_train + SMALL_CAL_ROWS :],
    }
    return {k: np.sort(v) for k, v in parts.items()}


def model_bytes(scorer: object) -> int | None:
    """Bytes of what a fitted scorer keeps to score (module docstring), or None when it keeps nothing learned."""
    if isinstance(scorer, FastGRNNScorer):
        artifact = scorer._scorer.artifact if scorer._scorer is not None else None
        assert artifact is not None
        bag = 0 if artifact.ngram_weights is None else artifact.ngram_weights.nbytes
        return model_size_bytes(artifact.params) + bag
    if isinstance(scorer, TfidfLogisticScorer):
        return len(pickle.dumps(scorer._model))
    if isinstance(scorer, KNNEmbeddingScorer):
        return int(scorer._bank.nbytes + scorer._y.nbytes)
    if isinstance(scorer, PromptStatsScorer):
        return int(scorer._w.nbytes + 8 + scorer._stats.mean.nbytes + scorer._stats.std.nbytes)
    return None


def scorers_for(frame: pd.DataFrame, seed: int) -> tuple[list[Any], list[Any]]:
    """The scorers on the recipe's target, and the lever rows trained on ``weak_fails``."""
    main = [
        FastGRNNScorer(),
        TfidfLogisticScorer(),
        KNNEmbeddingScorer(),
        PromptStatsScorer(),
        RandomScorer(seed),
        OracleScorer(frame),
    ]
    levers = [FastGRNNScorer(name="fastgrnn_weak_fails"), TfidfLogisticScorer(name="tfidf_lr_weak_fails")]
    return main, levers


def _apgr_of(frame: pd.DataFrame) -> Callable[[ScorerRun, np.ndarray], float]:
    weak = frame["weak_correct"].to_numpy(np.float64)
    strong = frame["strong_correct"].to_numpy(np.float64)

    def of(run: ScorerRun, idx: np.ndarray) -> float:
        test = run.rows["test"][idx]
        return apgr(routing_curve(run.test_scores[idx], weak[test], strong[test]))

    return of


def bootstrap_mean_apgr(
    frame: pd.DataFrame, runs: dict[str, list[ScorerRun]], n_boot: int, reference: str = "tfidf_lr"
) -> dict[str, dict[str, float]]:
    """APGR's mean over runs with a percentile interval, and the paired difference from ``reference``."""
    apgr_of = _apgr_of(frame)
    rng = np.random.default_rng(0)
    n_runs = len(runs[reference])
    draws: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(n_boot):
        idx = [rng.integers(0, len(r.test_scores), len(r.test_scores)) for r in runs[reference]]
        for name, per_run in runs.items():
            draws[name].append(float(np.mean([apgr_of(per_run[k], idx[k]) for k in range(n_runs)])))
    out = {}
    for name, values in draws.items():
        diff = np.asarray(values) - np.asarray(draws[reference])
        out[name] = {
            "apgr_lo": float(np.percentile(values, 2.5)),
            "apgr_hi": float(np.percentile(values, 97.5)),
            "d_apgr_lo": float(np.percentile(diff, 2.5)),
            "d_apgr_hi": float(np.percentile(diff, 97.5)),
        }
    return out


def evaluate_split(frame: pd.DataFrame, kind: str, seeds: list[int], n_boot: int, small_train: int) -> dict[str, Any]:
    """Every scorer on every run of one split kind: per-run rows, means, intervals."""
    plans: list[tuple[str, dict[str, np.ndarray]]] = []
    for seed in seeds:
        if kind == "small":
            for group in sorted(set(MMLU_GROUPS.values())):
                plans.append((f"{group}/seed{seed}", small_data_rows(frame, group, small_train, seed)))
        else:
            plans.append((f"seed{seed}", split_rows(frame, kind, seed)))
    runs: dict[str, list[ScorerRun]] = {}
    per_run: list[dict[str, Any]] = []
    for label, rows in plans:
        seed = int(label.rsplit("seed", 1)[1])
        main, levers = scorers_for(frame, seed)
        started = time.perf_counter()
        done = fit_and_score(frame, main, rows=rows, target="strong_gain")
        done += fit_and_score(frame, levers, rows=rows, target="weak_fails")
        for scorer, run in zip(main + levers, done, strict=True):
            runs.setdefault(run.name, []).append(run)
            per_run.append({"run": label, **scorer_metrics(frame, run), "model_bytes": model_bytes(scorer)})
        print(
            f"{kind} {label}: {time.perf_counter() - started:.0f} s, rows {[len(v) for v in rows.values()]}", flush=True
        )
    table = pd.DataFrame(per_run)
    means = table.drop(columns=["run"]).groupby("scorer", sort=False).mean(numeric_only=True)
    intervals = bootstrap_mean_apgr(frame, runs, n_boot)
    summary = {name: {**means.loc[name].to_dict(), **intervals[name]} for name in means.index}
    return {
        "runs": per_run,
        "summary": summary,
        "n_runs": len(plans),
        "rows": {k: len(v) for k, v in plans[0][1].items()},
    }


def markdown(kind: str, result: dict[str, Any]) -> str:
    """One table of a split kind's summary."""
    lines = [
        f"### {kind} ({result['n_runs']} runs; rows of the first: {result['rows']})",
        "",
        "| scorer | APGR [95% CI] | dAPGR vs tfidf_lr [95% CI] | CPT(50%) | CPT(80%) | AUROC (weak fails) "
        "| AUROC (strong wins) | ECE after Platt | model bytes | prompts/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in result["summary"].items():
        size = "" if s.get("model_bytes") is None or np.isnan(s["model_bytes"]) else f"{s['model_bytes']:,.0f}"
        d_apgr = s["apgr"] - result["summary"]["tfidf_lr"]["apgr"]
        lines.append(
            f"| {name} | {s['apgr']:.3f} [{s['apgr_lo']:.3f}, {s['apgr_hi']:.3f}] "
            f"| {d_apgr:+.3f} [{s['d_apgr_lo']:+.3f}, {s['d_apgr_hi']:+.3f}] "
            f"| {s['cpt50']:.3f} | {s['cpt80']:.3f} | {s['auroc']:.3f} | {s['auroc_gain']:.3f} | {s['ece']:.3f} "
            f"| {size} | {s['prompts_per_s']:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per split (small data: per subject group)")
    parser.add_argument("--boot", type=int, default=200, help="bootstrap replicates")
    parser.add_argument("--small-train", type=int, default=1000, help="train + validation rows of the small-data runs")
    parser.add_argument(
        "--splits", nargs="+", default=["random", "subject", "small"], choices=["random", "subject", "small"]
    )
    parser.add_argument(
        "--out", default=str(SCRATCH_RESULTS / "scorers_eval.json"), help="JSON output (markdown beside it)"
    )
    args = parser.parse_args(argv)
    configure_jax()
    frame = load("routellm-mmlu")
    started = time.perf_counter()
    results = {
        kind: evaluate_split(frame, kind, list(range(args.seeds)), args.boot, args.small_train) for kind in args.splits
    }
    command = "python -m benchmarks.evaluate_scorers " + " ".join(
        argv if argv is not None else __import__("sys").argv[1:]
    )
    header = (
        f"Command: `{command.strip()}` ({time.perf_counter() - started:.0f} s; "
        f"recipe featuriser {DEFAULT_FEATURIZER})\n"
    )
    text = header + "\n\n".join(markdown(kind, r) for kind, r in results.items()) + "\n"
    write_results(args.out, {"command": command, "results": results}, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
