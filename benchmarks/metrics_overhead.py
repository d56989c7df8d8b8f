"""Cost of recording one routed batch in RouterMetrics versus per-candidate prometheus_client calls.

Run: ``.venv/bin/python benchmarks/metrics_overhead.py`` (add ``--paths`` to also time the two
internal paths of ``record_decisions`` around its small-batch threshold). Prints best-of-7 microseconds
per batch over several repeats; "naive" is what a straightforward port does: one
``Histogram.observe`` per candidate and histogram plus one counter ``inc`` per candidate.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

import tinydancer.observability.decision_histograms as ds
import tinydancer.observability.metrics as tm
from tinydancer import configure_jax


def naive_recorder() -> Callable[[np.ndarray, np.ndarray, np.ndarray], None]:
    """Per-candidate observes on ordinary prometheus_client metrics, children bound up front."""
    reg = CollectorRegistry()
    conf = Histogram("c", "c", ["decision_type"], buckets=tm.CONFIDENCE_BUCKETS, registry=reg)
    unc = Histogram("u", "u", ["decision_type"], buckets=tm.UNCERTAINTY_BUCKETS, registry=reg)
    dec = Counter("d", "d", ["model_type"], registry=reg)
    cand = Counter("n", "n", ["batch_size_range"], registry=reg)
    children = {
        flag: (conf.labels(name), unc.labels(name), dec.labels(name))
        for flag, name in ((True, "lightweight"), (False, "powerful"))
    }
    cands = {r: cand.labels(r) for r in tm.BATCH_SIZE_RANGES}

    def record(c: np.ndarray, u: np.ndarray, light: np.ndarray) -> None:
        for ci, ui, li in zip(c.tolist(), u.tolist(), light.tolist(), strict=True):
            hc, hu, d = children[li]
            hc.observe(ci)
            hu.observe(ui)
            d.inc()
        cands[tm.batch_size_range(len(c))].inc(len(c))

    return record


def per_call_us(fn: Callable[[], None], target_s: float = 0.15, repeats: int = 7) -> float:
    """Best-of-7 microseconds per call of ``fn`` (calls per repeat chosen to last about ``target_s``)."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, int(number * target_s / 0.2))
    # The best of several repeats: on a shared, loaded machine the minimum is the least noisy estimate.
    return min(t / number * 1e6 for t in timer.repeat(repeats, number))


def batch(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    conf = rng.random(n).astype(np.float32)
    unc = (rng.random(n) * 0.3).astype(np.float32)
    return conf, unc, conf > 0.85


def main() -> None:
    configure_jax()  # synchronous dispatch, as a serving process runs (BENCHMARKS.md)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--paths", action="store_true", help="also time both record_decisions paths")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    naive = naive_recorder()
    metrics = tm.RouterMetrics()
    print("record_decisions (us per batch, best of 7 repeats)")
    print(f"{'N':>6} {'RouterMetrics':>14} {'naive':>10} {'naive/ours':>11} {'ours us/cand':>13}")
    for n in (1, 10, 100, 1000):
        c, u, light = batch(n, rng)
        ours = per_call_us(lambda c=c, u=u, light=light: metrics.record_decisions(c, u, light))
        ref = per_call_us(lambda c=c, u=u, light=light: naive(c, u, light))
        print(f"{n:>6} {ours:>14.2f} {ref:>10.2f} {ref / ours:>10.1f}x {ours / n:>13.3f}")
    print()
    for name, fn in (
        ("record_request", lambda: metrics.record_request(True, 0.001)),
        ("record_features", lambda: metrics.record_features(10, 2e-5)),
        ("record_inference", lambda: metrics.record_inference(1e-4)),
        ("export (text)", lambda: metrics.export() and None),
    ):
        print(f"{name:<18} {per_call_us(fn):>9.2f} us")
    if args.paths:
        print("\nrecord_decisions by internal path (us per batch)")
        print(f"{'N':>6} {'bisect loop':>12} {'numpy':>10}")
        saved = ds._SMALL_BATCH
        try:
            for n in (1, 4, 8, 16, 24, 32, 64):
                c, u, light = batch(n, rng)
                times = []
                for threshold in (10**9, 0):
                    ds._SMALL_BATCH = threshold
                    times.append(per_call_us(lambda c=c, u=u, light=light: metrics.record_decisions(c, u, light)))
                print(f"{n:>6} {times[0]:>12.2f} {times[1]:>10.2f}")
        finally:
            ds._SMALL_BATCH = saved


if __name__ == "__main__":
    main()
