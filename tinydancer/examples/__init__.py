"""The observability guide's three examples, runnable: ``python -m tinydancer.examples.<name>``.

- ``metrics_example``: Prometheus metrics collection and export.
- ``tracing_example``: OpenTelemetry tracing (Jaeger agent on localhost:6831 if one is running).
- ``full_observability``: metrics, tracing and structured logging together, with a /metrics endpoint.
"""
