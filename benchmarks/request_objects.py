"""route() with a request built from ``Candidate`` objects versus ``RoutingRequest.from_arrays``, side by side.

Run: ``.venv/bin/python -m benchmarks.request_objects`` (``--counts 1 10 100 1000 --dim 384 --rounds 8``).

Both paths time the whole user-visible cost: building the request the way users do (the guide's
``RoutingRequest(query_embedding=..., candidates=[Candidate(...), ...], metadata=...)`` from per-candidate
rows, or one ``from_arrays`` call over the stacked arrays) plus ``route()`` on one router (default
``RouterConfig``, metrics and INFO logs on, ``LogConfig(renderer="none")``, no tracing). Both requests carry the
same values, metadata included. A third path, **held objects**, routes a request built from ``Candidate`` objects
the application made once and keeps (a fixed candidate set, new queries): the request's own cost, without the
constructor calls. The paths are timed interleaved, in rounds of one block per (count, path), so the load of a
shared machine hits them alike; the table gives medians, the extra microseconds per candidate of each object path
((objects - arrays) / N) and the ratio objects / arrays. A second table times the same paths up to
``pack_request`` (validation and packing, where they differ), without route()'s jitter.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from opentelemetry import trace

from benchmarks.report import write_results
from tinydancer.observability import LogConfig
from tinydancer.routing import Candidate, Router, RouterConfig, RoutingRequest, pack_request

NOW_S = 1_700_000_000.0
#: The per-candidate extra cost the object path may have over from_arrays (issue 16, item 1).
GOAL_US_PER_CANDIDATE = 1.0


class Rows:
    """The values of ``n`` random candidates, kept both as per-candidate rows and as stacked arrays."""

    def __init__(self, n: int, dim: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.query = rng.uniform(-1, 1, dim).astype(np.float32)
        self.embeddings = rng.uniform(-1, 1, (n, dim)).astype(np.float32)
        self.ids = [f"candidate-{i}" for i in range(n)]
        self.created_at = (NOW_S - rng.integers(0, 3600, n)).tolist()
        self.access_count = rng.integers(0, 1000, n).tolist()
        self.success_rate = rng.uniform(0, 1, n).tolist()
        langs = ("en", "de", "fr")
        self.metadata = [{"lang": langs[i % 3], "tier": i % 2} for i in range(n)]
        self.request_metadata = {"lang": "en", "tier": 1}
        self.rows = list(self.embeddings)  # one [D] array per candidate, as an application holds them
        self.held = self.objects().candidates  # Candidate objects made once, reused by every request

    def held_objects(self) -> RoutingRequest:
        """The guide's way with Candidate objects the application already holds."""
        return RoutingRequest(query_embedding=self.query, candidates=self.held, metadata=self.request_metadata)

    def objects(self) -> RoutingRequest:
        """The guide's way: one Candidate per row."""
        return RoutingRequest(
            query_embedding=self.query,
            candidates=[
                Candidate(id=cid, embedding=emb, metadata=meta, created_at=c, access_count=a, success_rate=s)
                for cid, emb, meta, c, a, s in zip(
                    self.ids,
                    self.rows,
                    self.metadata,
                    self.created_at,
                    self.access_count,
                    self.success_rate,
                    strict=True,
                )
            ],
            metadata=self.request_metadata,
        )

    def arrays(self) -> RoutingRequest:
        """One from_arrays call over the stacked arrays."""
        return RoutingRequest.from_arrays(
            self.query,
            self.embeddings,
            ids=self.ids,
            created_at=self.created_at,
            access_count=self.access_count,
            success_rate=self.success_rate,
            metadata=self.request_metadata,
            candidate_metadata=self.metadata,
        )


def time_calls(fn: Callable[[], object], calls: int) -> list[float]:
    """Wall time of each of ``calls`` calls, microseconds."""
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def _timed_call(router: Router, build: Callable[[], RoutingRequest], stage: str) -> Callable[[], object]:
    """One timed call: build the request, then route it (stage "route") or only validate and pack it ("pack")."""

    def route() -> object:
        return router.route(build(), now=NOW_S)

    def pack() -> object:
        return pack_request(build(), NOW_S)

    return route if stage == "route" else pack


