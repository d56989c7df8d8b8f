"""Guide example 1, "Metrics Only": route requests, then export the Prometheus metrics.

Run: ``python -m tinydancer.examples.metrics_example`` (fits and saves ``./models/fastgrnn.safetensors``
first when it is absent, see :func:`tinydancer.examples.ensure_model`).
"""

from __future__ import annotations

import sys

from tinydancer.examples import decision_summary, ensure_model
from tinydancer.examples.traffic import NOW, example_traffic
from tinydancer.routing import Router, RouterConfig


def main() -> int:
    """Create a router (metrics are collected automatically), route, print the exposition."""
    router = Router(RouterConfig(model_path=ensure_model()))
    for request in example_traffic(n_requests=20, n_candidates=5).requests:
        router.route(request, now=NOW)
    print(router.export_metrics())
    print(decision_summary(router.collector.decisions().use_lightweight))
    return 0


if __name__ == "__main__":
    sys.exit(main())
