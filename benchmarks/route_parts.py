"""Where one route() call spends its time, by subtraction: each part replaced by a no-op, in context.

cProfile (``benchmarks.profile_route``) inflates Python-heavy parts; this runner instead times route() with
the guide's default setup (metrics and INFO logs on, ``LogConfig(renderer="none")``, random default model, dim
384, a request built with ``RoutingRequest.from_arrays``), without tracing (``metrics_logs``) and with spans
sampled at 1% (``spans_1pct``), and again with ONE part switched off at a time; a part's cost is the
difference of the medians. Variants are interleaved in blocks over several rounds, so each sees the same
phases of a shared machine's load.

Parts (each a measurement tool only, never a setting a user has):

- ``metrics``: the Prometheus updates of a routed request (``RouterMetrics.queue_route``: the eight series
  of requests, latency, feature-engineering and inference durations, and the per-candidate decisions);
- ``collector rows``: the collector's request row and decision rows;
- ``logs``: the guide's events (``request_started``, per-candidate ``candidate_result`` at DEBUG,
  ``request_completed``, the DEBUG ``features`` record; at INFO without a renderer, the route's one
  ``RouteLogs`` entry in the collector);
- ``span scope``: the request's root span, made current and closed;
- ``breaker``: admitting the request and settling its ticket;
- ``host route``: the features, model and decision (the compiled host twin), replaced by precomputed outputs;
- ``validation + packing``: ``pack_request``, replaced by the request packed beforehand.

What is left after all of them is the Router's own glue (the clock, the response object, sorting).

Usage: ``.venv/bin/python -m benchmarks.route_parts [--counts 1 10] [--settings metrics_logs spans_1pct]
[--rounds 8] [--calls 400] [--out F.json]``
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import os
import platform
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry import trace

import tinydancer.routing.router as router_module
from benchmarks.report import write_results
from benchmarks.route_latency import NOW_S, make_request, time_calls
from tinydancer import configure_jax
from tinydancer.observability import LogConfig, TracingConfig, TracingSystem
from tinydancer.routing import Router, RouterConfig
from tinydancer.routing.kernel import DeviceModel
from tinydancer.routing.packing import pack_request


def _noop(*_: Any, **__: Any) -> None:
    return None


class _NoScope:
    """RequestScope's interface without a span: what ``span scope`` measures against."""

    __slots__ = ("span",)

    def __init__(self, *_: Any) -> None:
        self.span = trace.INVALID_SPAN

    def fail(self, exc: BaseException) -> None:
        return None

    def close(self) -> tuple[()]:
        return ()


@contextlib.contextmanager
def _patched(obj: Any, **attrs: Any) -> Iterator[None]:
    saved = {name: getattr(obj, name) for name in attrs}
    try:
        for name, value in attrs.items():
            setattr(obj, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(obj, name, value)


def _logs_off(router: Router) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.enter_context(
        _patched(router_module, log_request_started=_noop, log_candidate_results=_noop, log_request_completed=_noop)
    )
    silent = _SilentLog()
    stack.enter_context(_patched(router, _log=silent, _logging=(silent, False)))  # False: no RouteLogs either
    return stack


class _SilentLog:
    def debug(self, *_: Any, **__: Any) -> None:
        return None


def variants(router: Router, request: Any) -> dict[str, Callable[[], contextlib.AbstractContextManager[None]]]:
    """Part name -> a context manager that switches that part off on ``router`` (``full``: nothing off)."""
    packed = pack_request(request, int(NOW_S))
    model = router.model
    outputs = model.host(packed.query, packed.embeddings, packed.columns, 0.85, 0.15) if model.host else None
    canned = DeviceModel(model.config, model.flat, (lambda *_: outputs) if outputs else None)
    metrics, collector = router.metrics, router.collector
    return {
        "full": contextlib.nullcontext,
        "metrics": lambda: _patched(metrics, queue_route=_noop),
        "collector rows": lambda: _patched(collector, record_request=_noop, record_decisions=_noop),
        "logs": lambda: _logs_off(router),
        "span scope": lambda: _patched(router_module, RequestScope=_NoScope),
        "breaker": lambda: _patched(router._breaker, admit=lambda: None, release=_noop, success=_noop, failure=_noop),
        "host route": lambda: _patched(router, _serving=(canned, router._serving[1])),
        "validation + packing": lambda: _patched(router_module, pack_request=lambda *_: packed),
    }


#: Settings: name -> share of requests sampled into spans (0: no tracing provider at all).
SETTINGS = {"metrics_logs": 0.0, "spans_1pct": 0.01}


def make_router(sampling: float) -> Router:
    """The benchmark's router: default config, random model, metrics and INFO logs, spans at ``sampling``."""
    tracing: TracingSystem | trace.TracerProvider = trace.NoOpTracerProvider()
    if sampling:
        tracing = TracingSystem(TracingConfig(service_name="bench", sampling_ratio=sampling, in_memory_capacity=20_000))
    config = RouterConfig(model_path=str(Path(".cache") / "absent-model.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "model file not found: using a random model"
        return Router(config, log_config=LogConfig(renderer="none"), tracing=tracing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--calls", type=int, default=400, help="calls per block")
    parser.add_argument("--out", default=None, help="JSON results (markdown beside it)")
    args = parser.parse_args(argv)
    configure_jax()
    cells = [(setting, n) for setting in args.settings for n in args.counts]
    routers = {setting: make_router(SETTINGS[setting]) for setting in args.settings}
    samples: dict[tuple[str, int], dict[str, list[float]]] = {}
    plans = {}
    for setting, n in cells:
        router, request = routers[setting], make_request(n, 384, seed=n)
        for _ in range(200):
            router.route(request, now=NOW_S)
        plans[setting, n] = (variants(router, request), functools.partial(router.route, request, now=NOW_S))
        samples[setting, n] = {name: [] for name in plans[setting, n][0]}
    for _ in range(args.rounds):
        for cell, (parts, call) in plans.items():
            for name, off in parts.items():
                with off():
                    samples[cell][name] += time_calls(call, args.calls)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python -m benchmarks.route_parts " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"# {command}",
        f"# {when}, {platform.machine()}, load average {os.getloadavg()[0]:.2f}, dim 384, "
        f"{args.rounds} rounds x {args.calls} calls per variant and cell",
        "| part switched off | " + " | ".join(f"{s} N={n}: median us (cost)" for s, n in cells) + " |",
        "|---|" + "---:|" * len(cells),
    ]
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name in samples[cells[0]]:
        row = []
        for setting, n in cells:
            median = float(np.median(samples[setting, n][name]))
            full = float(np.median(samples[setting, n]["full"]))
            table.setdefault(name, {})[f"{setting} N={n}"] = {"median_us": median, "cost_us": full - median}
            row.append(f"{median:.1f}" if name == "full" else f"{median:.1f} ({full - median:+.1f})")
        lines.append(f"| {'nothing (full route)' if name == 'full' else name} | " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_results(args.out, {"command": command, "date": when, "table": table}, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
