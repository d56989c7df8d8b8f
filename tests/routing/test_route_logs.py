"""A route's INFO records handed to the collector as one RouteLogs (renderer "none", level INFO, the default).

They must read exactly like the records logged one by one (the path every renderer takes), keep their own
timestamps and trace ids, stay in order around failures, and count against the log capacity (dropped together).
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests._routers import NOW, request, strong_model
from tinydancer import InvalidInputError, Router, RouterConfig
from tinydancer.observability.collector import Collector
from tinydancer.observability.logs import LogConfig, LogEvent, RouteLogs, configure_logging
from tinydancer.observability.tracing import TracingSystem


def traffic(router: Router) -> None:
    """Two successes, a bad request (fails after the start record), another success."""
    router.route(request(3), now=NOW)
    router.route(request(1), now=NOW)
    bad = request(2)
    bad.query_embedding[0] = np.nan
    with pytest.raises(InvalidInputError):
        router.route(bad, now=NOW)
    router.route(request(4), now=NOW)


def shapes(router: Router) -> list[list[tuple[str, Any]]]:
    """Every kept record as (key, value) pairs; timestamps and ids replaced by what they must be."""
    rows = []
    for record in router.collector.log_records():
        assert isinstance(record.timestamp, float) and abs(record.timestamp - time.time()) < 60
        assert (record.trace_id is None) == (record.span_id is None)
        assert record.trace_id is None or (len(record.trace_id), len(record.span_id or "")) == (32, 16)
        rows.append([("level", record.level), ("event", record.event), ("ids", record.trace_id is not None)])
        fields = dict(record.fields)
        if "inference_time_us" in fields:  # a measured time: its type, not its value
            assert type(fields["inference_time_us"]) is int and fields["inference_time_us"] >= 0
            fields["inference_time_us"] = "int"
        rows[-1] += sorted(fields.items())
    return rows


@pytest.mark.parametrize("traced", [False, True])
def test_deferred_route_records_equal_records_logged_one_by_one(
    tmp_path: Path, tracing: TracingSystem, traced: bool
) -> None:
    config = RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors")))
    kwargs: dict[str, Any] = {"tracing": tracing} if traced else {}
    deferred = Router(config, log_config=LogConfig(renderer="none"), **kwargs)
    one_by_one = Router(config, log_config=LogConfig(renderer="json", stream=io.StringIO()), **kwargs)
    assert deferred._logging[1] and not one_by_one._logging[1]
    for router in (deferred, one_by_one):
        traffic(router)
    assert shapes(deferred) == shapes(one_by_one)
    events = [r.event for r in deferred.collector.log_records()]
    assert events[2:] == [
        LogEvent.REQUEST_STARTED, LogEvent.REQUEST_COMPLETED, LogEvent.REQUEST_STARTED, LogEvent.REQUEST_COMPLETED,
        LogEvent.REQUEST_STARTED, LogEvent.REQUEST_FAILED, LogEvent.REQUEST_STARTED, LogEvent.REQUEST_COMPLETED,
    ]  # fmt: skip
    # Each record keeps its own time, and carries the request row's trace ids when the span is valid.
    records, rows = deferred.collector.log_records(), deferred.collector.request_records()
    ends = (LogEvent.REQUEST_COMPLETED, LogEvent.REQUEST_FAILED)
    per_request = [r for r in records if r.event == LogEvent.REQUEST_STARTED or r.event in ends]
    for started, end, row in zip(per_request[::2], per_request[1::2], rows, strict=True):
        assert started.event == LogEvent.REQUEST_STARTED and end.event in ends
        assert started.timestamp <= end.timestamp
        assert (started.trace_id, started.span_id, end.trace_id) == (row.trace_id, row.span_id, row.trace_id)
        assert (row.trace_id is not None) == traced


def test_route_logs_count_two_against_capacity_and_are_dropped_together(tmp_path: Path) -> None:
    config = RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors")))
    router = Router(config, log_config=LogConfig(renderer="none"), collector=Collector(capacity_logs=5))
    router.collector.clear()  # the start-up records
    for n in range(1, 5):
        router.route(request(n), now=NOW)
    stored, dropped = router.collector.stored["logs"], router.collector.dropped["logs"]
    assert stored + dropped == 8 and stored <= 5 and dropped % 2 == 0
    assert len(router.collector.log_records()) == stored == len(router.collector.logs())
    events = [r.event for r in router.collector.log_records()]
    assert events[0] == LogEvent.REQUEST_STARTED and events[-1] == LogEvent.REQUEST_COMPLETED
    copy = router.collector.detach(clear=True)
    assert copy.stored["logs"] == stored and router.collector.stored["logs"] == 0


def test_a_collector_stores_route_logs_beside_plain_records() -> None:
    c = Collector(capacity_logs=3)
    c.record_log({"event": "a", "level": "info", "timestamp": 1.0})
    c.record_route_logs(RouteLogs(2.0, 1, 3.0, 50, 1, 0, "ab" * 16, "cd" * 8))
    assert [(r.event, r.timestamp, r.trace_id) for r in c.log_records()] == [
        ("a", 1.0, None),
        (LogEvent.REQUEST_STARTED, 2.0, "ab" * 16),
        (LogEvent.REQUEST_COMPLETED, 3.0, "ab" * 16),
    ]
    c.record_log({"event": "b", "level": "info", "timestamp": 4.0})  # one over: the oldest record goes
    assert [r.event for r in c.log_records()][-1] == "b" and c.dropped["logs"] == 1
    c.record_log({"event": "c", "level": "info", "timestamp": 5.0})  # the route's two go together
    assert [r.event for r in c.log_records()] == ["b", "c"] and c.dropped["logs"] == 3


def test_routers_following_the_process_default_switch_paths_with_it(tmp_path: Path) -> None:
    stream = io.StringIO()
    config = RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors")))
    configure_logging(renderer="none")
    router = Router(config)
    try:
        assert router._logging[1]
        configure_logging("INFO", "json", stream=stream)
        assert not router._logging[1]
        router.route(request(2), now=NOW)
        assert LogEvent.REQUEST_COMPLETED in stream.getvalue()
    finally:
        configure_logging()
