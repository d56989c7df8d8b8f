"""The observability guide's three examples, runnable: ``python -m tinydancer.examples.<name>``, and their traffic.

- ``metrics_example``: Prometheus metrics collection and export.
- ``tracing_example``: OpenTelemetry tracing (Jaeger agent on localhost:6831 if one is running).
- ``full_observability``: metrics, tracing and structured logging together, with a /metrics endpoint.

Each loads the guide's model file, ``./models/fastgrnn.safetensors`` (relative to the working folder).
When it is absent, :func:`ensure_model` first fits the candidate router the way ``make demo`` does
(:func:`tinydancer.examples.traffic.fit_candidate_router`, on generated example traffic), saves it there and says so
on stdout, so the examples always route with a fitted model rather than a random one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinydancer.examples.traffic import (
    NOW,
    CandidateRouterFit,
    ExampleTraffic,
    example_traffic,
    fit_candidate_router,
    traffic_features,
)

#: The guide's model path (RouterConfig's default).
MODEL_PATH = "./models/fastgrnn.safetensors"


def ensure_model(path: str = MODEL_PATH) -> str:
    """Return ``path``, first fitting and saving the demo's candidate router there when no file exists.

    Args:
        path: The model file the example's router loads.

    Returns:
        ``path`` (for ``RouterConfig(model_path=...)``).

    Examples:
        >>> import contextlib, io, tempfile
        >>> target = str(Path(tempfile.mkdtemp()) / "models" / "fastgrnn.safetensors")
        >>> with contextlib.redirect_stdout(io.StringIO()) as said:
        ...     returned = ensure_model(target)
        >>> returned == target, Path(target).is_file()
        (True, True)
        >>> print(said.getvalue().replace(target, "PATH"))  # doctest: +ELLIPSIS, +NORMALIZE_WHITESPACE
        no model at PATH: fitted the demo's candidate router on generated example traffic
        (1600 candidates, held-out accuracy 0.99...) and saved it there
        >>> ensure_model(target) == target  # the file exists now: used as is, nothing printed
        True
    """
    if not Path(path).exists():
        fit = fit_candidate_router(path)
        print(
            f"no model at {path}: fitted the demo's candidate router on generated example traffic "
            f"({fit.training_candidates} candidates, held-out accuracy {fit.held_out_accuracy:.3f}) and saved it there"
        )
    return path


def decision_summary(use_lightweight: object) -> str:
    """One line counting the routing decisions: ``routed N candidates: L lightweight, P powerful``.

    Args:
        use_lightweight: The decisions (booleans), e.g. ``router.collector.decisions().use_lightweight``.

    Examples:
        >>> decision_summary([True, False, False])
        'routed 3 candidates: 1 lightweight, 2 powerful'
    """
    flags = np.asarray(use_lightweight, bool)
    light = int(flags.sum())
    return f"routed {flags.size} candidates: {light} lightweight, {flags.size - light} powerful"


__all__ = [
    "MODEL_PATH",
    "NOW",
    "CandidateRouterFit",
    "ExampleTraffic",
    "decision_summary",
    "ensure_model",
    "example_traffic",
    "fit_candidate_router",
    "traffic_features",
]
