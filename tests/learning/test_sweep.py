"""Many routers in one vmapped computation: each member as train_fastgrnn trains it alone; typed errors."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from tinydancer.datasets.outcomes import make_synthetic_routing
from tinydancer.errors import ConfigError, TrainingError
from tinydancer.learning.sweep import train_fastgrnn_many
from tinydancer.learning.train import RoutingData, TrainConfig, train_fastgrnn
from tinydancer.model.fastgrnn import FastGRNNConfig

MODEL = FastGRNNConfig(input_dim=4, hidden_dim=8)
BUCKETS = 50


def _splits() -> tuple[RoutingData, RoutingData]:
    s = make_synthetic_routing(400, 4, seed=0)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, BUCKETS, (400, 6)).astype(np.int32)
    data = RoutingData(s.x, s.mask, 1.0 - s.weak_correct, None, ids, np.full((400, 6), 0.4, np.float32))
    return tuple(
        RoutingData(*(None if a is None else a[part] for a in data)) for part in (slice(300), slice(300, None))
    )  # type: ignore[return-value]


def _assert_same(one: object, many: object) -> None:
    for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(many.params), strict=True):  # type: ignore[attr-defined]
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5)
    np.testing.assert_allclose(one.ngram_weights, many.ngram_weights, atol=2e-5)  # type: ignore[attr-defined]
    assert one.best_epoch == many.best_epoch  # type: ignore[attr-defined]
    h1, h2 = one.history, many.history  # type: ignore[attr-defined]
    assert list(h1.columns) == list(h2.columns) and h1["phase"].tolist() == h2["phase"].tolist()
    np.testing.assert_allclose(h1["val_loss"], h2["val_loss"], atol=1e-5)
    np.testing.assert_allclose(h1["lr"], h2["lr"], rtol=1e-6)


@pytest.mark.parametrize(
    "base",
    [
        # Cosine to the epoch cap: every member runs all epochs, then refits.
        TrainConfig(epochs=8, batch_size=64, learning_rate=0.05, patience=2, progress=False, refit=True),
        # A high constant rate overfits: members stop early at different epochs (2, 4 and 3 here).
        TrainConfig(epochs=30, batch_size=64, learning_rate=0.3, schedule="constant", patience=2, progress=False),
    ],
)
def test_each_member_is_what_train_fastgrnn_trains_alone(base: TrainConfig) -> None:
    tr, va = _splits()
    configs = [
        base,
        dataclasses.replace(base, seed=1, learning_rate=base.learning_rate / 3),
        dataclasses.replace(base, seed=2, weight_decay=0.01, ngram_l2=1e-3, ngram_lr_scale=3.0, clip_norm=0.5),
    ]
    many = train_fastgrnn_many(MODEL, tr, va, configs, ngram_buckets=BUCKETS)
    for config, member in zip(configs, many, strict=True):
        _assert_same(train_fastgrnn(MODEL, tr, va, config, ngram_buckets=BUCKETS), member)
    if base.schedule == "constant":
        assert len({m.best_epoch for m in many}) > 1  # they did stop at different epochs


def test_members_must_share_what_shapes_the_computation() -> None:
    tr, va = _splits()
    base = TrainConfig(epochs=2, progress=False)
    with pytest.raises(ConfigError, match=r"configs\[1\]\.batch_size: expected 128 as configs\[0\]"):
        train_fastgrnn_many(MODEL, tr, va, [base, dataclasses.replace(base, batch_size=64)], ngram_buckets=BUCKETS)
    with pytest.raises(ConfigError, match="sparsity"):
        train_fastgrnn_many(MODEL, tr, va, [dataclasses.replace(base, sparsity=0.5, epochs=3)])
    with pytest.raises(ConfigError, match="at least one"):
        train_fastgrnn_many(MODEL, tr, va, [])


def test_a_diverging_member_is_named() -> None:
    tr, va = _splits()
    base = TrainConfig(epochs=3, batch_size=64, progress=False)
    bad = dataclasses.replace(base, seed=7, learning_rate=1e30, clip_norm=1e30)
    with pytest.raises(TrainingError, match=r"member 1 \(seed 7\): training diverged"):
        train_fastgrnn_many(MODEL, tr, va, [base, bad], ngram_buckets=BUCKETS)


def test_ngram_lr_scale_multiplies_the_bags_steps_only() -> None:
    """One Adam step from a zero bag: the bag moves ``ngram_lr_scale`` times as far, the FastGRNN the same."""
    tr, va = _splits()
    one_step = TrainConfig(epochs=1, batch_size=300, schedule="constant", ngram_l2=0.0, progress=False)
    base = train_fastgrnn(MODEL, tr, va, one_step, ngram_buckets=BUCKETS)
    scaled = train_fastgrnn(MODEL, tr, va, dataclasses.replace(one_step, ngram_lr_scale=3.0), ngram_buckets=BUCKETS)
    assert np.abs(base.ngram_weights).max() > 0
    np.testing.assert_allclose(scaled.ngram_weights, 3.0 * base.ngram_weights, rtol=1e-5, atol=1e-8)
    for a, b in zip(jax.tree.leaves(base.params), jax.tree.leaves(scaled.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ConfigError, match="ngram_lr_scale"):
        TrainConfig(ngram_lr_scale=0.0)
