"""Where a batch of prompts spends its time by input length: tokenisation vs the jitted scoring kernel.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.prompt_tokens [--lengths 32 64 128 256] [--out benchmarks/results/prompt_tokens.md]

For every ``max_tokens`` in ``--lengths``, over all 14,037 bundled MMLU prompts, side by side in one run:

- tokenising their first ``max_tokens`` tokens with ``PromptScorer.tokenize`` (the C tokenizer,
  :class:`tinydancer.model.fast_tokenizer.PrefixTokenizer`): ``cold``, a fresh tokenizer whose word cache is empty,
  and ``warm``, the same prompts again; and with the Rust tokenizer
  (:func:`tinydancer.model.text_features.first_token_ids`, the path before the C one and its fallback);
- one ``PromptScorer.score_tokens`` call over them (the recipe's featuriser with that length, an untrained model
  of the recipe's shape): the defaults (the n-gram bag, length groups, chunks of ``CHUNK_PROMPTS`` = 256 prompts),
  then one change at a time: padded to ``max_tokens`` (``LENGTH_GROUPS_FROM`` raised past the batch), chunks of
  4,096 prompts, no n-gram bag.

Each figure is prompts/s of the best of three calls after one untimed warm-up (the cold figure: the best of three
fresh tokenizers' first calls).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinydancer import configure_jax
from tinydancer.datasets import load
from tinydancer.learning import DEFAULT_FEATURIZER
from tinydancer.model import (
    FastGRNNConfig,
    NormStats,
    PromptRouterArtifact,
    PromptScorer,
    init_fastgrnn_params,
    prompt_scoring,
)
from tinydancer.model.fast_tokenizer import PrefixTokenizer
from tinydancer.model.text_features import first_token_ids, load_wordllama, plain_tokenizer


def best_rate(n: int, call: Callable[[], object], repeats: int = 3) -> float:
    """``n`` divided by the fastest of ``repeats`` timed calls (after one untimed warm-up)."""
    call()
    best = min(_timed(call) for _ in range(repeats))
    return n / best


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _row(length: int, texts: list[str], rust_tokenizer: Any) -> str:
    """One table row: the prompts' first ``length`` tokens, tokenised and scored every way (module docstring)."""
    config = FastGRNNConfig(DEFAULT_FEATURIZER.dim, 16)
    norm = NormStats(np.zeros(config.input_dim, np.float32), np.ones(config.input_dim, np.float32))
    scorers = {}
    for buckets in (DEFAULT_FEATURIZER.ngram_buckets, 0):
        feat = dataclasses.replace(DEFAULT_FEATURIZER, max_tokens=length, ngram_buckets=buckets)
        bag = np.zeros(buckets, np.float32) if buckets else None
        scorers[buckets] = PromptScorer(PromptRouterArtifact(init_fastgrnn_params(config), config, feat, norm, bag))
    scorer, no_bag_scorer = scorers[DEFAULT_FEATURIZER.ngram_buckets], scorers[0]
    fresh = [PrefixTokenizer(rust_tokenizer) for _ in range(3)]
    cold = len(texts) / min(_timed(lambda t=t: t(texts, length)) for t in fresh)
    warm = best_rate(len(texts), lambda: scorer.tokenize(texts))
    rust = best_rate(len(texts), lambda: first_token_ids(rust_tokenizer, texts, length))
    tokens = scorer.tokenize(texts)
    kernel = {"defaults": best_rate(len(texts), lambda: scorer.score_tokens(tokens, 0.5))}
    for name, value in (("LENGTH_GROUPS_FROM", len(texts) + 1), ("CHUNK_PROMPTS", 4096)):
        default = getattr(prompt_scoring, name)
        setattr(prompt_scoring, name, value)
        kernel[name] = best_rate(len(texts), lambda: scorer.score_tokens(tokens, 0.5))
        setattr(prompt_scoring, name, default)
    kernel["no bag"] = best_rate(len(texts), lambda: no_bag_scorer.score_tokens(tokens, 0.5))
    rates = " | ".join(f"{r:,.0f}" for r in kernel.values())
    return f"| {length} | {tokens.counts.mean():.1f} | {cold:,.0f} | {warm:,.0f} | {rust:,.0f} | {rates} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here too")
    args = parser.parse_args(argv)
    configure_jax()
    texts = load("routellm-mmlu")["prompt"].astype(str).tolist()
    lines = [
        f"Command: `python -m benchmarks.prompt_tokens --lengths {' '.join(map(str, args.lengths))}` "
        f"({len(texts):,} prompts; prompts/s, best of three)",
        "",
        "| max_tokens | mean tokens kept | tokenise, C, cold | tokenise, C, warm | tokenise, Rust "
        "| kernel (defaults) | kernel, padded to max_tokens | kernel, chunks of 4,096 | kernel, no bag |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rust_tokenizer = plain_tokenizer(load_wordllama(DEFAULT_FEATURIZER.dim))
    lines += [_row(length, texts, rust_tokenizer) for length in args.lengths]
    text = "\n".join(lines) + "\n"
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
