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
``pack_request`` (validation and packing, where they differ), without route()'s jitter. The paths lead the rounds in
turn. A third table takes route() at 1 candidate apart (``--parts-budget-s``, 0 skips it): held objects plus one
part of the objects path's build, made and dropped, and a one-candidate request written out without a loop.
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
    for r in range(rounds):
        for n, fns in paths.items():
            names = list(fns)
            for name in names[r % len(names) :] + names[: r % len(names)]:  # each path leads a round in turn
                samples[n][name] += time_calls(fns[name], blocks[n])
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


def one_candidate_parts(dim: int, rounds: int, budget_s: float) -> dict[str, float]:
    """Median microseconds of route() at 1 candidate for the paths and for held objects plus one part of the objects
    path's build, made and dropped (so what route() does is the held request's work): where a one-candidate
    request built from objects spends what held objects do not. Variants are timed in rotated order per round.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        router = Router(RouterConfig(), log_config=LogConfig(renderer="none"), tracing=trace.NoOpTracerProvider())
    rows = Rows(1, dim, seed=1)
    emb, meta = rows.rows[0], rows.metadata[0]

    def route(request: RoutingRequest) -> object:
        return router.route(request, now=NOW_S)

    def comprehension_only() -> object:  # the objects path's loop over six columns, tuples instead of Candidates
        columns = (rows.ids, rows.rows, rows.metadata, rows.created_at, rows.access_count, rows.success_rate)
        return [(i, e, m, c, a, s) for i, e, m, c, a, s in zip(*columns, strict=True)]

    def written_out() -> RoutingRequest:  # one candidate as a user writes it, without a loop
        candidate = Candidate(
            id=rows.ids[0], embedding=emb, metadata=meta, created_at=rows.created_at[0],
            access_count=rows.access_count[0], success_rate=rows.success_rate[0],
        )  # fmt: skip
        return RoutingRequest(query_embedding=rows.query, candidates=[candidate], metadata=rows.request_metadata)

    variants: dict[str, Callable[[], object]] = {
        "held objects (the reference)": lambda: route(rows.held_objects()),
        "held + one Candidate(...) made and dropped": lambda: (
            Candidate(id="x", embedding=emb, metadata=meta, created_at=1.0, access_count=2, success_rate=0.5),
            route(rows.held_objects()),
        ),
        "held + the loop over six columns (no Candidate) made and dropped": lambda: (
            comprehension_only(),
            route(rows.held_objects()),
        ),
        "held + the objects path's whole build made and dropped": lambda: (rows.objects(), route(rows.held_objects())),
        "objects (the table's path: the loop, one Candidate)": lambda: route(rows.objects()),
        "objects written out: candidates=[Candidate(...)]": lambda: route(written_out()),
        "arrays (from_arrays)": lambda: route(rows.arrays()),
    }
    for fn in variants.values():
        time_calls(fn, 200)
    probe = float(np.median(time_calls(variants["objects (the table's path: the loop, one Candidate)"], 50)))
    block = max(5, int(budget_s / rounds / len(variants) / (probe * 1e-6)))
    samples: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name] += time_calls(variants[name], block)
    return {name: float(np.median(values)) for name, values in samples.items()}


def parts_table(parts: dict[str, float]) -> str:
    """The markdown table of :func:`one_candidate_parts`."""
    held, arrays = parts["held objects (the reference)"], parts["arrays (from_arrays)"]
    lines = ["| route() at 1 candidate | us | minus held objects (us) | minus arrays (us) |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {us:.1f} | {us - held:+.2f} | {us - arrays:+.2f} |" for name, us in parts.items()]
    return "\n".join(lines)


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
    parser.add_argument("--parts-budget-s", type=float, default=20.0, help="for the 1-candidate parts; 0: skip")
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
    if args.parts_budget_s > 0:
        parts = one_candidate_parts(args.dim, args.rounds, args.parts_budget_s)
        text += f"\n# request_objects, route() at 1 candidate, part by part: {args.rounds} rounds, {stamp}, {machine}\n"
        text += parts_table(parts) + "\n"
        out["one_candidate_parts"] = parts
    print(text)
    if args.out:
        write_results(args.out, out, text)
    return out


if __name__ == "__main__":
    main()
