"""Prompt routing latency and throughput on real MMLU prompts (issue 13), side by side with two baselines.

One process, one run, measured in interleaved rounds so the shared machine's load hits every method alike:

* tinydancer ``Router.route_prompt(text)`` per prompt (p50 / p95) on a fixed seeded sample of the bundled
  ``routellm-mmlu`` prompts, for two routers serving the same trained, calibrated and tuned artifact:
  ``observed`` (Prometheus metrics, INFO logs rendered as JSON into a null stream, a TracingSystem sampling
  1% of requests) and ``minimal`` (logs filtered out, OpenTelemetry's no-op tracer; the Router's metrics
  and collector stay on, they always do);
* ``Router.route_prompts(texts)`` on every prompt of the dataset: prompts/s as a DataFrame and as the
  columnar ``PromptBatch`` (``as_frame=False``);
* scikit-learn TF-IDF (1-2 grams, min_df 2, sublinear tf) + LogisticRegression fitted on the same training
  rows the router was trained on (``train_router``'s random split, seed 0), label ``labels(frame)``:
  one prompt (``predict_proba(vec.transform([text]))``) and the whole batch;
* a BERT-base sequence classifier (``BertForSequenceClassification(BertConfig())``, random weights, torch on
  the CPU, ``torch.inference_mode``), tokenised by a ``BertTokenizerFast`` whose WordPiece vocabulary
  (30,522 entries, lower case, as bert-base-uncased) is trained here on the MMLU prompts themselves with
  ``tokenizers`` (nothing is downloaded). An in-domain vocabulary splits these prompts into slightly fewer
  pieces than bert-base-uncased's would, so sequence lengths (recorded) are if anything short, i.e. in
  BERT's favour; truncation at 512. One prompt end to end (tokenise, forward, softmax) on a subset of the
  sample (BERT takes ~0.1-1 s per prompt on 2 CPU cores), and batches of 16 prompts padded to the longest
  of each batch after sorting each round's prompts by length (again BERT's best case). torch and
  transformers come from the optional extra ``bench-bert`` (``make bench-prompts`` installs it); without
  them BERT is recorded as "not installed" and everything else runs.

The goals (met / NOT met, computed from the numbers): route_prompt p50 < 1 ms with metrics, logs and spans
at 1%; >= 10x faster than BERT-base per prompt (ratio of p50s on the same prompts); route_prompts >= 20,000
prompts/s. RouteLLM's own reported latencies are printed as quoted anchors, not measured here.

Writes ``<out>/prompt_routing_<mode>.json`` (every number, the machine, load average, versions, the command)
and ``<out>/prompt_routing_<mode>.md``; ``<out>`` defaults to ``$BENCH_OUT`` or the git-ignored
``.cache/bench/results`` (``make bench-prompts BENCH_OUT=benchmarks/results`` refreshes the docs' copy).

Usage: ``.venv/bin/python -m benchmarks.prompt_routing [--quick] [--out DIR]``
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry import trace
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

import tinydancer as td
from benchmarks.run import machine_facts, python_reference_us
from benchmarks.training import DEFAULT_DATA, SCRATCH_RESULTS

#: RouteLLM's reported per-prompt costs, quoted (issue 13), never measured here.
ROUTELLM_ANCHORS = {
    "bert_router": "BERT classifier router: ~14 ms per prompt (RouteLLM's reported figure)",
    "matrix_factorisation": "matrix factorisation router: ~6 ms per prompt plus a remote embedding API call "
    "(RouteLLM's reported figure)",
}
#: Goals of issue 13.
P50_GOAL_US = 1000.0
BERT_RATIO_GOAL = 10.0
BATCH_GOAL_PER_S = 20_000.0
BERT_BATCH = 16
BERT_MAX_LEN = 512


def percentiles(samples_us: list[float]) -> dict[str, float]:
    """p50 / p95 / mean / min in microseconds and the number of samples."""
    a = np.asarray(samples_us, dtype=np.float64)
    if a.size == 0:
        return {"calls": 0}
    return {
        "calls": int(a.size),
        "p50_us": float(np.percentile(a, 50)),
        "p95_us": float(np.percentile(a, 95)),
        "mean_us": float(a.mean()),
        "min_us": float(a.min()),
    }


def time_each(fn: Callable[[str], object], texts: list[str]) -> list[float]:
    """Wall time of ``fn(text)`` for each text, microseconds."""
    out = []
    for text in texts:
        t0 = time.perf_counter()
        fn(text)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def time_batch(fn: Callable[[list[str]], object], texts: list[str]) -> float:
    """Prompts per second of one ``fn(texts)`` call."""
    t0 = time.perf_counter()
    fn(texts)
    return len(texts) / (time.perf_counter() - t0)


# --- tinydancer -------------------------------------------------------------------------------------------


def build_artifact(frame: Any, path: Path, epochs: int) -> tuple[dict[str, Any], np.ndarray]:
    """Train, calibrate and tune a prompt router as the guide does; returns what was built and its training rows."""
    t0 = time.perf_counter()
    recipe = dataclasses.replace(td.learning.default_train_config(progress=False), epochs=epochs)  # the CLI's default
    trained = td.learning.train_router(frame, path, train=recipe)
    calibrated = td.learning.calibrate_router(path, frame, "platt")
    tuned = td.learning.tune_router(path, frame, "strong-share=0.5", "share-0.5", default=True)
    info = {
        "epochs_max": epochs,
        "epochs_run": len(trained.result.history),
        "model_config": str(trained.result.config),
        "size_bytes_float32": trained.size_bytes_float32,
        "calibrator": calibrated.calibrator.kind,
        "operating_point": tuned.name,
        "threshold": float(tuned.point.threshold),
        "seconds": time.perf_counter() - t0,
    }
    return info, trained.rows["train"]


def make_routers(path: Path) -> tuple[dict[str, td.Router], td.TracingSystem, Any]:
    """The two routers of the benchmark over one artifact, the tracing system and the null log stream."""
    config = td.RouterConfig(model_path=str(path))
    null_stream = open(os.devnull, "w")  # noqa: SIM115 (closed at the end of the run)
    tracing = td.TracingSystem(td.TracingConfig(service_name="bench", sampling_ratio=0.01, in_memory_capacity=20_000))
    routers = {
        "observed": td.Router(
            config, log_config=td.LogConfig(level="INFO", renderer="json", stream=null_stream), tracing=tracing
        ),
        "minimal": td.Router(
            config, log_config=td.LogConfig(level="CRITICAL", renderer="none"), tracing=trace.NoOpTracerProvider()
        ),
    }
    return routers, tracing, null_stream


# --- TF-IDF + logistic regression ----------------------------------------------------------------------------


class TfidfRouter:
    """RouteLLM-style text baseline: TF-IDF (1-2 grams) + logistic regression on the label "weak model wrong"."""

    def __init__(self, frame: Any, rows: np.ndarray) -> None:
        y = td.learning.labels(frame).astype(np.float64)
        prompts = frame["prompt"].to_numpy()
        t0 = time.perf_counter()
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        x = self.vectorizer.fit_transform(prompts[rows])
        self.model = LogisticRegression(max_iter=2000, C=1.0).fit(x, y[rows])
        self.fit_seconds = time.perf_counter() - t0
        self.train_rows = len(rows)
        self.vocabulary = len(self.vectorizer.vocabulary_)

    def route_prompt(self, text: str) -> bool:
        return bool(self.model.predict_proba(self.vectorizer.transform([text]))[0, 1] >= 0.5)

    def route_prompts(self, texts: list[str]) -> np.ndarray:
        return self.model.predict_proba(self.vectorizer.transform(texts))[:, 1] >= 0.5


# --- BERT-base on the CPU (optional extra) ----------------------------------------------------------------------


class BertRouter:
    """BERT-base sequence classifier (random weights) on the CPU; the tokenizer is trained here, not downloaded."""

    def __init__(self, corpus: list[str], workdir: Path) -> None:
        import tokenizers
        import torch
        import transformers
        from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

        wordpiece = tokenizers.BertWordPieceTokenizer(lowercase=True)
        wordpiece.train_from_iterator(corpus, vocab_size=30_522, min_frequency=2, show_progress=False)
        wordpiece.save_model(str(workdir))
        self.tokenizer = BertTokenizerFast(vocab_file=str(workdir / "vocab.txt"), do_lower_case=True)
        torch.manual_seed(0)
        self.model = BertForSequenceClassification(BertConfig()).eval()
        self.torch = torch
        self.info = {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "torch_threads": torch.get_num_threads(),
            "config": "BertConfig() defaults: 12 layers, hidden 768, 12 heads, FFN 3072, vocab 30522; random weights",
            "tokenizer": "BertTokenizerFast over a WordPiece vocab (30,522, lower case) trained on the MMLU prompts",
            "vocab_size": len(self.tokenizer),
            "max_length": BERT_MAX_LEN,
            "batch_size": BERT_BATCH,
            "parameters": sum(p.numel() for p in self.model.parameters()),
        }

    def lengths(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, truncation=True, max_length=BERT_MAX_LEN)
        return np.array([len(ids) for ids in enc["input_ids"]])

    def route_prompt(self, text: str) -> bool:
        with self.torch.inference_mode():
            enc = self.tokenizer(text, truncation=True, max_length=BERT_MAX_LEN, return_tensors="pt")
            return bool(self.model(**enc).logits.softmax(-1)[0, 1] >= 0.5)

    def route_prompts(self, texts: list[str]) -> list[bool]:
        """Batches of BERT_BATCH padded to their longest prompt, prompts sorted by length first (BERT's best case)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[bool] = [False] * len(texts)
        with self.torch.inference_mode():
            for lo in range(0, len(order), BERT_BATCH):
                idx = order[lo : lo + BERT_BATCH]
                enc = self.tokenizer(
                    [texts[i] for i in idx], truncation=True, max_length=BERT_MAX_LEN, padding=True, return_tensors="pt"
                )
                p = self.model(**enc).logits.softmax(-1)[:, 1]
                for i, v in zip(idx, (p >= 0.5).tolist(), strict=True):
                    out[i] = bool(v)
        return out


def make_bert(corpus: list[str], workdir: Path) -> tuple[BertRouter | None, dict[str, Any]]:
    """A BertRouter, or None with the reason when the ``bench-bert`` extra is not installed."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        return None, {"measured": False, "why": f"not installed ({exc.name}): pip install '.[bench-bert]'"}
    bert = BertRouter(corpus, workdir)
    return bert, {"measured": True, **bert.info}


# --- the run ---------------------------------------------------------------------------------------------------


def run(quick: bool, seed: int = 0) -> dict[str, Any]:
    """Every measurement; returns the JSON-able result."""
    started = time.time()
    config: dict[str, Any] = {
        "quick": quick,
        "seed": seed,
        "sample": 300 if quick else 2_000,
        "batch_prompts": 2_000 if quick else None,  # None: every prompt of the dataset
        "rounds": 2 if quick else 4,
        "block": 50 if quick else 100,
        "bert_prompts": 8 if quick else 60,
        "bert_batch_prompts_per_round": 16,
        "train_epochs": 3 if quick else td.learning.default_train_config().epochs,
    }
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.prompt_routing", *sys.argv[1:]]),
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": config,
        "routellm_anchors_quoted": ROUTELLM_ANCHORS,
        "machine": machine_facts() | {"tinydancer": td.__version__},
    }
    frame = td.datasets.load(DEFAULT_DATA)
    prompts: list[str] = frame["prompt"].tolist()
    rng = np.random.default_rng(seed)
    sample_idx = rng.choice(len(prompts), size=config["sample"], replace=False)
    sample = [prompts[i] for i in sample_idx]
    batch = prompts if config["batch_prompts"] is None else [prompts[i] for i in rng.permutation(len(prompts))[:2000]]
    bert_sample = sample[: config["bert_prompts"]]
    bert_batch_pool = [prompts[i] for i in rng.permutation(len(prompts))]
    result["data"] = {
        "dataset": DEFAULT_DATA,
        "rows": len(prompts),
        "sample": len(sample),
        "batch": len(batch),
        "sample_chars_p50": float(np.median([len(t) for t in sample])),
    }

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "router.safetensors"
        print(f"training the prompt router ({config['train_epochs']} epochs max) ...", flush=True)
        result["artifact"], train_rows = build_artifact(frame, path, config["train_epochs"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            routers, tracing, null_stream = make_routers(path)
        print("fitting TF-IDF + LR ...", flush=True)
        tfidf = TfidfRouter(frame, train_rows)
        result["tfidf_lr_info"] = {
            "train_rows": tfidf.train_rows,
            "vocabulary": tfidf.vocabulary,
            "fit_seconds": tfidf.fit_seconds,
        }
        print("building BERT-base ...", flush=True)
        bert, result["bert_info"] = make_bert(prompts, workdir)
        if bert is not None:
            lengths = bert.lengths(prompts)
            result["bert_info"]["tokens_per_prompt_all"] = {
                "mean": float(lengths.mean()),
                "p50": float(np.percentile(lengths, 50)),
                "p95": float(np.percentile(lengths, 95)),
                "max": int(lengths.max()),
                "truncated_share": float((lengths >= BERT_MAX_LEN).mean()),
            }
            result["bert_info"]["tokens_per_prompt_timed_sample"] = {
                "mean": float(bert.lengths(bert_sample).mean()),
                "p50": float(np.percentile(bert.lengths(bert_sample), 50)),
            }

        # Warm-up: compile every shape the timed loops use (one prompt, the batch's chunks), fill caches.
        print("warm-up ...", flush=True)
        for router in routers.values():
            time_each(router.route_prompt, sample[:50])
            router.route_prompts(batch)
            router.route_prompts(batch, as_frame=False)
        time_each(tfidf.route_prompt, sample[:50])
        tfidf.route_prompts(batch[:1000])
        if bert is not None:
            time_each(bert.route_prompt, sample[:2])
            bert.route_prompts(bert_batch_pool[:BERT_BATCH])

        per_prompt: dict[str, list[float]] = {"observed": [], "minimal": [], "tfidf_lr": [], "bert": []}
        # tinydancer samples of the prompts BERT also saw, for the ratio on the same prompts.
        same_prompts: dict[str, list[float]] = {"observed": [], "minimal": []}
        rates: dict[str, list[float]] = {
            "observed_frame": [],
            "observed_columnar": [],
            "minimal_columnar": [],
            "tfidf_lr": [],
            "bert": [],
        }
        rounds, block = config["rounds"], config["block"]
        bert_chunks = np.array_split(np.arange(len(bert_sample)), rounds)
        per_round_bert = config["bert_batch_prompts_per_round"]
        n_bert = len(bert_sample)
        for r in range(rounds):
            print(f"round {r + 1}/{rounds} ...", flush=True)
            # Per prompt: the cheap methods interleaved in blocks over the whole sample, then BERT's share.
            for lo in range(0, len(sample), block):
                texts = sample[lo : lo + block]
                for name in ("observed", "minimal"):
                    samples = time_each(routers[name].route_prompt, texts)
                    per_prompt[name] += samples
                    same_prompts[name] += samples[: max(0, min(len(texts), n_bert - lo))]
                per_prompt["tfidf_lr"] += time_each(tfidf.route_prompt, texts)
            tracing.clear()
            if bert is not None:
                per_prompt["bert"] += time_each(bert.route_prompt, [bert_sample[i] for i in bert_chunks[r]])
            # Batch throughput: each method once per round.
            rates["observed_frame"].append(time_batch(routers["observed"].route_prompts, batch))
            rates["observed_columnar"].append(
                time_batch(lambda t: routers["observed"].route_prompts(t, as_frame=False), batch)
            )
            rates["minimal_columnar"].append(
                time_batch(lambda t: routers["minimal"].route_prompts(t, as_frame=False), batch)
            )
            rates["tfidf_lr"].append(time_batch(tfidf.route_prompts, batch))
            if bert is not None:
                chunk = bert_batch_pool[r * per_round_bert : (r + 1) * per_round_bert]
                rates["bert"].append(time_batch(bert.route_prompts, chunk))
            tracing.clear()
        tracing.shutdown()
        null_stream.close()

    result["per_prompt"] = {k: percentiles(v) for k, v in per_prompt.items() if v}
    result["per_prompt_bert_sample"] = {k: percentiles(v) for k, v in same_prompts.items()}
    result["batch"] = {
        k: {
            "rounds": len(v),
            "median_per_s": float(np.median(v)),
            "best_per_s": float(np.max(v)),
            "worst_per_s": float(np.min(v)),
            "prompts_per_call": len(batch) if k != "bert" else per_round_bert,
        }
        for k, v in rates.items()
        if v
    }
    result["machine"]["loadavg_end"] = list(os.getloadavg())
    result["machine"]["python_reference_us_end"] = python_reference_us()
    result["wall_s"] = time.time() - started
    return result


def goals(result: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    """(goal, met?, numbers) of issue 13."""
    pp, batch = result["per_prompt"], result["batch"]
    obs = pp["observed"]["p50_us"]
    out: list[tuple[str, bool | None, str]] = [
        (
            "route_prompt p50 < 1 ms, metrics + logs on, spans at 1%",
            obs < P50_GOAL_US,
            f"p50 {obs:.0f} us, p95 {pp['observed']['p95_us']:.0f} us",
        )
    ]
    if "bert" in pp:
        ours = result["per_prompt_bert_sample"]["observed"]["p50_us"]
        ratio = pp["bert"]["p50_us"] / ours
        out.append(
            (
                ">= 10x faster than BERT-base per prompt (ratio of p50s, same prompts)",
                ratio >= BERT_RATIO_GOAL,
                f"BERT p50 {pp['bert']['p50_us'] / 1000:.1f} ms / route_prompt p50 {ours:.0f} us on the same "
                f"{pp['bert']['calls']} prompts = {ratio:,.0f}x",
            )
        )
    else:
        out.append((">= 10x faster than BERT-base per prompt", None, result["bert_info"]["why"]))
    frame_rate, col_rate = batch["observed_frame"]["median_per_s"], batch["observed_columnar"]["median_per_s"]
    out.append(
        (
            "route_prompts >= 20,000 prompts/s (DataFrame, metrics + logs + spans 1%)",
            frame_rate >= BATCH_GOAL_PER_S,
            f"{frame_rate:,.0f} prompts/s median (best {batch['observed_frame']['best_per_s']:,.0f})",
        )
    )
    out.append(
        (
            "route_prompts >= 20,000 prompts/s (as_frame=False)",
            col_rate >= BATCH_GOAL_PER_S,
            f"{col_rate:,.0f} prompts/s median (best {batch['observed_columnar']['best_per_s']:,.0f})",
        )
    )
    return out


LABELS = {
    "observed": "tinydancer `route_prompt`, metrics + logs (JSON) + spans 1%",
    "minimal": "tinydancer `route_prompt`, logs off, no-op tracer (metrics stay on)",
    "tfidf_lr": "TF-IDF (1-2 grams) + LogisticRegression (scikit-learn)",
    "bert": "BERT-base classifier, torch CPU (tokenise + forward)",
}
BATCH_LABELS = {
    "observed_frame": "tinydancer `route_prompts` -> DataFrame, metrics + logs + spans 1%",
    "observed_columnar": "tinydancer `route_prompts(as_frame=False)`, metrics + logs + spans 1%",
    "minimal_columnar": "tinydancer `route_prompts(as_frame=False)`, logs off, no-op tracer",
    "tfidf_lr": "TF-IDF + LogisticRegression, one `transform` + `predict_proba`",
    "bert": f"BERT-base, batches of {BERT_BATCH} (length-sorted, padded per batch)",
}


def rate(x: float) -> str:
    """Prompts/s for a table: whole numbers, two decimals below 100."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def markdown(result: dict[str, Any]) -> str:
    """The result as Markdown: command, machine, tables, anchors, goals."""
    m, cfg, pp = result["machine"], result["config"], result["per_prompt"]
    bert = result["bert_info"]
    torch = bert["measured"]
    ref_bert = result["per_prompt_bert_sample"]["observed"].get("p50_us")
    lines = [
        f"Run {result['date_utc']}: `{result['command']}` ({result['wall_s']:.0f} s)",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu_model']}), load average {m['loadavg'][0]:.2f} at start, "
        f"{m['loadavg_end'][0]:.2f} at end; sum(range(1000)) took {m['python_reference_us']:.1f} us at start and "
        f"{m['python_reference_us_end']:.1f} us at end (idle: ~10-15 us); Python {m['python']}, JAX {m['jax']}, "
        f"numpy {m['numpy']}" + (f", torch {bert['torch']} ({bert['torch_threads']} threads)." if torch else "."),
        "",
        f"Data: {result['data']['rows']:,} MMLU prompts (`{result['data']['dataset']}`); per prompt: a seeded "
        f"sample of {cfg['sample']:,} (seed {cfg['seed']}), every one timed once per round, {cfg['rounds']} rounds, "
        f"the methods interleaved in blocks of {cfg['block']}; BERT per prompt: the first {cfg['bert_prompts']} "
        f"of the sample, once each, spread over the rounds. Batch: {result['data']['batch']:,} prompts per call, "
        f"once per method per round. Router artifact: {result['artifact']['model_config']}, "
        f"{result['artifact']['epochs_run']} epochs, {result['artifact']['calibrator']} calibration, operating "
        f"point `{result['artifact']['operating_point']}` (threshold {result['artifact']['threshold']:.4f}).",
        "",
        "### One prompt per call",
        "",
        "| method | calls | p50 us | p95 us | mean us |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in LABELS.items():
        if name in pp:
            row = pp[name]
            lines.append(
                f"| {label} | {row['calls']:,} | {row['p50_us']:,.1f} | {row['p95_us']:,.1f} | {row['mean_us']:,.1f} |"
            )
        else:
            lines.append(f"| {label} | - | {bert.get('why', 'not measured')} | | |")
    if "bert" in pp and ref_bert:
        same = result["per_prompt_bert_sample"]
        lines += [
            "",
            f"On BERT's {pp['bert']['calls']} prompts: route_prompt p50 {same['observed']['p50_us']:.1f} us "
            "(observed), "
            f"{same['minimal']['p50_us']:.1f} us (minimal); BERT p50 / route_prompt p50 = "
            f"{pp['bert']['p50_us'] / same['observed']['p50_us']:,.0f}x. BERT tokens per prompt over all prompts: "
            f"mean {bert['tokens_per_prompt_all']['mean']:.0f}, p50 {bert['tokens_per_prompt_all']['p50']:.0f}, "
            f"p95 {bert['tokens_per_prompt_all']['p95']:.0f}, max {bert['tokens_per_prompt_all']['max']} "
            f"({bert['tokens_per_prompt_all']['truncated_share']:.1%} truncated at {BERT_MAX_LEN}); timed prompts: "
            f"mean {bert['tokens_per_prompt_timed_sample']['mean']:.0f}.",
        ]
    lines += [
        "",
        "### Batches",
        "",
        "| method | prompts per call | prompts/s median | best | worst |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in BATCH_LABELS.items():
        row = result["batch"].get(name)
        if row:
            lines.append(
                f"| {label} | {row['prompts_per_call']:,} | {rate(row['median_per_s'])} | "
                f"{rate(row['best_per_s'])} | {rate(row['worst_per_s'])} |"
            )
        else:
            lines.append(f"| {label} | - | {bert.get('why', 'not measured')} | | |")
    lines += ["", "RouteLLM's reported anchors (quoted, not measured here):", ""]
    lines += [f"* {text}" for text in result["routellm_anchors_quoted"].values()]
    lines += ["", "### Goals", "", "| goal | met | numbers |", "|---|---|---|"]
    for goal, ok, text in goals(result):
        verdict = "n/a" if ok is None else ("met" if ok else "**NOT met**")
        lines.append(f"| {goal} | {verdict} | {text} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    td.configure_jax()  # synchronous dispatch, as a serving process runs (BENCHMARKS.md)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sample and batch, 3 training epochs (~1-2 min)")
    default_out = Path(os.environ.get("BENCH_OUT") or SCRATCH_RESULTS)
    parser.add_argument("--out", type=Path, default=default_out, help="results folder (default: %(default)s)")
    parser.add_argument("--from-json", type=Path, help="only re-render the Markdown of a saved result")
    args = parser.parse_args()
    result = json.loads(args.from_json.read_text()) if args.from_json is not None else run(args.quick)
    mode = "quick" if result["config"]["quick"] else "full"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"prompt_routing_{mode}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    text = markdown(result)
    (args.out / f"prompt_routing_{mode}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
