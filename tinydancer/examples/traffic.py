"""Example routing traffic with a known ground truth, and the candidate router fitted on it.

What ``make demo``, the guide's examples and notebooks 1 and 4 route: seeded requests of 8 candidates
whose "lightweight model suffices" truth is known, and the original's model family fitted to them.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from tinydancer.learning import compat_accuracy, fit_compat_model
from tinydancer.model import save_compat_model
from tinydancer.routing import RoutingRequest, pack_request, request_features

NOW = 1_700_000_000


class ExampleTraffic(NamedTuple):
    """Example requests and, for every candidate, whether the lightweight model really sufficed."""

    requests: tuple[RoutingRequest, ...]
    lightweight_ok: tuple[np.ndarray, ...]


def example_traffic(n_requests: int = 50, n_candidates: int = 8, dim: int = 64, seed: int = 0) -> ExampleTraffic:
    """Seeded example requests with a known ground truth.

    The lightweight model suffices for a candidate that is close to the query, has a good track record
    and was used recently: 0.5 sim + 0.3 success + 0.2 recency > 0.55.

    Examples:
        >>> traffic = example_traffic(n_requests=2, n_candidates=3, dim=4)
        >>> len(traffic.requests), traffic.lightweight_ok[0].shape
        (2, (3,))
    """
    rng = np.random.default_rng(seed)
    requests, truth = [], []
    for r in range(n_requests):
        query = rng.normal(size=dim)
        closeness = rng.uniform(-0.2, 1.0, n_candidates)[:, None]
        noise = rng.normal(size=(n_candidates, dim))
        embeddings = closeness * query + (1 - np.abs(closeness)) * noise
        age = rng.exponential(600, n_candidates)
        success = rng.beta(4, 2, n_candidates)
        access = rng.integers(0, 5000, n_candidates)
        requests.append(
            RoutingRequest.from_arrays(
                query,
                embeddings,
                ids=[f"req{r}-cand{c}" for c in range(n_candidates)],
                created_at=NOW - np.round(age),
                access_count=access,
                success_rate=success,
            )
        )
        sim = embeddings @ query / (np.linalg.norm(embeddings, axis=1) * np.linalg.norm(query))
        truth.append(0.5 * sim + 0.3 * success + 0.2 * np.exp(-0.001 * np.round(age)) > 0.55)
    return ExampleTraffic(tuple(requests), tuple(truth))


def traffic_features(traffic: ExampleTraffic) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs [N, 5] and labels [N] of every candidate in the traffic (as the router computes them)."""
    x = np.concatenate([request_features(pack_request(request, NOW)) for request in traffic.requests])
    return x, np.concatenate(traffic.lightweight_ok).astype(np.float32)


class CandidateRouterFit(NamedTuple):
    """What :func:`fit_candidate_router` fitted and where it saved it.

    Attributes:
        path: The model file written.
        training_candidates: Candidates (rows) it was fitted on.
        held_out_accuracy: Accuracy on a held-out traffic sample (seed + 1).
    """

    path: Path
    training_candidates: int
    held_out_accuracy: float


def fit_candidate_router(model_path: str | Path, n_requests: int = 200, seed: int = 0) -> CandidateRouterFit:
    """Fit the router's candidate model (the original's model family) on example traffic and save it.

    The model the demo routes with, and the one the guide's examples fit when their model file is absent.

    Args:
        model_path: Where to write the safetensors file (parent folders are created).
        n_requests: Requests of training traffic (8 candidates each); a quarter as many (at least 10),
            from seed + 1, measure held-out accuracy.
        seed: Seed of the traffic and of the fit.

    Returns:
        A :class:`CandidateRouterFit`.

    Examples:
        >>> import tempfile
        >>> fit = fit_candidate_router(Path(tempfile.mkdtemp()) / "router.safetensors", n_requests=40)
        >>> fit.path.is_file(), fit.training_candidates, fit.held_out_accuracy > 0.8
        (True, 320, True)
    """
    x, y = traffic_features(example_traffic(n_requests=n_requests, seed=seed))
    params, model_config = fit_compat_model(x, y, steps=600, seed=seed)
    xt, yt = traffic_features(example_traffic(n_requests=max(10, n_requests // 4), seed=seed + 1))
    path = Path(model_path)
    save_compat_model(path, params, model_config)
    return CandidateRouterFit(path, len(y), compat_accuracy(params, model_config, xt, yt))
