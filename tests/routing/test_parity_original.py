"""Parity with the original router (npm @ruvector/tiny-dancer 0.1.22), driven through node.

The same model file (written by tinydancer, read by both) and the same candidates go through the
original's ``Router.route()`` and tinydancer's :class:`Router`; confidences, uncertainties, decisions
and the order of candidates must agree. A model trained by the original's ``trainRouter()`` must give
the same outputs in tinydancer's ``compat_forward`` as in the original's ``score()``.

Inputs are float32-exact, so both sides see identical numbers. The original reads its clock inside
``route()`` in whole seconds; the driver brackets the call and hands tinydancer that same second.
Run with ``-s`` to see the measured differences.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests._oracle import Oracle, require_oracle
from tinydancer import (
    Candidate,
    CompatModelConfig,
    Router,
    RouterConfig,
    RoutingRequest,
    load_compat_model,
    save_compat_model,
)
from tinydancer.model import CompatParams, compat_forward

pytestmark = pytest.mark.oracle

TOLERANCE = 1e-6
DIM = 16
#: (tinydancer config kwargs, original Router options): defaults, and a looser rule so decisions mix.
CONFIGS: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = (
    ({}, {}),
    (
        {"confidence_threshold": 0.6, "max_uncertainty": 0.9},
        {"confidenceThreshold": 0.6, "maxUncertainty": 0.9},
    ),
)
QUERY_METADATA: dict[str, Any] = {
    "lang": "en",
    "tier": 2,
    "score": 1.0,
    "flag": True,
    "cfg": {"a": [1, 2, {"b": None}], "c": "x"},
    "tag": "é",
}
#: Candidate metadata variants: absent, empty, full, partial, and JSON-type traps (serde_json semantics:
#: 2 != 2.0, true != 1, 1.0 == 1e0, nested objects compare regardless of key order).
CANDIDATE_METADATA: tuple[dict[str, Any] | None, ...] = (
    None,
    {},
    dict(QUERY_METADATA),
    {"lang": "en"},
    {"lang": "de", "tier": 2},
    {"tier": 2.0},
    {"score": 1},
    {"score": 1.0, "flag": True},
    {"flag": 1},
    {"cfg": {"c": "x", "a": [1, 2, {"b": None}]}},
    {"cfg": {"a": [1, 2, {"b": 0}], "c": "x"}},
    {"cfg": {"a": [2, 1, {"b": None}], "c": "x"}},
    {"unrelated": [1, 2], "lang": "en", "tag": "é"},
    {"lang": None, "tier": "2"},
)


def _model(path: Path, seed: int = 2) -> CompatModelConfig:
    """Write a non-trivial model (large weights, non-zero biases, nu/zeta != 1) with tinydancer's writer."""
    rng = np.random.default_rng(seed)
    config = CompatModelConfig(input_dim=5, hidden_dim=8, output_dim=1, nu=1.25, zeta=0.75, rank=4)
    shapes = config.tensor_shapes()
    scales = {"w_update": 5.0, "w_candidate": 8.0, "w_output": 2.0, "w_reset": 1.0, "w_recurrent": 1.0}
    tensors = {
        name: (rng.normal(0.0, scales.get(name, 0.5), shape)).astype(np.float32) for name, shape in shapes.items()
    }
    tensors["b_output"] = np.array([-0.1], np.float32)
    save_compat_model(path, CompatParams(**tensors), config)
    return config


