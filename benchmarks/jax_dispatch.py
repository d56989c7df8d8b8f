"""What ``td.configure_jax()`` buys: route() latency with JAX's synchronous vs default (asynchronous) dispatch.

The dispatch mode is fixed when JAX's CPU backend starts, so each mode runs in its own fresh process.
The two kinds of process alternate, round after round, so the machine's load hits both alike; each
process routes with metrics and INFO logs on (captured into the collector, nothing printed), no tracing,
at 1, 10 and 100 candidates of dimension 384, and reports per-call medians. Ratios are async / sync.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.jax_dispatch [--rounds 4] [--calls 1500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

COUNTS = (1, 10, 100)
DIM = 384


def worker(sync: bool, calls: int) -> dict[str, float]:
    """Route ``calls`` times per candidate count in this process; median microseconds per count."""
    import tinydancer as td

    if sync:
        td.configure_jax()
    from benchmarks.route_latency import NOW_S, make_request

    router = td.Router(
        td.RouterConfig(model_path="/nonexistent/model.safetensors"), log_config=td.LogConfig(renderer="none")
    )
    medians = {}
    for n in COUNTS:
        request = make_request(n, DIM, seed=n)
        for _ in range(50):  # compile this bucket, warm the caches
            router.route(request, now=NOW_S)
        samples = np.empty(calls)
        for i in range(calls):
            start = time.perf_counter()
            router.route(request, now=NOW_S)
            samples[i] = time.perf_counter() - start
        medians[str(n)] = float(np.median(samples) * 1e6)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="processes per mode (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=1500, help="timed calls per count (default: %(default)s)")
    parser.add_argument("--worker", choices=("sync", "async"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import warnings

        warnings.simplefilter("ignore", RuntimeWarning)  # the missing-model warning: a seeded random model
        print(json.dumps(worker(args.worker == "sync", args.calls)))
        return
    runs: dict[str, list[dict[str, float]]] = {"sync": [], "async": []}
    for _ in range(args.rounds):
        for mode in ("sync", "async"):
            command = [sys.executable, "-m", "benchmarks.jax_dispatch", "--worker", mode, "--calls", str(args.calls)]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            runs[mode].append(json.loads(out.strip().splitlines()[-1]))
    print(f"route() median us per call, metrics + INFO logs, dim {DIM}, {args.rounds} processes per mode")
    print("| candidates | sync (configure_jax) | async (JAX default) | async / sync |")
    print("|---:|---:|---:|---:|")
    for n in map(str, COUNTS):
        sync = float(np.median([r[n] for r in runs["sync"]]))
        asyn = float(np.median([r[n] for r in runs["async"]]))
        print(f"| {n} | {sync:.0f} | {asyn:.0f} | {asyn / sync:.2f}x |")


if __name__ == "__main__":
    main()
