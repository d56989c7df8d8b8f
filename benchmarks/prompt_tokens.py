"""Where a batch of prompts spends its time by input length: tokenisation vs the jitted scoring kernel.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.prompt_tokens [--lengths 32 64 128 256] [--out benchmarks/results/prompt_tokens.md]

For every ``max_tokens`` in ``--lengths``: prompts/s of tokenising all 14,037 bundled MMLU prompts (their first
``max_tokens`` tokens, :func:`tinydancer.model.text_features.first_token_ids`) and of one
``PromptScorer.score_tokens`` call over them (the recipe's featuriser with that length, an untrained model of
the recipe's shape; with and without the n-gram bag), best of three, after a warm-up call.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tinydancer import configure_jax
from tinydancer.datasets import load
from tinydancer.learning import DEFAULT_FEATURIZER
from tinydancer.model import FastGRNNConfig, NormStats, PromptRouterArtifact, PromptScorer, init_fastgrnn_params


def best_rate(n: int, call: Callable[[], object], repeats: int = 3) -> float:
    """``n`` divided by the fastest of ``repeats`` timed calls (after one untimed warm-up)."""
    call()
    best = min(_timed(call) for _ in range(repeats))
    return n / best


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here too")
    args = parser.parse_args(argv)
    configure_jax()
    texts = load("routellm-mmlu")["prompt"].astype(str).tolist()
    config = FastGRNNConfig(DEFAULT_FEATURIZER.dim, 16)
    norm = NormStats(np.zeros(config.input_dim, np.float32), np.ones(config.input_dim, np.float32))
    lines = [
        f"Command: `python -m benchmarks.prompt_tokens --lengths {' '.join(map(str, args.lengths))}` "
        f"({len(texts):,} prompts)",
        "",
        "| max_tokens | mean tokens kept | tokenise prompts/s | kernel prompts/s (n-gram bag) "
        "| kernel prompts/s (no bag) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for length in args.lengths:
        rates = []
        for buckets in (DEFAULT_FEATURIZER.ngram_buckets, 0):
            feat = dataclasses.replace(DEFAULT_FEATURIZER, max_tokens=length, ngram_buckets=buckets)
            bag = np.zeros(buckets, np.float32) if buckets else None
            scorer = PromptScorer(
                PromptRouterArtifact(init_fastgrnn_params(config), config, feat, norm, ngram_weights=bag)
            )
            tokens = scorer.tokenize(texts)
            rates.append(best_rate(len(texts), lambda s=scorer, t=tokens: s.score_tokens(t, 0.5)))
        tokenise = best_rate(len(texts), lambda s=scorer: s.tokenize(texts))
        mean_kept = float(np.mean([len(r) for r in tokens.rows]))
        lines.append(f"| {length} | {mean_kept:.1f} | {tokenise:,.0f} | {rates[0]:,.0f} | {rates[1]:,.0f} |")
    text = "\n".join(lines) + "\n"
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
