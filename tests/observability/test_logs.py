"""Structured logs: level filtering, renderers, trace ids, sink completeness, embeddings policy."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import structlog
from opentelemetry import trace

from tinydancer.errors import CircuitOpenError, ConfigError
from tinydancer.observability.logs import (
    LEVELS,
    LogConfig,
    LogEvent,
    SinkLogger,
    configure_logging,
    default_log_config,
    log_candidate_results,
    log_circuit_open,
    log_request_completed,
    log_request_failed,
    log_request_started,
    log_router_initialized,
    make_router_logger,
)
from tinydancer.observability.tracing import TracingConfig, TracingSystem


@pytest.fixture(autouse=True)
def reset_process_default() -> Iterator[None]:
    yield
    configure_logging()


@pytest.fixture
def tracing() -> Iterator[TracingSystem]:
    system = TracingSystem(TracingConfig(service_name="logs-test"))
    yield system
    system.shutdown()


def emit_everything(log: Any) -> None:
    log_router_initialized(log, 5)
    log_request_started(log, 2)
    log.debug(LogEvent.FEATURES, batch_size=2)
    log_candidate_results(log, ["c-1", "c-2"], np.array([0.92, 0.4]), np.array([0.08, 0.3]), np.array([True, False]))
    log_request_completed(log, 245, 1, 1)
    log.warning(LogEvent.MODEL_PATH_NOT_FOUND, model_path="./missing.safetensors")
    log_circuit_open(log, 12.5)
    log_request_failed(log, CircuitOpenError(12.5))


@pytest.mark.parametrize(
    ("level", "expected"),
    [("DEBUG", 12), ("INFO", 7), ("WARNING", 3), ("ERROR", 2), ("CRITICAL", 0)],
)
def test_level_filters_records(level: str, expected: int) -> None:
    records: list[dict[str, Any]] = []
    stream = io.StringIO()
    log = make_router_logger(LogConfig(level=level, renderer="json", stream=stream), sink=records.append)
    emit_everything(log)
    assert len(records) == expected
    assert all(LEVELS[r["level"].upper()] >= LEVELS[level] for r in records)
    # The sink sees exactly what is rendered.
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["event"] for line in lines] == [r["event"] for r in records]


def test_json_lines_carry_the_guide_fields() -> None:
    stream = io.StringIO()
    log = make_router_logger(LogConfig(level="DEBUG", renderer="json", stream=stream))
    emit_everything(log)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    for record in records:
        assert {"event", "level", "timestamp", "logger"} <= record.keys()
        assert record["logger"] == "tiny_dancer_router"
        assert record["timestamp"].endswith("Z") and "T" in record["timestamp"]
        assert "trace_id" not in record  # no span active
    events = {r["event"]: r for r in records}
    assert events["Initializing Tiny Dancer router"]["level"] == "info"
    assert "Circuit breaker enabled with threshold: 5" in events
    assert events["Processing routing request"]["candidate_count"] == 2
    assert events["Extracting features"] == {**events["Extracting features"], "batch_size": 2, "level": "debug"}
    inference = [r for r in records if r["event"] == "Model inference completed"]
    assert [(r["candidate_id"], r["confidence"]) for r in inference] == [("c-1", 0.92), ("c-2", 0.4)]
    decisions = [r for r in records if r["event"] == "Routing decision made"]
    assert [(r["candidate_id"], r["use_lightweight"], r["uncertainty"]) for r in decisions] == [
        ("c-1", True, 0.08),
        ("c-2", False, 0.3),
    ]
    done = events["Routing request completed successfully"]
    assert (done["inference_time_us"], done["lightweight_routes"], done["powerful_routes"]) == (245, 1, 1)
    failed = events["Routing request failed"]
    assert (failed["level"], failed["error_type"]) == ("error", "circuit_breaker_open")
    assert events["Circuit breaker is open, rejecting request"]["retry_after_s"] == 12.5


def test_console_lines_follow_the_guide() -> None:
    stream = io.StringIO()
    log = make_router_logger(LogConfig(level="DEBUG", renderer="console", stream=stream))
    log_request_started(log, 3)
    log_candidate_results(log, ["candidate-1"], np.array([0.92]), np.array([0.08]), np.array([True]))
    lines = [line.split(" ", 1)[1].lstrip() for line in stream.getvalue().splitlines()]  # drop timestamp
    assert lines == [
        "INFO tiny_dancer_router: Processing routing request candidate_count=3",
        'DEBUG tiny_dancer_router: Model inference completed candidate_id="candidate-1" confidence=0.92',
        'DEBUG tiny_dancer_router: Routing decision made candidate_id="candidate-1" use_lightweight=true '
        "uncertainty=0.08",
    ]


def test_renderer_none_writes_nothing_but_feeds_the_sink() -> None:
    stream = io.StringIO()
    records: list[dict[str, Any]] = []
    log = make_router_logger(LogConfig(renderer="none", stream=stream), sink=records.append)
    emit_everything(log)
    assert stream.getvalue() == "" and len(records) == 7


def test_trace_ids_bound_inside_a_span_only(tracing: TracingSystem) -> None:
    records: list[dict[str, Any]] = []
    log = make_router_logger(LogConfig(renderer="none"), sink=records.append)
    log.info("outside")
    with tracing.tracer.start_as_current_span("routing_request") as span:
        log.info("inside")
        context = span.get_span_context()
    log.info("after")
    outside, inside, after = records
    assert "trace_id" not in outside and "span_id" not in outside and "trace_id" not in after
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"


def test_invalid_span_context_adds_no_ids() -> None:
    records: list[dict[str, Any]] = []
    log = make_router_logger(LogConfig(renderer="none"), sink=records.append)
    with trace.use_span(trace.INVALID_SPAN):
        log.info("x")
    assert "trace_id" not in records[0]


def test_embeddings_are_always_stripped() -> None:
    query = np.array([0.25, -1.0], dtype=np.float32)
    for renderer in ("json", "console"):
        stream, records = io.StringIO(), list[dict[str, Any]]()
        log = make_router_logger(LogConfig(renderer=renderer, stream=stream), sink=records.append)
        log.info("Processing routing request", candidate_count=1, query_embedding=query)
        log.info("other", embedding=query, embeddings=[query], candidate_embeddings=query, keep=1)
        keys = {"query_embedding", "embedding", "embeddings", "candidate_embeddings"}
        assert all(not keys & r.keys() for r in records)
        assert "0.25" not in stream.getvalue() and records[1]["keep"] == 1
    # There is no switch to keep them: the option that did nothing (no embedding reaches the logger) is gone.
    with pytest.raises(TypeError, match="include_embeddings"):
        LogConfig(include_embeddings=True)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="include_embeddings"):
        configure_logging(include_embeddings=True)  # type: ignore[call-arg]


def test_two_loggers_with_different_configs_coexist() -> None:
    debug_stream, error_stream = io.StringIO(), io.StringIO()
    debug_log = make_router_logger(LogConfig(level="DEBUG", renderer="json", stream=debug_stream))
    error_log = make_router_logger(LogConfig(level="ERROR", renderer="console", stream=error_stream))
    emit_everything(debug_log)
    emit_everything(error_log)
    assert len(debug_stream.getvalue().splitlines()) == 12
    error_lines = error_stream.getvalue().splitlines()
    assert len(error_lines) == 2 and all(" ERROR tiny_dancer_router: " in line for line in error_lines)
    assert not structlog.is_configured()  # nothing global was touched


def test_per_candidate_results_are_logged_only_when_debug_is_on() -> None:
    info_records: list[dict[str, Any]] = []
    debug_records: list[dict[str, Any]] = []
    info = make_router_logger(LogConfig(level="INFO", renderer="none"), sink=info_records.append)
    debug = make_router_logger(LogConfig(level="DEBUG", renderer="none"), sink=debug_records.append)
    ids, scores = ["a", "b"], np.array([0.5, 0.6])
    assert log_candidate_results(info, ids, scores, scores, np.array([True, False])) == 0
    assert info_records == []
    assert log_candidate_results(debug, ids, scores, scores, np.array([True, False])) == 4
    assert [r["candidate_id"] for r in debug_records] == ["a", "a", "b", "b"]


def test_configure_logging_sets_the_default_for_new_loggers() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    log = make_router_logger()
    log.debug(LogEvent.FEATURES, batch_size=1)
    assert json.loads(stream.getvalue())["batch_size"] == 1
    configure_logging()
    assert default_log_config() == LogConfig()


@pytest.mark.parametrize("kwargs", [{"level": "TRACE"}, {"level": 10}, {"renderer": "xml"}])
def test_log_config_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        LogConfig(**kwargs)


def test_unconfigured_process_renders_nothing_but_collects() -> None:
    """Until configure_logging() is first called nothing is rendered; records still reach the sink."""
    from tinydancer.observability.logs import _ProcessDefaults

    assert _ProcessDefaults().get().renderer == "none"


def _quiet_router(**kwargs: Any) -> Any:
    """A router with no model file (a seeded random model), made without printing its start-up records."""
    from tinydancer.routing.config import RouterConfig
    from tinydancer.routing.router import Router

    with pytest.warns(RuntimeWarning, match="not found"):
        return Router(RouterConfig(model_path="/nonexistent/model.safetensors"), **kwargs)


def _request() -> Any:
    from tinydancer.routing.requests import RoutingRequest

    return RoutingRequest.from_arrays(np.ones(4), np.eye(4)[:3], ids=["a", "b", "c"])


def test_configure_logging_applies_to_routers_made_before_it() -> None:
    configure_logging(renderer="none")
    follows = _quiet_router()  # log_config=None: follows the process default
    own = _quiet_router(log_config=LogConfig(renderer="none"))  # its own config: unaffected
    stream = io.StringIO()
    for router in (follows, own):
        router.route(_request(), now=1_700_000_000)
    assert stream.getvalue() == ""
    collected = len(follows.collector.logs())

    configure_logging(level="INFO", renderer="json", stream=stream)
    for router in (follows, own):
        router.route(_request(), now=1_700_000_000)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["event"] for r in lines] == [LogEvent.REQUEST_STARTED, LogEvent.REQUEST_COMPLETED]
    assert all(r["logger"] == "tiny_dancer_router" and r["level"] == "info" for r in lines)
    assert lines[1]["lightweight_routes"] + lines[1]["powerful_routes"] == 3
    # The new logger still feeds the router's own collector.
    assert len(follows.collector.logs()) == collected + 2

    configure_logging(level="DEBUG", renderer="json", stream=stream)
    follows.route(_request(), now=1_700_000_000)
    debug = [json.loads(line) for line in stream.getvalue().splitlines()[2:]]
    assert [r["event"] for r in debug].count(LogEvent.DECISION) == 3  # per-candidate DEBUG records now on

    configure_logging(renderer="none")
    before = stream.getvalue()
    follows.route(_request(), now=1_700_000_000)
    assert stream.getvalue() == before


def test_route_reads_no_process_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Following the default costs route() nothing: the logger is swapped in by configure_logging()."""
    from tinydancer.observability import logs

    configure_logging(renderer="none")
    router = _quiet_router()

    def forbidden() -> LogConfig:
        raise AssertionError("route() looked up the process default")

    monkeypatch.setattr(logs._PROCESS_DEFAULTS, "get", forbidden)
    response = router.route(_request(), now=1_700_000_000)
    assert response.candidates_processed == 3


