"""The end-to-end demo: learn a prompt router on bundled real outcomes, serve it, route real prompts.

The learned router is trained, calibrated, tuned and evaluated on the bundled RouteLLM MMLU outcomes
(``datasets/routellm-mmlu.parquet``), then served by a :class:`~tinydancer.routing.router.Router` that routes
the held-out test prompts with metrics, sampled spans, logs and collectors, and switches operating point
while serving. The candidate router (the original's model family) is fitted on generated example traffic
(:func:`example_traffic`). Everything is seeded, so two runs print the same decisions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from tinydancer.examples.traffic import NOW, example_traffic, fit_candidate_router
from tinydancer.routing.config import RouterConfig
from tinydancer.routing.router import Router

if TYPE_CHECKING:
    from tinydancer.learning.experiment import EvaluationReport

#: Weak-error level and confidence of the demo's guaranteed threshold.
DEMO_ALPHA, DEMO_DELTA = 0.3, 0.1
#: The demo router's decision thresholds: lightweight when confidence >= 0.7 and uncertainty <= 0.6
#: (looser than RouterConfig's defaults, the guide's 0.85 / 0.15); the demo prints them.
DEMO_CONFIDENCE_THRESHOLD, DEMO_MAX_UNCERTAINTY = 0.7, 0.6


def _format_value(value: object) -> str:
    """Counts as integers, other numbers to three decimals, anything else as text.

    Examples:
        >>> _format_value(50), _format_value(np.int64(8)), _format_value(0.123456), _format_value("none")
        ('50', '8', '0.123', 'none')
    """
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):.3f}"
    return str(value)


class LearnedRouter(NamedTuple):
    """What step 1 of the demo learned: the evaluation report and the figures around it."""

    report: EvaluationReport
    weak_accuracy: float
    size_bytes_float32: int
    size_bytes_int8: int
    epochs_run: int

    def as_dict(self) -> dict[str, Any]:
        """The summary JSON's ``learned_router`` object: the report's figures, these, then the thresholds."""
        figures = self.report.as_dict()
        thresholds = figures.pop("thresholds")
        return figures | {k: v for k, v in self._asdict().items() if k != "report"} | {"thresholds": thresholds}


#: The demo's operating points: name -> tune target (the first is the one the Router starts with).
DEMO_OPERATING_POINTS = {
    "share-0.5": "strong-share=0.5",
    "quality-0.95": "quality=0.95",
    "share-0.2": "strong-share=0.2",
}


#: Test prompts the demo routes one by one with ``route_prompt`` (the rest go through ``route_prompts``).
DEMO_SINGLE_PROMPTS = 200


def _mmlu_rows(n_rows: int | None, seed: int) -> pd.DataFrame:
    """The bundled MMLU outcomes, or a seeded sample of ``n_rows`` of them (model names kept)."""
    from tinydancer.datasets import load

    frame = load("routellm-mmlu")
    if n_rows is None or n_rows >= len(frame):
        return frame
    sample = frame.sample(n=n_rows, random_state=seed).reset_index(drop=True)
    sample.attrs.update(frame.attrs)
    return sample


def _learned_router(frame: pd.DataFrame, model_path: Path, seed: int) -> LearnedRouter:
    """Train, calibrate (Platt), tune the demo's operating points and evaluate a FastGRNN prompt router.

    Calls of :mod:`tinydancer.learning.experiment`; the artifact keeps its calibrator and operating points.
    """
    from tinydancer.learning.experiment import calibrate_router, evaluate_router, train_router, tune_router
    from tinydancer.learning.recipe import default_train_config

    # The default recipe (tinydancer.learning.recipe), as `python -m tinydancer train` trains it.
    trained = train_router(
        frame, model_path, seed=seed, train=default_train_config(seed, progress=False), data_tag="routellm-mmlu"
    )
    calibrate_router(trained.path, frame, "platt")
    for name, target in DEMO_OPERATING_POINTS.items():
        tune_router(trained.path, frame, target, name, data_tag="routellm-mmlu")
    return LearnedRouter(
        report=evaluate_router(trained.path, frame, alpha=DEMO_ALPHA, delta=DEMO_DELTA),
        weak_accuracy=float(frame["weak_correct"].mean()),
        size_bytes_float32=trained.size_bytes_float32,
        size_bytes_int8=trained.size_bytes_int8,
        epochs_run=len(trained.result.history),
    )


def run_demo(
    out_dir: str | Path = "models",
    n_requests: int = 200,
    seed: int = 0,
    report_dir: str | Path = "reports",
    learned_rows: int | None = None,
) -> int:
    """The main job end to end on bundled data; returns a process exit code.

    1. Train, calibrate, tune and evaluate a FastGRNN prompt router on the bundled MMLU outcomes (every
       row, or a seeded sample of ``learned_rows``): figures on the held-out test rows.
    2. Fit the router's candidate model on generated example traffic (:func:`fit_candidate_router`).
    3. Route a traffic sample with full observability (metrics, 10 % sampled spans, logs, collectors),
       with the thresholds ``DEMO_CONFIDENCE_THRESHOLD`` / ``DEMO_MAX_UNCERTAINTY`` (printed).
    4. Print a summary and write a report folder: plots, Prometheus text, monitoring assets, summary JSON.
    5. Serve the prompt router of step 1: route its held-out test prompts (real MMLU questions), print
       decisions and metrics, switch operating point and show the strong share move.
    """
    import json

    import matplotlib

    matplotlib.use("Agg")

    from tinydancer.observability.logs import LogConfig
    from tinydancer.observability.monitoring_assets import write_assets
    from tinydancer.observability.tracing import TracingConfig, TracingSystem
    from tinydancer.plots.routing import plot_overview

    out, reports = Path(out_dir), Path(report_dir)
    reports.mkdir(parents=True, exist_ok=True)
    frame = _mmlu_rows(learned_rows, seed)
    prompt_router_path = out / "demo-prompt-router.safetensors"
    print(f"1. Learned prompt router: FastGRNN on query text ({len(frame):,} bundled RouteLLM MMLU outcomes)")
    learned = _learned_router(frame, prompt_router_path, seed)
    figures, t = learned.report, learned.report.thresholds
    figure_rows = [
        ("APGR (random ~0.5)", figures.apgr),
        ("CPT(50%)", figures.cpt50),
        ("CPT(80%)", figures.cpt80),
        ("AUROC", figures.auroc),
        ("ECE after Platt scaling", figures.ece),
        (f"conformal coverage (nominal {1 - DEMO_ALPHA:.2f})", figures.coverage),
        ("threshold for 50% strong calls", t.strong_share_50.threshold),
        ("threshold for 95% of strong quality", t.quality_share_95.threshold),
        ("weak model accuracy (all rows)", learned.weak_accuracy),
        (
            f"guaranteed threshold (weak error <= {DEMO_ALPHA}, {1 - DEMO_DELTA:.0%})",
            t.weak_error.threshold if np.isfinite(t.weak_error.threshold) else "none certified: all strong",
        ),
        ("  share kept on the weak model (test)", t.weak_error.test_weak_share),
        ("  weak error among them (test)", t.weak_error.test_weak_error),
        ("model size float32 / int8 (bytes)", f"{learned.size_bytes_float32} / {learned.size_bytes_int8}"),
    ]
    table = pd.DataFrame(figure_rows, columns=["figure (test rows)", "value"])
    print(table.to_string(index=False, formatters={"value": _format_value}))

    print("\n2. Candidate router: the original's model family fitted on generated example traffic")
    fit = fit_candidate_router(out / "demo-router.safetensors", n_requests=n_requests, seed=seed)
    print(f"   {fit.training_candidates} training candidates; held-out accuracy {fit.held_out_accuracy:.3f}")
    test = example_traffic(n_requests=max(10, n_requests // 4), seed=seed + 1)

    threshold, max_uncertainty = DEMO_CONFIDENCE_THRESHOLD, DEMO_MAX_UNCERTAINTY
    print(
        f"\n3. Routing a traffic sample with full observability (spans sampled at 10 %): lightweight when "
        f"confidence >= {threshold} and uncertainty <= {max_uncertainty} (RouterConfig's defaults: "
        f"{RouterConfig().confidence_threshold} and {RouterConfig().max_uncertainty})"
    )
    tracing = TracingSystem(TracingConfig(service_name="tinydancer-demo", sampling_ratio=0.1))
    router = Router(
        RouterConfig(model_path=str(fit.path), confidence_threshold=threshold, max_uncertainty=max_uncertainty),
        tracing=tracing, log_config=LogConfig(level="INFO", renderer="none"),
    )  # fmt: skip
    responses = [router.route(request, now=NOW) for request in test.requests]
    tracing.shutdown()
    first = responses[0]
    decisions_table = pd.DataFrame(
        {
            "candidate": first.candidate_ids,
            "confidence": first.confidence.round(4),
            "uncertainty": first.uncertainty.round(4),
            "route": np.where(first.use_lightweight, "lightweight", "powerful"),
        }
    )
    print("   Decisions for the first request (best first):")
    print(decisions_table.to_string(index=False))
    requests, decisions = router.collector.requests(), router.collector.decisions()
    truth = {
        cid: ok
        for req, oks in zip(test.requests, test.lightweight_ok, strict=True)
        for cid, ok in zip(req.columns().ids, oks, strict=True)
    }
    unsuitable_light = int((decisions.use_lightweight & ~decisions.candidate_id.map(truth).astype(bool)).sum())
    latency = requests.latency_us.to_numpy()
    summary = {
        "confidence_threshold": threshold,
        "max_uncertainty": max_uncertainty,
        "requests": len(requests),
        "candidates": len(decisions),
        "lightweight_share": float(decisions.use_lightweight.mean()),
        "lightweight_routes_judged_unsuitable": unsuitable_light,
        "latency_us_p50": float(np.percentile(latency, 50)),
        "latency_us_p95": float(np.percentile(latency, 95)),
        "spans_recorded": len(router.collector.spans()),
        "log_records": len(router.collector.logs()),
        "errors": int((requests.outcome != "success").sum()),
        "learned_router": learned.as_dict(),
    }
    shown = {k: v for k, v in summary.items() if k != "learned_router"}
    width = max(map(len, shown))
    for key, value in shown.items():
        print(f"{key:<{width}}  {_format_value(value)}")

    print(f"\n4. Report written to {reports}/")
    fig = plot_overview(router.collector, threshold=threshold, max_uncertainty=max_uncertainty)
    fig.savefig(reports / "demo-overview.png", dpi=110)
    (reports / "demo-metrics.prom").write_text(router.export_metrics(), encoding="utf-8")
    (reports / "demo-summary.json").write_text(json.dumps(summary, indent=2, default=float), encoding="utf-8")
    written = write_assets(reports / "monitoring")
    for path in [reports / "demo-overview.png", reports / "demo-metrics.prom", reports / "demo-summary.json", *written]:
        print(f"   {path}")
    _serve_prompt_router(prompt_router_path, frame, seed, reports)
    return 0


def _serve_prompt_router(path: Path, frame: pd.DataFrame, seed: int, reports: Path) -> None:
    """Step 5: serve the artifact of step 1 and route its held-out test prompts through a Router."""
    import json

    from tinydancer.learning.experiment import evaluation_rows
    from tinydancer.model.prompt_artifact import load_prompt_router
    from tinydancer.observability.logs import LogConfig
    from tinydancer.observability.tracing import TracingConfig, TracingSystem

    artifact = load_prompt_router(path)
    test = frame.iloc[evaluation_rows(frame, {"split": json.dumps(dict(artifact.split))}, "test")["test"]]
    prompts = test["prompt"].tolist()
    print(
        f"\n5. Serving the prompt router of step 1 ({path}): {len(prompts):,} held-out MMLU test prompts, "
        f"the first {DEMO_SINGLE_PROMPTS} one by one, then all of them in batches at each operating point; "
        "metrics and logs on, spans sampled at 10 %"
    )
    tracing = TracingSystem(TracingConfig(service_name="tinydancer-demo-prompts", sampling_ratio=0.1))
    router = Router(RouterConfig(model_path=str(path)), tracing=tracing, log_config=LogConfig(renderer="none"))
    single = [router.route_prompt(p) for p in prompts[:DEMO_SINGLE_PROMPTS]]
    first = single[:5]
    shown = pd.DataFrame(
        {
            "prompt": [p.replace("\n", " ")[:48] + "..." for p in prompts[:5]],
            "model": [d.model for d in first],
            "p_strong": [round(d.p_strong, 3) for d in first],
            "set": [",".join(d.prediction_set or ()) for d in first],
        }
    )
    print(f"   Decisions for the first prompts (operating point {first[0].operating_point!r}):")
    print(shown.to_string(index=False))
    rows = []
    for name in DEMO_OPERATING_POINTS:
        router.use_operating_point(name)
        routed = router.route_prompts(prompts)
        assert isinstance(routed, pd.DataFrame)
        strong = routed["use_strong"].to_numpy()
        quality = np.where(strong, test["strong_correct"].to_numpy(), test["weak_correct"].to_numpy())
        point = artifact.operating_point(name)
        rows.append((name, point.threshold, point.reached["strong_share"], strong.mean(), quality.mean()))
    tracing.shutdown()
    table = pd.DataFrame(rows, columns=["operating point", "threshold", "strong share (tuning)", "strong share (test)",
                                        "quality (test)"])  # fmt: skip
    print("   The same test prompts at each operating point (use_operating_point switches while serving):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    one_by_one = np.array([d.latency_us for d in single[1:]])  # the first call compiles
    print(
        f"   route_prompt latency over {one_by_one.size} prompts routed one by one: p50 "
        f"{np.percentile(one_by_one, 50):.0f} us, p95 {np.percentile(one_by_one, 95):.0f} us (this machine, now)"
    )
    wanted = (
        "tiny_dancer_routing_requests_total",
        "tiny_dancer_routing_decisions_total",
        "tiny_dancer_operating_point",
    )
    print("   Metrics (Prometheus text):")
    for line in router.export_metrics().splitlines():
        if line.startswith(wanted):
            print(f"   {line}")
    (reports / "demo-prompt-metrics.prom").write_text(router.export_metrics(), encoding="utf-8")
    router.collector.decisions().drop(columns=["prompt"]).to_csv(reports / "demo-prompt-decisions.csv", index=False)
    print(f"   {reports / 'demo-prompt-metrics.prom'}\n   {reports / 'demo-prompt-decisions.csv'}")
