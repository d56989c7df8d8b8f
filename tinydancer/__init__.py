"""tinydancer: neural LLM routing research toolkit (JAX FastGRNN router with full observability).

``import tinydancer as td`` reaches everything a notebook needs: the serving names below at the top
level, and every wing as ``td.<wing>.<name>``:

* ``td.model``: FastGRNN, the original's model, compression, checkpoint files, the text featuriser;
* ``td.datasets``: the bundled routing outcomes (``td.datasets.load("routellm-mmlu")``) and generators;
* ``td.routing``: requests, the Router, the breaker, batch scoring;
* ``td.observability``: metrics, tracing, logs, collectors, the /metrics server, monitoring assets;
* ``td.learning``: training, calibration, conformal sets, evaluation, ensembles, experiment steps;
* ``td.plots``: distributions of what a router recorded and learning curves;
* ``td.examples``: the guide's examples and example traffic with a known ground truth.

Importing tinydancer changes no process-wide setting; :func:`configure_jax` is the explicit switch
for serving.
"""

from tinydancer import datasets, examples, learning, model, observability, plots, routing
from tinydancer._version import __version__
from tinydancer.errors import (
    CircuitOpenError,
    ConfigError,
    DataError,
    InferenceError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelLoadError,
    TinyDancerError,
    TrainingError,
)
from tinydancer.model import CompatModelConfig, FastGRNNConfig, load_compat_model, load_fastgrnn, save_compat_model
from tinydancer.observability import (
    Collector,
    LogConfig,
    TraceContext,
    TracingConfig,
    TracingSystem,
    configure_logging,
    load_recording,
)
from tinydancer.plots import plot_confidence, plot_latency, plot_overview, plot_span_waterfall, plot_uncertainty
from tinydancer.routing import (
    Candidate,
    CandidateStore,
    Router,
    RouterConfig,
    RoutingDecision,
    RoutingRequest,
    RoutingResponse,
    replay,
)
from tinydancer.runtime import configure_jax

__all__ = [
    "Candidate",
    "CandidateStore",
    "CircuitOpenError",
    "Collector",
    "CompatModelConfig",
    "ConfigError",
    "DataError",
    "FastGRNNConfig",
    "InferenceError",
    "InferenceTimeoutError",
    "InvalidInputError",
    "LogConfig",
    "ModelLoadError",
    "Router",
    "RouterConfig",
    "RoutingDecision",
    "RoutingRequest",
    "RoutingResponse",
    "TinyDancerError",
    "TraceContext",
    "TracingConfig",
    "TracingSystem",
    "TrainingError",
    "__version__",
    "configure_jax",
    "configure_logging",
    "datasets",
    "examples",
    "learning",
    "load_compat_model",
    "load_fastgrnn",
    "load_recording",
    "model",
    "observability",
    "plot_confidence",
    "plot_latency",
    "plot_overview",
    "plot_span_waterfall",
    "plot_uncertainty",
    "plots",
    "replay",
    "routing",
    "save_compat_model",
]
