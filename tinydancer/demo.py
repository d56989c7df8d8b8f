"""The end-to-end demo on bundled defaults: fit a router, route example traffic, print what happened.

Everything is generated from a seed, so two runs print the same decisions.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from tinydancer.compat_train import compat_accuracy, fit_compat_model
from tinydancer.config import RouterConfig
from tinydancer.features import candidate_features
from tinydancer.modelio import save_compat_model
from tinydancer.router import Router
from tinydancer.types import RoutingRequest

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
    """Model inputs [N, 5] and labels [N] of every candidate in the traffic."""
    xs = []
    for request in traffic.requests:
        cols = request.columns()
        x = candidate_features(
            np.asarray(request.query_embedding, np.float32),
            np.asarray(cols.embeddings, np.float32),
            (NOW - np.asarray(cols.created_at)).astype(np.float32),
            np.asarray(cols.access_count, np.float32),
            np.asarray(cols.success_rate, np.float32),
            np.zeros(len(cols), np.float32),
        )
        xs.append(np.asarray(x))
    return np.concatenate(xs), np.concatenate(traffic.lightweight_ok).astype(np.float32)


def run_demo(out_dir: str | Path = "models", n_requests: int = 200, seed: int = 0) -> int:
    """Fit, save, route and report; returns a process exit code."""
    import pandas as pd

    train = example_traffic(n_requests=n_requests, seed=seed)
    test = example_traffic(n_requests=max(10, n_requests // 4), seed=seed + 1)
    x, y = traffic_features(train)
    params, model_config = fit_compat_model(x, y, steps=600, seed=seed)
    xt, yt = traffic_features(test)
    model_path = Path(out_dir) / "demo-router.safetensors"
    save_compat_model(model_path, params, model_config)
    print(f"Fitted the compat router on {len(y)} candidates ({y.mean():.0%} lightweight-suitable)")
    print(f"  held-out accuracy {compat_accuracy(params, model_config, xt, yt):.3f}; model saved to {model_path}")

    router = Router(RouterConfig(model_path=str(model_path), confidence_threshold=0.7, max_uncertainty=0.6))
    responses = [router.route(request, now=NOW) for request in test.requests]
    first = responses[0]
    table = pd.DataFrame(
        {
            "candidate": first.candidate_ids,
            "confidence": first.confidence.round(4),
            "uncertainty": first.uncertainty.round(4),
            "route": np.where(first.use_lightweight, "lightweight", "powerful"),
        }
    )
    print("\nDecisions for the first request (best first):")
    print(table.to_string(index=False))
    light = sum(r.lightweight_routes for r in responses)
    total = sum(r.candidates_processed for r in responses)
    truth = {
        cid: ok
        for req, t in zip(test.requests, test.lightweight_ok, strict=True)
        for cid, ok in zip(req.columns().ids, t, strict=True)
    }
    wrong_light = sum(
        1
        for r in responses
        for cid, lw in zip(r.candidate_ids, r.use_lightweight, strict=True)
        if lw and not truth[cid]
    )
    latency = np.array([r.inference_time_us for r in responses])
    print(f"\nRouted {len(responses)} requests, {total} candidates: {light} lightweight ({light / total:.0%}),")
    print(f"  {total - light} powerful; lightweight routes the ground truth calls unsuitable: {wrong_light}")
    print(f"  route() latency median {np.median(latency):.0f} us, p95 {np.percentile(latency, 95):.0f} us")
    return 0
