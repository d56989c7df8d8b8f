"""Hostile input against the whole public surface: a result or a TinyDancerError, never anything else.

Hypothesis throws requests (queries, candidates, columns, metadata, ``now``, ``traceparent``), configs
(RouterConfig, TracingConfig, LogConfig) and model files (random bytes, truncated and mutated files,
forged headers: oversized declared lengths, wrong dtypes, huge declared shapes, bad offsets) at the
public API. Every case must end in a valid result or a ``TinyDancerError`` subclass with a message;
never another exception type, a crash, a hang, a runaway allocation or a silent wrong answer.

A successful route is checked for being right, not just for existing: every candidate once, sorted,
scores finite in [0, 1], decisions following the thresholds. And hostile input never counts as a
model failure: the breaker stays closed and ``errors_total{error_type="inference_error"}`` stays 0.
test_router.py's table of 20 bad requests is the hand-written half of this; here they are generated.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import re
import struct
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests._routers import NOW, strong_model
from tinydancer import Candidate, Router, RouterConfig, RoutingRequest, TinyDancerError
from tinydancer.errors import ERROR_TYPES, ConfigError, InvalidInputError, ModelLoadError
from tinydancer.model.original_file import COMPAT_FORMAT, MAX_HEADER_BYTES, load_compat_model
from tinydancer.observability.logs import EMBEDDING_KEYS, LogConfig
from tinydancer.observability.tracing import TracingConfig, TracingSystem
from tinydancer.routing.packing import MAX_JSON_DEPTH

# --------------------------------------------------------------------------- strategies

FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e39, -1e39, 3e38, 1e-45, 0.0, -0.0])
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(), FLOATS, st.text(max_size=20), st.binary(max_size=8),
    st.complex_numbers(max_magnitude=10), st.lists(st.integers(), max_size=3), st.just({1, 2}),
    st.just(object()), st.just(np.float32(0.5)), st.just(10**400), st.dictionaries(st.text(max_size=3), st.integers()),
)  # fmt: skip
JSON_LEAF = st.none() | st.booleans() | st.integers() | FLOATS | st.text(max_size=10)
#: Numpy scalars as pandas hands them out: most are JSON values, NaN / infinity / complex are not.
NUMPY_LEAF = st.sampled_from([np.int64(7), np.uint64(2**64 - 1), np.bool_(True), np.str_("en"), np.float32(1.0),
                              np.float64(0.5), np.float32("nan"), np.float64("-inf"), np.complex64(1)])  # fmt: skip
JSONISH = st.recursive(
    JSON_LEAF
    | NUMPY_LEAF
    | st.binary(max_size=4)
    | st.just({1, 2})
    | st.tuples(JSON_LEAF)
    | st.sampled_from([10**400, -(2**1024)]),  # beyond float64: serde_json's "number out of range"
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4) | st.integers(0, 3), inner, max_size=3)
    ),
    max_leaves=12,
)
METADATA = st.none() | st.dictionaries(st.sampled_from(["lang", "tier", "x"]), JSONISH, max_size=3) | JUNK


def vector(dim: int) -> st.SearchStrategy[Any]:
    return hnp.arrays(np.float64, dim, elements=FLOATS) | hnp.arrays(
        np.float32, dim, elements=st.floats(-2, 2, width=32)
    )


@st.composite
def hostile_requests(draw: st.DrawFn) -> RoutingRequest:
    """Mostly well-formed requests with a few hostile fields each, so both outcomes are exercised."""
    rate = draw(st.sampled_from([0, 8, 3, 1]))  # 0: all sane; k: each field hostile with chance 1/(k+1)

    def pick(sane: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> Any:
        return draw(hostile) if rate and draw(st.integers(0, rate)) == 0 else draw(sane)

    dim = draw(st.sampled_from([3, 4]))  # few dimensions: each (dimension, bucket) pair compiles the kernel once
    n = draw(st.integers(0, 5))
    unit = st.floats(-2, 2)
    query = pick(hnp.arrays(np.float64, dim, elements=unit), vector(draw(st.integers(0, 7))) | JUNK
                 | st.just(np.ones((2, dim))))  # fmt: skip
    meta = pick(st.none() | st.dictionaries(st.sampled_from(["lang", "tier"]), JSON_LEAF, max_size=2), METADATA)
    if draw(st.booleans()):  # columns
        embeddings = pick(hnp.arrays(np.float64, (n, dim), elements=unit),
                          hnp.arrays(np.float64, (n, draw(st.sampled_from([dim, dim + 1]))), elements=FLOATS)
                          | JUNK)  # fmt: skip
        sane_column = st.lists(st.floats(0, 1) | st.integers(0, 9), min_size=n, max_size=n)
        hostile_column = st.lists(FLOATS | st.integers(-5, 10**6), min_size=n, max_size=n + 1) | JUNK
        ids = pick(st.lists(st.text(max_size=5), min_size=n, max_size=n, unique=True),
                   st.none() | st.lists(st.text(max_size=2) | st.integers(), min_size=n, max_size=n + 1))  # fmt: skip
        return RoutingRequest.from_arrays(
            query, embeddings, ids=ids, created_at=pick(sane_column, hostile_column),
            access_count=pick(st.lists(st.integers(0, 10**6), min_size=n, max_size=n), hostile_column),
            success_rate=pick(sane_column.map(lambda c: [min(1.0, float(x)) for x in c]), hostile_column),
            metadata=meta,
            candidate_metadata=pick(st.none(), st.none() | st.lists(METADATA, min_size=n, max_size=n)),
        )  # fmt: skip
    candidates = [
        Candidate(
            id=f"c{k}" if not rate else pick(st.just(f"c{k}"), st.sampled_from(["a", "a"]) | JUNK),
            embedding=pick(hnp.arrays(np.float64, dim, elements=unit), vector(dim) | vector(dim + 1) | JUNK),
            metadata=pick(
                st.none() | st.dictionaries(st.sampled_from(["lang", "tier"]), JSON_LEAF, max_size=2), METADATA
            ),
            created_at=pick(st.integers(0, NOW), FLOATS | JUNK),
            access_count=pick(st.integers(0, 10**6), st.integers(-2, 10**30) | FLOATS | JUNK),
            success_rate=pick(st.floats(0, 1), st.floats(-0.5, 1.5) | FLOATS | JUNK),
        )
        for k in range(n)
    ]
    return RoutingRequest(query, pick(st.just(candidates), st.just(iter(candidates)) | JUNK), metadata=meta)


# --------------------------------------------------------------------------- requests


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Router:
    path = strong_model(tmp_path_factory.mktemp("hostile") / "m.safetensors")
    return Router(RouterConfig(model_path=str(path), confidence_threshold=0.6, max_uncertainty=0.9),
                  log_config=LogConfig(level="DEBUG", renderer="none"))  # fmt: skip


def metric(router: Router, name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in router.metrics.samples()
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def check_response(router: Router, request: RoutingRequest, response: Any) -> None:
    """A successful route must be a right one, not merely one that did not raise."""
    ids = [c.id for c in request.candidates]
    assert sorted(response.candidate_ids) == sorted(ids) and response.candidates_processed == len(ids)
    conf, unc = response.confidence, response.uncertainty
    assert np.isfinite(conf).all() and np.isfinite(unc).all()
    assert ((conf >= 0) & (conf <= 1) & (unc >= 0) & (unc <= 1)).all()
    assert (np.diff(conf) <= 0).all()
    cfg = router.config
    assert np.array_equal(response.use_lightweight, (conf >= cfg.confidence_threshold) & (unc <= cfg.max_uncertainty))


ALLOWED_LABELS = {"success", "failure", "total", "1-10", "11-50", "51-100", "100+", "original", "fastgrnn",
                  "lightweight", "powerful", *ERROR_TYPES}  # fmt: skip


def assert_no_user_label(router: Router) -> None:
    values = set(re.findall(r'="([^"]*)"', router.export_metrics()))
    numeric = {v for v in values if re.fullmatch(r"[-+0-9.eInf]+", v)}  # histogram "le" bounds
    assert values - numeric <= ALLOWED_LABELS, values - numeric - ALLOWED_LABELS


@settings(max_examples=150)
@given(request=hostile_requests(), now=st.one_of(st.none(), st.integers(0, 2 * NOW), FLOATS, JUNK))
def test_any_request_routes_right_or_raises_typed(router: Router, request: RoutingRequest, now: Any) -> None:
    before = metric(router, "tiny_dancer_routing_requests_total")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a numpy overflow/complex warning would be a silent coercion
            response = router.route(request, now=NOW if now is None else now)
    except TinyDancerError as exc:
        assert isinstance(exc, InvalidInputError), exc  # a client error, never a model failure
        assert str(exc)
        event("invalid_input")
    else:
        check_response(router, request, response)
        event(f"routed {response.candidates_processed} candidates")
    assert metric(router, "tiny_dancer_routing_requests_total") == before + 1  # counted either way
    assert router.circuit_breaker_state == "closed"
    assert metric(router, "tiny_dancer_errors_total", error_type="inference_error") == 0


def test_fuzzed_requests_leave_no_user_label_and_no_embedding_in_logs(router: Router) -> None:
    """After the fuzz run above (module-scoped router): labels are from the fixed set; logs hold no vectors."""
    secret = 0.1234567
    router.route(RoutingRequest.from_arrays(np.full(4, secret), np.full((3, 4), secret), ids=["s-1", "s-2", "s-3"]),
                 now=NOW)  # fmt: skip
    assert_no_user_label(router)
    for record in router.collector.log_records():
        assert not EMBEDDING_KEYS & set(record.fields)
        assert "0.1234567" not in repr(record.fields)


def deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth - 1):
        value = {"k": [value]} if len(str(depth)) % 2 else {"k": value}
    return {"lang": value}


@pytest.mark.parametrize("depth", [2, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 600, 5_000, 100_000])
def test_deep_metadata_beyond_the_recursion_limit(router: Router, depth: int) -> None:
    meta = deep(depth)
    request = RoutingRequest(np.ones(3), [Candidate("a", np.ones(3), metadata=meta)], metadata=meta)
    try:
        response = router.route(request, now=NOW)
    except InvalidInputError as exc:
        assert depth > MAX_JSON_DEPTH // 2 and ("nested deeper" in str(exc) or "Recursion" in str(exc))
    else:
        assert depth <= MAX_JSON_DEPTH and response.candidates_processed == 1


def test_huge_strings_and_ids_route(router: Router) -> None:
    big = "x" * 5_000_000
    request = RoutingRequest(np.ones(3), [Candidate(big, np.ones(3), metadata={"s": big})], metadata={"s": big})
    response = router.route(request, now=NOW)
    assert response.candidate_ids == (big,)
    assert_no_user_label(router)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (np.full(3, 3e38, np.float32), "too large"),  # finite, but its norm overflows float32 in the cosine
        (np.full(3, 1e39), "beyond float32"),  # finite float64, infinite float32
        (np.ones(3) + 1j, "dtype complex"),
        (["1", "2", "3"], "dtype <U1"),
        (np.array([1, 2, 3], dtype=object), "dtype object"),
    ],
)
def test_values_that_used_to_be_coerced_or_to_blame_the_model(router: Router, value: Any, fragment: str) -> None:
    for request in (
        RoutingRequest(np.ones(3), [Candidate("a", value)]),
        RoutingRequest.from_arrays(value, np.ones((1, 3))),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(InvalidInputError, match=re.escape(fragment)):
                router.route(request, now=NOW)
    assert router.circuit_breaker_state == "closed"


def test_extreme_but_finite_columns_route_without_overflow(router: Router) -> None:
    request = RoutingRequest.from_arrays(np.ones(3), np.ones((3, 3)), created_at=[1e300, -1e300, 0],
                                         access_count=[1e300, 2.0**200, 0], success_rate=[0, 1, 0.5])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        response = router.route(request, now=1e18)
    check_response(router, request, response)


@pytest.mark.parametrize("candidates", [None, 5, "abc", [{"id": "a"}], [Candidate("a", np.ones(3)), 7]])
def test_candidates_that_are_not_candidates(router: Router, candidates: Any) -> None:
    with pytest.raises(InvalidInputError, match="candidates"):
        router.route(RoutingRequest(np.ones(3), candidates), now=NOW)


@pytest.mark.parametrize("now", ["now", 1j, [1], float("nan"), 10**400, True])
def test_now_that_is_not_seconds(router: Router, now: Any) -> None:
    with pytest.raises(InvalidInputError, match="now"):
        router.route(RoutingRequest.from_arrays(np.ones(3), np.ones((1, 3))), now=now)


# --------------------------------------------------------------------------- configs

ROUTER_FIELDS = {
    "model_path": st.text(max_size=8) | JUNK,
    "confidence_threshold": FLOATS | JUNK,
    "max_uncertainty": FLOATS | JUNK,
    "enable_circuit_breaker": JUNK,
    "circuit_breaker_threshold": st.integers(-2, 10) | JUNK,
    "circuit_breaker_reset_timeout_s": FLOATS | JUNK,
    "circuit_breaker_half_open_probes": st.integers(-2, 10) | JUNK,
    "seed": st.integers() | JUNK,
    "max_candidate_spans": st.integers(-2, 10**6) | JUNK,
    "inference_timeout_s": FLOATS | JUNK,
}


def typed_or_valid(make: Callable[[], Any]) -> Any:
    try:
        return make()
    except TinyDancerError as exc:
        assert isinstance(exc, ConfigError) and str(exc)
        return None


@given(st.fixed_dictionaries({}, optional=ROUTER_FIELDS))
def test_router_config_accepts_valid_or_raises_config_error(kwargs: dict[str, Any]) -> None:
    cfg = typed_or_valid(lambda: RouterConfig(**kwargs))
    if cfg is not None:  # what is accepted is really in range
        assert 0 <= cfg.confidence_threshold <= 1 and 0 <= cfg.max_uncertainty <= 1
        assert cfg.circuit_breaker_threshold >= 1 and cfg.circuit_breaker_half_open_probes >= 1
        assert math.isfinite(cfg.circuit_breaker_reset_timeout_s) and cfg.circuit_breaker_reset_timeout_s >= 0
        assert isinstance(cfg.enable_circuit_breaker, bool) and 0 <= cfg.seed < 2**63
        assert "\x00" not in cfg.model_path
        hash(cfg)  # static argument of jit: must stay hashable


@given(st.integers(0, 2**63 - 1), st.text(max_size=6))
def test_any_accepted_router_config_builds_a_router(seed: int, name: str) -> None:
    cfg = typed_or_valid(lambda: RouterConfig(model_path=f"/nonexistent/{name}", seed=seed))
    if cfg is None:
        assert "\x00" in name
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "model file not found: random model" warning
        router = Router(cfg, log_config=LogConfig(renderer="none"))
    assert router.circuit_breaker_state == "closed"


SAFE_TEXT = st.text(max_size=12) | JUNK


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "service_name": SAFE_TEXT,
            "service_version": SAFE_TEXT,
            "jaeger_agent_endpoint": st.none()
            | st.text(max_size=12)
            | st.sampled_from(["h:0", "h:65536", ":1", "h:1"]),
            "sampling_ratio": FLOATS | st.integers(-1, 2) | st.booleans(),
            "otlp_endpoint": st.text(max_size=12) | st.just("http://x") | JUNK,
            "in_memory_capacity": st.integers(-2, 10**6) | JUNK,
            "export_queue_size": st.integers(-2, 10**6) | JUNK,
            "export_timeout_s": FLOATS | st.integers(-1, 5) | st.none(),
        },
    )
)
def test_tracing_config_accepts_valid_or_raises_config_error(kwargs: dict[str, Any]) -> None:
    config = typed_or_valid(lambda: TracingConfig(**kwargs))
    if config is not None:  # what is accepted builds a working system
        system = TracingSystem(config)
        assert system.finished_spans() == () and system.exporter_stats() == ()


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "level": st.sampled_from(["debug", "INFO", "warning", "Error", "critical", "trace", ""]) | SAFE_TEXT,
            "renderer": st.sampled_from(["console", "json", "none", "xml"]) | SAFE_TEXT,
            "stream": st.none() | st.just(io.StringIO()) | JUNK,
        },
    )
)
def test_log_config_accepts_valid_or_raises_config_error(kwargs: dict[str, Any]) -> None:
    typed_or_valid(lambda: LogConfig(**kwargs))


FORMER_CONFIG_GAPS: list[tuple[str, Callable[[], Any]]] = [
    ("jaeger_int", lambda: TracingConfig(jaeger_agent_endpoint=5)),  # type: ignore[arg-type]  # was AttributeError
    ("otlp_int", lambda: TracingConfig(otlp_endpoint=5)),  # type: ignore[arg-type]  # was AttributeError
    ("capacity_huge", lambda: TracingConfig(in_memory_capacity=10**20)),  # was OverflowError in TracingSystem
    ("level_list", lambda: LogConfig(level=[])),  # type: ignore[arg-type]  # was TypeError: unhashable
    ("stream_int", lambda: LogConfig(stream=5)),  # type: ignore[arg-type]  # was accepted, then TypeError in Router
]


@pytest.mark.parametrize(("name", "make"), FORMER_CONFIG_GAPS, ids=[g[0] for g in FORMER_CONFIG_GAPS])
def test_former_config_gaps_are_config_errors(name: str, make: Callable[[], Any]) -> None:
    with pytest.raises(ConfigError):
        make()


# --------------------------------------------------------------------------- model files


def good_file(tmp_path: Path) -> bytes:
    return strong_model(tmp_path / "good.safetensors").read_bytes()


def forged(header: dict[str, Any], body: bytes = b"", declared_len: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if declared_len is None else declared_len) + raw + body


def expect_load(tmp_path: Path, data: bytes, name: str = "x.safetensors") -> None:
    """Loads ``data`` as a model file: valid parameters or a ModelLoadError, nothing else."""
    path = tmp_path / name
    path.write_bytes(data)
    try:
        params, config = load_compat_model(path)
    except TinyDancerError as exc:
        assert isinstance(exc, ModelLoadError) and str(path) in str(exc)
    else:
        for tensor_name, shape in config.tensor_shapes().items():
            tensor = getattr(params, tensor_name)
            assert tensor.shape == shape and tensor.dtype == np.float32 and np.isfinite(tensor).all()


@settings(max_examples=100)
@given(data=st.binary(max_size=300))
def test_random_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    expect_load(tmp_path_factory.mktemp("rb"), data)


@settings(max_examples=100)
@given(cut=st.integers(0, 10_000), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4))
def test_truncated_and_mutated_files(tmp_path_factory: pytest.TempPathFactory, cut: int, flips: list[Any]) -> None:
    folder = tmp_path_factory.mktemp("mut")
    data = bytearray(good_file(folder))
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    expect_load(folder, bytes(data[: cut % (len(data) + 1)]) if cut % 3 else bytes(data))


TENSORS = ["w_reset", "w_update", "w_candidate", "w_recurrent", "w_output", "b_reset", "b_update", "b_candidate",
           "b_output"]  # fmt: skip
SHAPES = {"w_reset": [8, 5], "w_update": [8, 5], "w_candidate": [8, 5], "w_recurrent": [8, 8], "w_output": [1, 8],
          "b_reset": [8], "b_update": [8], "b_candidate": [8], "b_output": [1]}  # fmt: skip


@st.composite
def forged_headers(draw: st.DrawFn) -> bytes:
    config = {"input_dim": 5, "hidden_dim": 8, "output_dim": 1, "nu": 1.0, "zeta": 1.0, "rank": 4}
    config.update(draw(st.dictionaries(st.sampled_from(list(config)), JSON_LEAF | st.integers(0, 2**40), max_size=2)))
    header: dict[str, Any] = {
        "__metadata__": draw(
            st.just({"format": COMPAT_FORMAT, "config": json.dumps(config)})
            | JSONISH.map(str)
            | st.just({"format": COMPAT_FORMAT, "config": draw(JSON_LEAF)})
        )
    }
    offset = 0
    for name in TENSORS:
        shape = draw(st.just(SHAPES[name]) | st.lists(st.integers(-1, 2**40), max_size=3) | JSON_LEAF)
        dtype = draw(st.just("F32") | st.sampled_from(["F16", "F64", "I32", "BOOL", "U8", "x"]) | JSON_LEAF)
        size = 4 * math.prod(shape) if isinstance(shape, list) and all(isinstance(d, int) for d in shape) else 4
        end = draw(st.just(offset + size) | st.integers(-1, 2**62))
        header[name] = draw(st.just({"dtype": dtype, "shape": shape, "data_offsets": [offset, end]}) | JSON_LEAF)
        offset = end if isinstance(end, int) and end > offset else offset
    with np.errstate(over="ignore"):
        weight = np.float32(draw(FLOATS)).tobytes()  # NaN, inf and overflowing weights included
    body = draw(st.binary(max_size=64)) + weight * draw(st.integers(0, 200))
    declared = draw(st.none() | st.integers(0, 2**64 - 1) | st.just(MAX_HEADER_BYTES + 1))
    return forged(header, body, declared)


@settings(max_examples=150)
@given(data=forged_headers())
def test_forged_headers(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    expect_load(tmp_path_factory.mktemp("fh"), data)


def test_huge_declared_shapes_and_lengths_allocate_nothing(tmp_path: Path) -> None:
    """Sizes are bounded before allocation: a 16 GiB tensor declared in a tiny file costs nothing."""
    big: dict[str, Any] = {"__metadata__": {"format": COMPAT_FORMAT, "config": json.dumps(
        {"input_dim": 5, "hidden_dim": 65536, "output_dim": 1, "nu": 1.0, "zeta": 1.0})}}  # fmt: skip
    shapes = {"w_reset": [65536, 5], "w_update": [65536, 5], "w_candidate": [65536, 5],
              "w_recurrent": [65536, 65536], "w_output": [1, 65536], "b_reset": [65536], "b_update": [65536],
              "b_candidate": [65536], "b_output": [1]}  # fmt: skip
    offset = 0
    for name, shape in shapes.items():
        end = offset + 4 * math.prod(shape)
        big[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}
        offset = end
    cases = {
        "huge_shapes": forged(big, b"\0" * 64),
        "declared_header_2**63": forged({"a": 1}, declared_len=2**63),
        "declared_header_over_limit": forged({"a": 1}, b"\0" * 64, declared_len=MAX_HEADER_BYTES + 1),
    }
    tracemalloc.start()
    try:
        for name, data in cases.items():
            path = tmp_path / f"{name}.safetensors"
            path.write_bytes(data)
            with pytest.raises(ModelLoadError):
                load_compat_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, peak


class _Exploit:
    """Pickle payload that would create a file if it were ever unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_pickle_files_are_never_unpickled(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps(_Exploit(marker), protocol=protocol))
    with pytest.raises(ModelLoadError):
        load_compat_model(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ModelLoadError):
            Router(RouterConfig(model_path=str(path)))
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["folder", "nul"])
def test_unreadable_model_paths(tmp_path: Path, kind: str) -> None:
    target = tmp_path if kind == "folder" else tmp_path / "a\x00b"
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_compat_model(target)


def test_metrics_bind_loopback_by_default() -> None:
    import inspect

    from tinydancer.observability.metrics import RouterMetrics

    assert inspect.signature(Router.serve_metrics).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(RouterMetrics.serve).parameters["host"].default == "127.0.0.1"
