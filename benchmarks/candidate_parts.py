"""What one ``Candidate`` object costs, part by part, timed alone (issue 16, item 1: the floor of the guide's way).

``benchmarks.request_objects`` times whole requests; this runner times the parts a request of ``Candidate``
objects adds over ``RoutingRequest.from_arrays``, per candidate, each alone in a tight loop, interleaved in
rounds: the minimum over rounds with the garbage collector off (the part's floor, what ``timeit`` reports) and
the median with it on, as in an application (objects that live until the request ends are what the collector
walks; the process holds JAX's and tinydancer's ~200,000 objects, as a router's does):

- ``Candidate(...)``: the guide's call, six keyword arguments (the fields stored in C, one C call);
- ``Candidate, pure-Python fields``: the same class as an install without a C compiler defines it
  (``tinydancer/routing/_candidate_fallback.py``: a Python ``__init__`` writing the instance dict);
- ``do-nothing __init__``: the same call to a plain class whose ``__init__`` takes the six keywords and does
  nothing: what any object with a Python ``__init__`` costs on this machine before it stores a field;
- ``request.columns()``: the objects' fields read into columns (the only per-object step of packing), in C,
  and the pure-Python twin's ``zip`` of ``attrgetter`` tuples;
- ``copy_float32_rows``: stacking the candidates' separate float32 [D] rows into one [N, D] matrix in C
  (``from_arrays`` callers hand over a matrix), and ``np.array(rows)``, what packing uses without the extension;
- ``store.snapshot(ids)``: copying N stored rows out of a ``CandidateStore`` of 10 N (what a request by ids
  pays instead).

Usage: ``.venv/bin/python -m benchmarks.candidate_parts [--n 1000] [--dim 384] [--repeats 15] [--out F.json]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.util
import platform
import sys
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

import tinydancer as td
from benchmarks.report import write_results
from tinydancer.routing import _candidate_fallback as fallback
from tinydancer.routing.candidate_core import copy_float32_rows
from tinydancer.routing.requests import CandidateColumns


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


def pure_python_candidate() -> type:
    """``Candidate`` as an install without a C compiler defines it: requests.py run again with the extension
    hidden (the package's own ``Candidate`` is untouched)."""
    hidden, core = "tinydancer.routing._candidate", "tinydancer.routing.candidate_core"
    saved = {name: sys.modules.pop(name) for name in (hidden, core)}
    sys.modules[hidden] = None  # type: ignore[assignment]  # its import now fails, as without the built file
    try:
        spec = importlib.util.spec_from_file_location("_pure_python_requests", td.routing.requests.__file__)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclass() looks its class's module up there
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop("_pure_python_requests", None)
        sys.modules.update(saved)
    assert module.Candidate.__mro__[1].__module__.endswith("_candidate_fallback")
    return module.Candidate  # type: ignore[no-any-return]


def interleaved_us(parts: dict[str, Callable[[], object]], n: int, repeats: int, calls: int) -> dict[str, Any]:
    """Per-candidate microseconds of each part (each handles ``n`` candidates): ``repeats`` rounds, every part
    once a round with the collector off and once with it on; the minimum off, the median on."""
    off: dict[str, list[float]] = {name: [] for name in parts}
    on: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(repeats):
        for name, fn in parts.items():
            off[name].append(timeit.timeit(fn, number=calls) / calls / n * 1e6)
            on[name].append(timeit.timeit(fn, "gc.enable()", number=calls, globals={"gc": gc}) / calls / n * 1e6)
    return {name: {"gc_off_min": min(off[name]), "gc_on_median": float(np.median(on[name]))} for name in parts}


def measure(n: int, dim: int, repeats: int) -> dict[str, Any]:
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
    parts = {
        "Candidate(...), six keywords": build(td.Candidate),
        "Candidate, pure-Python fields (no compiler)": build(pure_python_candidate()),
        "do-nothing __init__, six keywords": build(_DoNothing),
        "request.columns() (candidate_columns in C)": request.columns,
        "pure-Python candidate_columns (no compiler)": lambda: fallback.candidate_columns(
            request.candidates, td.Candidate, CandidateColumns
        ),
        "copy_float32_rows(rows, out) (C)": lambda: copy_float32_rows(rows, np.empty((n, dim), np.float32)),
        "np.array(rows) (no compiler)": lambda: np.array(rows),
        "store.snapshot(ids)": lambda: store.snapshot(wanted),
    }
    return interleaved_us(parts, n, repeats, calls)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default=None, help="write JSON here and the table beside it (.md)")
    args = parser.parse_args(argv)
    parts = measure(args.n, args.dim, args.repeats)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# candidate_parts: {args.n} candidates, dim {args.dim}, {args.repeats} rounds, {stamp}, {platform.machine()}",
        "| part | us per candidate, gc off (min) | us per candidate, gc on (median) |",
        "|---|---:|---:|",
        *(f"| {name} | {us['gc_off_min']:.3f} | {us['gc_on_median']:.3f} |" for name, us in parts.items()),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    result = {"n": args.n, "dim": args.dim, "repeats": args.repeats, "when": stamp, "us_per_candidate": parts}
    if args.out:
        write_results(args.out, result, text)
    return result


if __name__ == "__main__":
    main()
