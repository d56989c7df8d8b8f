"""``python -m tinydancer train|calibrate|tune|evaluate|route``: learn a prompt router, then serve it.

``--data`` takes a bundled dataset name (``routellm-mmlu``, ``synthetic``; see ``datasets/README.md``)
or a path to RouteLLM-format outcomes. Examples (from the repository root)::

    python -m tinydancer train --data routellm-mmlu --out models/mmlu.safetensors
    python -m tinydancer calibrate --model models/mmlu.safetensors --data routellm-mmlu
    python -m tinydancer tune --model models/mmlu.safetensors --data routellm-mmlu --target strong-share=0.5 \
        --name share-0.5 --default
    python -m tinydancer evaluate --model models/mmlu.safetensors --data routellm-mmlu --json
    python -m tinydancer route --model models/mmlu.safetensors "What is the derivative of x**3?"
    python -m tinydancer route --model models/mmlu.safetensors --file prompts.jsonl --out decisions.csv
    python -m tinydancer train --data datasets/synthetic_routing.csv --out models/synthetic.safetensors
    python -m tinydancer train --data routellm-mmlu --scorer tfidf_lr --out models/tfidf.safetensors

``evaluate`` on the training data scores the held-out test rows of the stored split; ``--rows all``
scores every row (to train on one dataset and evaluate on another). Its thresholds follow the learning
wing's one convention (:func:`tinydancer.learning.thresholds.calls_strong`): scores are P(weak model
fails) and the strong model is called iff the calibrated score >= the threshold; ``null`` in the JSON is
an infinite threshold (``-inf`` for a weak-error level nothing certifies: everything strong).

``train``'s defaults are the recipe of :mod:`tinydancer.learning.recipe` (chosen on validation rows; EVALUATION.md):
the mean of the first 256 WordLlama token vectors (64-d) through a FastGRNN (hidden 16) plus 4,096 hashed
n-gram buckets, trained for the expected gain of calling the strong model (``--train-target strong_gain``).

Outcomes may be 0/1 or judge scores in [0, 1] (:mod:`tinydancer.learning.labels`): ``train`` fits the soft
target ``(1 + strong - weak) / 2`` (or ``1 - weak`` with ``--train-target weak_fails``). ``calibrate`` maps
the score to P(the strong model is needed): P(strong scores higher than weak), or P(weak fails) for a
``weak_fails`` router, where ``calibrate`` and ``evaluate`` count a weak score below ``--pass-mark`` (default
0.5, stored by ``calibrate``) as a failure; that label is also the weak-error threshold's. APGR, CPT and
quality use the scores themselves.

``train --scorer`` fits a baseline instead of the FastGRNN (:data:`SERVABLE_SCORERS`: ``tfidf_lr``,
``knn_embed``, ``prompt_stats``, ``random``) on the same split and targets and writes a scorer router
(:mod:`tinydancer.model.scorer_router`; the FastGRNN options do not apply to it); every later command treats
it as it treats a FastGRNN router.

``train`` writes one prompt-router artifact (:mod:`tinydancer.model.prompt_artifact`); ``calibrate`` adds the
calibrator and a conformal quantile; ``tune`` adds a named operating point (``--target strong-share=S``,
``quality=Q`` or ``weak-error=ALPHA@DELTA``; ``--default`` makes it the one a Router starts with). ``route``
serves the artifact with a :class:`~tinydancer.routing.router.Router` (metrics, logs and collectors as in
production) and writes one decision per prompt: JSON lines to stdout, or ``--out`` ``.jsonl``/``.csv``.
``--file`` reads ``.jsonl`` (a ``prompt`` field, or a JSON string, per line), ``.csv`` (a ``prompt`` column)
or ``.txt`` (one prompt per line).

Each learning command is one call of :mod:`tinydancer.learning.experiment` (``train_router``,
``calibrate_router``, ``tune_router``, ``evaluate_router``; ``train_scorer_router`` of
:mod:`tinydancer.learning.scorers` for ``--scorer``); this module parses the options and prints the typed results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tinydancer.datasets import BUNDLED, load
from tinydancer.datasets.outcomes import KNOWN_OUTCOME_PAIRS
from tinydancer.errors import DataError, TinyDancerError
from tinydancer.learning.calibration import CALIBRATORS
from tinydancer.learning.experiment import SPLITS, calibrate_router, evaluate_router, train_router, tune_router
from tinydancer.learning.labels import PASS_MARK, TRAINING_TARGETS
from tinydancer.learning.recipe import DEFAULT_FEATURIZER, DEFAULT_MODEL, DEFAULT_TARGET, default_train_config
from tinydancer.learning.scorers import (
    KNNEmbeddingScorer,
    PromptStatsScorer,
    RandomScorer,
    TfidfLogisticScorer,
    train_scorer_router,
)
from tinydancer.model.prompt_scoring import UNCERTAINTY_MODES
from tinydancer.model.text_features import FEATURIZER_KINDS, FeaturizerConfig

#: ``train --scorer`` names of the built-in servable baselines -> their classes (default settings).
SERVABLE_SCORERS: dict[str, Any] = {
    "tfidf_lr": TfidfLogisticScorer,
    "knn_embed": KNNEmbeddingScorer,
    "prompt_stats": PromptStatsScorer,
    "random": RandomScorer,
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: ...)`` to every option's help, except where there is no default to show.

    Required options and those defaulting to None (their help says what happens) or to False (flags)
    keep their help as written.

    Examples:
        >>> parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
        >>> _ = parser.add_argument("--n", type=int, default=3, help="how many")
        >>> _ = parser.add_argument("--json", action="store_true", help="print JSON")
        >>> text = parser.format_help()
        >>> "how many (default: 3)" in text, "print JSON (default" in text
        (True, False)
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _recognised(side: int) -> str:
    return ", else ".join(repr(pair[side]) for pair in KNOWN_OUTCOME_PAIRS)


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        required=True,
        metavar="NAME_OR_PATH",
        help=f"bundled dataset name ({', '.join(sorted(BUNDLED))}) or a path: a RouteLLM-format "
        ".parquet/.csv/.jsonl/.json file, a folder of subject CSVs, or a recording folder (Collector.save) "
        "whose prompts were recorded with their outcomes",
    )
    for flag, side, model in (("--weak", 0, "weak"), ("--strong", 1, "strong")):
        p.add_argument(
            flag,
            default=None,
            metavar="COLUMN",
            help=f"{model} model's outcome column (default: recognised automatically, {_recognised(side)})",
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinydancer", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "train", help="train a router on outcomes (FastGRNN, or --scorer a baseline)", formatter_class=HelpFormatter
    )
    _data_args(t)
    t.add_argument("--out", required=True, help="checkpoint path to write (.safetensors)")
    t.add_argument(
        "--scorer",
        choices=("fastgrnn", *SERVABLE_SCORERS),
        default="fastgrnn",
        help="the model: the FastGRNN recipe, or a baseline served as a scorer router (FastGRNN options ignored)",
    )
    t.add_argument(
        "--split",
        choices=SPLITS,
        default="random",
        help="random rows, or whole subjects held out for test (needs 2 or more subjects)",
    )
    t.add_argument("--seed", type=int, default=0, help="seed of the split, initialisation and shuffling")
    recipe, recipe_train = DEFAULT_FEATURIZER, default_train_config()
    t.add_argument("--train-target", choices=TRAINING_TARGETS, default=DEFAULT_TARGET, help="what the score estimates")
    t.add_argument("--featurizer", choices=FEATURIZER_KINDS, default=recipe.kind, help="query text -> input")
    t.add_argument("--dim", type=int, default=recipe.dim, help="WordLlama token-vector size (64, 128 or 256)")
    t.add_argument("--max-tokens", type=int, default=recipe.max_tokens, help="tokens kept per query (the first ones)")
    t.add_argument(
        "--ngram-buckets",
        type=int,
        default=None,
        help=f"hashed n-gram buckets of the logit, 0 for none (default: {recipe.ngram_buckets}; 0 with wordllama_mean)",
    )
    t.add_argument("--ngram-l2", type=float, default=recipe_train.ngram_l2, help="L2 penalty on the n-gram weights")
    t.add_argument(
        "--ngram-lr-scale",
        type=float,
        default=recipe_train.ngram_lr_scale,
        help="the n-gram weights' learning rate as a multiple of --lr",
    )
    t.add_argument("--hidden", type=int, default=DEFAULT_MODEL["hidden_dim"], help="FastGRNN hidden units")
    t.add_argument("--w-rank", type=int, default=None, help="rank of the input matrix W (default: full rank)")
    t.add_argument("--u-rank", type=int, default=None, help="rank of the recurrent matrix U (default: full rank)")
    t.add_argument(
        "--epochs", type=int, default=recipe_train.epochs, help="most epochs (early stopping on validation loss)"
    )
    t.add_argument("--batch-size", type=int, default=recipe_train.batch_size, help="rows per update")
    t.add_argument(
        "--refit",
        action=argparse.BooleanOptionalAction,
        default=recipe_train.refit,
        help="after early stopping picks the epoch count, retrain on train + validation rows for that many epochs",
    )
    t.add_argument(
        "--lr", type=float, default=recipe_train.learning_rate, help="peak learning rate (Adam, cosine decay)"
    )
    t.add_argument("--sparsity", type=float, default=1.0, help="share of recurrent weights kept (IHT)")
    t.add_argument("--quantize", action="store_true", help="store the model as int8")
    t.add_argument("--ensemble", type=int, default=1, help="members trained (seeds seed, seed+1, ...) and stored")
    t.add_argument("--weak-name", default=None, help="the weak model's name (default: its outcome column)")
    t.add_argument("--strong-name", default=None, help="the strong model's name (default: its outcome column)")
    t.add_argument(
        "--prices", type=float, nargs=2, default=None, metavar=("WEAK", "STRONG"), help="$ per million tokens"
    )
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    c = sub.add_parser(
        "calibrate", help="fit a calibrator on the stored split's calibration rows", formatter_class=HelpFormatter
    )
    _data_args(c)
    c.add_argument("--model", required=True, help="checkpoint written by train")
    c.add_argument("--method", choices=CALIBRATORS, default="platt", help="calibration method")
    c.add_argument("--out", default=None, help="checkpoint to write (default: overwrite --model)")
    c.add_argument(
        "--pass-mark",
        type=float,
        default=PASS_MARK,
        help="score outcomes: a weak score below it counts as a failure (the calibrator's label; stored)",
    )
    c.add_argument("--alpha", type=float, default=0.1, help="miscoverage of the stored conformal prediction sets")
    u = sub.add_parser("tune", help="add a named operating point to a router", formatter_class=HelpFormatter)
    _data_args(u)
    u.add_argument("--model", required=True, help="artifact written by train (and calibrate)")
    u.add_argument(
        "--target", required=True, help="strong-share=S, quality=Q (share of the strong model's) or weak-error=A@D"
    )
    u.add_argument("--name", required=True, help="the operating point's name ([A-Za-z0-9_.:-], at most 64)")
    u.add_argument("--default", action="store_true", help="make it the operating point a Router starts with")
    u.add_argument(
        "--rows", choices=("cal", "all"), default="cal", help="the stored split's calibration rows, or every row"
    )
    u.add_argument("--out", default=None, help="artifact to write (default: overwrite --model)")
    e = sub.add_parser(
        "evaluate", help="RouteLLM-protocol metrics, calibration and guarantees", formatter_class=HelpFormatter
    )
    _data_args(e)
    e.add_argument("--model", required=True, help="checkpoint written by train (and calibrate)")
    e.add_argument("--rows", choices=("test", "all"), default="test", help="the stored split's test rows, or every row")
    e.add_argument("--alpha", type=float, default=0.1, help="conformal miscoverage and guaranteed weak-error level")
    e.add_argument("--delta", type=float, default=0.1, help="the weak-error guarantee fails with at most this chance")
    e.add_argument(
        "--pass-mark",
        type=float,
        default=None,
        help="score outcomes: a weak score below it counts as a failure (default: the one stored by calibrate, "
        f"else {PASS_MARK})",
    )
    e.add_argument("--json", action="store_true", help="print one JSON object")
    r = sub.add_parser("route", help="route prompts with a trained router", formatter_class=HelpFormatter)
    r.add_argument("--model", required=True, help="prompt-router artifact")
    r.add_argument("prompt", nargs="*", help="prompts to route (or --file)")
    r.add_argument("--file", default=None, help="prompts: .jsonl, .csv (a 'prompt' column) or .txt (one per line)")
    r.add_argument("--out", default=None, help="decisions: .jsonl or .csv (default: JSON lines to stdout)")
    r.add_argument("--operating-point", default=None, help="operating point (default: the artifact's default)")
    r.add_argument("--uncertainty", choices=UNCERTAINTY_MODES, default="auto", help="how uncertainty is computed")
    r.add_argument("--metrics", action="store_true", help="print the router's Prometheus metrics to stderr at the end")
    return parser


def _load(ns: argparse.Namespace) -> pd.DataFrame:
    if (Path(ns.data) / "manifest.json").is_file():  # a recording: routed prompts joined with their outcomes
        from tinydancer.observability.recording import load_recording, recording_outcomes

        return recording_outcomes(load_recording(ns.data), require="weak" if ns.command == "train" else "both")
    if ns.data not in BUNDLED and not Path(ns.data).exists():
        raise DataError(
            f"--data: expected a bundled dataset name (one of {sorted(BUNDLED)}) or an existing file or folder, "
            f"got {ns.data!r}"
        )
    return load(ns.data, weak=ns.weak, strong=ns.strong)


def _train(ns: argparse.Namespace) -> int:
    frame = _load(ns)
    if ns.scorer != "fastgrnn":
        fitted = train_scorer_router(
            frame, ns.out, SERVABLE_SCORERS[ns.scorer](), split=ns.split, seed=ns.seed, target=ns.train_target,
            data_tag=str(ns.data), weak_model=ns.weak_name, strong_model=ns.strong_name,
            prices=None if ns.prices is None else tuple(ns.prices),
        )  # fmt: skip
        print(
            json.dumps(
                {
                    "model": str(fitted.path),
                    "scorer": ns.scorer,
                    "rows": fitted.row_counts,
                    "size_bytes": fitted.size_bytes,
                    "fit_seconds": round(fitted.fit_seconds, 3),
                }
            )
        )
        return 0
    buckets = ns.ngram_buckets
    if buckets is None:
        buckets = 0 if ns.featurizer == "wordllama_mean" else DEFAULT_FEATURIZER.ngram_buckets
    feat = FeaturizerConfig(kind=ns.featurizer, dim=ns.dim, max_tokens=ns.max_tokens, ngram_buckets=buckets)
    model = {"hidden_dim": ns.hidden, "w_rank": ns.w_rank, "u_rank": ns.u_rank}
    tcfg = dataclasses.replace(
        default_train_config(ns.seed, progress=not ns.no_progress),
        epochs=ns.epochs,
        batch_size=ns.batch_size,
        learning_rate=ns.lr,
        sparsity=ns.sparsity,
        ngram_l2=ns.ngram_l2,
        ngram_lr_scale=ns.ngram_lr_scale,
        refit=ns.refit,
    )
    trained = train_router(
        frame, ns.out, split=ns.split, seed=ns.seed, featurizer=feat, model=model, train=tcfg,
        quantize=ns.quantize, data_tag=str(ns.data), ensemble=ns.ensemble, weak_model=ns.weak_name,
        strong_model=ns.strong_name, prices=None if ns.prices is None else tuple(ns.prices), target=ns.train_target,
    )  # fmt: skip
    print(trained.result.history.round(4).to_string(index=False))
    summary = {
        "model": str(trained.path),
        "rows": trained.row_counts,
        "size_bytes_float32": trained.size_bytes_float32,
        "size_bytes_int8": trained.size_bytes_int8,
        "best_epoch": trained.result.best_epoch,
    }
    print(json.dumps(summary))
    return 0


def _calibrate(ns: argparse.Namespace) -> int:
    fitted = calibrate_router(ns.model, _load(ns), ns.method, out=ns.out, pass_mark=ns.pass_mark, alpha=ns.alpha)
    summary = {
        "model": str(fitted.path),
        "calibrator": fitted.calibrator.kind,
        "ece_cal_before": fitted.ece_cal_before,
        "ece_cal_after": fitted.ece_cal_after,
    }
    print(json.dumps(summary))
    return 0


def _tune(ns: argparse.Namespace) -> int:
    tuned = tune_router(
        ns.model, _load(ns), ns.target, ns.name, default=ns.default, rows=ns.rows, out=ns.out, data_tag=str(ns.data)
    )
    point = tuned.point.as_json()
    print(json.dumps({"model": str(tuned.path), "operating_point": tuned.name, **point}))
    return 0


def _read_prompts(path: str) -> list[Any]:
    """Prompts of a .jsonl, .csv or .txt file (module docstring)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"--file: expected an existing .jsonl, .csv or .txt file, got {path!r}")
    if file.suffix == ".csv":
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
        if "prompt" not in frame.columns:
            raise DataError(f"--file {path}: expected a 'prompt' column, got {list(frame.columns)}")
        return frame["prompt"].tolist()
    lines = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if file.suffix != ".jsonl":
        return lines
    prompts = []
    for number, line in enumerate(lines, 1):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"--file {path}: line {number} is not JSON ({exc})") from None
        prompts.append(value.get("prompt") if isinstance(value, dict) else value)
    return prompts


