"""Shared test set-up: strict JAX dtype promotion (equinox habit), one hypothesis profile, headless plots."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

# TINYDANCER_PURE_PYTHON=1 runs the tests as an install without a C compiler would: the optional C extension
# (Candidate's fields) cannot be imported, so the package uses its pure-Python twin (tests/routing/
# test_candidate_fields.py runs the Candidate tests this way too).
if os.environ.get("TINYDANCER_PURE_PYTHON"):
    sys.modules["tinydancer.routing._candidate"] = None  # type: ignore[assignment]

import jax
import matplotlib
import pytest
from hypothesis import HealthCheck, settings

from tinydancer.observability.tracing import TracingConfig, TracingSystem

matplotlib.use("Agg")  # no display here; set before any test imports pyplot

jax.config.update("jax_numpy_dtype_promotion", "strict")

settings.register_profile(
    "tinydancer", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("thorough", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tinydancer"))


@pytest.fixture
def close_figures() -> Iterator[None]:
    """Each plotting test starts and ends with no open figure."""
    import matplotlib.pyplot as plt

    plt.close("all")
    yield
    plt.close("all")


@pytest.fixture
def tracing(request: pytest.FixtureRequest) -> Iterator[TracingSystem]:
    """A TracingSystem sampling every span, named after the test module, shut down afterwards."""
    system = TracingSystem(TracingConfig(service_name=request.module.__name__.rsplit(".", 1)[-1], sampling_ratio=1.0))
    yield system
    system.shutdown()
