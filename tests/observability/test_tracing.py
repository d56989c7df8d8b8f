"""Tracing: span tree, sampling, re-runnable init, W3C traceparent, errors (in-memory exporter)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from tinydancer import __version__
from tinydancer.errors import ConfigError, InferenceError, InvalidInputError
from tinydancer.observability.provider_switch import TracerSwitch
from tinydancer.observability.route_spans import CANDIDATE_SPANS_DROPPED, RoutingSpan, emit_candidate_spans
from tinydancer.observability.span_export import begin_span_capture, end_span_capture
from tinydancer.observability.trace_context import TraceContext
from tinydancer.observability.tracing import TracingConfig, TracingSystem, active_tracing_system, get_tracer

MakeSystem = Callable[..., TracingSystem]


@pytest.fixture
def make_system() -> Iterator[MakeSystem]:
    """Fresh TracingSystems per test, all shut down afterwards (global tracing back to no-op)."""
    made: list[TracingSystem] = []

    def make(**kwargs: object) -> TracingSystem:
        system = TracingSystem(TracingConfig(**kwargs))  # type: ignore[arg-type]
        made.append(system)
        return system

    yield make
    for system in made:
        system.shutdown()


def route_shaped_tree(tracer: trace.Tracer, n: int, context: object = None, limit: int = 100) -> None:
    ids = [f"candidate-{i}" for i in range(n)]
    conf = np.linspace(0.1, 0.9, n)
    with RoutingSpan.routing_request(n, tracer=tracer, context=context) as root:  # type: ignore[arg-type]
        with RoutingSpan.circuit_breaker_check("closed", tracer=tracer):
            pass
        with RoutingSpan.feature_engineering(n, tracer=tracer):
            pass
        start = time.time_ns()
        with RoutingSpan.model_inference(n, tracer=tracer) as inference:
            end = time.time_ns()
            dropped = emit_candidate_spans(
                tracer, inference, ids, conf, 1.0 - conf, conf > 0.5, start, end, limit=limit
            )
            if dropped:
                root.set_attribute(CANDIDATE_SPANS_DROPPED, dropped)


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_span_tree_names_parents_attributes_kinds(make_system: MakeSystem) -> None:
    system = make_system(service_name="tree-test")
    route_shaped_tree(system.tracer, 3)
    spans = system.finished_spans()
    assert len(spans) == 1 + 1 + 1 + 1 + 3 * 2
    (root,) = by_name(spans, "routing_request")
    assert root.kind is SpanKind.SERVER and root.parent is None
    assert dict(root.attributes or {}) == {"candidate_count": 3}
    assert root.resource.attributes["service.name"] == "tree-test"
    assert root.resource.attributes["service.version"] == __version__
    assert root.instrumentation_scope is not None
    assert root.instrumentation_scope.name == "tiny_dancer_router"
    root_id = root.context.span_id  # type: ignore[union-attr]
    trace_id = root.context.trace_id  # type: ignore[union-attr]
    assert {s.context.trace_id for s in spans} == {trace_id}  # type: ignore[union-attr]
    (breaker,) = by_name(spans, "circuit_breaker_check")
    (features,) = by_name(spans, "feature_engineering")
    assert breaker.parent.span_id == root_id and features.parent.span_id == root_id  # type: ignore[union-attr]
    assert dict(features.attributes or {}) == {"batch_size": 3}
    assert dict(breaker.attributes or {}) == {"circuit_breaker.state": "closed"}
    batch = [s for s in by_name(spans, "model_inference") if "batch_size" in (s.attributes or {})]
    assert len(batch) == 1 and batch[0].parent.span_id == root_id  # type: ignore[union-attr]
    assert dict(batch[0].attributes or {}) == {"batch_size": 3, "model_type": "fastgrnn"}
    batch_id = batch[0].context.span_id  # type: ignore[union-attr]
    per_inference = [s for s in by_name(spans, "model_inference") if "candidate_id" in (s.attributes or {})]
    per_uncertainty = by_name(spans, "uncertainty_estimation")
    assert [s.attributes["candidate_id"] for s in per_inference] == [  # type: ignore[index]
        "candidate-0",
        "candidate-1",
        "candidate-2",
    ]
    assert [s.attributes["confidence"] for s in per_inference] == pytest.approx([0.1, 0.5, 0.9])  # type: ignore[index]
    assert [s.attributes["use_lightweight"] for s in per_uncertainty] == [False, False, True]  # type: ignore[index]
    assert [s.attributes["uncertainty"] for s in per_uncertainty] == pytest.approx([0.9, 0.5, 0.1])  # type: ignore[index]
    for span in per_inference + per_uncertainty:
        assert span.parent.span_id == batch_id  # type: ignore[union-attr]
        assert span.kind is SpanKind.INTERNAL
    # One jitted call computes every candidate: all records share the batch interval.
    assert len({(s.start_time, s.end_time) for s in per_inference + per_uncertainty}) == 1
    assert CANDIDATE_SPANS_DROPPED not in (root.attributes or {})


def test_candidate_span_limit_counts_the_rest(make_system: MakeSystem) -> None:
    system = make_system()
    route_shaped_tree(system.tracer, 10, limit=3)
    spans = system.finished_spans()
    assert len(by_name(spans, "uncertainty_estimation")) == 3
    assert len(by_name(spans, "model_inference")) == 1 + 3
    (root,) = by_name(spans, "routing_request")
    assert root.attributes[CANDIDATE_SPANS_DROPPED] == 7  # type: ignore[index]


def test_sampling_zero_records_nothing_and_skips_candidate_loop(make_system: MakeSystem) -> None:
    system = make_system(sampling_ratio=0.0)
    route_shaped_tree(system.tracer, 50)
    assert system.finished_spans() == ()
    with system.tracer.start_as_current_span("routing_request") as span:
        assert not span.is_recording()
        # Not recording: returns before touching the (here deliberately mismatched) arrays.
        assert emit_candidate_spans(system.tracer, span, ["a", "b"], np.zeros(1), np.zeros(3), [], 0, 1, 10) == 0
    assert system.finished_spans() == ()


def test_ratio_sampling_is_per_trace(make_system: MakeSystem) -> None:
    system = make_system(sampling_ratio=0.5)
    for _ in range(400):
        route_shaped_tree(system.tracer, 1)
    roots = by_name(system.finished_spans(), "routing_request")
    assert 100 < len(roots) < 300  # Binomial(400, 0.5): sd 10, bounds at 10 sd
    # Parent-based: a sampled root brings all its children, an unsampled one none.
    assert len(system.finished_spans()) == len(roots) * 6


def test_sampled_incoming_traceparent_is_honoured_at_ratio_zero(make_system: MakeSystem) -> None:
    system = make_system(sampling_ratio=0.0)
    incoming = TraceContext.from_w3c_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    route_shaped_tree(system.tracer, 2, context=incoming.to_otel_context())
    spans = system.finished_spans()
    assert len(spans) == 8
    (root,) = by_name(spans, "routing_request")
    assert root.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736  # type: ignore[union-attr]
    assert root.parent is not None and root.parent.span_id == 0x00F067AA0BA902B7 and root.parent.is_remote


def test_unsampled_incoming_traceparent_is_honoured_at_ratio_one(make_system: MakeSystem) -> None:
    system = make_system(sampling_ratio=1.0)
    incoming = TraceContext.from_w3c_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
    with RoutingSpan.routing_request(1, tracer=system.tracer, context=incoming.to_otel_context()):
        current = TraceContext.from_current()
    assert system.finished_spans() == ()
    # The trace id still propagates (unsampled), so downstream services stay in the same trace.
    assert current is not None and current.trace_id == incoming.trace_id and not current.sampled


def test_init_is_rerunnable_with_a_new_config(make_system: MakeSystem, caplog: pytest.LogCaptureFixture) -> None:
    cached = get_tracer(None)  # taken before any init: must follow every later init()
    first = make_system(service_name="first")
    first.init()
    assert isinstance(trace.get_tracer_provider(), TracerSwitch)
    assert active_tracing_system() is first
    route_shaped_tree(cached, 1)
    with caplog.at_level(logging.WARNING, logger="opentelemetry"):
        second = make_system(service_name="second", sampling_ratio=0.0)
        second.init()
        second.init()  # re-running the same cell is harmless too
    assert not [r for r in caplog.records if "Overriding" in r.getMessage()]
    assert active_tracing_system() is second
    route_shaped_tree(cached, 1)  # ratio 0 now: nothing recorded anywhere
    third = make_system(service_name="third")
    third.init()
    with RoutingSpan.routing_request(4):  # tracer=None: the process-wide one
        pass
    assert len(first.finished_spans()) == 6 and second.finished_spans() == ()
    assert [s.resource.attributes["service.name"] for s in third.finished_spans()] == ["third"]
    third.shutdown()
    assert active_tracing_system() is None
    with cached.start_as_current_span("after-shutdown") as span:
        assert not span.is_recording()


def test_span_capture_takes_the_spans_ending_in_its_own_context(make_system: MakeSystem) -> None:
    """A TracingSystem hands each span to the capture open where it ends (how a Router's collector gets its spans)."""
    system = make_system()
    tracer = system.tracer
    outer = begin_span_capture()
    with tracer.start_as_current_span("outer-a"):
        pass
    inner = begin_span_capture()  # captures nest
    elsewhere = threading.Thread(target=lambda: tracer.start_span("other-thread").end())
    elsewhere.start()
    elsewhere.join()
    tracer.start_span("inner").end()
    assert [s.name for s in end_span_capture(inner)] == ["inner"]
    tracer.start_span("outer-b").end()
    system.shutdown()
    assert [s.name for s in end_span_capture(outer)] == ["outer-a", "outer-b"]
    assert [s.name for s in system.finished_spans()] == ["outer-a", "other-thread", "inner", "outer-b"]


def test_shutdown_of_inactive_system_keeps_the_active_one(make_system: MakeSystem) -> None:
    old, new = make_system(), make_system()
    old.init()
    new.init()
    old.shutdown()
    assert active_tracing_system() is new
    assert len(old.finished_spans()) == 0


def test_error_inside_span_sets_error_status_and_exception_event(make_system: MakeSystem) -> None:
    system = make_system()
    with (
        pytest.raises(InferenceError),
        RoutingSpan.routing_request(1, tracer=system.tracer),
        RoutingSpan.model_inference(1, tracer=system.tracer),
    ):
        raise InferenceError("non-finite scores: expected finite, got nan")
    spans = system.finished_spans()
    assert [s.name for s in spans] == ["model_inference", "routing_request"]
    for span in spans:
        assert span.status.status_code is StatusCode.ERROR
        (event,) = span.events
        assert event.name == "exception"
        assert str(event.attributes["exception.type"]).endswith("InferenceError")  # type: ignore[index]
        assert "non-finite" in event.attributes["exception.message"]  # type: ignore[index,operator]


def test_in_memory_buffer_is_bounded_and_counts_drops(make_system: MakeSystem) -> None:
    system = make_system(in_memory_capacity=5)
    for i in range(8):
        with system.tracer.start_as_current_span(f"s{i}"):
            pass
    assert [s.name for s in system.finished_spans()] == ["s3", "s4", "s5", "s6", "s7"]
    assert system.dropped_spans == 3
    system.clear()
    assert system.finished_spans() == () and system.dropped_spans == 0


def test_from_current_matches_active_span(make_system: MakeSystem) -> None:
    system = make_system()
    assert TraceContext.from_current() is None
    with system.tracer.start_as_current_span("x") as span:
        ctx = TraceContext.from_current()
        sc = span.get_span_context()
    assert ctx is not None and ctx.sampled
    assert ctx.trace_id == f"{sc.trace_id:032x}" and ctx.span_id == f"{sc.span_id:016x}"
    assert TraceContext.from_current() is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sampling_ratio": 1.5},
        {"sampling_ratio": -0.1},
        {"sampling_ratio": True},
        {"jaeger_agent_endpoint": "localhost"},
        {"jaeger_agent_endpoint": "localhost:0"},
        {"jaeger_agent_endpoint": "localhost:99999"},
        {"jaeger_agent_endpoint": ":6831"},
        {"otlp_endpoint": "localhost:4318"},
        {"in_memory_capacity": 0},
        {"export_queue_size": 0},
        {"export_timeout_s": 0},
        {"service_name": ""},
    ],
)
def test_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        TracingConfig(**kwargs)  # type: ignore[arg-type]


