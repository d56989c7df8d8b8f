"""A small seeded request stream shared by the examples."""

from __future__ import annotations

import numpy as np

from tinydancer.types import RoutingRequest

NOW = 1_700_000_000


def example_requests(n_requests: int = 20, n_candidates: int = 5, dim: int = 64, seed: int = 0) -> list[RoutingRequest]:
    """Seeded requests with varied candidates (similarity, age, use, track record).

    Examples:
        >>> len(example_requests(3)), len(example_requests(1, n_candidates=4)[0])
        (3, 4)
    """
    rng = np.random.default_rng(seed)
    requests = []
    for r in range(n_requests):
        query = rng.normal(size=dim)
        embeddings = rng.uniform(-0.2, 1.0, (n_candidates, 1)) * query + rng.normal(size=(n_candidates, dim))
        requests.append(
            RoutingRequest.from_arrays(
                query, embeddings, ids=[f"candidate-{r}-{c}" for c in range(n_candidates)],
                created_at=NOW - rng.integers(0, 3600, n_candidates), access_count=rng.integers(0, 500, n_candidates),
                success_rate=rng.uniform(0.5, 1.0, n_candidates), metadata={"lang": "en"},
                candidate_metadata=[{"lang": "en" if c % 2 else "fr"} for c in range(n_candidates)],
            )
        )  # fmt: skip
    return requests
