"""The compat model against a float64 numpy implementation of the original's equations."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tinydancer.model.original import CompatModelConfig, CompatParams, compat_forward, init_compat_params


def numpy_forward(p: CompatParams, x: np.ndarray, nu: float, zeta: float) -> np.ndarray:
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    f = lambda a: np.asarray(a, np.float64)  # noqa: E731
    u = sig(nu * (x @ f(p.w_update).T + f(p.b_update)))
    c = np.tanh(zeta * (x @ f(p.w_candidate).T + f(p.b_candidate)))
    h = (1 - u) * c
    return sig(h @ f(p.w_output).T + f(p.b_output))[..., 0]


@given(st.integers(0, 2**31), st.floats(0.1, 3.0), st.floats(0.1, 3.0), st.integers(1, 16))
def test_forward_matches_numpy(seed: int, nu: float, zeta: float, hidden: int) -> None:
    cfg = CompatModelConfig(hidden_dim=hidden, nu=nu, zeta=zeta)
    rng = np.random.default_rng(seed)
    params = CompatParams(*(rng.normal(0, 1.5, np.shape(t)).astype(np.float32) for t in init_compat_params(cfg, 0)))
    x = rng.normal(0, 1, (7, 5)).astype(np.float32)
    got = np.asarray(compat_forward(params, x, np.float32(nu), np.float32(zeta)))
    np.testing.assert_allclose(got, numpy_forward(params, x.astype(np.float64), nu, zeta), atol=2e-6)


def test_init_is_seeded_and_in_range() -> None:
    cfg = CompatModelConfig()
    a, b, c = init_compat_params(cfg, 7), init_compat_params(cfg, 7), init_compat_params(cfg, 8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a.w_update, c.w_update)
    assert all(np.all(np.abs(t) <= 0.1) for t in a)
    assert not np.any(a.b_update) and not np.any(a.b_output)


def test_untrained_model_is_near_half() -> None:
    cfg = CompatModelConfig()
    x = np.random.default_rng(0).uniform(0, 0.4, (100, 5)).astype(np.float32)
    p = np.asarray(compat_forward(init_compat_params(cfg, 0), x, 1.0, 1.0))
    assert np.all(np.abs(p - 0.5) < 0.01)