# --- W3C traceparent -------------------------------------------------------------------------------

trace_ids = st.integers(1, 2**128 - 1).map(lambda v: f"{v:032x}")
span_ids = st.integers(1, 2**64 - 1).map(lambda v: f"{v:016x}")


@given(trace_ids, span_ids, st.booleans())
def test_traceparent_round_trip(trace_id: str, span_id: str, sampled: bool) -> None:
    ctx = TraceContext(trace_id, span_id, sampled)
    header = ctx.to_w3c_traceparent()
    assert len(header) == 55 and header.startswith("00-")
    assert TraceContext.from_w3c_traceparent(header) == ctx
    # Through OpenTelemetry and back.
    assert TraceContext.from_span_context(ctx.to_span_context()) == ctx


@given(trace_ids, span_ids, st.integers(0, 255))
def test_traceparent_flags_sampled_is_bit_zero(trace_id: str, span_id: str, flags: int) -> None:
    ctx = TraceContext.from_w3c_traceparent(f"00-{trace_id}-{span_id}-{flags:02x}")
    assert ctx.sampled == bool(flags & 1)


@given(st.text(max_size=70))
def test_arbitrary_text_parses_or_raises_invalid_input(text: str) -> None:
    try:
        ctx = TraceContext.from_w3c_traceparent(text)
    except InvalidInputError:
        return
    assert ctx.to_w3c_traceparent()[:53] == text[:53]


VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    "header",
    [
        "",
        VALID.upper(),
        VALID.replace("4bf9", "4BF9"),
        "01" + VALID[2:],
        "ff" + VALID[2:],
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
        VALID[:-1],
        VALID + "0",
        VALID + "-extra",
        " " + VALID,
        VALID + "\n",
        VALID.replace("-", "_"),
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
    ],
)
def test_malformed_traceparent_is_rejected(header: str) -> None:
    with pytest.raises(InvalidInputError, match="traceparent"):
        TraceContext.from_w3c_traceparent(header)


@pytest.mark.parametrize(
    ("trace_id", "span_id"),
    [("0" * 32, "1" * 16), ("1" * 32, "0" * 16), ("A" * 32, "1" * 16), ("1" * 31, "1" * 16), ("1" * 32, "1" * 17)],
)
def test_trace_context_validates_ids(trace_id: str, span_id: str) -> None:
    with pytest.raises(InvalidInputError):
        TraceContext(trace_id, span_id)


def test_enable_stdout_prints_finished_spans(make_system: MakeSystem, capsys: pytest.CaptureFixture[str]) -> None:
    system = make_system(enable_stdout=True)
    with RoutingSpan.routing_request(2, tracer=system.tracer):
        pass
    out = capsys.readouterr().out
    assert '"name": "routing_request"' in out and '"candidate_count": 2' in out


def test_init_refuses_a_foreign_global_provider() -> None:
    # A fresh interpreter: the process-wide provider can be set only once, so this cannot run here.
    code = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "trace.set_tracer_provider(TracerProvider())\n"
        "from tinydancer.observability.tracing import TracingSystem\n"
        "from tinydancer.errors import ConfigError\n"
        "system = TracingSystem()\n"
        "try:\n"
        "    system.init()\n"
        "except ConfigError as err:\n"
        "    print('refused:', err)\n"
        "with system.tracer.start_as_current_span('still-usable'):\n"
        "    pass\n"
        "print(len(system.finished_spans()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    refused, count = result.stdout.splitlines()
    assert refused.startswith("refused: process-wide tracer provider") and "explicitly" in refused
    assert count == "1"


def test_get_tracer_accepts_system_provider_or_global(make_system: MakeSystem) -> None:
    system = make_system(service_name="explicit")
    assert get_tracer(system) is system.tracer
    with get_tracer(system.provider).start_as_current_span("via-provider"):
        pass
    assert [s.name for s in system.finished_spans()] == ["via-provider"]
    assert system.finished_spans()[0].instrumentation_scope.name == "tiny_dancer_router"  # type: ignore[union-attr]
