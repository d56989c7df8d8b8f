"""Outcomes joined to routed prompts: exact counts, late and partial reports, gauges computed by hand, bad input."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from tests._prompt_routers import copy_of, mmlu, tuned
from tests._routers import strong_model
from tinydancer import InvalidInputError, Router, RouterConfig
from tinydancer.model.prompt_artifact import load_prompt_router
from tinydancer.observability.logs import LogConfig
from tinydancer.observability.outcomes import OPERATING_POINT_TARGETS, OutcomeMonitor

NOW = 1_700_000_000.0
GAUGES = (
    "tiny_dancer_outcome_window_size",
    "tiny_dancer_weak_error_rate",
    "tiny_dancer_strong_share",
    "tiny_dancer_conformal_coverage",
    "tiny_dancer_calibration_error",
)


@pytest.fixture(scope="module")
def router_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_of(tuned(), tmp_path_factory.mktemp("outcomes"))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return mmlu().iloc[:400].reset_index(drop=True)


def make_router(path: Path, **config: Any) -> Router:
    return Router(
        RouterConfig(model_path=str(path), **config), clock=lambda: NOW, log_config=LogConfig(renderer="none")
    )


def sample(router: Router, name: str, **labels: str) -> float:
    rows = [
        s for s in router.metrics.samples() if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(rows) == 1, (name, labels, rows)
    return rows[0].value


def counts(router: Router) -> dict[str, float]:
    return {s: sample(router, "tiny_dancer_outcomes_total", status=s) for s in ("joined", "unknown_request")}


def gauges(router: Router) -> dict[str, float]:
    return {name: sample(router, name) for name in GAUGES}


def expected_gauges(
    decisions: pd.DataFrame, weak_correct: pd.Series, pass_mark: float, routed: pd.DataFrame | None = None
) -> dict[str, float]:
    """The live series computed by hand from the routed ``decisions``, the window's labels ``weak_correct``
    (indexed by request id) and the ``routed`` prompts of the strong-share window (default: every decision)."""
    by_id = decisions.set_index("request_id")
    labelled = by_id.loc[weak_correct.index]
    failed = (weak_correct < pass_mark).to_numpy()
    strong = labelled["use_strong"].to_numpy(dtype=bool)
    covered = [
        ("strong" if f else "weak") in s.split(",") for f, s in zip(failed, labelled["prediction_set"], strict=True)
    ]
    p = labelled["p_strong"].to_numpy(dtype=np.float64)
    ece = 0.0
    for b in range(10):
        lo, hi = b / 10, (b + 1) / 10
        inside = (p >= lo) & ((p < hi) if b < 9 else (p <= hi))
        if inside.any():
            ece += inside.sum() / len(p) * abs(p[inside].mean() - failed[inside].mean())
    return {
        "tiny_dancer_outcome_window_size": float(len(weak_correct)),
        "tiny_dancer_weak_error_rate": float(failed[~strong].mean()),
        "tiny_dancer_strong_share": float((decisions if routed is None else routed)["use_strong"].mean()),
        "tiny_dancer_conformal_coverage": float(np.mean(covered)),
        "tiny_dancer_calibration_error": ece,
    }


def assert_gauges(router: Router, expected: dict[str, float]) -> None:
    got = gauges(router)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name


# (a) the join -------------------------------------------------------------------------------------------------------


def test_counts_by_status_are_exact_and_unknown_ids_are_not_fatal(router_path: Path, frame: pd.DataFrame) -> None:
    router = make_router(router_path)
    assert counts(router) == {"joined": 0, "unknown_request": 0}
    decisions = router.route_prompts(frame["prompt"].iloc[:10].tolist(), now=NOW)
    assert decisions["request_id"].tolist() == list(range(10))
    assert router.record_outcome(3, weak_correct=1.0) is True
    assert router.record_outcome(99, strong_correct=0.0) is False
    assert router.record_outcome(-1) is False
    assert counts(router) == {"joined": 1, "unknown_request": 2}
    report = router.record_outcomes({"request_id": [0, 1, 1000], "weak_correct": [0, 1, 1]})
    assert report == {"joined": 2, "unknown_request": 1}
    frame_report = router.record_outcomes(pd.DataFrame({"request_id": [2, 5000], "cost": [0.25, 1.0]}))
    assert frame_report == {"joined": 1, "unknown_request": 1}
    assert counts(router) == {"joined": 4, "unknown_request": 4}
    # Unknown ids join nothing: only ids 3, 0, 1 carry a weak label.
    assert sample(router, "tiny_dancer_outcome_window_size") == 3
    assert router.record_outcomes({"request_id": []}) == {"joined": 0, "unknown_request": 0}


def test_collector_outcome_rows(router_path: Path, frame: pd.DataFrame) -> None:
    router = make_router(router_path)
    router.route_prompts(frame["prompt"].iloc[:4].tolist(), now=NOW)
    router.record_outcome(1, weak_correct=0.0, strong_correct=1.0, quality=0.75, cost=0.002)
    router.record_outcome(77, quality=-2.5)
    router.record_outcomes(pd.DataFrame({"request_id": [2, 3], "weak_correct": [1.0, np.nan], "cost": [np.nan, 3]}))
    rows = router.collector.outcomes()
    assert list(rows.columns) == [
        "request_id",
        "timestamp",
        "weak_correct",
        "strong_correct",
        "quality",
        "cost",
        "joined",
    ]
    assert rows["request_id"].tolist() == [1, 77, 2, 3]
    assert (rows["timestamp"] == pd.Timestamp(NOW, unit="s", tz="UTC")).all()
    assert rows["joined"].tolist() == [True, False, True, True]
    expected = pd.DataFrame(
        {
            "weak_correct": [0.0, np.nan, 1.0, np.nan],
            "strong_correct": [1.0, np.nan, np.nan, np.nan],
            "quality": [0.75, -2.5, np.nan, np.nan],
            "cost": [0.002, np.nan, np.nan, 3.0],
        }
    )
    pd.testing.assert_frame_equal(rows[list(expected.columns)], expected)
    assert rows["request_id"].dtype == np.int64 and rows["joined"].dtype == bool
    # NaN in a frame's column is "not reported": request 3 carries no label.
    assert sample(router, "tiny_dancer_outcome_window_size") == 2


def test_partial_and_late_reports_join_the_same_request(router_path: Path, frame: pd.DataFrame) -> None:
    router = make_router(router_path)
    decision = router.route_prompt(frame["prompt"].iloc[0], now=NOW)
    rid = decision.request_id
    assert router.record_outcome(rid, strong_correct=1.0) is True  # the strong model's outcome first
    assert sample(router, "tiny_dancer_outcome_window_size") == 0  # no label yet
    assert math.isnan(sample(router, "tiny_dancer_weak_error_rate"))
    assert math.isnan(sample(router, "tiny_dancer_calibration_error"))
    assert router.record_outcome(rid, cost=0.01) is True
    assert router.record_outcome(rid, weak_correct=0.0) is True  # the weak one later: now labelled
    assert counts(router) == {"joined": 3, "unknown_request": 0}
    assert sample(router, "tiny_dancer_outcome_window_size") == 1
    p = decision.p_strong
    assert sample(router, "tiny_dancer_calibration_error") == pytest.approx(abs(p - 1.0))
    expected_rate = math.nan if decision.use_strong else 1.0
    assert sample(router, "tiny_dancer_weak_error_rate") == pytest.approx(expected_rate, nan_ok=True)
    rows = router.collector.outcomes()
    assert rows["request_id"].tolist() == [rid] * 3
    assert rows["strong_correct"].tolist()[0] == 1.0 and math.isnan(rows["strong_correct"].iloc[2])
    assert rows["weak_correct"].iloc[2] == 0.0 and rows["weak_correct"].iloc[:2].isna().all()
    assert rows["cost"].iloc[1] == 0.01


# (b) the live series ------------------------------------------------------------------------------------------------


def test_gauges_equal_values_computed_by_hand(router_path: Path, frame: pd.DataFrame) -> None:
    art = load_prompt_router(router_path)
    assert art.conformal is not None
    router = make_router(router_path)
    decisions = router.route_prompts(frame["prompt"].tolist(), now=NOW)
    assert decisions["prediction_set"].notna().all()
    assert 0 < decisions["use_strong"].sum() < len(decisions)  # both routes occur
    assert math.isnan(sample(router, "tiny_dancer_weak_error_rate"))  # routed, nothing labelled yet
    assert sample(router, "tiny_dancer_strong_share") == pytest.approx(decisions["use_strong"].mean())
    # Labels arrive out of order, as a frame; the strong outcomes do not enter the window.
    order = np.random.default_rng(0).permutation(len(frame))
    report = pd.DataFrame(
        {
            "request_id": decisions["request_id"].to_numpy()[order],
            "weak_correct": frame["weak_correct"].to_numpy()[order],
            "strong_correct": frame["strong_correct"].to_numpy()[order],
        }
    )
    assert router.record_outcomes(report) == {"joined": len(frame), "unknown_request": 0}
    labels = pd.Series(report["weak_correct"].to_numpy(), index=report["request_id"].to_numpy())
    expected = expected_gauges(decisions, labels, art.pass_mark)
    assert 0 < expected["tiny_dancer_weak_error_rate"] < 1
    assert_gauges(router, expected)
    assert sample(router, "tiny_dancer_conformal_coverage_target") == pytest.approx(1 - art.conformal.alpha)


def test_outcome_window_bounds_the_series(router_path: Path, frame: pd.DataFrame) -> None:
    art = load_prompt_router(router_path)
    router = make_router(router_path, outcome_window=50)
    decisions = router.route_prompts(frame["prompt"].iloc[:120].tolist(), now=NOW)
    # Label every request, last id first: the window holds the last 50 labels given (ids 49..0).
    ids = decisions["request_id"].to_numpy()[::-1]
    weak = frame["weak_correct"].iloc[:120].to_numpy()[::-1]
    router.record_outcomes({"request_id": ids.tolist(), "weak_correct": weak.tolist()})
    labels = pd.Series(weak[-50:], index=ids[-50:])
    # The strong share covers the last 50 routed prompts.
    expected = expected_gauges(decisions, labels, art.pass_mark, decisions.iloc[-50:])
    assert expected["tiny_dancer_outcome_window_size"] == 50
    assert_gauges(router, expected)
    # More routing moves the strong share's window without touching the labelled one.
    more = router.route_prompts(frame["prompt"].iloc[200:230].tolist(), now=NOW)
    routed = pd.concat([decisions, more]).iloc[-50:]
    assert sample(router, "tiny_dancer_strong_share") == pytest.approx(routed["use_strong"].mean())
    assert sample(router, "tiny_dancer_outcome_window_size") == 50


def test_a_small_window_is_exact_on_a_tiny_example(router_path: Path, frame: pd.DataFrame) -> None:
    router = make_router(router_path, outcome_window=2)
    decisions = router.route_prompts(frame["prompt"].iloc[:3].tolist(), now=NOW)
    for rid, weak in [(0, 1.0), (1, 0.0), (2, 0.2)]:
        router.record_outcome(rid, weak_correct=weak)
    p = decisions["p_strong"].to_numpy()
    # Window: requests 1 and 2, both failures of the weak model (0.0 and 0.2 are below the 0.5 pass mark).
    assert sample(router, "tiny_dancer_outcome_window_size") == 2
    bins = np.minimum((p[1:] * 10).astype(int), 9)
    ece = abs(p[1:].mean() - 1) if bins[0] == bins[1] else (abs(p[1] - 1) + abs(p[2] - 1)) / 2
    assert sample(router, "tiny_dancer_calibration_error") == pytest.approx(ece)
    assert sample(router, "tiny_dancer_strong_share") == pytest.approx(decisions["use_strong"].iloc[1:].mean())


# (c) bad input ------------------------------------------------------------------------------------------------------

BAD_REPORTS: dict[str, tuple[dict[str, list[Any]], str]] = {
    "weak_correct above 1": ({"request_id": [0, 1], "weak_correct": [1.0, 1.5]}, r"row 1: weak_correct"),
    "negative weak_correct": ({"request_id": [0], "weak_correct": [-0.1]}, r"row 0: weak_correct"),
    "strong_correct above 1": ({"request_id": [0], "strong_correct": [2]}, r"row 0: strong_correct"),
    "negative cost": ({"request_id": [0, 1, 2], "cost": [0.0, 1.0, -0.5]}, r"row 2: cost"),
    "infinite cost": ({"request_id": [0], "cost": [math.inf]}, r"row 0: cost"),
    "infinite quality": ({"request_id": [0], "quality": [-math.inf]}, r"row 0: quality"),
    "string": ({"request_id": [0, 1], "weak_correct": [1.0, "yes"]}, r"row 1: weak_correct"),
    "numeric string": ({"request_id": [0], "quality": ["0.5"]}, r"row 0: quality"),
    "string id": ({"request_id": [0, "1"]}, r"row 1: request_id"),
    "float id": ({"request_id": [1.0]}, r"row 0: request_id"),
    "bool id": ({"request_id": [True]}, r"row 0: request_id"),
    "missing request_id": ({"weak_correct": [1.0]}, r"request_id"),
    "unknown column": ({"request_id": [0], "latency": [0.1]}, r"latency"),
    "short column": ({"request_id": [0, 1], "weak_correct": [1.0]}, r"weak_correct"),
}


@pytest.fixture(scope="module")
def routed(router_path: Path, frame: pd.DataFrame) -> Router:
    router = make_router(router_path)
    router.route_prompts(frame["prompt"].iloc[:4].tolist(), now=NOW)
    return router


def assert_nothing_recorded(router: Router) -> None:
    assert counts(router) == {"joined": 0, "unknown_request": 0}
    assert router.collector.outcomes().empty
    assert sample(router, "tiny_dancer_outcome_window_size") == 0


@pytest.mark.parametrize("case", list(BAD_REPORTS))
def test_a_bad_report_names_its_row_and_records_nothing(routed: Router, case: str) -> None:
    report, match = BAD_REPORTS[case]
    with pytest.raises(InvalidInputError, match=match):
        routed.record_outcomes(report)
    if case != "short column":  # a DataFrame pads a short column with NaN: "not reported"
        with pytest.raises(InvalidInputError, match=match):
            routed.record_outcomes(pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in report.items()}))
    assert_nothing_recorded(routed)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"weak_correct": 1.5}, "weak_correct"),
        ({"strong_correct": -1}, "strong_correct"),
        ({"cost": math.nan}, "cost"),
        ({"cost": -0.01}, "cost"),
        ({"quality": math.nan}, "quality"),
        ({"weak_correct": "1"}, "weak_correct"),
        ({"quality": [0.5]}, "quality"),
    ],
)
def test_record_outcome_rejects_a_bad_value(routed: Router, fields: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        routed.record_outcome(0, **fields)
    with pytest.raises(InvalidInputError, match="request_id"):
        routed.record_outcome("0", weak_correct=1.0)  # type: ignore[arg-type]
    assert_nothing_recorded(routed)


def test_a_candidate_router_has_no_outcomes(tmp_path: Path) -> None:
    router = make_router(strong_model(tmp_path / "candidates.safetensors"))
    with pytest.raises(InvalidInputError, match="candidates"):
        router.record_outcome(0, weak_correct=1.0)
    with pytest.raises(InvalidInputError, match="candidates"):
        router.record_outcomes({"request_id": [0]})
    names = {s.name for s in router.metrics.samples()}
    assert not {n for n in names if n.startswith("tiny_dancer_outcome")}
    assert router.collector.outcomes().empty


# (d) targets --------------------------------------------------------------------------------------------------------


def test_the_target_gauges_follow_the_operating_point(router_path: Path) -> None:
    art = load_prompt_router(router_path)
    points = art.operating_points
    router = make_router(router_path)
    assert art.conformal is not None
    assert sample(router, "tiny_dancer_conformal_coverage_target") == pytest.approx(1 - art.conformal.alpha)

    def targets() -> dict[str, float]:
        return {t: sample(router, "tiny_dancer_operating_point_target", target=t) for t in OPERATING_POINT_TARGETS}

    def expect(name: str) -> dict[str, float]:
        point = points[name]
        assert point.value is not None
        return {t: point.value if t == point.target else math.nan for t in OPERATING_POINT_TARGETS}

    def same(a: dict[str, float], b: dict[str, float]) -> bool:
        return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)

    assert router.operating_point is not None and router.operating_point[0] == "quality95"
    assert points["quality95"].target == "quality_share" and points["quality95"].value == 0.95
    assert same(targets(), expect("quality95"))
    router.use_operating_point("share50")
    assert points["share50"].target == "strong_share"
    assert same(targets(), expect("share50"))
    router.use_operating_point("werr")
    assert points["werr"].target == "weak_error" and points["werr"].value == 0.2
    assert same(targets(), expect("werr"))
    assert same(targets(), {"strong_share": math.nan, "quality_share": math.nan, "weak_error": 0.2})
    started = make_router(router_path, operating_point="share50")
    assert started.operating_point is not None and started.operating_point[0] == "share50"
    assert sample(started, "tiny_dancer_operating_point_target", target="strong_share") == 0.5


def test_every_series_is_exported_before_any_outcome(router_path: Path) -> None:
    router = make_router(router_path)
    assert sample(router, "tiny_dancer_outcome_window_size") == 0
    for name in GAUGES[1:]:
        assert math.isnan(sample(router, name)), name
    assert counts(router) == {"joined": 0, "unknown_request": 0}


# (e) a real scrape ---------------------------------------------------------------------------------------------------


@pytest.mark.prometheus
def test_the_series_reach_prometheus_and_the_rule_expressions_evaluate(
    router_path: Path, frame: pd.DataFrame, tmp_path: Path
) -> None:
    import yaml

    from tests.prometheus_server import PrometheusServer
    from tinydancer.observability.monitoring_assets import write_assets

    write_assets(tmp_path)
    router = make_router(router_path, operating_point="share50")
    decisions = router.route_prompts(frame["prompt"].iloc[:60].tolist(), now=NOW)
    weak = frame["weak_correct"].iloc[:60]
    router.record_outcomes({"request_id": [*decisions["request_id"].tolist(), 10_000], "weak_correct": [*weak, 1.0]})
    rate, share = sample(router, "tiny_dancer_weak_error_rate"), sample(router, "tiny_dancer_strong_share")
    assert share == pytest.approx(decisions["use_strong"].mean()) and 0 < rate < 1
    with (
        router.serve_metrics(port=0) as endpoint,
        PrometheusServer.start(
            [f"127.0.0.1:{endpoint.port}"],
            config=yaml.safe_load((tmp_path / "prometheus.yml").read_text()),
            rule_files=[tmp_path / "quality_alerts.yml"],
        ) as prom,
    ):
        prom.wait_for(lambda: prom.query_scalar("tiny_dancer_outcome_window_size") == 60, what="first scrape")
        totals = prom.query_values("sum by (status) (tiny_dancer_outcomes_total)")
        assert totals == {(("status", "joined"),): 60, (("status", "unknown_request"),): 1}
        assert prom.query_scalar("tiny_dancer_weak_error_rate") == pytest.approx(rate)
        assert prom.query_scalar("tiny_dancer_strong_share") == pytest.approx(share)
        assert prom.query_scalar('tiny_dancer_operating_point_target{target="strong_share"}') == 0.5
        assert math.isnan(prom.query_scalar('tiny_dancer_operating_point_target{target="weak_error"}') or 0.0)
        [group] = yaml.safe_load((tmp_path / "quality_alerts.yml").read_text())["groups"]
        exprs = {r["alert"]: r["expr"] for r in group["rules"]}
        off = prom.query(exprs["StrongShareOffTarget"])
        assert len(off) == (abs(share - 0.5) > 0.1)
        if off:
            assert off[0]["metric"].keys() == {"job", "instance"}
            assert float(off[0]["value"][1]) == pytest.approx(abs(share - 0.5))
        assert prom.query(exprs["WeakErrorAboveTarget"]) == []  # its weak_error target is NaN
        assert prom.query(exprs["ConformalCoverageLow"]) == []  # 60 labels < 200


def test_a_repeated_weak_outcome_is_counted_but_labelled_once() -> None:
    router = Router(RouterConfig(model_path=str(tuned())), log_config=LogConfig(renderer="none"))
    request_id = int(router.route_prompts(mmlu()["prompt"].head(1))["request_id"][0])
    for _ in range(3):
        assert router.record_outcome(request_id, weak_correct=0.0)
    samples = {s.name: s.value for s in router.metrics.samples() if not s.labels}
    assert samples["tiny_dancer_outcome_window_size"] == 1.0
    assert router.collector.outcomes()["joined"].tolist() == [True, True, True]


def test_the_newest_pending_capacity_request_ids_are_remembered_with_their_decisions() -> None:
    monitor = OutcomeMonitor(CollectorRegistry(), window=100, pending_capacity=8)
    strong = np.arange(12) % 3 == 0
    p = np.linspace(0.05, 0.95, 12)
    in_weak, in_strong = np.arange(12) % 2 == 0, np.arange(12) % 4 == 0
    monitor.record_routes(100, strong, p, in_weak, in_strong)  # ids 100-111: a batch larger than the capacity
    monitor.record_routes(112, strong[:2], p[:2], None, None)  # ids 112-113, without conformal sets
    known = [rid for rid in range(90, 120) if monitor.join(rid, None)]
    assert known == list(range(106, 114))  # the newest 8 ids; older, never-routed and future ids are unknown
    assert not monitor.join(-8, None)
    for rid in range(106, 112):  # each label carries its own prompt's decision and set
        assert monitor.join(rid, 0.0)
    assert monitor.join(112, 1.0) and monitor.join(113, 0.0)
    window = monitor._snapshot()
    expected = [(bool(strong[i]), float(p[i]), True, bool(in_strong[i])) for i in range(6, 12)]
    expected += [(bool(strong[0]), float(p[0]), False, None), (bool(strong[1]), float(p[1]), True, None)]
    assert window == expected
    assert monitor.strong_share() == pytest.approx(np.mean([*strong, *strong[:2]]))
