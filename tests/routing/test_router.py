"""Router: the public API of the guide, bad input, breaker, hot reload, and one compile per bucket."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests._routers import NOW, RNG, request, strong_model
from tinydancer import (
    Candidate,
    CircuitOpenError,
    ConfigError,
    InferenceError,
    InvalidInputError,
    ModelLoadError,
    Router,
    RouterConfig,
    RoutingRequest,
    TinyDancerError,
)
from tinydancer.routing.kernel import HOST_MAX_CANDIDATES, bucket_size
from tinydancer.routing.router import default_inference


@pytest.fixture
def router(tmp_path: Path) -> Router:
    return Router(
        RouterConfig(
            model_path=str(strong_model(tmp_path / "m.safetensors")), confidence_threshold=0.6, max_uncertainty=0.9
        )
    )


def test_guide_api(router: Router) -> None:
    q = RNG.normal(size=8)
    req = RoutingRequest(
        query_embedding=q,
        candidates=[
            Candidate(id="a", embedding=q, metadata={"lang": "en"}, created_at=NOW, access_count=3, success_rate=0.9),
            Candidate(
                id="b", embedding=-q, metadata={"lang": "fr"}, created_at=NOW - 100, access_count=0, success_rate=0.1
            ),
        ],
        metadata={"lang": "en"},
    )
    resp = router.route(req, now=NOW)
    assert resp.candidates_processed == 2 and len(resp.decisions) == 2
    confs = [d.confidence for d in resp.decisions]
    assert confs == sorted(confs, reverse=True)
    d = resp.decisions[0]
    assert isinstance(d.candidate_id, str) and isinstance(d.use_lightweight, bool)
    assert d.uncertainty == pytest.approx(min(1, max(0, 1 - 2 * abs(d.confidence - 0.5))), abs=1e-6)
    assert resp.inference_time_us >= resp.feature_time_us > 0
    assert router.circuit_breaker_state == "closed"


def test_decision_rule_and_arrays_match_objects(router: Router) -> None:
    req = request(200)
    resp = router.route(req, now=NOW)
    cfg = router.config
    expect = (resp.confidence >= cfg.confidence_threshold) & (resp.uncertainty <= cfg.max_uncertainty)
    assert np.array_equal(resp.use_lightweight, expect)
    assert 0 < resp.lightweight_routes < 200  # the model really separates candidates
    objects = RoutingRequest(req.query_embedding, list(req.candidates))
    again = router.route(objects, now=NOW)
    assert again.candidate_ids == resp.candidate_ids
    np.testing.assert_array_equal(again.confidence, resp.confidence)


def test_ties_keep_input_order(router: Router) -> None:
    q = np.ones(4)
    resp = router.route(RoutingRequest.from_arrays(q, np.tile(q, (5, 1)), ids=list("edcba")), now=NOW)
    assert resp.candidate_ids == tuple("edcba")


def test_empty_candidate_list_is_valid(router: Router) -> None:
    resp = router.route(RoutingRequest(np.ones(3), []), now=NOW)
    assert resp.decisions == [] and resp.candidates_processed == 0


def test_now_defaults_to_the_clock(tmp_path: Path) -> None:
    path = str(strong_model(tmp_path / "m.safetensors"))
    r = Router(RouterConfig(model_path=path), clock=lambda: NOW + 0.7)
    req = request(10)
    assert np.array_equal(r.route(req).confidence, r.route(req, now=NOW).confidence)


def emb(n: int = 2, d: int = 4) -> np.ndarray:
    return np.ones((n, d))


BAD_REQUESTS: list[tuple[str, Any, str]] = [
    ("nan embedding", RoutingRequest.from_arrays(np.ones(4), np.array([[1, np.nan, 0, 0.0]])), "NaN"),
    ("inf query", RoutingRequest.from_arrays(np.array([1, np.inf, 0, 0]), emb()), "NaN or infinite"),
    ("dim mismatch", RoutingRequest(np.ones(4), [Candidate("a", np.ones(3))]), "query has 4, candidate 'a' has 3"),
    (
        "dim mismatch arrays",
        RoutingRequest.from_arrays(np.ones(4), np.ones((2, 5))),
        "query has 4, candidate '0' has 5",
    ),
    ("2-D query", RoutingRequest.from_arrays(np.ones((2, 4)), emb()), "1-D"),
    ("empty query", RoutingRequest.from_arrays(np.ones(0), np.ones((1, 0))), "non-empty"),
    ("nan created_at", RoutingRequest.from_arrays(np.ones(4), emb(), created_at=[0, np.nan]), "created_at"),
    ("nan success", RoutingRequest.from_arrays(np.ones(4), emb(), success_rate=[np.nan, 0]), "success_rate"),
    ("negative access", RoutingRequest.from_arrays(np.ones(4), emb(), access_count=[1, -1]), "access_count"),
    ("fractional access", RoutingRequest.from_arrays(np.ones(4), emb(), access_count=[1.5, 1]), "access_count"),
    ("success > 1", RoutingRequest.from_arrays(np.ones(4), emb(), success_rate=[1.2, 0]), r"\[0, 1\]"),
    ("success < 0", RoutingRequest.from_arrays(np.ones(4), emb(), success_rate=[-0.1, 0]), r"\[0, 1\]"),
    ("metadata list", RoutingRequest(np.ones(4), [], metadata=[1, 2]), "JSON object"),  # type: ignore[arg-type]
    ("metadata set", RoutingRequest(np.ones(4), [Candidate("a", np.ones(4), metadata={"k": {1}})]), "JSON object"),
    ("metadata nan", RoutingRequest(np.ones(4), [], metadata={"x": float("nan")}), "JSON object"),
    ("metadata int keys", RoutingRequest(np.ones(4), [], metadata={1: "x"}), "keys"),  # type: ignore[dict-item]
    (
        "duplicate ids",
        RoutingRequest.from_arrays(np.ones(4), emb(3), ids=["a", "b", "a"]),
        "duplicate candidate id 'a'",
    ),
    ("non-str id", RoutingRequest(np.ones(4), [Candidate(3, np.ones(4))]), "expected str"),  # type: ignore[arg-type]
    ("string embedding", RoutingRequest(np.ones(4), [Candidate("a", "abcd")]), "expected numbers"),
    ("not a request", {"query": [1]}, "RoutingRequest"),
]


@pytest.mark.parametrize(("name", "req", "fragment"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_input_typed_error_and_router_keeps_working(router: Router, name: str, req: Any, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment) as info:
        router.route(req, now=NOW)
    assert isinstance(info.value, TinyDancerError) and isinstance(info.value, ValueError)
    assert router.circuit_breaker_state == "closed"  # client errors never count as inference failures
    assert router.route(request(5), now=NOW).candidates_processed == 5


def test_non_finite_now_is_rejected(router: Router) -> None:
    with pytest.raises(InvalidInputError, match="now"):
        router.route(request(3), now=float("nan"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"confidence_threshold": -0.1},
        {"confidence_threshold": float("nan")},
        {"max_uncertainty": 1.01},
        {"circuit_breaker_threshold": 0},
        {"circuit_breaker_half_open_probes": 0},
        {"circuit_breaker_reset_timeout_s": -1},
        {"model_path": ""},
        {"circuit_breaker_threshold": 2.5},
    ],
)
def test_config_out_of_range(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        RouterConfig(**kwargs)
    assert isinstance(info.value, ValueError) and next(iter(kwargs)) in str(info.value)


def test_missing_model_gives_seeded_random_model_and_warning(tmp_path: Path) -> None:
    cfg = RouterConfig(model_path=str(tmp_path / "absent.safetensors"), seed=11)
    with pytest.warns(RuntimeWarning, match="random model"):
        a = Router(cfg)
    with pytest.warns(RuntimeWarning):
        b = Router(cfg)
    req = request(10)
    np.testing.assert_array_equal(a.route(req, now=NOW).confidence, b.route(req, now=NOW).confidence)
    assert np.all(np.abs(a.route(req, now=NOW).confidence - 0.5) < 0.01)


class Faulty:
    """Inference that fails while ``failing`` is set."""

    def __init__(self) -> None:
        self.failing = True
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.failing:
            raise RuntimeError("injected fault")
        return default_inference(*args)


def test_breaker_opens_on_inference_failures_and_recovers(tmp_path: Path) -> None:
    t = [float(NOW)]
    faulty = Faulty()
    r = Router(
        RouterConfig(
            model_path=str(strong_model(tmp_path / "m.safetensors")),
            circuit_breaker_threshold=3,
            circuit_breaker_reset_timeout_s=30,
            circuit_breaker_half_open_probes=2,
        ),
        clock=lambda: t[0],
        inference=faulty,
    )
    for _ in range(3):
        with pytest.raises(InferenceError, match="injected fault"):
            r.route(request(4))
    assert r.circuit_breaker_state == "open"
    t[0] += 10
    with pytest.raises(CircuitOpenError) as info:
        r.route(request(4))
    assert info.value.retry_after == pytest.approx(20.0) and faulty.calls == 3  # rejected without inference
    t[0] += 20
    assert r.circuit_breaker_state == "half_open"
    faulty.failing = False
    r.route(request(4))
    assert r.circuit_breaker_state == "half_open"
    r.route(request(4))
    assert r.circuit_breaker_state == "closed"


def test_non_finite_model_output_is_an_inference_error(tmp_path: Path) -> None:
    def nan_inference(*args: Any) -> Any:
        c, u, light = default_inference(*args)
        return c * np.nan, u, light

    r = Router(
        RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors")), circuit_breaker_threshold=1),
        inference=nan_inference,
    )
    with pytest.raises(InferenceError, match="NaN"):
        r.route(request(3), now=NOW)
    assert r.circuit_breaker_state == "open"


def test_reload_swaps_model_and_bad_file_keeps_old(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    strong_model(path, seed=1)
    r = Router(RouterConfig(model_path=str(path)))
    req = request(50)
    before = r.route(req, now=NOW).confidence
    strong_model(path, seed=2)
    r.reload_model()
    after = r.route(req, now=NOW).confidence
    assert not np.array_equal(before, after)
    path.write_bytes(b"garbage" * 10)
    with pytest.raises(ModelLoadError):
        r.reload_model()
    np.testing.assert_array_equal(r.route(req, now=NOW).confidence, after)
    path.unlink()
    with pytest.raises(ModelLoadError, match="not found"):
        r.reload_model()
    np.testing.assert_array_equal(r.route(req, now=NOW).confidence, after)


def test_reload_is_atomic_under_concurrent_routing(tmp_path: Path) -> None:
    """Every response equals the full old model's or the full new model's output, never a mix."""
    path = tmp_path / "m.safetensors"
    models = [strong_model(tmp_path / f"m{i}.safetensors", seed=i) for i in (1, 2)]
    path.write_bytes(models[0].read_bytes())
    r = Router(RouterConfig(model_path=str(path)))
    req = request(30)
    expected = []
    for m in models:
        path.write_bytes(m.read_bytes())
        r.reload_model()
        expected.append(r.route(req, now=NOW).confidence)
    seen: list[np.ndarray] = []
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            seen.append(r.route(req, now=NOW).confidence)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for th in threads:
        th.start()
    for i in range(20):
        path.write_bytes(models[i % 2].read_bytes())
        r.reload_model()
    stop.set()
    for th in threads:
        th.join()
    assert seen
    assert all(any(np.array_equal(s, e) for e in expected) for s in seen)


def test_compiles_once_per_bucket(router: Router) -> None:
    dim = 24  # a dimension no other test uses, so the cache starts empty for it
    sizes = [1, 1, 2, 5, 64, 65, 1024, 1025, 1500, 2048, 2049, 3000, 7]
    kernel = router.model.kernel
    before = kernel._cache_size()
    for n in sizes:
        router.route(request(n, dim=dim), now=NOW)
    # Requests of up to HOST_MAX_CANDIDATES are computed on the host: they compile nothing.
    buckets = {bucket_size(n) for n in sizes if n > HOST_MAX_CANDIDATES}
    assert kernel._cache_size() - before == len(buckets) == 2
    for n in sizes:  # steady state: nothing recompiles
        router.route(request(n, dim=dim), now=NOW)
    assert kernel._cache_size() - before == len(buckets)


def test_slow_inference_is_a_failure(tmp_path: Path) -> None:
    """A slow call (measured on the injected clock, no sleeping) fails and counts towards the breaker."""
    from tinydancer import InferenceTimeoutError

    t = [float(NOW)]

    def slow(*args: Any) -> Any:
        t[0] += 2.5
        return default_inference(*args)

    cfg = RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors")), inference_timeout_s=2.0,
                       circuit_breaker_threshold=2)  # fmt: skip
    r = Router(cfg, clock=lambda: t[0], inference=slow)
    for _ in range(2):
        with pytest.raises(InferenceTimeoutError, match=r"more than inference_timeout_s=2\.0") as info:
            r.route(request(3))
        assert isinstance(info.value, InferenceError)
    assert r.circuit_breaker_state == "open"
    with pytest.raises(ConfigError):
        RouterConfig(inference_timeout_s=0)


@pytest.mark.parametrize("name", ["confidence_threshold", "max_uncertainty", "circuit_breaker_reset_timeout_s",
                                  "inference_timeout_s"])  # fmt: skip
def test_config_rejects_numbers_too_large_for_a_float(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        RouterConfig(**{name: 10**400})
