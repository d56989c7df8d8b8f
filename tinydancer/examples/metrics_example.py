"""Guide example 1, "Metrics Only": route requests, then export the Prometheus metrics.

Run: ``python -m tinydancer.examples.metrics_example``
"""

from __future__ import annotations

import sys
import warnings

from tinydancer.config import RouterConfig
from tinydancer.demo import NOW, example_traffic
from tinydancer.router import Router


def main() -> int:
    """Create a router (metrics are collected automatically), route, print the exposition."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no model file: a seeded random model
        router = Router(RouterConfig(model_path="./models/fastgrnn.safetensors"))
    for request in example_traffic(n_requests=20, n_candidates=5).requests:
        router.route(request, now=NOW)
    print(router.export_metrics())
    return 0


if __name__ == "__main__":
    sys.exit(main())
