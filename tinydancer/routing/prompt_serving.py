"""The prompt-router half of the :class:`~tinydancer.routing.router.Router`: route prompts, switch operating
points, join outcomes.

:class:`PromptServing` is a mixin: the Router owns the state it reads (the model serving now, the operating
point in force, the breaker, the metrics, the collector, the logger and the tracer); these methods are the
part of the Router that only a prompt router (a ``tinydancer-prompt-router-v1`` artifact, or a
``tinydancer-scorer-router-v1`` artifact serving any scorer) uses. Span tree of
one ``route_prompt`` (one per ``route_prompts`` call)::

    routing_request (SERVER) -> circuit_breaker_check, feature_engineering (tokenise),
                                model_inference (embed, FastGRNN, calibrate) -> uncertainty_estimation
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from typing import TYPE_CHECKING, Any

import numpy as np
from opentelemetry import trace

from tinydancer.errors import (
    CircuitOpenError,
    InferenceError,
    InvalidInputError,
)
from tinydancer.model.prompt_scoring import PromptScores
from tinydancer.observability.collector import Collector, PromptDecisionBatch, RequestBatch, RequestRecord
from tinydancer.observability.drift import DriftMonitor
from tinydancer.observability.logs import (
    LogEvent,
    log_candidate_results,
    log_circuit_open,
    log_operating_point_changed,
    log_request_completed,
    log_request_failed,
    log_request_started,
)
from tinydancer.observability.metrics import RouterMetrics
from tinydancer.observability.outcomes import Outcome, OutcomeMonitor, check_outcome, outcome_rows
from tinydancer.observability.route_spans import UNSAMPLED, RequestScope, RoutingSpan, span_ids
from tinydancer.observability.trace_context import TraceContext
from tinydancer.routing.breaker import CircuitBreaker
from tinydancer.routing.config import RouterConfig
from tinydancer.routing.kernel import DeviceModel
from tinydancer.routing.prompts import (
    PromptBatch,
    PromptDecision,
    PromptModel,
    check_prompts,
    prediction_set,
    prompt_hash,
)
from tinydancer.validation import check_number

if TYPE_CHECKING:
    import pandas as pd


#: What the router serves: the candidate kernel's model, or a prompt router.
Served = DeviceModel | PromptModel


class PromptServing:
    """The Router's prompt methods (a mixin: the Router holds the attributes declared here)."""

    config: RouterConfig
    metrics: RouterMetrics
    collector: Collector
    _serving: tuple[Served, str]
    _operating: tuple[str, float]
    _outcomes: OutcomeMonitor | None
    _drift: DriftMonitor | None
    _reload_lock: threading.Lock
    _log: Any
    _clock: Callable[[], float]
    _tracer: trace.Tracer
    _breaker: CircuitBreaker
    _exploration: np.random.Generator
    _exploration_lock: threading.Lock

    def _explore(self, scores: PromptScores) -> tuple[PromptScores, np.ndarray | None]:
        """With ``exploration_rate`` > 0: route that share of prompts to a model drawn at random, and return
        every decision's propensity (probability of the decision taken); otherwise the scores as they are."""
        rate = self.config.exploration_rate
        if rate == 0.0:
            return scores, None
        n = len(scores.p_strong)
        with self._exploration_lock:  # numpy generators are not thread-safe
            draws = self._exploration.random((2, n))
        policy = scores.use_strong
        chosen = np.where(draws[0] < rate, draws[1] < 0.5, policy)
        propensity = np.where(chosen == policy, 1.0 - rate / 2.0, rate / 2.0)
        confidence = np.where(chosen, scores.p_strong, 1.0 - scores.p_strong).astype(np.float32)
        return scores._replace(use_strong=chosen, confidence=confidence), propensity

    @property
    def operating_point(self) -> tuple[str, float] | None:
        """``(name, threshold)`` of the operating point in force; None when serving candidates."""
        return self._operating if isinstance(self._serving[0], PromptModel) else None

    def use_operating_point(self, name: str) -> None:
        """Switch the prompt router's threshold to one of its artifact's operating points, atomically.

        Later requests use it (a request in flight finishes with the one it read); the change is logged
        and published (``tiny_dancer_operating_point_threshold``, ``tiny_dancer_operating_point_info``).
        Switching compiles nothing: the threshold is an argument of the jitted scorer.

        Raises:
            ConfigError: ``name`` is not one of the artifact's operating points.
            InvalidInputError: this router serves candidates, not prompts.
        """
        with self._reload_lock:
            model = self._serving[0]
            if not isinstance(model, PromptModel):
                raise InvalidInputError("use_operating_point: this router serves candidates (route()), not prompts")
            chosen, point = model.artifact.resolve_operating_point(name)
            self._set_operating(chosen, point.threshold)

    def _set_operating(self, name: str, threshold: float) -> None:
        old = self._operating[0]
        self._operating = (name, threshold)  # one reference swap
        model = self._serving[0]
        if isinstance(model, PromptModel):
            self._publish_operating_point(model, name)
        log_operating_point_changed(self._log, old or None, name, threshold)

    def _publish_operating_point(self, model: PromptModel, name: str) -> None:
        """The threshold and info gauges, and the targets the outcome alerts compare with."""
        art = model.artifact
        point = art.operating_point(name)
        self.metrics.set_operating_point(name, point.threshold)
        if self._outcomes is None:
            self._outcomes = OutcomeMonitor(self.metrics.registry, self.config.outcome_window, pass_mark=art.pass_mark)
        coverage = None if art.conformal is None else 1.0 - art.conformal.alpha
        self._outcomes.set_targets(point.target, point.value, coverage)
        self._outcomes.pass_mark = art.pass_mark  # labels follow the artifact serving now

    def _watch_drift(self, model: PromptModel) -> None:
        """Compare live traffic with the artifact's calibration rows (:mod:`tinydancer.observability.drift`)."""
        if self._drift is None:
            self._drift = DriftMonitor(self.metrics.registry, self.config.drift_window)
        self._drift.set_reference(model.artifact.reference)  # empty without one: the series stay NaN

    def record_outcome(
        self,
        request_id: int,
        *,
        weak_correct: float | None = None,
        strong_correct: float | None = None,
        quality: float | None = None,
        cost: float | None = None,
    ) -> bool:
        """Join what happened to a routed prompt (any subset of the fields; late and partial reports are normal).

        Args:
            request_id: The decision's ``request_id``.
            weak_correct: The weak model's outcome in [0, 1] (it gives the request's label: the weak model
                fails iff below the artifact's pass mark).
            strong_correct: The strong model's outcome in [0, 1].
            quality: The served answer's quality (any finite number).
            cost: What the request cost (>= 0).

        Returns:
            Whether the id was a remembered routed prompt (unknown ids are counted, not fatal).

        Raises:
            InvalidInputError: a value out of range, or this router serves candidates.
        """
        fields = {"weak_correct": weak_correct, "strong_correct": strong_correct, "quality": quality, "cost": cost}
        for name, value in fields.items():  # a NaN here is a bad value, not "not reported" as in a frame's column
            check_outcome(name, value, unit=name in ("weak_correct", "strong_correct"))
        report: dict[str, Sequence[object]] = {"request_id": [request_id], **{k: [v] for k, v in fields.items()}}
        return self.record_outcomes(report)["joined"] == 1

    def record_outcomes(self, outcomes: pd.DataFrame | Mapping[str, Sequence[object]]) -> dict[str, int]:
        """Bulk :meth:`record_outcome`: a DataFrame (or mapping of columns) with ``request_id`` and any of the fields.

        The whole report is checked before any of it is recorded (a bad row names itself and records nothing).

        Returns:
            ``{"joined": n, "unknown_request": m}``.

        Raises:
            InvalidInputError: no ``request_id`` column, an unknown column, or a bad value.
        """
        monitor = self._outcomes
        if monitor is None or not isinstance(self._serving[0], PromptModel):
            raise InvalidInputError("record_outcomes: this router serves candidates; outcomes join prompt decisions")
        columns: dict[str, Iterable[object]] = {str(k): list(v) for k, v in dict(outcomes).items()}
        if "request_id" not in columns:
            raise InvalidInputError(f"outcomes: expected a 'request_id' column, got {sorted(columns)}")
        stamp = self._clock()
        rows = outcome_rows(columns.pop("request_id"), columns)
        records, joined = [], 0
        for request_id, fields in rows:
            ok = monitor.join(request_id, fields.get("weak_correct"))
            joined += ok
            get = fields.get
            records.append(
                Outcome(request_id, stamp, get("weak_correct"), get("strong_correct"), get("quality"), get("cost"), ok)
            )
        self.collector.record_outcomes(records)
        return {"joined": joined, "unknown_request": len(rows) - joined}

    def route_prompt(
        self,
        text: str,
        metadata: Mapping[str, object] | None = None,
        now: float | None = None,
        traceparent: str | None = None,
    ) -> PromptDecision:
        """Route one prompt to the weak or the strong model (a prompt router only).

        Args:
            text: The prompt.
            metadata: Returned on the decision as given; never recorded (it may hold user data).
            now: Unix seconds stamped on the records; None reads the clock.
            traceparent: A W3C ``traceparent`` header; the request's span joins that trace.

        Returns:
            A :class:`~tinydancer.routing.prompts.PromptDecision`.

        Raises:
            InvalidInputError: not a valid prompt (:func:`~tinydancer.routing.prompts.check_prompts`), bad
                metadata, or this router serves candidates (call ``route()``).
            CircuitOpenError: the breaker is open.
            InferenceError: the model failed (counts towards opening the breaker).
        """
        if metadata is not None and not isinstance(metadata, Mapping):
            error = InvalidInputError(f"metadata: expected a mapping or None, got {type(metadata).__name__}")
            self._record_prompt_failure(error, self.collector.next_request_ids(1), self._clock(), time.perf_counter())
            raise error
        batch = self._route_prompt_batch([text], now, traceparent)
        s = batch.scores
        strong = bool(s.use_strong[0])
        return PromptDecision(
            request_id=batch.first_request_id,
            model=batch.strong_model if strong else batch.weak_model,
            use_strong=strong,
            p_strong=float(s.p_strong[0]),
            confidence=float(s.confidence[0]),
            uncertainty=float(s.uncertainty[0]),
            prediction_set=prediction_set(bool(s.in_set_weak[0]), bool(s.in_set_strong[0]))
            if batch.conformal
            else None,
            operating_point=batch.operating_point,
            threshold=batch.threshold,
            latency_us=batch.latency_us,
            metadata=metadata,
        )

    def route_prompts(
        self,
        texts: Iterable[str],
        *,
        now: float | None = None,
        traceparent: str | None = None,
        as_frame: bool = True,
    ) -> pd.DataFrame | PromptBatch:
        """Route a batch of prompts: one vectorised tokenisation, one jitted call per padded chunk.

        Each prompt is one request in the metrics and the collectors (latency: the call's wall time
        divided by its size); the call is one ``routing_request`` span with ``batch_size``. A batch with
        an invalid prompt routes nothing and counts every prompt of it as a failed request.

        Args:
            texts: A list (or pandas Series) of prompts.
            now: Unix seconds stamped on the records; None reads the clock.
            traceparent: A W3C ``traceparent`` header.
            as_frame: Return a DataFrame (columns :data:`~tinydancer.routing.prompts.PROMPT_RESULT_COLUMNS`);
                False returns the columnar :class:`~tinydancer.routing.prompts.PromptBatch`.

        Raises:
            InvalidInputError, CircuitOpenError, InferenceError: as :meth:`route_prompt`.
        """
        batch = self._route_prompt_batch(texts, now, traceparent)
        return batch.to_frame() if as_frame else batch

    def _route_prompt_batch(self, texts: object, now: float | None, traceparent: str | None) -> PromptBatch:
        """Route prompts and record everything: the one path behind route_prompt and route_prompts."""
        start = time.perf_counter()
        count = len(texts) if isinstance(texts, Sized) and not isinstance(texts, str | bytes) else 1
        ids, started_at = self.collector.next_request_ids(count), self._clock() if now is None else now
        try:
            check_number("now", started_at)
            parent = None if traceparent is None else TraceContext.from_w3c_traceparent(traceparent).to_otel_context()
        except Exception as exc:
            self._record_prompt_failure(exc, ids, started_at, start)
            raise InvalidInputError(str(exc)) from exc
        scope = RequestScope(count, self._tracer, parent)
        try:
            batch, prompts, tokenize_s, infer_s = self._score_prompts(texts, ids, start, scope.span)
            self._record_prompt_success(batch, prompts, started_at, tokenize_s, infer_s, scope.span)
        except Exception as exc:
            self._record_prompt_failure(exc, ids, started_at, start, scope.span)
            scope.fail(exc)
            raise
        finally:
            self.collector.record_spans(scope.close())
        return batch

    def _score_prompts(
        self, texts: object, ids: range, start: float, span: trace.Span
    ) -> tuple[PromptBatch, list[str], float, float]:
        """Check, tokenise and score; returns the batch, the prompts and the two phases' seconds."""
        recording, tracer, breaker = span.is_recording(), self._tracer, self._breaker
        model, model_type = self._serving
        name, threshold = self._operating
        if not isinstance(model, PromptModel):
            raise InvalidInputError("route_prompt: this router serves candidates; call route(request) instead")
        prompts = check_prompts(texts, self.config.max_prompt_chars)  # type: ignore[arg-type]
        if len(prompts) != len(ids):
            raise InvalidInputError(f"texts: expected {len(ids)} prompts (its len()), iterating gave {len(prompts)}")
        n = len(prompts)
        log_request_started(self._log, n)
        with RoutingSpan.circuit_breaker_check(breaker.state, tracer) if recording else UNSAMPLED:
            ticket = breaker.admit()
        settle = breaker.release
        try:
            with RoutingSpan.feature_engineering(n, tracer) if recording else UNSAMPLED:
                tokens = model.scorer.tokenize(prompts)
            self._log.debug(LogEvent.FEATURES, batch_size=n)
            feature_done = time.perf_counter()
            with RoutingSpan.model_inference(n, model_type, tracer) if recording else UNSAMPLED:
                try:
                    scores = model.scorer.score_tokens(tokens, threshold)
                    if not np.isfinite(scores.p_strong).all() or not np.isfinite(scores.uncertainty).all():
                        raise InferenceError("model produced NaN or infinite probabilities")
                except InferenceError:
                    settle = breaker.failure
                    raise
                except Exception as exc:
                    settle = breaker.failure
                    raise InferenceError(f"model inference failed: {type(exc).__name__}: {exc}") from exc
                settle = breaker.success
                scores, propensity = self._explore(scores)
                if recording:
                    with RoutingSpan.uncertainty_estimation(tracer) as estimation:
                        estimation.set_attribute("uncertainty_mode", model.scorer.uncertainty)
                        estimation.set_attribute("uncertainty.mean", float(scores.uncertainty.mean()) if n else 0.0)
                        estimation.set_attribute("strong_routes", int(scores.use_strong.sum()))
        finally:
            settle(ticket)
        inference_done = time.perf_counter()
        art = model.artifact
        batch = PromptBatch(
            first_request_id=ids.start,
            scores=scores,
            weak_model=art.weak_model,
            strong_model=art.strong_model,
            operating_point=name,
            threshold=threshold,
            conformal=art.conformal is not None,
            latency_us=(inference_done - start) * 1e6,
            propensity=propensity,
            model_type=model_type,
        )
        return batch, prompts, feature_done - start, inference_done - feature_done

    def _record_prompt_success(
        self,
        batch: PromptBatch,
        prompts: list[str],
        timestamp: float,
        tokenize_s: float,
        infer_s: float,
        span: trace.Span,
    ) -> None:
        """Metrics, span attributes, one request row per prompt, the decisions and the logs of a routed batch."""
        n, s = len(prompts), batch.scores
        strong = int(s.use_strong.sum())
        metrics = self.metrics
        metrics.record_requests(True, n, batch.latency_us / 1e6 / max(n, 1))
        metrics.record_features(n, tokenize_s)
        metrics.record_inference(infer_s, batch.model_type)
        metrics.record_decisions(s.confidence, s.uncertainty, ~s.use_strong)
        if self._outcomes is not None:
            sets = (s.in_set_weak, s.in_set_strong) if batch.conformal else (None, None)
            self._outcomes.record_routes(batch.first_request_id, s.use_strong, s.p_strong, *sets)
        chars = np.fromiter(map(len, prompts), np.int64, n)
        if self._drift is not None:
            self._drift.record({"p_strong": s.p_strong, "prompt_chars": chars})
        if span.is_recording():
            span.set_attribute("outcome", "success")
            span.set_attribute("lightweight_routes", n - strong)
            span.set_attribute("powerful_routes", strong)
            span.set_attribute("operating_point", batch.operating_point)
        trace_id, span_id = span_ids(span)
        each_us, feature_us = batch.latency_us / max(n, 1), tokenize_s * 1e6 / max(n, 1)
        strong_routes = s.use_strong.astype(np.int64)
        first = RequestRecord(
            batch.first_request_id, timestamp, each_us, feature_us, 1, "success", None, trace_id, span_id, 0, 0
        )
        self.collector.record_requests(RequestBatch(first, 1 - strong_routes, strong_routes))
        art_text = tuple(prompts) if self.config.record_prompts else None
        self.collector.record_prompt_decisions(
            PromptDecisionBatch(
                first_request_id=batch.first_request_id,
                timestamp=timestamp,
                prompt_chars=chars,
                prompt_hash=tuple(map(prompt_hash, prompts)),
                prompt_text=art_text,
                use_strong=s.use_strong,
                p_strong=s.p_strong,
                confidence=s.confidence,
                uncertainty=s.uncertainty,
                in_set_weak=s.in_set_weak if batch.conformal else None,
                in_set_strong=s.in_set_strong if batch.conformal else None,
                weak_model=batch.weak_model,
                strong_model=batch.strong_model,
                operating_point=batch.operating_point,
                threshold=batch.threshold,
                model_type=batch.model_type,
                propensity=batch.propensity,
            )
        )
        if self._log.is_enabled_for(logging.DEBUG):  # per-prompt DEBUG records, named by request id
            ids = [f"request-{i}" for i in range(batch.first_request_id, batch.first_request_id + n)]
            log_candidate_results(self._log, ids, s.confidence, s.uncertainty, ~s.use_strong)
        log_request_completed(self._log, int(batch.latency_us), n - strong, strong)

    def _record_prompt_failure(
        self, exc: Exception, ids: range, timestamp: float, start: float, span: trace.Span | None = None
    ) -> None:
        """A failed or rejected prompt call: every prompt of it is one failed request (metrics, rows, logs)."""
        n = max(len(ids), 1)
        latency_s = time.perf_counter() - start
        self.metrics.record_requests(False, len(ids), latency_s / n)
        error_type = "internal_error"
        for _ in ids:
            error_type = self.metrics.record_exception(exc)
        if isinstance(exc, CircuitOpenError):
            log_circuit_open(self._log, exc.retry_after)
            outcome = "rejected"
        else:
            log_request_failed(self._log, exc)
            outcome = "failure"
        if span is not None:
            span.set_attribute("outcome", outcome)
        trace_id, span_id = span_ids(span)
        stamp = timestamp if isinstance(timestamp, int | float) and math.isfinite(timestamp) else self._clock()
        each_us = latency_s * 1e6 / n
        first = RequestRecord(ids.start, stamp, each_us, 0.0, 1, outcome, error_type, trace_id, span_id, 0, 0)
        none = np.zeros(len(ids), np.int64)
        self.collector.record_requests(RequestBatch(first, none, none))
