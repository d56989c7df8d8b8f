"""Routers and requests shared by the routing and observability tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinydancer import CompatModelConfig, RoutingRequest, save_compat_model
from tinydancer.model import init_compat_params

NOW = 1_700_000_000
RNG = np.random.default_rng(0)


def strong_model(path: Path, seed: int = 1, scale: float = 3.0) -> Path:
    """A model whose confidences spread over (0, 1), so decisions are mixed."""
    cfg = CompatModelConfig(nu=0.8, zeta=1.4)
    base = init_compat_params(cfg, seed)
    rng = np.random.default_rng(seed)
    params = type(base)(*(rng.normal(0, scale, np.shape(t)).astype(np.float32) for t in base))
    save_compat_model(path, params, cfg)
    return path


def request(n: int = 20, dim: int = 16) -> RoutingRequest:
    return RoutingRequest.from_arrays(
        RNG.normal(size=dim),
        RNG.normal(size=(n, dim)),
        ids=[f"c{i}" for i in range(n)],
        created_at=NOW - RNG.integers(0, 5000, n),
        access_count=RNG.integers(0, 1000, n),
        success_rate=RNG.uniform(0, 1, n),
    )
