"""Ratio-sampled roots made cheaply decide exactly as the SDK's ParentBased(TraceIdRatioBased) sampler."""

from __future__ import annotations

import random
import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from tinydancer.observability.root_sampling import DroppedRootSpan, RatioRootTracer, RatioRootTracerProvider
from tinydancer.observability.route_spans import span_ids
from tinydancer.observability.trace_context import TraceContext


def _sampled(ratio: float, trace_id: int) -> bool:
    return TraceIdRatioBased(ratio).should_sample(None, trace_id, "x").decision.is_sampled()


@pytest.mark.parametrize("ratio", [0.0, 0.01, 0.3, 1.0])
def test_every_root_is_decided_as_the_sdk_sampler_decides_its_trace_id(ratio: float) -> None:
    random.seed(7)
    tracer = RatioRootTracerProvider(ratio).get_tracer("t")
    assert isinstance(tracer, RatioRootTracer)
    spans = [tracer.start_span("routing_request") for _ in range(3000)]
    for span in spans:
        ctx = span.get_span_context()
        assert ctx.is_valid and not ctx.is_remote
        assert span.is_recording() == ctx.trace_flags.sampled == _sampled(ratio, ctx.trace_id)
        span.end()
    share = sum(s.get_span_context().trace_flags.sampled for s in spans) / len(spans)
    assert abs(share - ratio) < 0.03
    assert len({s.get_span_context().trace_id for s in spans}) == len(spans)  # a primed id is used once


def test_dropped_roots_carry_the_ids_of_their_span_context_as_hex() -> None:
    random.seed(11)
    tracer = RatioRootTracerProvider(0.0).get_tracer("t")
    spans = [tracer.start_span("routing_request") for _ in range(500)]
    assert all(type(span) is DroppedRootSpan for span in spans)
    for span in spans:
        hex_ids = span_ids(span)  # read before the context is made, as the Router does
        ctx = span.get_span_context()
        assert hex_ids == (trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id))
        assert span.get_span_context() is ctx and ctx.is_valid and not ctx.trace_flags.sampled
    assert len({span.get_span_context().span_id for span in spans}) == len(spans)
    with trace.use_span(spans[0]):  # children of a dropped root join its trace, unsampled
        child = RatioRootTracerProvider(1.0).get_tracer("t").start_span("child")
    assert child.get_span_context().trace_id == spans[0].get_span_context().trace_id and not child.is_recording()


def test_sampled_roots_are_the_sdks_own_spans_with_the_drawn_id() -> None:
    random.seed(3)
    provider = RatioRootTracerProvider(0.5)
    tracer = provider.get_tracer("t")
    recorded = [tracer.start_span("r", attributes={"candidate_count": 2}) for _ in range(200)]
    sampled = [s for s in recorded if s.is_recording()]
    assert 50 < len(sampled) < 150
    for span in sampled:
        assert dict(span.attributes or {}) == {"candidate_count": 2}  # type: ignore[attr-defined]
        assert _sampled(0.5, span.get_span_context().trace_id)
    # Nothing stays primed: a plain SDK root span of the same provider draws its own id.
    plain = provider._ids.generate_trace_id()
    assert plain not in {s.get_span_context().trace_id for s in recorded}


def test_a_parent_decides_for_its_children_whatever_the_ratio() -> None:
    sampled_parent = TraceContext.from_w3c_traceparent("00-" + "ab" * 16 + "-" + "cd" * 8 + "-01").to_otel_context()
    unsampled_parent = TraceContext.from_w3c_traceparent("00-" + "ab" * 16 + "-" + "cd" * 8 + "-00").to_otel_context()
    never = RatioRootTracerProvider(0.0).get_tracer("t")
    always = RatioRootTracerProvider(1.0).get_tracer("t")
    child = never.start_span("r", sampled_parent)
    assert child.is_recording() and child.get_span_context().trace_id == int("ab" * 16, 16)
    assert not always.start_span("r", unsampled_parent).is_recording()
    with always.start_as_current_span("outer") as outer:  # a current span is a parent too
        inner = never.start_span("inner")
        assert inner.is_recording() and inner.get_span_context().trace_id == outer.get_span_context().trace_id


def test_threads_never_share_a_primed_trace_id() -> None:
    tracer = RatioRootTracerProvider(0.5).get_tracer("t")
    ids: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [tracer.start_span("r").get_span_context().trace_id for _ in range(500)]
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(set(ids)) == 2000


def test_start_as_current_span_makes_the_span_current_and_ends_it() -> None:
    tracer = RatioRootTracerProvider(1.0).get_tracer("t")
    with tracer.start_as_current_span("r") as span:
        assert trace.get_current_span() is span and span.is_recording()
    assert not span.is_recording()  # ended on exit
