"""Training: learns known ground truth, deterministic, early stopping, distillation, IHT, divergence, IO."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tinydancer.datasets.outcomes import make_synthetic_routing
from tinydancer.errors import ConfigError, DataError, ModelLoadError, TrainingError
from tinydancer.learning.train import RoutingData, TrainConfig, evaluate_loss, routing_loss, train_fastgrnn
from tinydancer.model.compression import QuantizedFastGRNNParams, quantize_params
from tinydancer.model.fastgrnn import FastGRNNConfig, fastgrnn_predict
from tinydancer.model.fastgrnn_file import load_fastgrnn, save_fastgrnn
from tinydancer.model.text_features import FeaturizerConfig, featurizer_from_metadata, featurizer_metadata

MODEL = FastGRNNConfig(input_dim=4, hidden_dim=8)


def _split(seed: int, n: int = 400, seq_len: int = 1) -> tuple[RoutingData, RoutingData, np.ndarray]:
    s = make_synthetic_routing(n, 4, seed=seed, seq_len=seq_len)
    data = RoutingData(s.x, s.mask, 1.0 - s.weak_correct, s.p_weak_wrong)
    half = n // 2
    tr = RoutingData(data.x[:half], data.mask[:half], data.y[:half], s.p_weak_wrong[:half])
    va = RoutingData(data.x[half:], data.mask[half:], data.y[half:], s.p_weak_wrong[half:])
    return tr, va, s.p_weak_wrong[half:]


# One optimiser spec and one data shape for most tests: they share a single XLA compilation.
FAST = TrainConfig(epochs=9, batch_size=64, learning_rate=0.1, progress=False, patience=3)


@pytest.fixture(scope="module")
def trained() -> tuple[object, RoutingData, np.ndarray]:
    tr, va, truth = _split(0)
    return train_fastgrnn(MODEL, tr, va, FAST), va, truth


def test_learns_the_known_ground_truth(trained: tuple[object, RoutingData, np.ndarray]) -> None:
    result, va, truth = trained
    p = np.asarray(fastgrnn_predict(result.params, MODEL, va.x, va.mask))  # type: ignore[attr-defined]
    # Ranking close to the true probabilities' ranking, and far above chance.
    assert roc_auc_score(va.y, p) > 0.75 and roc_auc_score(va.y, truth) > 0.85
    assert np.corrcoef(p, truth)[0, 1] > 0.8


def test_history_and_best_weights_restored(trained: tuple[object, RoutingData, np.ndarray]) -> None:
    result, va, _ = trained
    h = result.history  # type: ignore[attr-defined]
    assert list(h.columns) == [
        "phase", "epoch", "stage", "lr", "train_loss", "val_loss", "val_accuracy", "density", "seconds"
    ]  # fmt: skip
    assert set(h["phase"]) == {"select"}
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    best = int(h["val_loss"].idxmin())
    assert result.best_epoch == int(h["epoch"].iloc[best])  # type: ignore[attr-defined]
    loss, _ = evaluate_loss(result.params, MODEL, va)  # type: ignore[attr-defined]
    assert loss == pytest.approx(h["val_loss"].iloc[best], rel=1e-6)
    assert h["lr"].is_monotonic_decreasing  # cosine schedule


def test_refit_trains_on_train_and_val_for_the_chosen_epochs(trained: tuple[object, RoutingData, np.ndarray]) -> None:
    chosen, va, _ = trained
    tr, _, _ = _split(0)
    refit = train_fastgrnn(MODEL, tr, va, dataclasses.replace(FAST, refit=True))
    h, best = refit.history, chosen.best_epoch  # type: ignore[attr-defined]
    assert refit.best_epoch == best
    selected, refitted = h[h["phase"] == "select"], h[h["phase"] == "refit"]
    pd.testing.assert_frame_equal(
        selected.drop(columns="seconds").reset_index(drop=True),
        chosen.history.drop(columns="seconds"),  # type: ignore[attr-defined]
    )
    assert refitted["epoch"].tolist() == list(range(1, best + 1))
    # The last refit epoch's weights are kept, and they have seen the validation rows.
    loss, _ = evaluate_loss(refit.params, MODEL, va)
    assert loss == pytest.approx(refitted["val_loss"].iloc[-1], rel=1e-6)
    assert loss < selected["val_loss"].min()
    assert not np.array_equal(np.asarray(refit.params.w1), np.asarray(chosen.params.w1))  # type: ignore[attr-defined]


def test_refit_with_distillation_needs_the_validation_teacher() -> None:
    tr, va, _ = _split(0)
    cfg = dataclasses.replace(FAST, refit=True, distill_weight=0.5)
    with pytest.raises(DataError, match="refit with distill_weight > 0 needs teacher"):
        train_fastgrnn(MODEL, tr, va._replace(teacher=None), cfg)
    assert train_fastgrnn(MODEL, tr, va, cfg).history["phase"].iloc[-1] == "refit"


def test_same_seed_same_weights_different_seed_different() -> None:
    tr, va, _ = _split(1)
    a, b = train_fastgrnn(MODEL, tr, va, FAST), train_fastgrnn(MODEL, tr, va, FAST)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    c = train_fastgrnn(MODEL, tr, va, dataclasses.replace(FAST, seed=5))
    assert not np.array_equal(np.asarray(a.params.w1), np.asarray(c.params.w1))


def test_early_stopping_stops_after_patience() -> None:
    tr, va, _ = _split(2)
    cfg = TrainConfig(epochs=40, batch_size=64, learning_rate=0.3, schedule="constant", patience=2, progress=False)
    r = train_fastgrnn(MODEL, tr, va, cfg)
    assert len(r.history) < 40
    assert len(r.history) - r.best_epoch == 2


def test_stop_at_accuracy_stops_at_the_first_epoch_that_reaches_it() -> None:
    tr, va, _ = _split(0)
    full = train_fastgrnn(MODEL, tr, va, FAST)
    accuracy = full.history["val_accuracy"].to_numpy()
    target = float(accuracy[2])  # reached by epoch 3 at the latest
    first = int(np.argmax(accuracy >= target))
    stopped = train_fastgrnn(MODEL, tr, va, dataclasses.replace(FAST, stop_at_accuracy=target))
    assert len(stopped.history) == stopped.best_epoch == first + 1  # that epoch's weights, not the best loss's
    assert evaluate_loss(stopped.params, MODEL, va)[1] >= target
    for bad in (0.0, 1.5, "0.8", True):
        with pytest.raises(ConfigError, match="stop_at_accuracy"):
            TrainConfig(stop_at_accuracy=bad)  # type: ignore[arg-type]


def test_distillation_target_is_the_teacher_probability() -> None:
    # At logits = logit(teacher) the pure distillation loss is minimal: gradient zero. Squashing the
    # teacher twice (the original's bug) would move the optimum to sigmoid(teacher).
    teacher = jnp.array([0.1, 0.4, 0.8, 0.97])
    logits = jnp.log(teacher) - jnp.log1p(-teacher)
    for temp in (1.0, 3.0):
        grad = jax.grad(lambda z, t=temp: routing_loss(z, jnp.zeros(4), teacher, jnp.ones(4), 1.0, t))(logits)
        np.testing.assert_allclose(np.asarray(grad), 0.0, atol=1e-5)
    hard = routing_loss(logits, jnp.ones(4), teacher, jnp.ones(4), 0.0, 1.0)
    assert float(hard) == pytest.approx(float(jnp.mean(-jnp.log(teacher))), rel=1e-5)


def test_distillation_training_tracks_the_teacher() -> None:
    tr, va, truth = _split(3)
    r = train_fastgrnn(MODEL, tr, va, dataclasses.replace(FAST, distill_weight=1.0, kd_temperature=2.0))
    p = np.asarray(fastgrnn_predict(r.params, MODEL, va.x, va.mask))
    assert np.mean(np.abs(p - truth)) < 0.1


def test_three_stage_iht_gives_the_requested_density() -> None:
    tr, va, _ = _split(4)
    r = train_fastgrnn(MODEL, tr, va, dataclasses.replace(FAST, sparsity=0.25, iht_every=2, patience=10))
    assert r.history["stage"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert r.best_epoch >= 7
    for name in ("w1", "u1"):
        arr = np.asarray(getattr(r.params, name))
        assert np.count_nonzero(arr) == int(np.ceil(0.25 * arr.size))
    assert r.history["density"].iloc[-1] == pytest.approx(0.25, abs=0.02)


def test_divergence_names_the_epoch() -> None:
    tr, va, _ = _split(5)
    cfg = TrainConfig(epochs=3, batch_size=64, learning_rate=1e38, clip_norm=1e38, schedule="constant", progress=False)
    with pytest.raises(TrainingError, match=r"diverged at epoch 1/3"):
        train_fastgrnn(MODEL, tr, va, cfg)


def test_bad_data_and_config() -> None:
    tr, va, _ = _split(6)
    with pytest.raises(DataError, match="single class"):
        train_fastgrnn(MODEL, tr._replace(y=np.zeros(200)), va, FAST)
    with pytest.raises(DataError, match="teacher"):
        train_fastgrnn(MODEL, tr._replace(teacher=None), va, TrainConfig(distill_weight=0.5, progress=False))
    with pytest.raises(DataError, match="last axis 4"):
        train_fastgrnn(MODEL, tr._replace(x=np.ones((200, 1, 3))), va, FAST)
    with pytest.raises(DataError, match="NaN"):
        train_fastgrnn(MODEL, tr._replace(x=np.full((200, 1, 4), np.nan)), va, FAST)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        train_fastgrnn(MODEL, tr._replace(y=np.full(200, 2.0)), va, FAST)
    for bad in ({"epochs": 0}, {"schedule": "linear"}, {"distill_weight": 1.5}, {"sparsity": 0.5, "epochs": 2}):
        with pytest.raises(ConfigError):
            TrainConfig(**bad)  # type: ignore[arg-type]


def test_checkpoint_round_trip_float_and_int8(trained: tuple[object, RoutingData, np.ndarray], tmp_path: Path) -> None:
    result, va, _ = trained
    params = result.params  # type: ignore[attr-defined]
    meta = featurizer_metadata(FeaturizerConfig(kind="wordllama_mean"), None)
    path = save_fastgrnn(tmp_path / "m" / "router.safetensors", params, MODEL, meta)
    back, cfg, extra = load_fastgrnn(path)
    assert cfg == MODEL and featurizer_from_metadata(extra)[0].kind == "wordllama_mean"
    np.testing.assert_array_equal(
        np.asarray(fastgrnn_predict(back, cfg, va.x)), np.asarray(fastgrnn_predict(params, MODEL, va.x))
    )
    qpath = save_fastgrnn(tmp_path / "q.safetensors", quantize_params(params), MODEL)
    qback, _, _ = load_fastgrnn(qpath)
    assert isinstance(qback, QuantizedFastGRNNParams) and qback.w1.values.dtype == jnp.int8
    assert qpath.stat().st_size < path.stat().st_size
    np.testing.assert_allclose(
        np.asarray(fastgrnn_predict(qback, MODEL, va.x)), np.asarray(fastgrnn_predict(params, MODEL, va.x)), atol=0.03
    )


def test_checkpoint_errors(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    with pytest.raises(ModelLoadError, match="no such"):
        load_fastgrnn(tmp_path / "absent.safetensors")
    other = tmp_path / "other.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(other), metadata={"format": "ruvector-tiny-dancer-fastgrnn-v1"})
    with pytest.raises(ModelLoadError, match="expected format"):
        load_fastgrnn(other)
    wrong = tmp_path / "wrong.safetensors"
    save_fastgrnn(wrong, train_params_for(FastGRNNConfig(input_dim=3, hidden_dim=8)), MODEL)
    with pytest.raises(ModelLoadError, match="'w1' expected shape"):
        load_fastgrnn(wrong)
    (tmp_path / "junk.safetensors").write_bytes(b"not a file at all")
    with pytest.raises(ModelLoadError, match="not a readable"):
        load_fastgrnn(tmp_path / "junk.safetensors")
    with pytest.raises(ConfigError, match="reserved"):
        save_fastgrnn(tmp_path / "x.safetensors", train_params_for(MODEL), MODEL, {"format": "x"})


def train_params_for(cfg: FastGRNNConfig) -> object:
    from tinydancer.model.fastgrnn import init_fastgrnn_params

    return init_fastgrnn_params(cfg)
