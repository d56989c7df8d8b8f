"""Guide example 3, "Full Observability": logs, tracing and metrics together, with a /metrics endpoint.

Run: ``python -m tinydancer.examples.full_observability [--port 9464]`` (fits and saves
``./models/fastgrnn.safetensors`` first when it is absent, see :func:`tinydancer.examples.ensure_model`).
"""

from __future__ import annotations

import argparse
import sys
import urllib.request

from tinydancer.examples import decision_summary, ensure_model
from tinydancer.examples.traffic import NOW, example_traffic
from tinydancer.observability import TracingConfig, TracingSystem, configure_logging
from tinydancer.routing import Router, RouterConfig


def main(argv: list[str] | None = None) -> int:
    """The guide's complete setup: 1 logging, 2 tracing, 3 router, 4 routing, 5 metrics, 6 cleanup."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port of the /metrics endpoint (0: any free one)")
    parser.add_argument("--requests", type=int, default=10)
    ns = parser.parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(level="INFO", renderer="console")  # 1. structured logging
    tracing = TracingSystem(TracingConfig(service_name="my-service", sampling_ratio=0.1))  # 2. tracing
    tracing.init()
    router = Router(RouterConfig(model_path=ensure_model()))  # 3. router (fitted first if the file is absent)
    for request in example_traffic(
        n_requests=ns.requests, n_candidates=5
    ).requests:  # 4. routing: all observability automatic
        router.route(request, now=NOW)
    server = router.serve_metrics(port=ns.port)  # 5. metrics over HTTP
    try:
        body = urllib.request.urlopen(server.url, timeout=5).read().decode()
        lines = [line for line in body.splitlines() if line.startswith("tiny_dancer_routing_requests_total")]
        print(f"scraped {server.url}:\n" + "\n".join(lines))
    finally:
        server.stop()
    requests = router.collector.requests()
    print(f"collector: {len(requests)} requests, {len(router.collector.decisions())} decisions, "
          f"{len(router.collector.logs())} log records, {len(router.collector.spans())} spans")  # fmt: skip
    print(decision_summary(router.collector.decisions().use_lightweight))
    tracing.shutdown()  # 6. cleanup (flush)
    configure_logging(renderer="none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
