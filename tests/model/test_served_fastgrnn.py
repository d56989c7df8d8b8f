"""A trained FastGRNN served through Router.route(): same API, decisions and observability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests._routers import NOW, request
from tinydancer import InvalidInputError, ModelLoadError, Router, RouterConfig
from tinydancer.model.compression import quantize_params
from tinydancer.model.fastgrnn import FastGRNNConfig, FastGRNNParams, fastgrnn_predict, init_fastgrnn_params
from tinydancer.model.fastgrnn_file import save_fastgrnn
from tinydancer.observability.logs import LogConfig
from tinydancer.routing.batch import score_features
from tinydancer.routing.kernel import uncertainty_of
from tinydancer.routing.packing import pack_request, request_features


def trained_like(config: FastGRNNConfig, seed: int = 3) -> FastGRNNParams:
    """Random but non-trivial weights, so confidences spread over (0, 1)."""
    rng = np.random.default_rng(seed)
    base = init_fastgrnn_params(config, seed)
    return FastGRNNParams(
        *(None if t is None else np.asarray(rng.normal(0, 2.0, np.shape(t)), np.float32) for t in base)
    )


def expected(params: object, config: FastGRNNConfig, req: object, strong: bool = False) -> np.ndarray:
    x = request_features(pack_request(req, NOW))  # type: ignore[arg-type]
    p = np.asarray(fastgrnn_predict(params, config, x))
    return 1 - p if strong else p


@pytest.mark.parametrize("w_rank", [None, 2])
def test_route_serves_fastgrnn_exactly(tmp_path: Path, w_rank: int | None) -> None:
    config = FastGRNNConfig(input_dim=5, hidden_dim=6, w_rank=w_rank)
    params = trained_like(config)
    path = save_fastgrnn(tmp_path / "fg.safetensors", params, config)
    router = Router(RouterConfig(model_path=str(path), confidence_threshold=0.6, max_uncertainty=0.9),
                    log_config=LogConfig(renderer="none"))  # fmt: skip
    assert router.model.kind == "fastgrnn"
    req = request(40)
    resp = router.route(req, now=NOW)
    want = dict(zip(req.columns().ids, expected(params, config, req), strict=True))
    got = dict(zip(resp.candidate_ids, resp.confidence.tolist(), strict=True))
    assert max(abs(got[k] - want[k]) for k in want) < 1e-6
    assert list(resp.confidence) == sorted(resp.confidence, reverse=True)
    np.testing.assert_allclose(resp.uncertainty, np.asarray(uncertainty_of(resp.confidence)), atol=1e-6)
    assert np.array_equal(resp.use_lightweight, (resp.confidence >= 0.6) & (resp.uncertainty <= 0.9))
    assert resp.confidence.max() - resp.confidence.min() > 0.01  # a model that really separates candidates
    assert len(router.collector.decisions()) == 40  # observability unchanged
    assert 'tiny_dancer_routing_requests_total{status="success"} 1.0' in router.export_metrics()


def test_strong_scoring_checkpoint_and_int8(tmp_path: Path) -> None:
    config = FastGRNNConfig(input_dim=5, hidden_dim=6)
    params = trained_like(config, seed=5)
    quantized = quantize_params(params)
    path = save_fastgrnn(tmp_path / "q.safetensors", quantized, config, {"confidence_of": "strong"})
    router = Router(RouterConfig(model_path=str(path)), log_config=LogConfig(renderer="none"))
    req = request(16)
    resp = router.route(req, now=NOW)
    want = dict(zip(req.columns().ids, expected(quantized, config, req, strong=True), strict=True))
    assert max(abs(c - want[k]) for k, c in zip(resp.candidate_ids, resp.confidence.tolist(), strict=True)) < 1e-6


def test_hot_reload_switches_model_kind(tmp_path: Path) -> None:
    from tests._routers import strong_model

    path = tmp_path / "m.safetensors"
    strong_model(path)
    router = Router(RouterConfig(model_path=str(path)), log_config=LogConfig(renderer="none"))
    assert router.model.kind == "compat"
    config = FastGRNNConfig(input_dim=5, hidden_dim=4)
    save_fastgrnn(path, trained_like(config), config)
    router.reload_model()
    assert router.model.kind == "fastgrnn"
    assert router.route(request(3), now=NOW).candidates_processed == 3
    with pytest.raises(InvalidInputError, match="fastgrnn_predict"):
        score_features(router.model, np.zeros((2, 5), np.float32))


def test_wrong_input_width_or_metadata_is_rejected(tmp_path: Path) -> None:
    wide = FastGRNNConfig(input_dim=7, hidden_dim=4)
    path = save_fastgrnn(tmp_path / "wide.safetensors", init_fastgrnn_params(wide), wide)
    with pytest.raises(ModelLoadError, match="input_dim is 7"):
        Router(RouterConfig(model_path=str(path)))
    ok = FastGRNNConfig(input_dim=5, hidden_dim=4)
    bad = save_fastgrnn(tmp_path / "bad.safetensors", init_fastgrnn_params(ok), ok, {"confidence_of": "maybe"})
    with pytest.raises(ModelLoadError, match="confidence_of"):
        Router(RouterConfig(model_path=str(bad)))
