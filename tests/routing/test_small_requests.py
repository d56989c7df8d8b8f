"""The small-request paths (issue 16, item 2) give what the general paths give (the host path: to float32 rounding)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests._routers import NOW, request, strong_model
from tinydancer.errors import InferenceError
from tinydancer.model.candidate_features import candidate_features
from tinydancer.model.compression import quantize_params
from tinydancer.model.fastgrnn import FastGRNNConfig, FastGRNNParams, init_fastgrnn_params
from tinydancer.model.fastgrnn_file import save_fastgrnn
from tinydancer.model.original import CompatModelConfig, init_compat_params
from tinydancer.model.served_fastgrnn import ServedFastGRNN
from tinydancer.observability.logs import LogConfig
from tinydancer.routing.config import RouterConfig
from tinydancer.routing.host_kernel import host_features
from tinydancer.routing.kernel import (
    HOST_MAX_CANDIDATES,
    ONE_BUFFER_MAX_BUCKET,
    DeviceModel,
    KernelOutputs,
    _pad_rows,
    bucket_size,
    run_route,
    run_route_kernel,
)
from tinydancer.routing.packing import F32_MAX, PackedRequest, _column_table
from tinydancer.routing.router import Router

MODEL = DeviceModel.from_params(init_compat_params(CompatModelConfig(), 4), CompatModelConfig())


def numpy_table(now_s: float, created: np.ndarray, access: np.ndarray, success: np.ndarray) -> np.ndarray:
    """The column table in numpy (float64 arithmetic, one rounding to float32; metadata column 0)."""
    table = np.empty((len(created), 4), np.float32)
    table[:, 0] = np.maximum(np.minimum(now_s - created, F32_MAX), -F32_MAX)
    table[:, 1] = np.minimum(access, F32_MAX)
    table[:, 2] = success
    table[:, 3] = 0.0
    return table


def numpy_columns_ok(created: np.ndarray, access: np.ndarray, success: np.ndarray) -> bool:
    with np.errstate(invalid="ignore"):
        return bool(
            np.isfinite(created).all()
            and ((access >= 0) & np.isfinite(access) & (access == np.floor(access))).all()
            and ((success >= 0) & (success <= 1)).all()
        )


def test_compiled_column_table_equals_numpy_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    now = 1_700_000_000.0
    created = np.trunc(np.concatenate([now - rng.uniform(-1e6, 1e9, 5), [-1e300, 1e300, now]]))
    access = np.concatenate([rng.integers(0, 10**6, 5).astype(float), [1e300, 0.0, 3.0]])
    success = np.concatenate([rng.uniform(0, 1, 5), [0.0, 1.0, 0.1]])
    for n in (0, 1, 3, len(created)):
        table, ok = _column_table(created[:n], access[:n], success[:n], now)
        np.testing.assert_array_equal(table, numpy_table(now, created[:n], access[:n], success[:n]))
        assert ok and table.dtype == np.float32 and table.shape == (n, 4)


@pytest.mark.parametrize(
    ("created", "access", "success"),
    [
        (1.0, 2.0, 0.5),
        (math.nan, 2.0, 0.5),
        (math.inf, 2.0, 0.5),
        (-math.inf, 2.0, 0.5),
        (1.0, -1.0, 0.5),
        (1.0, 2.5, 0.5),
        (1.0, math.inf, 0.5),
        (1.0, math.nan, 0.5),
        (1.0, 2.0, 1.5),
        (1.0, 2.0, -0.1),
        (1.0, 2.0, math.nan),
        (1.0, 0.0, 1.0),
    ],
)
@pytest.mark.parametrize("n", [1, 9])
def test_compiled_column_checks_agree_with_numpy(created: float, access: float, success: float, n: int) -> None:
    columns = np.full(n, 5.0), np.full(n, 1.0), np.full(n, 0.5)
    for value, column in zip((created, access, success), columns, strict=True):
        column[n // 2] = value  # one bad value among good ones
    assert _column_table(*columns, 10.0)[1] == numpy_columns_ok(*columns)


@pytest.mark.parametrize("n", [1, 5, 10, ONE_BUFFER_MAX_BUCKET, ONE_BUFFER_MAX_BUCKET + 1])
def test_one_buffer_kernel_call_equals_separate_embeddings(n: int) -> None:
    rng = np.random.default_rng(n)
    dim = 24
    query = rng.normal(size=dim).astype(np.float32)
    embeddings = rng.normal(size=(n, dim)).astype(np.float32)
    columns = np.stack([rng.uniform(0, 5000, n), rng.integers(0, 99, n), rng.uniform(0, 1, n), rng.uniform(0, 1, n)], 1)
    got = run_route_kernel(MODEL, query, embeddings, columns.astype(np.float32), 0.6, 0.9)
    size = bucket_size(n)
    small = np.zeros(dim + 2 + 4 * size, np.float32)
    small[:dim], small[dim : dim + 2] = query, (0.6, 0.9)
    small[dim + 2 : dim + 2 + 4 * n] = columns.astype(np.float32).reshape(-1)
    padded = np.zeros((size, dim), np.float32)
    padded[:n] = embeddings
    reference = np.asarray(MODEL.kernel(MODEL.flat, padded, small))[:, :n]
    np.testing.assert_array_equal(got.confidence, reference[0])
    np.testing.assert_array_equal(got.uncertainty, reference[1])
    np.testing.assert_array_equal(got.use_lightweight, reference[2] > 0.5)


def test_pad_rows_reads_a_leading_buffer_in_place() -> None:
    buffer = np.zeros((8, 3), np.float32)
    rows = buffer[:5]
    assert _pad_rows(rows, 8) is buffer
    assert _pad_rows(buffer[1:6], 8) is not buffer  # not the buffer's leading rows: copied, zero-padded
    copied = _pad_rows(np.ones((5, 3), np.float32), 8)
    assert copied.shape == (8, 3) and copied[5:].sum() == 0


# --- The host path (``run_route`` up to HOST_MAX_CANDIDATES): the jitted kernel is the reference. ---

#: Float32 rounding: XLA's exp / tanh and summation order are not numpy's.
TOL = 2e-6


def _compat_model(seed: int, config: CompatModelConfig, scale: float) -> DeviceModel:
    base = init_compat_params(config, seed)
    rng = np.random.default_rng(seed)
    params = type(base)(*(rng.normal(0, scale, np.shape(t)).astype(np.float32) for t in base))
    return DeviceModel.from_params(params, config)


def _fastgrnn_model(seed: int, spec: ServedFastGRNN) -> DeviceModel:
    rng = np.random.default_rng(seed)
    base = init_fastgrnn_params(spec.fastgrnn, seed)
    params = FastGRNNParams(*(None if t is None else rng.normal(0, 2.0, np.shape(t)).astype(np.float32) for t in base))
    return DeviceModel.from_params(params, spec)


def _int8_model(tmp_path: Path) -> DeviceModel:
    """An int8 checkpoint as the router loads it (dequantised once at load)."""
    config = FastGRNNConfig(input_dim=5, hidden_dim=6, w_rank=3)
    params = _fastgrnn_model(9, ServedFastGRNN(config)).params
    path = save_fastgrnn(tmp_path / "q.safetensors", quantize_params(params), config, {"confidence_of": "strong"})
    return DeviceModel.from_params(*ServedFastGRNN.load(path))


SERVED = {
    "compat_default": lambda _: DeviceModel.from_params(
        init_compat_params(CompatModelConfig(), 0), CompatModelConfig()
    ),
    "compat_spread": lambda _: _compat_model(1, CompatModelConfig(nu=0.8, zeta=1.4), 3.0),
    "compat_wide": lambda _: _compat_model(2, CompatModelConfig(hidden_dim=32, nu=-0.5, zeta=2.0), 1.0),
    "fastgrnn": lambda _: _fastgrnn_model(3, ServedFastGRNN(FastGRNNConfig(input_dim=5, hidden_dim=8))),
    "fastgrnn_low_rank_strong": lambda _: _fastgrnn_model(
        4, ServedFastGRNN(FastGRNNConfig(input_dim=5, hidden_dim=8, w_rank=2, u_rank=3), confidence_of_strong=True)
    ),
    "fastgrnn_quantised_nonlinearities": lambda _: _fastgrnn_model(
        5,
        ServedFastGRNN(
            FastGRNNConfig(input_dim=5, hidden_dim=8, gate_nonlinearity="quantSigm", update_nonlinearity="quantTanh")
        ),
    ),
    "fastgrnn_int8": _int8_model,
}


def _random_request(rng: np.random.Generator, n: int, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    query = rng.normal(size=dim).astype(np.float32)
    embeddings = rng.normal(size=(n, dim)).astype(np.float32) * rng.choice([1e-3, 1.0, 1e3], size=(n, 1))
    columns = np.stack(
        [
            rng.uniform(-1e3, 1e4, n) * rng.choice([0.01, 1.0, 10.0], n),  # recency from ~1 to ~0
            np.floor(10 ** rng.uniform(0, 6, n)) - 1,  # 0 to 10**6: frequency below and at saturation
            rng.uniform(0, 1, n),
            rng.uniform(0, 1, n),
        ],
        1,
    )
    return query, embeddings.astype(np.float32), columns.astype(np.float32)


def _assert_same(model: DeviceModel, request: tuple[np.ndarray, ...], threshold: float, max_unc: float) -> None:
    """The host path's outputs equal the jitted kernel's to float32 rounding, decisions exactly (off the edge)."""
    host = run_route(model, *request, threshold, max_unc)
    kernel = run_route_kernel(model, *request, threshold, max_unc)
    assert host.confidence.dtype == np.float32 and host.uncertainty.dtype == np.float32
    assert host.use_lightweight.dtype == np.bool_
    np.testing.assert_allclose(host.confidence, kernel.confidence, rtol=0, atol=TOL)
    np.testing.assert_allclose(host.uncertainty, kernel.uncertainty, rtol=0, atol=TOL)
    # A score within rounding of a limit may fall either side of it; everywhere else the decisions are equal.
    edge = (np.abs(kernel.confidence - np.float32(threshold)) <= TOL) | (
        np.abs(kernel.uncertainty - np.float32(max_unc)) <= TOL
    )
    np.testing.assert_array_equal(host.use_lightweight[~edge], kernel.use_lightweight[~edge])
    # The host path decides on its own scores exactly as the kernel rule does, in float32.
    own = (host.confidence >= np.float32(threshold)) & (host.uncertainty <= np.float32(max_unc))
    np.testing.assert_array_equal(host.use_lightweight, own)


def test_small_requests_take_the_host_path() -> None:
    assert MODEL.host is not None
    assert DeviceModel(MODEL.config, MODEL.flat).host is None  # a model built without one: kernel only
    assert HOST_MAX_CANDIDATES >= ONE_BUFFER_MAX_BUCKET


@pytest.mark.parametrize("kind", sorted(SERVED))
def test_host_path_equals_the_jitted_kernel_on_random_requests(kind: str, tmp_path: Path) -> None:
    model = SERVED[kind](tmp_path)
    assert model.host is not None
    rng = np.random.default_rng(len(kind))
    spread = []
    for trial in range(60):
        n = int(rng.choice([1, 2, 3, 5, 8, 10, 16, 33, 64, 100, HOST_MAX_CANDIDATES]))
        request = _random_request(rng, n, dim=int(rng.choice([1, 7, 384])))
        threshold, max_unc = (0.85, 0.15) if trial % 3 == 0 else (float(rng.uniform(0, 1)), float(rng.uniform(0, 1)))
        _assert_same(model, request, threshold, max_unc)
        spread.append(run_route(model, *request, 0.5, 1.0).confidence)
    if kind != "compat_default":  # models with real weights: scores spread, so the comparison means something
        assert np.ptp(np.concatenate(spread)) > 0.01


@pytest.mark.parametrize("kind", sorted(SERVED))
def test_host_path_edge_cases(kind: str, tmp_path: Path) -> None:
    model = SERVED[kind](tmp_path)
    dim, big = 6, np.float32(np.finfo(np.float32).max)
    zero, one = np.zeros(dim, np.float32), np.ones(dim, np.float32)
    tiny = np.full(dim, 1e-30, np.float32)  # squares underflow: a zero norm, as in the kernel
    embeddings = np.stack([zero, one, -one, tiny, one * 1e18, np.eye(dim, dtype=np.float32)[0]])
    n = len(embeddings)
    ages = np.array([-big, -1.0, 0.0, 1e9, big, 693.0], np.float32)
    counts = np.array([0.0, 1.0, 10000.0, big, 3.0, 0.0], np.float32)
    columns = np.stack([ages, counts, np.array([0, 1, 0.5, 0, 1, 0.25]), np.array([1, 0, 0.5, 1, 0, 0.75])], 1)
    for query in (zero, one, tiny, -one * 1e18):
        request = (query, embeddings, columns.astype(np.float32))
        for threshold, max_unc in ((0.0, 1.0), (1.0, 0.0), (0.5, 0.5), (0.85, 0.15)):
            _assert_same(model, request, threshold, max_unc)
        for i in range(n):  # each candidate alone, too
            _assert_same(model, (query, embeddings[i : i + 1], columns[i : i + 1].astype(np.float32)), 0.5, 0.5)


def test_host_path_features_equal_the_kernel_features() -> None:
    rng = np.random.default_rng(7)
    for n in (1, 4, 9):
        query, embeddings, columns = _random_request(rng, n, 24)
        embeddings[0] = 0.0
        want = np.asarray(candidate_features(query, embeddings, *columns.T))
        np.testing.assert_allclose(host_features(query, embeddings, columns), want, rtol=0, atol=1e-7)
    zero = np.zeros(3, np.float32)
    both_zero = host_features(zero, zero[None], np.zeros((1, 4), np.float32))
    assert both_zero[0, 0] == np.float32(0.4)  # zero vs zero: similarity 1.0, weighted


@pytest.mark.parametrize("kind", ["compat_spread", "fastgrnn_low_rank_strong"])
def test_host_decisions_at_the_limits(kind: str, tmp_path: Path) -> None:
    """A limit exactly at a score: >= and <= hold, as in the kernel; one float32 step past it, they do not."""
    model = SERVED[kind](tmp_path)
    request = _random_request(np.random.default_rng(11), 8, 16)
    scores = run_route(model, *request, 0.5, 1.0)
    for i in range(8):
        conf, unc = scores.confidence[i], scores.uncertainty[i]
        at = run_route(model, *request, float(conf), float(unc)).use_lightweight[i]
        above = run_route(model, *request, float(np.nextafter(conf, np.float32(2))), 1.0).use_lightweight[i]
        below = run_route(model, *request, 0.0, float(np.nextafter(unc, np.float32(-1)))).use_lightweight[i]
        assert at and not above and not below
        kernel = run_route_kernel(model, *request, float(conf), float(unc))
        if kernel.confidence[i] == conf and kernel.uncertainty[i] == unc:  # the same scores: the same decision
            assert kernel.use_lightweight[i]
    # The limits are compared in float32, as the kernel receives them: 0.1 is float32(0.1) to both.
    for run in (run_route, run_route_kernel):
        threshold = float(run(model, *request, 0.5, 1.0).confidence[0]) + 1e-12  # the score again in float32
        assert threshold > run(model, *request, 0.5, 1.0).confidence[0].item()  # above it in float64
        assert run(model, *request, threshold, 1.0).use_lightweight[0]


def test_host_path_raises_the_kernels_error_for_a_broken_model() -> None:
    config = CompatModelConfig()
    params = init_compat_params(config, 0)._replace(b_output=np.array([np.nan], np.float32))
    model = DeviceModel.from_params(params, config)
    request = _random_request(np.random.default_rng(0), 3, 8)
    for run in (run_route, run_route_kernel):
        with pytest.raises(InferenceError, match="NaN, infinite or out-of-range"):
            run(model, *request, 0.5, 0.5)


def test_router_serves_small_requests_on_the_host_and_keeps_a_custom_hook(tmp_path: Path) -> None:
    model_path = strong_model(tmp_path / "m.safetensors")
    config = RouterConfig(model_path=str(model_path), confidence_threshold=0.6, max_uncertainty=0.9)
    calls: list[int] = []

    def kernel_only(model: DeviceModel, packed: PackedRequest, threshold: float, max_unc: float) -> KernelOutputs:
        calls.append(len(packed.ids))
        return run_route_kernel(model, packed.query, packed.embeddings, packed.columns, threshold, max_unc)

    logs = LogConfig(renderer="none")
    host, hooked = Router(config, log_config=logs), Router(config, inference=kernel_only, log_config=logs)
    for n in (1, 5, HOST_MAX_CANDIDATES, HOST_MAX_CANDIDATES + 1):
        req = request(n)
        got, want = host.route(req, now=NOW), hooked.route(req, now=NOW)
        assert calls[-1] == n  # the hook serves every size
        order = np.argsort(np.asarray(want.candidate_ids))
        mine = np.argsort(np.asarray(got.candidate_ids))
        np.testing.assert_allclose(got.confidence[mine], want.confidence[order], rtol=0, atol=TOL)
        np.testing.assert_allclose(got.uncertainty[mine], want.uncertainty[order], rtol=0, atol=TOL)
        edge = (np.abs(want.confidence[order] - 0.6) <= TOL) | (np.abs(want.uncertainty[order] - 0.9) <= TOL)
        np.testing.assert_array_equal(got.use_lightweight[mine][~edge], want.use_lightweight[order][~edge])
    assert len(host.collector.decisions()) == 1 + 5 + 2 * HOST_MAX_CANDIDATES + 1
    assert 'tiny_dancer_routing_requests_total{status="success"} 4.0' in host.export_metrics()


@pytest.mark.parametrize("kind", sorted(SERVED))
def test_host_path_reads_rows_by_index_as_it_reads_a_gathered_copy(kind: str, tmp_path: Path) -> None:
    """A store's rows read in place by index give bit for bit what the same rows copied out give."""
    model = SERVED[kind](tmp_path)
    assert model.host is not None
    rng = np.random.default_rng(len(kind) + 1)
    matrix = rng.normal(size=(50, 9)).astype(np.float32)
    matrix[7] = 0.0  # a zero row among them
    for n in (1, 3, 50):
        rows = rng.permutation(50)[:n]
        query, _, columns = _random_request(rng, n, 9)
        in_place = run_route(model, query, matrix, columns, 0.5, 0.5, rows)
        copied = run_route(model, query, matrix[rows], columns, 0.5, 0.5)
        for a, b in zip(in_place, copied, strict=True):
            np.testing.assert_array_equal(a, b)


def test_host_path_refuses_row_indices_that_do_not_fit() -> None:
    """Compiled code reads without bounds checks: a bad index or count is an error, never a read past the matrix."""
    assert MODEL.host is not None
    matrix, query, columns = np.ones((3, 4), np.float32), np.ones(4, np.float32), np.zeros((2, 4), np.float32)
    for rows in (np.array([3, 0]), np.array([0, -1])):
        with pytest.raises(IndexError, match="row index is outside"):
            MODEL.host(query, matrix, columns, 0.5, 0.5, rows)
    with pytest.raises(ValueError, match="one embedding row"):
        MODEL.host(query, matrix, columns, 0.5, 0.5, np.array([0]))
    with pytest.raises(ValueError, match="one embedding row"):
        MODEL.host(query, matrix, columns, 0.5, 0.5)  # 3 rows, 2 candidates
