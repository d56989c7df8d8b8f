"""The route kernel's host twin against the jitted kernel, and request packing, timed alone.

For each candidate count: the median of ``run_route`` (the host twin up to ``HOST_MAX_CANDIDATES``) and of
``run_route_kernel`` (the jitted kernel) on the same random request (dim 384, default compat model), and the
median of ``pack_request`` on a ``from_arrays`` request of that size, in alternating blocks. The same script
runs on older checkouts (it uses only ``run_route``, ``run_route_kernel``, ``pack_request`` and ``DeviceModel``),
which is how BENCHMARKS.md's before/after figures were made.

Usage: ``.venv/bin/python -m benchmarks.host_route [--counts 1 10 64 100 256 1000 4000] [--calls 400] [--out F.json]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from benchmarks.report import write_results
from tinydancer import configure_jax
from tinydancer.model.original import CompatModelConfig, init_compat_params
from tinydancer.routing.kernel import DeviceModel, run_route, run_route_kernel
from tinydancer.routing.packing import pack_request
from tinydancer.routing.requests import RoutingRequest

NOW_S = 1_700_000_000.0


def _median_us(fn: Callable[[], object], calls: int) -> float:
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return float(np.median(out)) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 10, 64, 100, 256, 1000, 4000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=400, help="calls per block (fewer above 1000 candidates)")
    parser.add_argument("--out", default=None, help="JSON results (markdown beside it)")
    args = parser.parse_args(argv)
    configure_jax()
    model = DeviceModel.from_params(init_compat_params(CompatModelConfig(), 0), CompatModelConfig())
    rng = np.random.default_rng(0)
    rows = []
    for n in args.counts:
        query = rng.uniform(-1, 1, 384).astype(np.float32)
        embeddings = rng.uniform(-1, 1, (n, 384)).astype(np.float32)
        columns = np.stack([rng.uniform(0, 3600, n), rng.integers(0, 1000, n), rng.uniform(0, 1, n), np.zeros(n)], 1)
        columns = columns.astype(np.float32)
        request = RoutingRequest.from_arrays(
            query, embeddings, created_at=NOW_S - columns[:, 0].astype(int), access_count=columns[:, 1].astype(int),
            success_rate=columns[:, 2].astype(float),
        )  # fmt: skip
        routed = (model, query, embeddings, columns, 0.85, 0.15)
        parts: dict[str, Callable[[], object]] = {
            "run_route": functools.partial(run_route, *routed),
            "run_route_kernel": functools.partial(run_route_kernel, *routed),
            "pack_request": functools.partial(pack_request, request, NOW_S),
        }
        calls = max(20, args.calls * 1000 // max(n, 1000))
        for fn in parts.values():
            for _ in range(20):
                fn()
        samples: dict[str, list[float]] = {name: [] for name in parts}
        for _ in range(args.rounds):
            for name, fn in parts.items():
                samples[name].append(_median_us(fn, calls))
        rows.append({"n": n, **{name: float(np.median(v)) for name, v in samples.items()}})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    command = "python -m benchmarks.host_route " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"# {command}",
        f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit}, {platform.machine()}, load average "
        f"{os.getloadavg()[0]:.2f}, dim 384, default compat model, medians of {args.rounds} blocks",
        "| N | run_route us | run_route_kernel us | kernel / run_route | pack_request us (from_arrays) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["run_route_kernel"] / r["run_route"]
        cells = f"{r['run_route']:.1f} | {r['run_route_kernel']:.1f} | {ratio:.2f}x | {r['pack_request']:.1f}"
        lines.append(f"| {r['n']} | {cells} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_results(args.out, {"command": command, "commit": commit, "rows": rows}, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
