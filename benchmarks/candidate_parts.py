"""What one ``Candidate`` object costs, part by part, timed alone (issue 16, item 1: the floor of the guide's way).

``benchmarks.request_objects`` times whole requests; this runner times the parts a request of ``Candidate``
objects adds over ``RoutingRequest.from_arrays``, per candidate, each alone in a tight loop (the minimum over
repeats, so the parts' floors, not what they cost inside a route):

- ``Candidate(...)``: the guide's call, six keyword arguments;
- ``do-nothing __init__``: the same call to a plain class whose ``__init__`` takes the six keywords and does
  nothing: what any Python object built this way costs on this machine before it stores a field;
- ``request.columns()``: the objects' fields read into columns (the only per-object step of packing);
- ``np.array(rows)``: stacking the candidates' separate [D] rows into one [N, D] matrix (``from_arrays``
  callers hand over a matrix);
- ``store.snapshot(ids)``: copying N stored rows out of a ``CandidateStore`` of 10 N (what a request by ids
  pays instead).

Usage: ``.venv/bin/python -m benchmarks.candidate_parts [--n 100] [--dim 384] [--repeats 9] [--out F.json]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

import tinydancer as td
from benchmarks.report import write_results


class _DoNothing:
    """A plain class whose ``__init__`` takes ``Candidate``'s six arguments and stores nothing."""

    def __init__(
        self,
        id: str,
        embedding: Any,
        metadata: Any = None,
        created_at: Any = None,
        access_count: int = 0,
        success_rate: float = 0.0,
    ) -> None:
        return None


def per_candidate_us(fn: Callable[[], object], n: int, repeats: int, calls: int) -> float:
    """Minimum over ``repeats`` of the mean microseconds of ``fn`` (which handles ``n`` candidates) per candidate."""
    return min(timeit.repeat(fn, number=calls, repeat=repeats)) / calls / n * 1e6


def measure(n: int, dim: int, repeats: int) -> dict[str, float]:
    """Per-candidate microseconds of each part (module docstring) for requests of ``n`` candidates."""
    rng = np.random.default_rng(0)
    rows = list(rng.uniform(-1, 1, (n, dim)).astype(np.float32))
    ids = [f"candidate-{i}" for i in range(n)]
    meta = [{"lang": ("en", "de", "fr")[i % 3], "tier": i % 2} for i in range(n)]
    created, access, success = [1_700_000_000 - i for i in range(n)], list(range(n)), [0.5] * n
    fields = list(zip(ids, rows, meta, created, access, success, strict=True))

    def build(cls: Callable[..., object]) -> Callable[[], object]:
        return lambda: [
            cls(id=i, embedding=e, metadata=m, created_at=c, access_count=a, success_rate=s)
            for i, e, m, c, a, s in fields
        ]

    request = td.RoutingRequest(rows[0], build(td.Candidate)())  # type: ignore[arg-type]
    store = td.CandidateStore(dim)
    store_ids = [f"stored-{i}" for i in range(10 * n)]
    store.upsert_many(store_ids, rng.uniform(-1, 1, (10 * n, dim)).astype(np.float32))
    wanted = tuple(store_ids[::10])
    calls = max(10, 20_000 // n)
    return {
        "Candidate(...), six keywords": per_candidate_us(build(td.Candidate), n, repeats, calls),
        "do-nothing __init__, six keywords": per_candidate_us(build(_DoNothing), n, repeats, calls),
        "request.columns()": per_candidate_us(request.columns, n, repeats, calls),
        "np.array(rows)": per_candidate_us(lambda: np.array(rows), n, repeats, calls),
        "store.snapshot(ids)": per_candidate_us(lambda: store.snapshot(wanted), n, repeats, calls),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", default=None, help="write JSON here and the table beside it (.md)")
    args = parser.parse_args(argv)
    parts = measure(args.n, args.dim, args.repeats)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# candidate_parts: {args.n} candidates, dim {args.dim}, min of {args.repeats} repeats, {stamp}, "
        f"{platform.machine()}",
        "| part | us per candidate |",
        "|---|---:|",
        *(f"| {name} | {us:.3f} |" for name, us in parts.items()),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    result = {"n": args.n, "dim": args.dim, "repeats": args.repeats, "when": stamp, "us_per_candidate": parts}
    if args.out:
        write_results(args.out, result, text)
    return result


if __name__ == "__main__":
    main()