def _route(ns: argparse.Namespace) -> int:
    from tinydancer.observability.logs import LogConfig
    from tinydancer.routing.config import RouterConfig
    from tinydancer.routing.router import Router

    if bool(ns.prompt) == bool(ns.file):
        raise DataError("route: expected prompts as arguments or --file, not both and not neither")
    if not Path(ns.model).is_file():
        raise DataError(f"--model: expected an existing prompt-router artifact, got {ns.model!r}")
    prompts = _read_prompts(ns.file) if ns.file else list(ns.prompt)
    config = RouterConfig(model_path=ns.model, operating_point=ns.operating_point, prompt_uncertainty=ns.uncertainty)
    router = Router(config, log_config=LogConfig(renderer="none"))  # a typed error prints one line, below
    decisions = router.route_prompts(prompts)
    assert isinstance(decisions, pd.DataFrame)
    if ns.out is not None and ns.out.endswith(".csv"):
        decisions.to_csv(ns.out, index=False)
    elif ns.out is not None:
        decisions.to_json(ns.out, orient="records", lines=True, double_precision=15)
    else:
        for row in decisions.to_dict(orient="records"):
            print(json.dumps(_finite(row)))
    if ns.metrics:
        print(router.export_metrics(), file=sys.stderr)
    return 0