def measure(counts: list[int], dim: int, rounds: int, budget_s: float, stage: str) -> dict[int, dict[str, float]]:
    """Median microseconds per (build + route) or (build + pack_request) call of both paths, and their difference.

    "pack" times only the host-side part in which the two paths differ (route() adds the same kernel, metrics
    and logging work to both), so it resolves differences of a few microseconds that route()'s jitter hides.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "model file not found: using a random model"
        router = Router(RouterConfig(), log_config=LogConfig(renderer="none"), tracing=trace.NoOpTracerProvider())
    data = {n: Rows(n, dim, seed=n) for n in counts}
    paths = {
        n: {
            "objects": _timed_call(router, rows.objects, stage),
            "held": _timed_call(router, rows.held_objects, stage),
            "arrays": _timed_call(router, rows.arrays, stage),
        }
        for n, rows in data.items()
    }
    blocks: dict[int, int] = {}
    for n, fns in paths.items():  # warm-up: compiles each bucket once, sizes the blocks
        a, b = router.route(data[n].objects(), now=NOW_S), router.route(data[n].arrays(), now=NOW_S)
        assert a.candidate_ids == b.candidate_ids and np.array_equal(a.confidence, b.confidence)
        for fn in fns.values():
            time_calls(fn, 10)
        probe = float(np.median(time_calls(fns["objects"], 5)))
        blocks[n] = max(5, int(budget_s / rounds / len(fns) / len(counts) / (probe * 1e-6)))
    samples: dict[int, dict[str, list[float]]] = {n: {name: [] for name in fns} for n, fns in paths.items()}
    for _ in range(rounds):
        for n, fns in paths.items():
            for name, fn in fns.items():
                samples[n][name] += time_calls(fn, blocks[n])
    out: dict[int, dict[str, float]] = {}
    for n in counts:
        objects, held, arrays = (float(np.median(samples[n][name])) for name in ("objects", "held", "arrays"))
        out[n] = {
            "calls": len(samples[n]["objects"]),
            "objects_us": objects,
            "held_us": held,
            "arrays_us": arrays,
            "extra_us_per_candidate": (objects - arrays) / n,
            "held_extra_us_per_candidate": (held - arrays) / n,
            "ratio": objects / arrays,
            "held_ratio": held / arrays,
        }
    return out


def table(rows: dict[int, dict[str, float]]) -> str:
    """The markdown table of :func:`measure`'s result, with the goal verdict per count."""
    lines = [
        "| candidates | calls/path | objects (us) | held objects (us) | arrays (us) | extra per candidate (us): "
        "objects / held | objects / arrays | held / arrays | goal <= ~1 us: objects / held |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|:---|",
    ]
    for n, r in rows.items():
        met = ["met" if r[k] <= GOAL_US_PER_CANDIDATE else "NOT met" for k in (
            "extra_us_per_candidate", "held_extra_us_per_candidate")]  # fmt: skip
        lines.append(
            f"| {n} | {int(r['calls'])} | {r['objects_us']:.0f} | {r['held_us']:.0f} | {r['arrays_us']:.0f} | "
            f"{r['extra_us_per_candidate']:.2f} / {r['held_extra_us_per_candidate']:.2f} | {r['ratio']:.2f} | "
            f"{r['held_ratio']:.2f} | {met[0]} / {met[1]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, measure, print the table (with date and machine)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--budget-s", type=float, default=24.0, help="wall time of the timed rounds, about")
    parser.add_argument("--out", default=None, help="write JSON here and the tables beside it (.md)")
    args = parser.parse_args(argv)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = platform.processor() or platform.machine()
    out: dict[str, Any] = {"dim": args.dim, "date": stamp}
    text = f"# python -m benchmarks.request_objects {' '.join(argv if argv is not None else sys.argv[1:])}\n"
    for stage, what in (("route", "build + route()"), ("pack", "build + pack_request()")):
        rows = measure(args.counts, args.dim, args.rounds, args.budget_s / 2, stage)
        text += f"\n# request_objects, {what}: dim {args.dim}, {args.rounds} rounds, {stamp}, {machine}\n"
        text += table(rows) + "\n"
        out[stage] = rows
    print(text)
    if args.out:
        write_results(args.out, out, text)
    return out


if __name__ == "__main__":
    main()
