"""Fault injection: every kind of model fault walks the breaker through its whole cycle, visibly.

Builds on test_router.py (breaker opens and recovers, NaN output, slow call) and
test_router_observability.py (errors_total by type for exceptions): here each fault kind (exception,
NaN, infinity, slow call on the injected clock, malformed output) drives closed -> open -> half-open
-> open (failed probe) -> half-open -> closed, and every step is checked in the gauge, the logs,
the spans and errors_total, with the injected inference never called while open. Then concurrent
half-open probes, the disabled breaker, and hot reload with good and bad files under 4 routing threads.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from tests._routers import NOW, strong_model
from tinydancer import (
    CircuitOpenError,
    CompatModelConfig,
    InferenceError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelLoadError,
    Router,
    RouterConfig,
    RoutingRequest,
)
from tinydancer.model import init_compat_params
from tinydancer.model.original_file import COMPAT_FORMAT
from tinydancer.observability.logs import LogConfig
from tinydancer.observability.tracing import TracingSystem
from tinydancer.routing.router import _load_served, default_inference

RNG = np.random.default_rng(7)
Outputs = tuple[np.ndarray, np.ndarray, np.ndarray]


def request(n: int = 4, dim: int = 8, seed: int = 0) -> RoutingRequest:
    rng = np.random.default_rng(seed)
    return RoutingRequest.from_arrays(
        rng.normal(size=dim), rng.normal(size=(n, dim)), ids=[f"c{i}" for i in range(n)],
        created_at=NOW - rng.integers(0, 5000, n), access_count=rng.integers(0, 100, n),
        success_rate=rng.uniform(0, 1, n))  # fmt: skip


def sample(router: Router, name: str, **labels: str) -> float:
    rows = [
        s for s in router.metrics.samples() if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(rows) == 1, (name, labels, rows)
    return rows[0].value


class Clock:
    def __init__(self) -> None:
        self.t = float(NOW)

    def __call__(self) -> float:
        return self.t


def _raise(clock: Clock, out: Outputs) -> Outputs:
    raise RuntimeError("injected fault")


def _nan(clock: Clock, out: Outputs) -> Outputs:
    return out[0] * np.nan, out[1], out[2]


def _inf(clock: Clock, out: Outputs) -> Outputs:
    return np.full_like(out[0], np.inf), out[1], out[2]


def _slow(clock: Clock, out: Outputs) -> Outputs:
    clock.t += 5.0  # the injected clock moves past inference_timeout_s=1: no sleeping
    return out


def _oom(clock: Clock, out: Outputs) -> Outputs:
    raise MemoryError("injected device out of memory")


def _short(clock: Clock, out: Outputs) -> Outputs:
    return out[0][:-1], out[1][:-1], out[2][:-1]


def _nan_uncertainty(clock: Clock, out: Outputs) -> Outputs:
    return out[0], out[1] * np.nan, out[2]


def _out_of_range(clock: Clock, out: Outputs) -> Outputs:
    return out[0] + 2.0, out[1], out[2]


def _garbage(clock: Clock, out: Outputs) -> Outputs:
    return None  # type: ignore[return-value]


# fault kind -> (how the output is spoiled, error class, errors_total label, message fragment)
FAULTS: dict[str, tuple[Callable[[Clock, Outputs], Outputs], type[Exception], str, str]] = {
    "exception": (_raise, InferenceError, "inference_error", "injected fault"),
    "memory_error": (_oom, InferenceError, "inference_error", "MemoryError"),
    "nan": (_nan, InferenceError, "inference_error", "NaN"),
    "inf": (_inf, InferenceError, "inference_error", "infinite"),
    "wrong_shape": (_short, InferenceError, "inference_error", "expected (4,) each"),
    "nan_uncertainty": (_nan_uncertainty, InferenceError, "inference_error", "NaN or infinite"),
    "out_of_range": (_out_of_range, InferenceError, "inference_error", "outside [0, 1]"),
    "not_a_tuple": (_garbage, InferenceError, "inference_error", "expected (confidence, uncertainty"),
    "slow": (_slow, InferenceTimeoutError, "inference_timeout", "inference_timeout_s=1"),
}


class FaultyInference:
    """The real kernel, spoiled while ``failing`` is set; counts its calls."""

    def __init__(self, clock: Clock, spoil: Callable[[Clock, Outputs], Outputs]) -> None:
        self.clock, self.spoil = clock, spoil
        self.failing = False
        self.calls = 0

    def __call__(self, *args: Any) -> Outputs:
        self.calls += 1
        out = default_inference(*args)
        return self.spoil(self.clock, out) if self.failing else out


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(strong_model(tmp_path_factory.mktemp("faults") / "m.safetensors"))


@pytest.mark.parametrize("kind", list(FAULTS))
def test_fault_drives_the_whole_breaker_cycle_visibly(kind: str, model_path: str, tracing: TracingSystem) -> None:
    spoil, error, label, fragment = FAULTS[kind]
    clock = Clock()
    faulty = FaultyInference(clock, spoil)
    cfg = RouterConfig(model_path=model_path, circuit_breaker_threshold=3, circuit_breaker_reset_timeout_s=30,
                       circuit_breaker_half_open_probes=2, inference_timeout_s=1.0)  # fmt: skip
    router = Router(cfg, clock=clock, inference=faulty, tracing=tracing, log_config=LogConfig(renderer="none"))
    gauge: list[float] = []

    def step(expect: type[Exception] | None) -> None:
        if expect is None:
            assert router.route(request(), now=NOW).candidates_processed == 4
        else:
            with pytest.raises(expect) as info:
                router.route(request(), now=NOW)
            assert type(info.value) is expect
            if expect is not CircuitOpenError:
                assert fragment in str(info.value)
        gauge.append(sample(router, "tiny_dancer_circuit_breaker_state"))

    step(None)  # closed, healthy
    faulty.failing = True
    for _ in range(2):
        step(error)
    assert router.circuit_breaker_state == "closed"  # two consecutive failures: not yet
    step(error)
    assert router.circuit_breaker_state == "open" and faulty.calls == 4
    for _ in range(5):
        clock.t += 5
        step(CircuitOpenError)
    assert faulty.calls == 4  # rejected fast: the model was never called while open
    clock.t += 5  # 30 s after opening
    assert router.circuit_breaker_state == "half_open"
    gauge.append(sample(router, "tiny_dancer_circuit_breaker_state"))
    step(error)  # the probe fails: open again
    assert router.circuit_breaker_state == "open" and faulty.calls == 5
    clock.t += 30
    faulty.failing = False
    step(None)  # first good probe: still half-open
    assert router.circuit_breaker_state == "half_open"
    step(None)  # second good probe: closed
    assert router.circuit_breaker_state == "closed"
    step(None)
    assert gauge == [0, 0, 0, 2, 2, 2, 2, 2, 2, 1, 2, 1, 0, 0]

    # errors_total by type, requests by status
    assert sample(router, "tiny_dancer_errors_total", error_type=label) == 4
    assert sample(router, "tiny_dancer_errors_total", error_type="circuit_breaker_open") == 5
    others = [s for s in router.metrics.samples() if s.name == "tiny_dancer_errors_total"
              and s.labels["error_type"] not in (label, "circuit_breaker_open")]  # fmt: skip
    assert all(s.value == 0 for s in others)
    assert sample(router, "tiny_dancer_routing_requests_total", status="failure") == 9
    assert sample(router, "tiny_dancer_routing_requests_total", status="success") == 4

    # logs: every transition at WARNING (INFO when closing), every failure at ERROR
    logs = router.collector.logs()
    changes = [(r.level, r.fields["from_state"], r.fields["to_state"])
               for r in router.collector.log_records() if r.event == "Circuit breaker state changed"]  # fmt: skip
    assert changes == [("warning", "closed", "open"), ("warning", "open", "half_open"),
                       ("warning", "half_open", "open"), ("warning", "open", "half_open"),
                       ("info", "half_open", "closed")]  # fmt: skip
    failed = logs[logs.event == "Routing request failed"]
    assert len(failed) == 4 and set(failed.level) == {"error"}
    assert {f["error_type"] for f in failed.fields} == {label}
    rejected = logs[logs.event == "Circuit breaker is open, rejecting request"]
    assert len(rejected) == 5 and set(rejected.level) == {"error"}
    assert [f["retry_after_s"] for f in rejected.fields] == [25.0, 20.0, 15.0, 10.0, 5.0]

    # spans: every failed or rejected request's root span has ERROR status and the exception event
    roots = [s for s in tracing.finished_spans() if s.name == "routing_request"]
    attrs = {id(s): dict(s.attributes or {}) for s in tracing.finished_spans()}
    assert len(roots) == 13
    bad = [s for s in roots if s.status.status_code.name == "ERROR"]
    assert len(bad) == 9 and all(any(e.name == "exception" for e in s.events) for s in bad)
    assert Counter(attrs[id(s)]["outcome"] for s in roots) == {"success": 4, "failure": 4, "rejected": 5}
    batch = [s for s in tracing.finished_spans() if s.name == "model_inference" and "batch_size" in attrs[id(s)]]
    assert len(batch) == 8  # the model ran 8 times (4 faults, 4 successes), never while open
    assert sum(s.status.status_code.name == "ERROR" for s in batch) == 4
    requests = router.collector.requests()
    assert Counter(requests.outcome) == {"success": 4, "failure": 4, "rejected": 5}
    assert set(requests.trace_id) == {format(s.context.trace_id, "032x") for s in roots}


def test_half_open_admits_only_the_configured_probes(model_path: str) -> None:
    """Concurrent callers in half-open: exactly ``probes`` reach the model, the rest are rejected."""
    clock = Clock()
    release, entered = threading.Event(), threading.Semaphore(0)
    mode = {"fail": True, "block": False}

    def inference(*args: Any) -> Outputs:
        if mode["fail"]:
            raise RuntimeError("down")
        if mode["block"]:
            entered.release()
            assert release.wait(timeout=30)
        return default_inference(*args)

    cfg = RouterConfig(model_path=model_path, circuit_breaker_threshold=1, circuit_breaker_reset_timeout_s=10,
                       circuit_breaker_half_open_probes=2)  # fmt: skip
    router = Router(cfg, clock=clock, inference=inference, log_config=LogConfig(renderer="none"))
    with pytest.raises(InferenceError):
        router.route(request(), now=NOW)
    clock.t += 10
    mode.update(fail=False, block=True)
    results: list[Any] = []
    probes = [threading.Thread(target=lambda: results.append(router.route(request(), now=NOW))) for _ in range(2)]
    for th in probes:
        th.start()
    for _ in probes:
        assert entered.acquire(timeout=30)  # both probes are inside the model now
    with pytest.raises(CircuitOpenError) as info:
        router.route(request(), now=NOW)  # a third caller: no probe slot left
    assert info.value.retry_after == 0.0
    release.set()
    for th in probes:
        th.join(timeout=30)
        assert not th.is_alive()
    assert len(results) == 2 and router.circuit_breaker_state == "closed"


def test_invalid_input_in_half_open_frees_the_probe_slot(model_path: str) -> None:
    clock = Clock()
    faulty = FaultyInference(clock, _raise)
    cfg = RouterConfig(model_path=model_path, circuit_breaker_threshold=1, circuit_breaker_reset_timeout_s=10,
                       circuit_breaker_half_open_probes=1)  # fmt: skip
    router = Router(cfg, clock=clock, inference=faulty, log_config=LogConfig(renderer="none"))
    faulty.failing = True
    with pytest.raises(InferenceError):
        router.route(request(), now=NOW)
    clock.t += 10
    faulty.failing = False
    for _ in range(3):  # client errors take and give back the single probe slot
        with pytest.raises(InvalidInputError):
            router.route(RoutingRequest.from_arrays(np.ones(8), np.ones((1, 3))), now=NOW)
        assert router.circuit_breaker_state == "half_open"
    router.route(request(), now=NOW)
    assert router.circuit_breaker_state == "closed" and faulty.calls == 2


def test_disabled_breaker_counts_every_fault_and_never_rejects(model_path: str) -> None:
    clock = Clock()
    faulty = FaultyInference(clock, _nan)
    faulty.failing = True
    cfg = RouterConfig(model_path=model_path, enable_circuit_breaker=False, circuit_breaker_threshold=1)
    router = Router(cfg, clock=clock, inference=faulty, log_config=LogConfig(renderer="none"))
    for _ in range(10):
        with pytest.raises(InferenceError):
            router.route(request(), now=NOW)
    assert faulty.calls == 10 and router.circuit_breaker_state == "closed"
    assert sample(router, "tiny_dancer_errors_total", error_type="inference_error") == 10
    assert sample(router, "tiny_dancer_circuit_breaker_state") == 0


# ---------------------------------------------------------------- hot reload under load


def _raw_model(path: Path, tensors: dict[str, np.ndarray], config: dict[str, Any] | None = None) -> None:
    """Writes a safetensors file in the model layout without save_compat_model's checks."""
    cfg = {"input_dim": 5, "hidden_dim": 8, "output_dim": 1, "nu": 1.0, "zeta": 1.0, "rank": 4, **(config or {})}
    save_file(tensors, str(path), metadata={"config": json.dumps(cfg), "format": COMPAT_FORMAT})


