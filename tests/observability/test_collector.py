"""Tests of the in-memory collector and its DataFrame views (real structlog, OpenTelemetry, Prometheus)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tinydancer.errors import ConfigError, InvalidInputError
from tinydancer.observability.collector import (
    DECISION_COLUMNS,
    LOG_COLUMNS,
    METRIC_COLUMNS,
    REQUEST_COLUMNS,
    SPAN_COLUMNS,
    Collector,
    DecisionBatch,
    RequestBatch,
    RequestRecord,
)

TS = 1_795_000_000.25  # a fixed Unix time (2026-11-18), exact in float64 to the microsecond


def request(rid: int, *, outcome: str = "success", trace_id: str | None = None) -> RequestRecord:
    error = None if outcome == "success" else "inference_error"
    return RequestRecord(rid, TS + rid, 100.0 + rid, 10.0, 3, outcome, error, trace_id, None, 1, 2)


def batch(rid: int, n: int, model_type: str = "fastgrnn") -> DecisionBatch:
    conf = np.linspace(1.0, 0.0, n)
    return DecisionBatch(
        rid,
        TS + rid,
        tuple(f"r{rid}-c{i}" for i in range(n)),
        conf,
        np.clip(1 - 2 * np.abs(conf - 0.5), 0, 1),
        conf >= 0.85,
        np.arange(n),
        model_type,
    )


def ended_spans(*names: str) -> list[ReadableSpan]:
    """Finished SDK spans of a throwaway provider (no processor: only the collector holds them)."""
    tracer = TracerProvider().get_tracer("test")
    spans = []
    for name in names:
        span = tracer.start_span(name)
        span.end()
        spans.append(span)
    return spans  # type: ignore[return-value]  # SDK spans are ReadableSpans


def test_eight_writer_threads_lose_nothing_and_ids_are_unique() -> None:
    c = Collector()
    per_thread, threads_n = 300, 8
    start = threading.Barrier(threads_n)
    sizes = [1 + (i % 7) for i in range(per_thread)]
    written: dict[int, int] = {}  # request id -> candidate count (dict item writes are atomic)

    def writer() -> None:
        start.wait()
        for n in sizes:
            rid = c.next_request_id()
            written[rid] = n
            c.record_request(request(rid))
            c.record_decisions(batch(rid, n))
            c.record_log({"event": "routed", "request_id": rid})

    threads = [threading.Thread(target=writer) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = threads_n * per_thread
    assert c.stored == {"requests": total, "decisions": threads_n * sum(sizes), "logs": total, "spans": 0}
    assert c.dropped == {"requests": 0, "decisions": 0, "logs": 0, "spans": 0}
    assert sorted(c.requests().request_id) == list(range(total))
    decisions = c.decisions()
    assert len(decisions) == threads_n * sum(sizes)
    # every request's rows are complete and contiguous, whatever the interleaving
    assert decisions.groupby("request_id").size().to_dict() == written
    runs = (decisions.request_id != decisions.request_id.shift()).sum()
    assert runs == total


def test_concurrent_writers_past_capacity_account_for_every_row() -> None:
    c = Collector(capacity_requests=50, capacity_decisions=100, capacity_logs=10)

    def writer(seed: int) -> None:
        for i in range(200):
            c.record_request(request(i))
            c.record_decisions(batch(i, 1 + (i + seed) % 9))
            c.record_log({"event": "x"})

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = sum(1 + (i + s) % 9 for s in range(8) for i in range(200))
    assert c.stored["requests"] + c.dropped["requests"] == 1600
    assert c.stored["decisions"] + c.dropped["decisions"] == rows
    assert c.stored["logs"] + c.dropped["logs"] == 1600
    assert (c.stored["requests"], c.stored["logs"]) == (50, 10)
    # dropping stops once the rows fit: at most one more whole batch (9 rows at most) than needed, so >= 101 - 9
    assert 101 - 9 <= c.stored["decisions"] <= 100
    assert len(c.decisions()) == c.stored["decisions"]


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=40), max_size=60),
    capacity=st.integers(min_value=0, max_value=120),
)
def test_decision_capacity_keeps_the_newest_whole_batches(sizes: list[int], capacity: int) -> None:
    c = Collector(capacity_decisions=capacity)
    for rid, n in enumerate(sizes):
        c.record_decisions(batch(rid, n))
    kept, dropped = c.stored["decisions"], c.dropped["decisions"]
    assert kept + dropped == sum(sizes)
    assert kept <= capacity
    kept_ids = [b.request_id for b in c.decision_batches()]
    # the kept batches are a suffix of what was written: the newest ones, each complete
    assert kept_ids == list(range(len(sizes) - len(kept_ids), len(sizes)))
    assert kept == sum(sizes[rid] for rid in kept_ids)
    # greedy from the newest: the next older batch would not have fitted
    if len(kept_ids) < len(sizes) and sizes:
        assert kept + sizes[len(sizes) - len(kept_ids) - 1] > capacity or (len(kept_ids) == 0 and sizes[-1] > capacity)
    frame = c.decisions()
    assert len(frame) == kept
    assert frame.request_id.tolist() == [rid for rid in kept_ids for _ in range(sizes[rid])]


def test_a_thousand_candidate_request_is_one_append() -> None:
    c = Collector()
    c.record_decisions(batch(0, 1000))
    assert len(c.decision_batches()) == 1
    assert c.stored["decisions"] == 1000
    assert len(c.decisions()) == 1000


def test_request_and_log_capacity_drop_the_oldest() -> None:
    c = Collector(capacity_requests=3, capacity_logs=2)
    for i in range(5):
        c.record_request(request(i))
        c.record_log({"event": f"e{i}"})
    assert c.dropped == {"requests": 2, "decisions": 0, "logs": 3, "spans": 0}
    assert c.requests().request_id.tolist() == [2, 3, 4]
    assert c.logs().event.tolist() == ["e3", "e4"]


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=-1, max_value=30), max_size=40),  # -1: one RequestRecord, else a batch
    capacity=st.integers(min_value=0, max_value=80),
)
def test_request_capacity_keeps_the_newest_records_of_rows_and_batches(sizes: list[int], capacity: int) -> None:
    c = Collector(capacity_requests=capacity)
    written: list[RequestRecord] = []
    for n in sizes:
        first = c.next_request_ids(max(n, 1)).start
        if n < 0:
            written.append(request(first))
            c.record_request(written[-1])
            continue
        strong = (np.arange(n) + first) % 3 == 0
        rows = RequestBatch(request(first)._replace(timestamp=TS), (~strong) * 1, strong * 1)
        c.record_requests(rows)
        written += rows.records()
    kept = list(c.request_records())
    assert kept == written[len(written) - len(kept) :]  # the newest, whole records, in order
    assert len(kept) == min(capacity, len(written)) == c.stored["requests"]
    assert c.dropped["requests"] == len(written) - len(kept)
    frame = c.requests()
    assert frame.request_id.tolist() == [r.request_id for r in kept]
    assert frame.powerful_routes.tolist() == [r.powerful_routes for r in kept]


def test_zero_capacity_keeps_nothing_and_counts_everything() -> None:
    c = Collector(capacity_requests=0, capacity_decisions=0, capacity_logs=0, capacity_spans=0)
    c.record_request(request(0))
    c.record_decisions(batch(0, 4))
    c.record_log({"event": "x"})
    c.record_spans(ended_spans("a", "b"))
    assert c.stored == {"requests": 0, "decisions": 0, "logs": 0, "spans": 0}
    assert c.dropped == {"requests": 1, "decisions": 4, "logs": 1, "spans": 2}


@pytest.mark.parametrize("kwargs", [{"capacity_requests": -1}, {"capacity_decisions": 1.5}, {"capacity_spans": -1}])
def test_bad_capacity_is_a_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="expected an int >= 0"):
        Collector(**kwargs)  # type: ignore[arg-type]


def test_mismatched_decision_arrays_are_rejected() -> None:
    c = Collector()
    bad = batch(0, 3)._replace(uncertainty=np.zeros(2))
    with pytest.raises(InvalidInputError, match=r"expected arrays of shape \(3,\)"):
        c.record_decisions(bad)
    with pytest.raises(ValueError, match="'rank': 'list'"):
        c.record_decisions(batch(0, 3)._replace(rank=[0, 1, 2]))  # type: ignore[arg-type]
    assert c.stored["decisions"] == 0


_TS, _STR, _CAT, _F, _I = "datetime64[ns, UTC]", "str", "category", "float64", "int64"
EXPECTED_DTYPES = {
    "requests": [_I, _TS, _F, _F, _I, _STR, _STR, _STR, _STR, _I, _I],
    "decisions": [_I, _TS, _STR, _I, _F, _F, "bool", _CAT, _CAT, _STR, _F, _STR, _STR, _F, _F, _STR, _STR, _F],
    "logs": [_TS, _STR, _STR, _STR, _STR, "object"],
    "spans": [_STR, _STR, _STR, _STR, _STR, _TS, _TS, _F, _STR, "object"],
    "metrics": [_STR, _STR, _STR, "object", _F],
}
COLUMNS = {
    "requests": REQUEST_COLUMNS,
    "decisions": DECISION_COLUMNS,
    "logs": LOG_COLUMNS,
    "spans": SPAN_COLUMNS,
    "metrics": METRIC_COLUMNS,
}


def assert_schema(frame: pd.DataFrame, kind: str) -> None:
    assert frame.columns.tolist() == list(COLUMNS[kind])
    assert [str(t) for t in frame.dtypes] == EXPECTED_DTYPES[kind]


@pytest.mark.parametrize("kind", list(EXPECTED_DTYPES))
def test_empty_frames_have_the_documented_columns_and_dtypes(kind: str) -> None:
    frame = getattr(Collector(), kind)()
    assert len(frame) == 0
    assert_schema(frame, kind)


def test_filled_frames_have_the_documented_columns_dtypes_and_values() -> None:
    c = Collector()
    c.record_request(request(0, trace_id="ab" * 16))
    c.record_request(request(1, outcome="failure"))
    c.record_decisions(batch(0, 3))
    c.record_decisions(batch(1, 2, model_type="conformal"))
    req, dec = c.requests(), c.decisions()
    assert_schema(req, "requests")
    assert_schema(dec, "decisions")
    assert req.timestamp[0] == pd.Timestamp(TS, unit="s", tz="UTC")
    assert req.latency_us.tolist() == [100.0, 101.0]
    assert req.error_type.isna().tolist() == [True, False]
    assert req.trace_id[0] == "ab" * 16 and pd.isna(req.trace_id[1])
    assert dec.request_id.tolist() == [0, 0, 0, 1, 1]
    assert dec.candidate_id.tolist() == ["r0-c0", "r0-c1", "r0-c2", "r1-c0", "r1-c1"]
    assert dec.confidence.tolist() == [1.0, 0.5, 0.0, 1.0, 0.0]
    assert dec.uncertainty.tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert dec["rank"].tolist() == [0, 1, 2, 0, 1]
    assert dec.decision.tolist() == ["lightweight", "powerful", "powerful", "lightweight", "powerful"]
    assert dec.model_type.tolist() == ["fastgrnn"] * 3 + ["conformal"] * 2
    assert dec.timestamp[3] == pd.Timestamp(TS + 1, unit="s", tz="UTC")


def test_clear_forgets_records_and_drops_but_ids_keep_increasing() -> None:
    c = Collector(capacity_requests=1)
    for _ in range(3):
        c.record_request(request(c.next_request_id()))
    c.record_decisions(batch(0, 2))
    c.record_log({"event": "x"})
    c.record_spans(ended_spans("s"))
    assert c.dropped["requests"] == 2
    c.clear()
    assert c.stored == {"requests": 0, "decisions": 0, "logs": 0, "spans": 0}
    assert c.dropped == {"requests": 0, "decisions": 0, "logs": 0, "spans": 0}
    assert c.finished_spans() == ()
    assert len(c.requests()) == len(c.decisions()) == len(c.logs()) == 0
    assert c.next_request_id() == 3


def test_log_records_from_a_real_structlog_pipeline() -> None:
    c = Collector(clock=lambda: TS)

    def sink(_: Any, __: str, event_dict: Any) -> Any:  # record_log as a processor, as a router's logger uses it
        c.record_log(event_dict)
        return event_dict

    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            sink,
            structlog.processors.JSONRenderer(),
        ],
    )
    rendered = log.info("Routing request completed", trace_id="ab" * 16, lightweight_routes=2)
    assert '"lightweight_routes": 2' in rendered  # recording leaves the event unchanged for the renderer
    log.warning("degraded", span_id=0xBEEF)
    c.record_log({"event": "bare", "log_level": "debug", "timestamp": "not a time"})
    frame = c.logs()
    assert_schema(frame, "logs")
    assert frame.level.tolist() == ["info", "warning", "debug"]
    assert frame.event.tolist() == ["Routing request completed", "degraded", "bare"]
    assert frame.trace_id[0] == "ab" * 16 and pd.isna(frame.trace_id[1])
    assert frame.span_id[1] == "000000000000beef"
    assert frame.fields.tolist() == [{"lightweight_routes": 2}, {}, {"timestamp": "not a time"}]
    now = pd.Timestamp.now(tz="UTC")
    assert abs(frame.timestamp[0] - now) < pd.Timedelta(minutes=5)
    assert pd.isna(frame.timestamp[2])  # unparseable: NaT, and the raw value is kept in fields
    c.record_log({"event": "no time"})
    assert c.logs().timestamp[3] == pd.Timestamp(TS, unit="s", tz="UTC")  # none: the collector's clock
    wide = c.logs(expand_fields=True)
    assert wide.columns.tolist() == [*LOG_COLUMNS, "lightweight_routes", "fields.timestamp"]
    assert wide.lightweight_routes.tolist() == [2, None, None, None]


def test_record_log_keeps_a_shallow_copy() -> None:
    c = Collector()
    event = {"event": "x", "n": 1}
    c.record_log(event)
    event["n"] = 2
    assert c.logs().fields[0] == {"n": 1}


def traced_collector() -> tuple[Collector, list[str]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    c = Collector(span_source=exporter.get_finished_spans)
    trace_ids = []
    for i in range(2):
        with tracer.start_as_current_span("routing_request", kind=SpanKind.SERVER) as root:
            root.set_attribute("candidate_count", 3)
            with tracer.start_as_current_span("model_inference") as child:
                child.set_status(Status(StatusCode.ERROR, "boom"))
        trace_ids.append(f"{root.get_span_context().trace_id:032x}")
        if i == 0:  # only the first trace belongs to a request of this collector
            span_id = f"{root.get_span_context().span_id:016x}"
            c.record_request(request(0, trace_id=trace_ids[0])._replace(span_id=span_id))
    provider.shutdown()
    return c, trace_ids


def test_spans_are_filtered_to_this_collectors_traces() -> None:
    c, trace_ids = traced_collector()
    spans = c.spans()
    assert_schema(spans, "spans")
    assert spans.trace_id.tolist() == [trace_ids[0]] * 2
    child, root = spans.iloc[0], spans.iloc[1]  # children end (and export) first
    assert (root["name"], root.kind, root.status) == ("routing_request", "SERVER", "UNSET")
    assert (child["name"], child.kind, child.status) == ("model_inference", "INTERNAL", "ERROR")
    assert pd.isna(root.parent_span_id)
    assert child.parent_span_id == root.span_id == c.requests().span_id[0]
    assert root.attributes == {"candidate_count": 3}
    assert root.start <= child.start <= child.end <= root.end
    assert root.duration_us == (root.end - root.start).value / 1e3 >= 0
    assert set(c.spans(only_own_traces=False).trace_id) == set(trace_ids)
    c.clear()
    assert len(c.spans()) == 0


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=12), max_size=30),
    capacity=st.integers(min_value=0, max_value=40),
)
def test_span_capacity_keeps_the_newest_whole_batches(sizes: list[int], capacity: int) -> None:
    """Recorded spans are bounded like decisions: newest whole batches, every dropped span counted."""
    c = Collector(capacity_spans=capacity)
    for rid, n in enumerate(sizes):
        c.record_spans(ended_spans(*(f"r{rid}-s{i}" for i in range(n))))
    kept, dropped = c.stored["spans"], c.dropped["spans"]
    assert kept + dropped == sum(sizes)
    assert kept <= capacity
    names = [s.name for s in c.finished_spans()]
    assert len(names) == kept
    kept_rids = sorted({int(name[1:].split("-")[0]) for name in names})
    nonempty = [rid for rid, n in enumerate(sizes) if n]  # empty batches store nothing
    assert kept_rids == nonempty[len(nonempty) - len(kept_rids) :]  # the newest batches
    assert names == [f"r{rid}-s{i}" for rid in kept_rids for i in range(sizes[rid])]  # whole, oldest first
    if len(kept_rids) < len(nonempty):  # greedy from the newest: the next older batch would not have fitted
        assert kept + sizes[nonempty[len(nonempty) - len(kept_rids) - 1]] > capacity


def test_recorded_spans_outlive_their_source_and_merge_with_span_source() -> None:
    """record_spans keeps its own references; span_source is read live and de-duplicated against them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("kept") as kept:
        pass
    with tracer.start_as_current_span("live"):
        pass
    c = Collector(span_source=exporter.get_finished_spans)
    trace_ids = {f"{s.context.trace_id:032x}" for s in exporter.get_finished_spans() if s.context is not None}
    for rid, trace_id in enumerate(sorted(trace_ids)):
        c.record_request(request(rid, trace_id=trace_id))
    c.record_spans([kept])  # type: ignore[list-item]  # an SDK span is a ReadableSpan
    assert c.spans().name.tolist() == ["kept", "live"]  # recorded first; "kept" not repeated from the source
    exporter.clear()
    provider.shutdown()
    assert c.spans().name.tolist() == ["kept"]
    c.clear()
    assert len(c.spans()) == 0 and c.stored["spans"] == 0