def test_following_the_default_keeps_no_router_alive() -> None:
    import gc
    import weakref

    router = _quiet_router()
    ref = weakref.ref(router)
    del router
    gc.collect()
    assert ref() is None
    configure_logging(renderer="json", stream=io.StringIO())  # a listener that is gone is skipped


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "ERROR"])
def test_sink_logger_records_equal_the_structlog_loggers(level: str, tracing: TracingSystem) -> None:
    """renderer="none" skips structlog (SinkLogger): the sink must get the same records, keys in the same order."""
    rendered: list[dict[str, Any]] = []
    silent: list[dict[str, Any]] = []
    json_log = make_router_logger(LogConfig(level=level, renderer="json", stream=io.StringIO()), sink=rendered.append)
    sink_log = make_router_logger(LogConfig(level=level, renderer="none"), sink=silent.append)
    assert isinstance(sink_log, SinkLogger) and not isinstance(json_log, SinkLogger)
    for log in (json_log, sink_log):
        emit_everything(log)
        assert log.is_enabled_for(LEVELS[level]) and not log.is_enabled_for(LEVELS[level] - 1)
    with tracing.tracer.start_as_current_span("routing_request"):  # one span: the same ids in both
        for log in (json_log, sink_log):
            log.bind(router="r1").info("bound %s", "x", embedding=np.ones(2), keep=1)
            log.exception("failed")

    def without_time(records: list[dict[str, Any]]) -> list[list[tuple[str, Any]]]:
        return [[(k, v) for k, v in r.items() if k != "timestamp"] for r in records]

    assert len(silent) == {"DEBUG": 14, "INFO": 9, "ERROR": 3}[level]
    assert without_time(silent) == without_time(rendered)
    assert all(isinstance(r["timestamp"], float) for r in silent)
