"""Guide example 2, "Tracing Only": OpenTelemetry spans, exported to a Jaeger agent when one listens.

Run: ``python -m tinydancer.examples.tracing_example [JAEGER_AGENT host:port]``
(default ``localhost:6831``; spans are also kept in memory and summarised at the end). Fits and saves
``./models/fastgrnn.safetensors`` first when it is absent (:func:`tinydancer.examples.ensure_model`).
"""

from __future__ import annotations

import sys
from collections import Counter

from tinydancer.examples import decision_summary, ensure_model
from tinydancer.examples.traffic import NOW, example_traffic
from tinydancer.observability import TraceContext, TracingConfig, TracingSystem
from tinydancer.routing import Router, RouterConfig


def main(argv: list[str] | None = None) -> int:
    """Initialise tracing, route requests (one joins an incoming W3C trace), shut down (flush)."""
    args = sys.argv[1:] if argv is None else argv
    endpoint = args[0] if args else "localhost:6831"
    tracing = TracingSystem(
        TracingConfig(service_name="tiny-dancer", jaeger_agent_endpoint=endpoint, sampling_ratio=1.0)
    )
    tracing.init()
    router = Router(RouterConfig(model_path=ensure_model()))
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    for i, request in enumerate(example_traffic(n_requests=5, n_candidates=5).requests):
        router.route(request, now=NOW, traceparent=incoming if i == 0 else None)
    with tracing.tracer.start_as_current_span("caller"):
        context = TraceContext.from_current()
        assert context is not None
        print(f"Trace ID: {context.trace_id}\nSpan ID: {context.span_id}\ntraceparent: {context.to_w3c_traceparent()}")
    tracing.shutdown()
    print(decision_summary(router.collector.decisions().use_lightweight))
    spans = tracing.finished_spans()
    print(f"{len(spans)} spans: {dict(sorted(Counter(s.name for s in spans).items()))}")
    for stats in tracing.exporter_stats():
        print(f"{stats.name} exporter to {endpoint}: {stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