def test_metrics_frame_from_a_real_registry() -> None:
    reg = CollectorRegistry()
    Counter("tiny_dancer_routing_requests", "d", ["status"], registry=reg).labels("success").inc(3)
    Histogram("tiny_dancer_confidence_scores", "d", ["type"], buckets=(0.5, 1.0), registry=reg).labels(
        "lightweight"
    ).observe(0.9)
    Gauge("tiny_dancer_circuit_breaker_state", "d", registry=reg).set(1)
    c = Collector(metric_source=lambda: reg)
    frame = c.metrics()
    assert_schema(frame, "metrics")
    total = frame[frame["sample"] == "tiny_dancer_routing_requests_total"]
    assert (total.metric.tolist(), total.type.tolist()) == (["tiny_dancer_routing_requests"], ["counter"])
    assert total.labels.tolist() == [{"status": "success"}] and total.value.tolist() == [3.0]
    buckets = frame[frame["sample"] == "tiny_dancer_confidence_scores_bucket"]
    assert [d["le"] for d in buckets.labels] == ["0.5", "1.0", "+Inf"]
    assert buckets.value.tolist() == [0.0, 1.0, 1.0]
    gauge = frame[frame.metric == "tiny_dancer_circuit_breaker_state"]
    assert gauge.value.tolist() == [1.0] and gauge.labels.tolist() == [{}]
    wide = c.metrics(expand_labels=True)
    # "type" clashes with a fixed column, so that label is prefixed
    assert wide.columns.tolist() == [*METRIC_COLUMNS, "le", "status", "labels.type"]
    assert wide.loc[buckets.index, "labels.type"].tolist() == ["lightweight"] * 3