def _candidates(rng: np.random.Generator, query: np.ndarray, t0: int) -> list[dict[str, Any]]:
    """240 candidates covering the feature space: cosines in [-1, 1], zero vectors, exact ties,
    future and ancient timestamps, access counts 0..1e6, success rates 0..1, metadata variants."""
    n = 240
    mix = rng.uniform(-1.0, 1.0, n)
    noise = rng.normal(0.0, 1.0, (n, DIM))
    embeddings = (mix[:, None] * query[None, :] * 3.0 + noise * rng.uniform(0.0, 1.5, (n, 1))).astype(np.float32)
    embeddings[:6] = 0.0  # zero vectors: cosine 0 against a non-zero query, 1 against a zero query
    embeddings[6] = query  # cosine exactly 1
    embeddings[7] = -2.0 * query  # cosine exactly -1
    ages = np.concatenate(
        [
            [0, 0, 1, 2, 59, 600, 693, 3600, 86_400, 10**9, -1, -3600, -(10**7)],
            rng.integers(-5_000, 20_000, n - 13),
        ]
    )
    access = np.where(rng.uniform(size=n) < 0.2, rng.integers(0, 20, n), rng.integers(0, 50_000, n))
    access[:8] = [0, 1, 2, 10, 9_999, 10_000, 10_001, 10**6]
    success = rng.uniform(0.0, 1.0, n).astype(np.float32)
    success[:4] = [0.0, 1.0, 0.5, 0.25]
    rng.shuffle(ages)
    cands = []
    for i in range(n):
        cands.append(
            {
                "id": f"cand-{i:03d}",
                "embedding": [float(v) for v in embeddings[i]],
                "created_at": int(t0 - ages[i]),
                "access_count": int(access[i]),
                "success_rate": float(success[i]),
                "metadata": CANDIDATE_METADATA[int(rng.integers(len(CANDIDATE_METADATA)))],
            }
        )
    # Exact duplicates under other ids: equal confidences, so the order must follow the input order.
    for j, src in enumerate((10, 10, 11, 0, 1)):
        dup = dict(cands[src])
        dup["id"] = f"dup-{j}-of-{src:03d}"
        cands.append(dup)
    cands[1]["success_rate"] = cands[0]["success_rate"]
    cands[1]["access_count"] = cands[0]["access_count"]
    cands[1]["created_at"] = cands[0]["created_at"]
    cands[1]["metadata"] = cands[0]["metadata"]  # two zero vectors, all else equal: another tie
    return cands


def _json_text(meta: dict[str, Any] | None) -> str | None:
    """Metadata as the JSON text the original gets; numpy scalars written as the numbers/booleans they hold."""
    if meta is None:
        return None
    return json.dumps(meta, ensure_ascii=False, default=_numpy_item)


def _numpy_item(value: Any) -> Any:
    if isinstance(value, np.bool_ | np.integer | np.floating):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _to_node(cands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(c, metadata=_json_text(c["metadata"])) for c in cands]