def _evaluate(ns: argparse.Namespace) -> int:
    evaluated = evaluate_router(
        ns.model, _load(ns), rows=ns.rows, alpha=ns.alpha, delta=ns.delta, pass_mark=ns.pass_mark
    )
    # The documented JSON interface: the report's fields by name, thresholds nested, then "model".
    result = {**evaluated.as_dict(), "model": str(ns.model)}
    if ns.json:
        print(json.dumps(_finite(result), allow_nan=False))
    else:
        for key, value in result.items():
            print(f"{key:>16}: {json.dumps(value) if isinstance(value, dict) else value}")
    return 0


def _finite(value: object) -> object:
    # Strict JSON has no Infinity/NaN: an infinite threshold ("nothing certified") becomes null.
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run one learning command; returns the exit code (2 with a one-line message on a typed error).

    Args:
        argv: Arguments starting with the command name (default: ``sys.argv[1:]``).

    Examples:
        >>> main(["evaluate", "--data", "/nonexistent", "--model", "m.safetensors"])
        2
    """
    ns = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        commands = {"train": _train, "calibrate": _calibrate, "tune": _tune, "evaluate": _evaluate, "route": _route}
        return commands[ns.command](ns)
    except TinyDancerError as exc:
        print(f"tinydancer {ns.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


__all__ = ["HelpFormatter", "main"]
