"""Constants defined once and documented as the code has them: buckets, span names and limit, breaker states."""

from __future__ import annotations

import inspect
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tests._routers import NOW, request, strong_model
from tinydancer import Router, RouterConfig
from tinydancer.observability import BREAKER_STATES
from tinydancer.observability.logs import LogConfig
from tinydancer.observability.route_spans import (
    DEFAULT_MAX_CANDIDATE_SPANS,
    SPAN_NAMES,
    UNCERTAINTY_ESTIMATION,
    emit_candidate_spans,
)
from tinydancer.observability.tracing import TracingConfig, TracingSystem
from tinydancer.routing import breaker
from tinydancer.routing.kernel import BUCKETS

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_readme_lists_the_kernels_buckets() -> None:
    found = re.search(r"padded to the buckets ([\d,\s]+?) \(then multiples of (\d+)\)", README)
    assert found is not None, "README's 'What the router computes' must name the bucket sizes"
    listed = tuple(int(n) for n in found.group(1).replace(",", " ").split())
    assert listed == BUCKETS
    assert int(found.group(2)) == BUCKETS[-1]


def test_one_candidate_span_limit_documented_as_the_code_has_it() -> None:
    default = inspect.signature(emit_candidate_spans).parameters["limit"].default
    assert RouterConfig().max_candidate_spans == DEFAULT_MAX_CANDIDATE_SPANS == default == 10
    found = re.search(r"`RouterConfig\.max_candidate_spans`, default (\d+)", README)
    assert found is not None and int(found.group(1)) == DEFAULT_MAX_CANDIDATE_SPANS


def test_a_sampled_route_emits_exactly_the_named_spans(tmp_path: Path) -> None:
    system = TracingSystem(TracingConfig(service_name="names", sampling_ratio=1.0))
    try:
        router = Router(RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors"))), tracing=system,
                        log_config=LogConfig(renderer="none"))  # fmt: skip
        router.route(request(3), now=NOW)
        spans = system.finished_spans()
    finally:
        system.shutdown()
    names = Counter(s.name for s in spans)
    assert set(names) == set(SPAN_NAMES)
    # a candidate route has no batch-level uncertainty span (a prompt route has one): every one is a candidate's
    uncertainty = [s for s in spans if s.name == UNCERTAINTY_ESTIMATION]
    assert len(uncertainty) == 3 and all("candidate_id" in (s.attributes or {}) for s in uncertainty)


def test_the_breaker_states_are_the_one_maps_keys() -> None:
    assert (breaker.CLOSED, breaker.HALF_OPEN, breaker.OPEN) == tuple(BREAKER_STATES) == ("closed", "half_open", "open")
    assert not hasattr(breaker, "STATE_VALUES")


def _notebook_code(name: str) -> str:
    cells = json.loads((REPO / "notebooks" / name).read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")))
def test_notebooks_do_not_redefine_the_breaker_map(name: str) -> None:
    assert not re.search(r"[\"']half_open[\"']\s*:\s*1", _notebook_code(name)), "use td.observability.BREAKER_STATES"