def _numpy_valued(value: Any) -> Any:
    """The same JSON as numpy scalars (what a pandas row gives), arrays as tuples: the JSON text is unchanged."""
    if isinstance(value, dict):
        return {np.str_(k): _numpy_valued(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_numpy_valued(v) for v in value)
    converters = ((bool, np.bool_), (int, np.int64), (float, np.float64), (str, np.str_))
    return next((to(value) for kind, to in converters if isinstance(value, kind)), value)


def _to_tinydancer(query: np.ndarray, cands: list[dict[str, Any]], meta: dict[str, Any] | None) -> RoutingRequest:
    return RoutingRequest(
        query_embedding=query,
        candidates=[
            Candidate(
                id=c["id"],
                embedding=np.asarray(c["embedding"], np.float32),
                metadata=c["metadata"],
                created_at=c["created_at"],
                access_count=c["access_count"],
                success_rate=c["success_rate"],
            )
            for c in cands
        ],
        metadata=meta,
    )


def _compare(
    oracle: Oracle,
    model_path: Path,
    query: np.ndarray,
    cands: list[dict[str, Any]],
    meta: dict[str, Any] | None,
    td_kwargs: dict[str, Any],
    js_config: dict[str, Any],
) -> dict[str, Any]:
    """Route through both routers; return the measured differences (asserting the exact parts)."""
    now_s, original = oracle.route(
        {
            "model_path": str(model_path),
            "config": js_config,
            "query": [float(v) for v in query],
            "metadata": _json_text(meta),
            "candidates": _to_node(cands),
        }
    )
    assert original["error"] is None, original["error"]
    router = Router(RouterConfig(model_path=str(model_path), **td_kwargs))
    response = router.route(_to_tinydancer(query, cands, meta), now=now_s)

    by_id = {c["id"]: c for c in cands}
    js = {d["candidate_id"]: d for d in original["decisions"]}
    ours = {d.candidate_id: d for d in response.decisions}
    assert original["candidates_processed"] == response.candidates_processed == len(cands)
    assert set(js) == set(ours) == set(by_id)
    conf_diff = {cid: abs(ours[cid].confidence - js[cid]["confidence"]) for cid in by_id}
    unc_diff = {cid: abs(ours[cid].uncertainty - js[cid]["uncertainty"]) for cid in by_id}
    worst = max(conf_diff, key=conf_diff.__getitem__)
    context = f"now_s={now_s}; worst candidate {worst}: {by_id[worst]}, original {js[worst]}, ours {ours[worst]}"
    assert conf_diff[worst] <= TOLERANCE, context
    assert max(unc_diff.values()) <= TOLERANCE, context
    flipped = [(cid, js[cid], ours[cid]) for cid in by_id if js[cid]["use_lightweight"] != ours[cid].use_lightweight]
    assert not flipped, f"decisions differ (now_s={now_s}): {flipped[:5]}"
    # Order: at every rank, our candidate has (by the original's numbers) the original's confidence at
    # that rank within tolerance. Only near-ties may swap (a 1-ulp difference in a saturated sigmoid);
    # exact ties must keep input order on both sides (the original's sort is stable, descending).
    js_order = [d["candidate_id"] for d in original["decisions"]]
    swaps = [
        (rank, a, b, js[a]["confidence"], js[b]["confidence"], ours[a].confidence, ours[b].confidence)
        for rank, (a, b) in enumerate(zip(response.candidate_ids, js_order, strict=True))
        if a != b
    ]
    assert all(abs(s[3] - s[4]) <= TOLERANCE for s in swaps), f"order differs beyond near-ties: {swaps[:5]}"
    position = {cid: i for i, cid in enumerate(by_id)}
    for name, order, conf in (
        ("original", js_order, {cid: d["confidence"] for cid, d in js.items()}),
        ("tinydancer", list(response.candidate_ids), {cid: d.confidence for cid, d in ours.items()}),
    ):
        for a, b in itertools.pairwise(order):
            assert conf[a] >= conf[b], f"{name}: {a} ranked above {b} with a lower confidence"
            if conf[a] == conf[b]:
                assert position[a] < position[b], f"{name}: exact tie {a}, {b} not in input order"
    confidences = np.array([js[cid]["confidence"] for cid in by_id])
    uncertainties = np.array([js[cid]["uncertainty"] for cid in by_id])
    threshold, max_unc = router.config.confidence_threshold, router.config.max_uncertainty
    margin = min(np.abs(confidences - threshold).min(), np.abs(uncertainties - max_unc).min())
    lightweight = np.array([js[cid]["use_lightweight"] for cid in by_id])
    return {
        "max_conf_diff": conf_diff[worst],
        "max_unc_diff": max(unc_diff.values()),
        "n": len(cands),
        "n_lightweight": int(lightweight.sum()),
        "near_tie_swaps": len(swaps),
        "decision_margin": float(margin),
        "conf_range": (float(confidences.min()), float(confidences.max())),
        "confidences": confidences,
    }


def test_route_matches_original(tmp_path: Path) -> None:
    """tinydancer's Router gives the original's confidences, uncertainties, decisions and order."""
    oracle = require_oracle()
    model_path = tmp_path / "fastgrnn.safetensors"
    _model(model_path)
    rng = np.random.default_rng(2024)
    query = rng.normal(0.0, 1.0, DIM).astype(np.float32)
    cands = _candidates(rng, query, t0=int(time.time()))
    runs = []
    for td_kwargs, js_config in CONFIGS:
        runs.append(_compare(oracle, model_path, query, cands, QUERY_METADATA, td_kwargs, js_config))
    # A zero query (zero-vs-zero cosine is 1) and no request metadata (metadata feature 0 for all).
    runs.append(_compare(oracle, model_path, np.zeros(DIM, np.float32), cands, None, *CONFIGS[1]))

    for run, name in zip(runs, ("defaults", "threshold 0.6 / max_uncertainty 0.9", "zero query"), strict=True):
        print(
            f"\nparity [{name}]: {run['n']} candidates, max |confidence diff| = {run['max_conf_diff']:.3g}, "
            f"max |uncertainty diff| = {run['max_unc_diff']:.3g}, lightweight {run['n_lightweight']}/{run['n']}, "
            f"confidence range {run['conf_range'][0]:.4f}..{run['conf_range'][1]:.4f}, "
            f"ranks differing by a near-tie swap {run['near_tie_swaps']}, "
            f"closest distance to a decision boundary {run['decision_margin']:.2g}"
        )
    # The comparison only means something if the model is not the original's random fallback
    # (p ~ 0.5 everywhere), confidences spread over (0, 1) with many near the effective default
    # threshold (0.925), and decisions go both ways under both rules.
    conf = runs[0]["confidences"]
    assert np.mean(conf < 0.3) > 0.1 and np.mean(conf > 0.95) > 0.05
    assert np.sum((conf > 0.5) & (conf < 0.9)) >= 20 and np.sum((conf > 0.9) & (conf < 0.95)) >= 20
    for run in runs[:2]:
        assert 0 < run["n_lightweight"] < run["n"]


def test_numpy_valued_metadata_matches_original(tmp_path: Path) -> None:
    """Metadata built from numpy scalars (np.str_, np.int64, np.bool_, np.float64; pandas' types) routes
    as its JSON text does in the original, JSON-type traps (2 vs 2.0, true vs 1) included."""
    oracle = require_oracle()
    model_path = tmp_path / "fastgrnn.safetensors"
    _model(model_path)
    rng = np.random.default_rng(7)
    query = rng.normal(0.0, 1.0, DIM).astype(np.float32)
    cands = [dict(c, metadata=_numpy_valued(c["metadata"])) for c in _candidates(rng, query, t0=int(time.time()))]
    meta = _numpy_valued(QUERY_METADATA)
    assert isinstance(meta["tier"], np.int64) and isinstance(meta["flag"], np.bool_)
    run = _compare(oracle, model_path, query, cands, meta, *CONFIGS[0])
    print(f"\nparity [numpy-valued metadata]: max |confidence diff| = {run['max_conf_diff']:.3g}")
    # Against the same request with the metadata feature at 0 everywhere: the feature is really in play.
    blind = _compare(oracle, model_path, query, cands, None, *CONFIGS[0])
    assert np.abs(run["confidences"] - blind["confidences"]).max() > 1e-3


def _draco_rows(rng: np.random.Generator, n: int, dim: int) -> list[dict[str, Any]]:
    """Synthetic DRACO rows: the cheap model is good enough when the first coordinate is positive."""
    rows = []
    for _ in range(n):
        emb = rng.uniform(-1.0, 1.0, dim).astype(np.float32)
        cheap = 0.9 if emb[0] > 0 else float(rng.uniform(0.1, 0.6))
        rows.append({"embedding": [float(v) for v in emb], "scores": {"cheap": cheap, "strong": 0.92}})
    return rows


def test_trained_original_model_loads_and_scores_identically(tmp_path: Path) -> None:
    """A model written by the original's trainRouter() loads in tinydancer and scores as its score()."""
    oracle = require_oracle()
    rng = np.random.default_rng(11)
    dim = 8
    rows = _draco_rows(rng, 64, dim)
    inputs = [r["embedding"] for r in rows[:32]]
    inputs += [[0.0] * dim, [1.0] * dim, [float(v) for v in rng.normal(0.0, 4.0, dim).astype(np.float32)]]
    path = tmp_path / "trained.safetensors"
    result = oracle.call(
        "train.js",
        {
            "rows": rows,
            "prices": {"cheap": 1.0, "strong": 15.0},
            "options": {"outputPath": str(path), "inputDim": dim, "hiddenDim": 6, "epochs": 8},
            "score_inputs": inputs,
        },
    )
    assert result["train"]["modelPath"] == str(path) and path.is_file()

    params, config = load_compat_model(path)
    assert (config.input_dim, config.hidden_dim, config.output_dim) == (dim, 6, 1)
    assert np.abs(params.b_update).max() > 0, "training should have moved the biases off zero"
    ours = np.asarray(compat_forward(params, np.asarray(inputs, np.float32), config.nu, config.zeta))
    theirs = np.asarray(result["scores"])
    diff = float(np.abs(ours - theirs).max())
    print(f"\ntrainRouter model: {len(inputs)} inputs, max |compat_forward - score()| = {diff:.3g}")
    assert diff <= TOLERANCE
    assert theirs.min() < 0.4 and theirs.max() > 0.6  # trained, not a constant 0.5


def test_tinydancer_model_file_scores_identically_in_original(tmp_path: Path) -> None:
    """A file written by save_compat_model (input_dim 7, hidden 5) gives the same raw outputs in score()."""
    oracle = require_oracle()
    rng = np.random.default_rng(5)
    config = CompatModelConfig(input_dim=7, hidden_dim=5, output_dim=1, nu=0.5, zeta=1.5, rank=2)
    params = CompatParams(
        **{name: rng.normal(0.0, 1.5, shape).astype(np.float32) for name, shape in config.tensor_shapes().items()}
    )
    path = tmp_path / "ours.safetensors"
    save_compat_model(path, params, config)
    x = rng.normal(0.0, 1.0, (20, 7)).astype(np.float32)
    result = oracle.call("score.js", {"model_path": str(path), "inputs": x.tolist()})
    diff = float(np.abs(np.asarray(compat_forward(params, x, config.nu, config.zeta)) - result["scores"]).max())
    print(f"\nsave_compat_model file in score(): max diff = {diff:.3g}")
    assert diff <= TOLERANCE
    assert np.ptp(result["scores"]) > 0.3


def test_original_clock_and_defaults(tmp_path: Path) -> None:
    """Facts the parity rests on: createdAt is in seconds, the original's clock is whole seconds, and a
    candidate without createdAt / accessCount / successRate counts as created now / 0 / 0."""
    oracle = require_oracle()
    model_path = tmp_path / "fastgrnn.safetensors"
    _model(model_path)
    emb = [1.0, 0.5, -0.25, 2.0]
    t0 = int(time.time())
    base = {"embedding": emb, "metadata": None, "access_count": None, "success_rate": None}
    cands = [dict(base, id=f"at{k:+d}", created_at=t0 + k, access_count=0, success_rate=0.0) for k in range(-2, 5)]
    cands += [
        dict(base, id="future", created_at=t0 + 1000),
        dict(base, id="missing", created_at=None),
        dict(base, id="millis", created_at=t0 * 1000),
    ]
    now_s, out = oracle.route(
        {"model_path": str(model_path), "query": emb, "metadata": None, "candidates": cands, "align_mid_second": True}
    )
    assert out["error"] is None, out["error"]
    assert 200 <= out["before_ms"] % 1000 <= 800, "route() did not start mid-second"
    assert -1 <= now_s - t0 <= 3
    conf = {d["candidate_id"]: d["confidence"] for d in out["decisions"]}
    created_now = f"at{now_s - t0:+d}"
    one_second_old = f"at{now_s - t0 - 1:+d}"
    # Age 0 at mid-second: the clock is whole seconds (a fractional one would age it ~0.5 s).
    # Missing createdAt counts as now; milliseconds look like the future (age <= 0, recency 1).
    assert conf[created_now] == conf["future"] == conf["missing"] == conf["millis"]
    assert abs(conf[one_second_old] - conf["future"]) > 1e-6  # one second of age is visible


def test_missing_and_fractional_created_at_match_original(tmp_path: Path) -> None:
    """tinydancer treats a missing created_at as "now" and truncates fractional seconds, as the original."""
    oracle = require_oracle()
    model_path = tmp_path / "fastgrnn.safetensors"
    _model(model_path)
    query = np.array([0.5, 0.5, 1.0, -1.0], np.float32)
    t0 = int(time.time())
    base = {"embedding": [1.0, 0.5, -0.25, 2.0], "metadata": None, "access_count": 3, "success_rate": 0.5}
    cands = [
        dict(base, id="missing", created_at=None),
        dict(base, id="frac-0.7", created_at=t0 - 0.7),
        dict(base, id="frac-100.5", created_at=t0 - 100.5),
        dict(base, id="frac-3600.25", created_at=t0 - 3600.25),
    ]
    now_s, out = oracle.route({"model_path": str(model_path), "query": query.tolist(), "metadata": None,
                               "candidates": cands})  # fmt: skip
    assert out["error"] is None, out["error"]
    js = {d["candidate_id"]: d["confidence"] for d in out["decisions"]}
    ours = Router(RouterConfig(model_path=str(model_path))).route(_to_tinydancer(query, cands, None), now=now_s)
    for d in ours.decisions:
        assert abs(d.confidence - js[d.candidate_id]) <= TOLERANCE, (d, js[d.candidate_id])
