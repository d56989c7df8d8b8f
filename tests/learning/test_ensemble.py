"""Deep ensembles: the vmapped forward equals the members one by one; uncertainty signals behave."""

from __future__ import annotations

import numpy as np
import pytest

from tinydancer.datasets.outcomes import make_synthetic_routing
from tinydancer.errors import InvalidInputError
from tinydancer.learning.ensemble import _ensemble, ensemble_predict, stack_params, train_ensemble
from tinydancer.learning.train import RoutingData, TrainConfig
from tinydancer.model.fastgrnn import FastGRNNConfig, fastgrnn_predict, init_fastgrnn_params

CFG = FastGRNNConfig(input_dim=4, hidden_dim=6, u_rank=2)


def _members(k: int) -> list:  # type: ignore[type-arg]
    out = []
    for seed in range(k):
        p = init_fastgrnn_params(CFG, seed)
        out.append(p._replace(head_w=p.head_w + np.float32(seed + 1), w1=p.w1 * np.float32(5)))
    return out


def test_matches_members_one_by_one() -> None:
    members = _members(4)
    x = np.random.default_rng(0).normal(size=(7, 3, 4)).astype(np.float32)
    mask = np.ones((7, 3), bool)
    mask[2, 2:] = False
    out = ensemble_predict(stack_params(members), CFG, x, mask)
    each = np.stack([np.asarray(fastgrnn_predict(m, CFG, x, mask)) for m in members])
    np.testing.assert_allclose(np.asarray(out.mean), each.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out.std), each.std(0), rtol=1e-4, atol=1e-6)
    assert np.all(np.asarray(out.mutual_information) >= 0)
    assert float(np.max(out.mutual_information)) > 0


def test_identical_members_have_no_epistemic_uncertainty_and_trace_once() -> None:
    member = _members(1)[0]
    stacked = stack_params([member, member, member])
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    before = _ensemble._cache_size()
    for _ in range(3):
        out = ensemble_predict(stacked, CFG, x)
    assert _ensemble._cache_size() == before + 1  # one trace for this shape bucket
    np.testing.assert_allclose(np.asarray(out.std), 0.0, atol=1e-7)
    np.testing.assert_allclose(np.asarray(out.mutual_information), 0.0, atol=1e-6)


def test_stack_errors() -> None:
    with pytest.raises(InvalidInputError, match="none"):
        stack_params([])
    other = init_fastgrnn_params(FastGRNNConfig(input_dim=4, hidden_dim=5))
    with pytest.raises(InvalidInputError, match="one architecture"):
        stack_params([_members(1)[0], other])


def test_train_ensemble_members_differ() -> None:
    s = make_synthetic_routing(128, 4, seed=0, seq_len=1)
    d = RoutingData(s.x, s.mask, 1 - s.weak_correct)
    stacked = train_ensemble(CFG, d, d, TrainConfig(epochs=2, batch_size=64, progress=False), [0, 1, 2])
    assert stacked.w1.shape == (3, 4, 6)
    assert not np.allclose(np.asarray(stacked.w1[0]), np.asarray(stacked.w1[1]))
    out = ensemble_predict(stacked, CFG, s.x, s.mask)
    assert float(np.mean(out.std)) > 0