def bad_model_files(folder: Path) -> dict[str, Path]:
    """One file per bad kind: truncated, random bytes, wrong shapes, NaN weights, wrong dtype, empty."""
    cfg = CompatModelConfig()
    good = {k: np.asarray(v, np.float32) for k, v in init_compat_params(cfg, 3)._asdict().items()}
    six = {
        k: np.asarray(v, np.float32) for k, v in init_compat_params(CompatModelConfig(input_dim=6), 3)._asdict().items()
    }
    strong_model(folder / "source.safetensors", seed=3)
    whole = (folder / "source.safetensors").read_bytes()
    files = {
        "truncated": whole[: len(whole) // 2],
        "truncated_header": whole[:20],
        "random_bytes": np.random.default_rng(0).bytes(len(whole)),
        "empty": b"",
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"bad-{name}.safetensors"
        paths[name].write_bytes(data)
    variants: dict[str, tuple[dict[str, np.ndarray], dict[str, Any] | None]] = {
        "wrong_shapes": ({**good, "w_reset": np.zeros((3, 3), np.float32)}, None),
        "nan_weights": ({**good, "w_update": np.full_like(good["w_update"], np.nan)}, None),
        "wrong_dtype": ({k: v.astype(np.float64) for k, v in good.items()}, None),
        "wrong_input_dim": (six, {"input_dim": 6}),  # a valid file, but not for the router's 5 features
    }
    for name, (tensors, config) in variants.items():
        paths[name] = folder / f"bad-{name}.safetensors"
        _raw_model(paths[name], tensors, config)
    return paths


def test_hot_reload_under_load_never_fails_a_request(tmp_path: Path) -> None:
    """4 threads route while the model file is replaced 100 times by good and bad files."""
    goods = [strong_model(tmp_path / f"good{i}.safetensors", seed=10 + i) for i in range(3)]
    bads = bad_model_files(tmp_path)
    live = tmp_path / "live.safetensors"
    live.write_bytes(goods[0].read_bytes())
    router = Router(RouterConfig(model_path=str(live)), log_config=LogConfig(renderer="none"))
    reqs = [request(n, seed=n) for n in (3, 17)]
    expected: list[list[np.ndarray]] = [[], []]  # per request: the outputs of each good model
    for good in goods:
        os.replace(_copy(good, tmp_path), live)
        router.reload_model()
        for i, req in enumerate(reqs):
            expected[i].append(router.route(req, now=NOW).confidence)
    assert all(not np.array_equal(e[0], e[1]) for e in expected)  # the good models really differ
    for bad in bads.values():  # each bad kind on its own: rejected with a typed error
        with pytest.raises(ModelLoadError):
            _load_served(bad, "auto")
    served = [0] * 4
    failures: list[BaseException] = []
    stop = threading.Event()

    def worker(k: int) -> None:
        try:
            # Bounded, so the router's logs (2 per route) stay within the collector's 100,000 records and
            # every reload event is still there to count below, however fast routes are.
            while not stop.is_set() and served[k] < 10_000:
                i = served[k] % 2
                resp = router.route(reqs[i], now=NOW)
                conf = resp.confidence
                assert any(np.array_equal(conf, e) for e in expected[i]), "a response matched no good model"
                served[k] += 1
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    kinds = list(bads)
    good_reloads = bad_reloads = 0
    for step in range(100):
        if step % 2 == 0:
            os.replace(_copy(goods[step // 2 % 3], tmp_path), live)
            router.reload_model()
            good_reloads += 1
        else:
            os.replace(_copy(bads[kinds[step // 2 % len(kinds)]], tmp_path), live)
            with pytest.raises(ModelLoadError):
                router.reload_model()
            bad_reloads += 1
    stop.set()
    for th in threads:
        th.join(timeout=60)
        assert not th.is_alive(), "a routing thread is stuck"
    assert not failures, failures[:3]
    total = sum(served)
    print(f"hot reload: {total} routes served during 100 reloads, per thread {served}")
    assert min(served) >= 1
    assert (good_reloads, bad_reloads) == (50, 50)
    assert sample(router, "tiny_dancer_errors_total", error_type="model_load_error") == bad_reloads
    assert sample(router, "tiny_dancer_routing_requests_total", status="failure") == 0
    assert sample(router, "tiny_dancer_routing_requests_total", status="success") == total + 6
    logs = router.collector.logs()
    assert (logs.event == "Model reload failed, keeping the previous model").sum() == bad_reloads
    assert (logs.event == "Model reloaded").sum() == good_reloads + 3
    assert router.circuit_breaker_state == "closed"


def _copy(src: Path, folder: Path) -> Path:
    """A copy next to the live file, so os.replace swaps the whole file at once."""
    tmp = folder / f".incoming-{src.name}"
    tmp.write_bytes(src.read_bytes())
    return tmp
