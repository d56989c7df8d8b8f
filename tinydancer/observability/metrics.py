"""Prometheus metrics of one router: the guide's ten ``tiny_dancer_*`` series on a private registry.

Every :class:`RouterMetrics` owns its own :class:`prometheus_client.CollectorRegistry`, so two routers in
one process, or a notebook cell run twice, never collide ("Duplicated timeseries", client_python
issue 570). Names, label names, label values and buckets are those of the observability guide and of
the original repository's dead definitions (reference §4).

The four per-candidate series (decisions, confidence, uncertainty, candidates processed) are updated
once per routed batch by :class:`tinydancer.observability.decision_histograms.DecisionStats`, and the four
per-request series (requests, latency, feature-engineering and inference durations) by
:class:`~tinydancer.observability.decision_histograms.RequestStats`: custom collectors that render ordinary
counter and histogram families. One ``Histogram.observe`` costs about 0.7 us, so observing 1000 candidates
one by one would cost more than routing them, and a routed request records all eight series in one
:meth:`RouterMetrics.record_route` call. Series made by those collectors have no ``*_created`` companion;
the errors counter and the gauges are prometheus_client's own.

Label values are always from fixed sets: no candidate id or free text ever becomes a label value.

Examples:
    >>> import numpy as np
    >>> m = RouterMetrics()
    >>> m.record_request(success=True, latency_s=0.002)
    >>> m.record_decisions(np.array([0.9, 0.4]), np.array([0.05, 0.3]), np.array([True, False]))
    >>> 'tiny_dancer_routing_decisions_total{model_type="lightweight"} 1.0' in m.export()
    True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from tinydancer.errors import ERROR_TYPES, ConfigError
from tinydancer.observability.decision_histograms import (
    BATCH_SIZE_RANGES,
    CONFIDENCE_BUCKETS,
    DECISION_TYPES,
    FEATURE_BUCKETS,
    LATENCY_BUCKETS,
    UNCERTAINTY_BUCKETS,
    DecisionStats,
    RequestStats,
    batch_size_range,
)
from tinydancer.observability.metrics_server import MetricsServer, WsgiApp, make_metrics_app, start_metrics_server

__all__ = [
    "BATCH_SIZE_RANGES",
    "BREAKER_STATES",
    "CONFIDENCE_BUCKETS",
    "DECISION_TYPES",
    "FEATURE_BUCKETS",
    "LATENCY_BUCKETS",
    "UNCERTAINTY_BUCKETS",
    "MetricSample",
    "MetricsServer",
    "RouterMetrics",
    "batch_size_range",
]

#: Circuit-breaker state -> gauge value, as in the guide (read-only): the one definition of the breaker's
#: state names and their order; :mod:`tinydancer.routing.breaker` takes its states from it.
BREAKER_STATES: Mapping[str, int] = MappingProxyType({"closed": 0, "half_open": 1, "open": 2})

_OPERATING_POINT_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class MetricSample(NamedTuple):
    """One exported sample, flattened for a pandas row.

    Attributes:
        family: Metric family name, e.g. ``tiny_dancer_routing_requests`` for a counter.
        type: Family type: ``counter``, ``gauge`` or ``histogram``.
        name: Sample name, e.g. ``tiny_dancer_routing_requests_total`` or ``..._bucket``.
        labels: Label name -> value (a fresh dict per sample).
        value: Sample value.
    """

    family: str
    type: str
    name: str
    labels: dict[str, str]
    value: float


class RouterMetrics:
    """The guide's ``tiny_dancer_*`` Prometheus metrics of one router, on a registry of its own.

    Each ``record_*`` method is one locked update (``record_decisions`` one vectorised update for the whole
    batch, :meth:`record_route` everything a routed request records). All label values are pre-created, so
    every series exports 0 before it first happens; the one exception is a ``model_type`` of the inference
    histogram first named by :meth:`record_inference` or :meth:`record_route` (a router whose reload
    switched model kinds), whose series starts then.

    Args:
        model_type: ``model_type`` label of the inference histogram when :meth:`record_inference` is
            given none (e.g. what serves at start); 1-64 characters of ``[A-Za-z0-9_.-]`` (a fixed
            name, never free text).

    Raises:
        ConfigError: If ``model_type`` is not such a name.

    Examples:
        >>> m = RouterMetrics("original")
        >>> m.bind_breaker_state(lambda: BREAKER_STATES["open"])
        >>> [s.value for s in m.samples() if s.name == "tiny_dancer_circuit_breaker_state"]
        [2.0]
    """

    def __init__(self, model_type: str = "fastgrnn") -> None:
        reg = CollectorRegistry(auto_describe=True)
        self._registry = reg
        # The four per-request series in one collector, updated once per request.
        self._request_stats = RequestStats(model_type)
        reg.register(self._request_stats)
        self._default_model_type = model_type
        self._breaker = Gauge(
            "tiny_dancer_circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            registry=reg,
        )
        # The four per-candidate series live in one collector, updated once per batch.
        self._decision_stats = DecisionStats()
        reg.register(self._decision_stats)
        errors = Counter("tiny_dancer_errors_total", "Errors by type.", ["error_type"], registry=reg)
        self._errors = {e: errors.labels(e) for e in ERROR_TYPES}
        self._threshold: Gauge | None = None  # operating-point series, made by set_operating_point
        self._operating_point: Gauge | None = None

    @property
    def registry(self) -> CollectorRegistry:
        """The private registry holding every metric of this router."""
        return self._registry

    def record_request(self, success: bool, latency_s: float) -> None:
        """Count one routing request and observe its end-to-end latency (``operation="total"``).

        Args:
            success: Whether the request produced a routing response.
            latency_s: Wall time of the whole request in seconds.

        Examples:
            >>> m = RouterMetrics()
            >>> m.record_request(False, 0.25)
            >>> 'tiny_dancer_routing_requests_total{status="failure"} 1.0' in m.export()
            True
        """
        self._request_stats.record_requests(success, 1, latency_s)

    def record_requests(self, success: bool, count: int, latency_s: float) -> None:
        """Count ``count`` requests served together (a batch of prompts), each observed at ``latency_s``.

        Args:
            success: Whether they produced routing responses.
            count: How many requests (0 records nothing).
            latency_s: Latency of each (a batch's wall time divided by its size: amortised).

        Examples:
            >>> m = RouterMetrics()
            >>> m.record_requests(True, 3, 1e-4)
            >>> 'tiny_dancer_routing_requests_total{status="success"} 3.0' in m.export()
            True
        """
        self._request_stats.record_requests(success, count, latency_s)

    def set_operating_point(self, name: str, threshold: float) -> None:
        """Publish the operating point in force: its threshold, and which one is live (1) or was (0).

        Two series, made on first use (a router serving candidates has neither):
        ``tiny_dancer_operating_point_threshold`` (the threshold on the calibrated p_strong; +Inf
        never calls the strong model) and ``tiny_dancer_operating_point_info{operating_point}``.

        Raises:
            ConfigError: ``name`` is not 1-64 characters of ``[A-Za-z0-9_.:-]``.

        Examples:
            >>> m = RouterMetrics()
            >>> m.set_operating_point("share-0.5", 0.61)
            >>> m.set_operating_point("quality-0.95", 0.4)
            >>> for line in m.export().splitlines():
            ...     if line.startswith("tiny_dancer_operating_point"):
            ...         print(line)
            tiny_dancer_operating_point_threshold 0.4
            tiny_dancer_operating_point_info{operating_point="share-0.5"} 0.0
            tiny_dancer_operating_point_info{operating_point="quality-0.95"} 1.0
        """
        if not isinstance(name, str) or not _OPERATING_POINT_RE.fullmatch(name):
            raise ConfigError(f"operating point: expected 1-64 characters of [A-Za-z0-9_.:-], got {name!r}")
        if self._threshold is None:
            self._threshold = Gauge(
                "tiny_dancer_operating_point_threshold",
                "Threshold in force on the calibrated probability that the strong model is needed (strong iff >=).",
                registry=self._registry,
            )
            self._operating_point = Gauge(
                "tiny_dancer_operating_point_info",
                "Operating point of a prompt router: 1 for the one in force, 0 for earlier ones.",
                ["operating_point"],
                registry=self._registry,
            )
        info = self._operating_point
        assert info is not None
        for sample in next(iter(info.collect())).samples:
            info.labels(sample.labels["operating_point"]).set(0)
        info.labels(name).set(1)
        self._threshold.set(threshold)

    def record_features(self, batch_size: int, duration_s: float) -> None:
        """Observe a feature-engineering duration under the batch's size range.

        An empty batch (``batch_size == 0``) is not recorded: the guide's ranges start at 1.

        Args:
            batch_size: Number of candidates whose features were computed.
            duration_s: Duration in seconds.

        Raises:
            InvalidInputError: If ``batch_size`` is negative.

        Examples:
            >>> m = RouterMetrics()
            >>> m.record_features(32, 4e-5)
            >>> 'feature_engineering_duration_seconds_count{batch_size="11-50"} 1.0' in m.export()
            True
        """
        self._request_stats.record_features(batch_size, duration_s)

    def record_inference(self, duration_s: float, model_type: str | None = None) -> None:
        """Observe one model-inference duration in seconds under the model that ran it.

        Args:
            duration_s: Duration in seconds.
            model_type: ``model_type`` label of the model that served (a router passes what serves
                now, so a hot reload that switches kinds starts a new series); None: the
                constructor's. A name not seen before gets its series on first use.

        Raises:
            ConfigError: If ``model_type`` is not 1-64 characters of ``[A-Za-z0-9_.-]``.

        Examples:
            >>> m = RouterMetrics(model_type="original")
            >>> m.record_inference(2e-4)
            >>> m.record_inference(3e-4, "fastgrnn")
            >>> [line for line in m.export().splitlines() if "inference_duration_seconds_count" in line]
            ['tiny_dancer_model_inference_duration_seconds_count{model_type="original"} 1.0', \
'tiny_dancer_model_inference_duration_seconds_count{model_type="fastgrnn"} 1.0']
        """
        self._request_stats.record_inference(duration_s, self._default_model_type if model_type is None else model_type)

    def record_decisions(
        self,
        confidence: npt.ArrayLike,
        uncertainty: npt.ArrayLike,
        use_lightweight: npt.ArrayLike,
    ) -> None:
        """Record one routed batch: decision counts, confidence/uncertainty histograms, candidates.

        Values are converted to float64 before bucketing, exactly as ``Histogram.observe(float(x))``
        would (so a float32 0.85 lands in the 0.9 bucket: it is 0.8500000238).

        Args:
            confidence: Confidence per candidate, shape ``[N]``, finite.
            uncertainty: Uncertainty per candidate, shape ``[N]``, finite.
            use_lightweight: Routing decision per candidate, shape ``[N]``, bool.

        Raises:
            InvalidInputError: If the shapes differ or are not 1-D, or a value is NaN or infinite
                (nothing is recorded then).

        Examples:
            >>> import numpy as np
            >>> m = RouterMetrics()
            >>> m.record_decisions(np.array([0.95]), np.array([0.01]), np.array([True]))
            >>> 'tiny_dancer_candidates_processed_total{batch_size_range="1-10"} 1.0' in m.export()
            True
        """
        self._decision_stats.record(confidence, uncertainty, use_lightweight)

    def record_route(
        self,
        latency_s: float,
        feature_s: float,
        inference_s: float,
        model_type: str,
        confidence: npt.ArrayLike,
        uncertainty: npt.ArrayLike,
        use_lightweight: npt.ArrayLike,
    ) -> None:
        """Record one successfully routed request: what :meth:`record_request` (success),
        :meth:`record_features`, :meth:`record_inference` and :meth:`record_decisions` record, in two locked updates.

        Args:
            latency_s: Wall time of the whole request in seconds.
            feature_s: Feature-engineering seconds (observed under the batch's size range; not for an empty batch).
            inference_s: Model-inference seconds.
            model_type: ``model_type`` label of the model that served.
            confidence: Confidence per candidate, shape ``[N]``, finite.
            uncertainty: Uncertainty per candidate, shape ``[N]``, finite.
            use_lightweight: Routing decision per candidate, shape ``[N]``, bool.

        Raises:
            InvalidInputError: As :meth:`record_decisions`; nothing is recorded then.
            ConfigError: As :meth:`record_inference`; nothing is recorded then.

        Examples:
            >>> import numpy as np
            >>> m = RouterMetrics()
            >>> m.record_route(2e-4, 3e-5, 5e-5, "fastgrnn", np.array([0.9]), np.array([0.05]), np.array([True]))
            >>> [s.value for s in m.samples() if s.name.endswith(("requests_total", "decisions_total"))]
            [1.0, 0.0, 1.0, 0.0]
        """
        self._request_stats.check_label(model_type)  # before anything is recorded
        n = self._decision_stats.record(confidence, uncertainty, use_lightweight)
        self._request_stats.record_route(latency_s, n, feature_s, inference_s, model_type)

    def queue_route(
        self,
        latency_s: float,
        feature_s: float,
        inference_s: float,
        model_type: str,
        confidence: npt.NDArray[np.floating],
        uncertainty: npt.NDArray[np.floating],
        use_lightweight: npt.NDArray[np.bool_],
    ) -> None:
        """:meth:`record_route` for values the caller has checked, applied at the next read: the router's hot path.

        Two queue appends and nothing else. Every read of the series (:meth:`export`, :meth:`samples`, a scrape
        of :meth:`serve` or :meth:`wsgi_app`, anything collecting :attr:`registry`) first applies everything
        queued, in one vectorised update, and so does the call that finds
        :data:`~tinydancer.observability.decision_histograms.QUEUE_LIMIT` requests waiting: counts are exact at
        every read; a ``_sum`` equals one-by-one addition up to float rounding.

        Args:
            latency_s, feature_s, inference_s, model_type: as :meth:`record_route`.
            confidence: ``[N]`` finite confidences (not checked: the route kernel checks its outputs).
            uncertainty: ``[N]`` finite uncertainties (not checked).
            use_lightweight: ``[N]`` bool decisions (not checked).

        Raises:
            ConfigError: ``model_type`` is new and not a fixed name (nothing is queued then).

        Examples:
            >>> import numpy as np
            >>> m = RouterMetrics()
            >>> m.queue_route(2e-4, 3e-5, 5e-5, "fastgrnn", np.array([0.9]), np.array([0.05]), np.array([True]))
            >>> [s.value for s in m.samples() if s.name.endswith(("requests_total", "decisions_total"))]
            [1.0, 0.0, 1.0, 0.0]
        """
        self._request_stats.queue_route(latency_s, len(confidence), feature_s, inference_s, model_type)
        self._decision_stats.queue(confidence, uncertainty, use_lightweight)

    def record_exception(self, exc: BaseException) -> str:
        """Count an exception by its ``error_type`` attribute (``internal_error`` when absent/unknown).

        Args:
            exc: Any exception; tinydancer errors carry a class attribute ``error_type``.

        Returns:
            The label value counted.

        Examples:
            >>> from tinydancer.errors import CircuitOpenError
            >>> RouterMetrics().record_exception(CircuitOpenError(retry_after=1.0))
            'circuit_breaker_open'
            >>> RouterMetrics().record_exception(KeyError("x"))
            'internal_error'
        """
        error_type = getattr(exc, "error_type", "internal_error")
        if error_type not in self._errors:
            error_type = "internal_error"
        self._errors[error_type].inc()
        return str(error_type)

    def bind_breaker_state(self, read_state_value: Callable[[], float]) -> None:
        """Make the breaker gauge read its value at scrape time (0 closed, 1 half-open, 2 open).

        A breaker turns half-open when its timeout passes, with no call to observe; reading the state
        on every scrape keeps the gauge exact without a background thread.

        Examples:
            >>> m = RouterMetrics()
            >>> m.bind_breaker_state(lambda: 1)
            >>> "tiny_dancer_circuit_breaker_state 1.0" in m.export()
            True
        """
        self._breaker.set_function(read_state_value)

    def export(self) -> str:
        """Return every metric in the Prometheus text exposition format (version 0.0.4).

        Examples:
            >>> RouterMetrics().export().count("# TYPE tiny_dancer_")  # 10 families + the errors' *_created
            11
        """
        return generate_latest(self._registry).decode("utf-8")

    def samples(self) -> list[MetricSample]:
        """Return every sample of the registry, ``*_created`` timestamps left out, in export order.

        Examples:
            >>> s = RouterMetrics().samples()[0]
            >>> (s.family, s.type, s.name, s.labels, s.value)
            ('tiny_dancer_routing_requests', 'counter', 'tiny_dancer_routing_requests_total', \
{'status': 'success'}, 0.0)
        """
        return [
            MetricSample(fam.name, fam.type, s.name, dict(s.labels), float(s.value))
            for fam in self._registry.collect()
            for s in fam.samples
            if not s.name.endswith("_created")
        ]

    def wsgi_app(self) -> WsgiApp:
        """Return a WSGI app serving this registry (``prometheus_client.make_wsgi_app``).

        Examples:
            >>> callable(RouterMetrics().wsgi_app())
            True
        """
        return make_metrics_app(self._registry)

    def serve(self, host: str = "127.0.0.1", port: int = 9090) -> MetricsServer:
        """Serve ``/metrics`` over HTTP from a daemon thread; loopback only unless told otherwise.

        Args:
            host: Address to bind; ``"0.0.0.0"`` exposes the endpoint to the network.
            port: TCP port; 0 picks a free one (read it back from ``.port``).

        Returns:
            A running :class:`MetricsServer`; ``stop()`` it (or use it as a context manager).

        Examples:
            >>> with RouterMetrics().serve(port=0) as server:
            ...     server.url.startswith("http://127.0.0.1:")
            True
        """
        return start_metrics_server(self._registry, host, port)
