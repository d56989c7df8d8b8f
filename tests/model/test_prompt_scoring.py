"""Prompt scoring: prefix tokenisation is exact, the jitted kernel equals the reference path, nothing recompiles."""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
import pytest

from tests._prompt_routers import calibrated, mmlu, trained
from tinydancer.errors import ConfigError, InvalidInputError
from tinydancer.learning.calibration import apply_calibrator
from tinydancer.model import prompt_scoring
from tinydancer.model.fastgrnn import fastgrnn_predict
from tinydancer.model.prompt_artifact import PromptRouterArtifact, load_prompt_router
from tinydancer.model.prompt_scoring import BATCH_BUCKETS, PromptScorer, PromptScores, score_kernel
from tinydancer.model.text_features import (
    TextFeaturizer,
    apply_norm,
    first_token_ids,
    load_wordllama,
    plain_tokenizer,
)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return plain_tokenizer(load_wordllama(64))


@pytest.fixture(scope="module")
def full_ids(tokenizer: Any) -> list[list[int]]:
    prompts = mmlu()["prompt"].astype(str).tolist()
    return [enc.ids for enc in tokenizer.encode_batch(prompts, add_special_tokens=False)]


@pytest.mark.parametrize("max_tokens", [8, 32, 64])
def test_first_token_ids_equal_the_full_tokenisation_on_every_mmlu_prompt(
    tokenizer: Any, full_ids: list[list[int]], max_tokens: int
) -> None:
    prompts = mmlu()["prompt"].astype(str).tolist()
    got = first_token_ids(tokenizer, prompts, max_tokens)
    assert len(got) == len(prompts) == 14037
    bad = [i for i, (g, f) in enumerate(zip(got, full_ids, strict=True)) if g != f[:max_tokens]]
    assert bad == [], f"{len(bad)} prompts differ, first {bad[:5]}"
    # the prefix path is taken: most prompts are far longer than the prefix read
    assert sum(len(f) > 2 * (max_tokens + 8) for f in full_ids) > 1000


def awkward_texts() -> list[str]:
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789+/=.,;:!?-_()[]"))
    words = ["the", "antidisestablishmentarianism", "über", "naïve", "日本語", "😀", "12345678", "x", "—", "\t"]
    texts = [
        "a" * 3000,  # no whitespace at all: cut inside one "word"
        "".join(rng.choice(letters, 3000)),  # base64-like
        "word" + " " * 400 + "next " * 200,  # a long run of spaces where the cut falls
        "ab " * 1000,
        " ".join(rng.choice(words, 1500)),
        "\n".join(["line of text with\ttabs"] * 300),
        "x" * 200 + " " + "y" * 2000,  # the last whole word is huge
        "12 345 6789 " * 300,
        "  leading and trailing  " * 100 + "   ",
        "日本語のテキスト" * 400,  # no ASCII whitespace, multi-byte
        "emoji 😀😀😀 " * 300,
        "",
        " ",
        "short prompt",
    ]
    for _ in range(30):
        n = int(rng.integers(50, 2000))
        texts.append(" ".join(rng.choice(words, n)) + "".join(rng.choice(letters, int(rng.integers(0, 400)))))
    return texts


@pytest.mark.parametrize("max_tokens", [1, 8, 32, 64])
def test_first_token_ids_on_awkward_texts(tokenizer: Any, max_tokens: int) -> None:
    texts = awkward_texts()
    full = [enc.ids for enc in tokenizer.encode_batch(texts, add_special_tokens=False)]
    got = first_token_ids(tokenizer, texts, max_tokens)
    for i, (g, f) in enumerate(zip(got, full, strict=True)):
        assert g == f[:max_tokens], (i, texts[i][:60])


def reference(art: PromptRouterArtifact, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(mean, [K, N] member probabilities) by TextFeaturizer + apply_norm + fastgrnn_predict, member by member."""
    x, mask = TextFeaturizer(art.featurizer)(texts)
    xn = apply_norm(x, art.norm, mask)
    if art.members == 1:
        probs = np.asarray(fastgrnn_predict(art.params, art.model_config, xn, mask), np.float64)[None]
    else:
        probs = np.stack(
            [
                np.asarray(
                    fastgrnn_predict(jax.tree.map(lambda a, k=k: a[k], art.params), art.model_config, xn, mask),
                    np.float64,
                )
                for k in range(art.members)
            ]
        )
    return probs.mean(axis=0), probs


def sample_texts(n: int = 300) -> list[str]:
    prompts = mmlu()["prompt"].astype(str)
    picked = prompts.sample(n, random_state=1).tolist()
    return [*picked, "", "a", "What is 2+2?", "word " * 5000]


CASES = {
    "tokens": {},
    "mean": {"kind": "wordllama_mean"},
    "int8": {"quantize": True},
    "ensemble": {"ensemble": 2},
    "prefix mean, 256 tokens": {"kind": "wordllama_prefix_mean", "max_tokens": 256},  # scored in length groups
}


@pytest.mark.parametrize("case", CASES)
def test_scores_equal_the_reference_path(case: str) -> None:
    art = load_prompt_router(trained(**CASES[case]))
    texts = sample_texts()
    mean, probs = reference(art, texts)
    scores = PromptScorer(art).score(texts)
    assert scores.p_raw.dtype == np.float32 and scores.p_raw.shape == (len(texts),)
    np.testing.assert_allclose(scores.p_raw, mean, atol=1e-5, rtol=0)
    # uncalibrated: p_strong is p_raw; the implicit operating point is 0.5
    np.testing.assert_array_equal(scores.p_strong, scores.p_raw)
    np.testing.assert_array_equal(scores.use_strong, scores.p_strong >= np.float32(0.5))
    if art.members > 1:  # auto -> mutual information of the members
        entropy = lambda p: -(p * np.log(p) + (1 - p) * np.log1p(-p))  # noqa: E731
        q = np.clip(probs, 1e-7, 1 - 1e-7)
        mi = np.maximum(entropy(np.clip(mean, 1e-7, 1 - 1e-7)) - entropy(q).mean(axis=0), 0) / math.log(2)
        np.testing.assert_allclose(scores.uncertainty, np.clip(mi, 0, 1), atol=1e-4)
        assert scores.uncertainty.max() > 0
    else:  # auto -> the original formula
        np.testing.assert_allclose(scores.uncertainty, np.clip(1 - 2 * np.abs(scores.p_strong - 0.5), 0, 1), atol=1e-6)
    assert not scores.in_set_weak.any() and not scores.in_set_strong.any()


def test_batches_and_chunks_change_nothing() -> None:
    scorer = PromptScorer(load_prompt_router(trained()))
    texts = sample_texts(60)
    whole = scorer.score(texts, threshold=0.5)
    one_by_one = [scorer.score([t], threshold=0.5) for t in texts]
    for field in PromptScores._fields:
        np.testing.assert_allclose(
            getattr(whole, field), np.concatenate([getattr(s, field) for s in one_by_one]), atol=1e-6
        )
    empty = scorer.score([], threshold=0.5)
    assert all(len(v) == 0 for v in empty)


def test_large_batches_are_scored_in_groups_of_one_padded_length(monkeypatch: pytest.MonkeyPatch) -> None:
    scorer = PromptScorer(load_prompt_router(trained(kind="wordllama_prefix_mean", max_tokens=256)))
    tokens = scorer.tokenize(sample_texts())
    chunks = scorer._chunks(tokens)
    widths = [ids.shape[1] for _, ids, _ in chunks]
    assert set(widths) <= {16, 32, 64, 128, 256} and len(set(widths)) >= 3
    assert sorted(np.concatenate([rows for rows, _, _ in chunks]).tolist()) == list(range(len(tokens.counts)))
    assert all(counts.max() <= ids.shape[1] for _, ids, counts in chunks)
    grouped = scorer.score_tokens(tokens, 0.5)
    monkeypatch.setattr(prompt_scoring, "LENGTH_GROUPS_FROM", 10**9)
    assert {ids.shape[1] for _, ids, _ in scorer._chunks(tokens)} == {256}
    whole = scorer.score_tokens(tokens, 0.5)
    for field in PromptScores._fields:
        np.testing.assert_allclose(getattr(grouped, field), getattr(whole, field), atol=1e-6)


def test_calibrated_scores_confidence_and_conformal_sets() -> None:
    art = load_prompt_router(calibrated())
    assert art.conformal is not None
    texts = sample_texts()
    threshold = 0.3
    s = PromptScorer(art).score(texts, threshold=threshold)
    np.testing.assert_allclose(s.p_strong, apply_calibrator(art.calibrator, s.p_raw.astype(np.float64)), atol=1e-6)
    np.testing.assert_array_equal(s.use_strong, s.p_strong >= np.float32(threshold))
    np.testing.assert_array_equal(s.confidence, np.where(s.use_strong, s.p_strong, 1 - s.p_strong).astype(np.float32))
    q = np.float32(art.conformal.q)
    np.testing.assert_array_equal(s.in_set_weak, s.p_strong <= q)
    np.testing.assert_array_equal(s.in_set_strong, (1 - s.p_strong) <= q)
    # auto -> conformal: 1 iff the set holds both models or neither
    np.testing.assert_array_equal(s.uncertainty, (s.in_set_weak == s.in_set_strong).astype(np.float32))
    assert set(np.unique(s.uncertainty)) <= {0.0, 1.0}
    original = PromptScorer(art, uncertainty="original").score(texts, threshold=threshold)
    np.testing.assert_allclose(original.uncertainty, np.clip(1 - 2 * np.abs(s.p_strong - 0.5), 0, 1), atol=1e-6)
    np.testing.assert_array_equal(original.p_strong, s.p_strong)
    # the artifact's default threshold when none is given: the implicit 0.5
    default = PromptScorer(art).score(texts)
    np.testing.assert_array_equal(default.use_strong, s.p_strong >= np.float32(0.5))


def test_uncertainty_modes_the_artifact_cannot_give() -> None:
    single = load_prompt_router(trained())
    with pytest.raises(ConfigError, match="mutual_information"):
        PromptScorer(single, uncertainty="mutual_information")
    with pytest.raises(ConfigError, match="conformal"):
        PromptScorer(single, uncertainty="conformal")
    with pytest.raises(ConfigError, match="uncertainty"):
        PromptScorer(single, uncertainty="entropy")
    assert PromptScorer(single).uncertainty == "original"
    ensemble = load_prompt_router(trained(ensemble=2))
    assert PromptScorer(ensemble).uncertainty == "mutual_information"
    assert PromptScorer(ensemble, uncertainty="original").uncertainty == "original"
    assert PromptScorer(load_prompt_router(calibrated())).uncertainty == "conformal"


def test_infinite_thresholds_and_nan() -> None:
    scorer = PromptScorer(load_prompt_router(trained()))
    texts = sample_texts(20)
    assert not scorer.score(texts, threshold=math.inf).use_strong.any()
    assert scorer.score(texts, threshold=-math.inf).use_strong.all()
    with pytest.raises(InvalidInputError, match="NaN"):
        scorer.score(texts, threshold=math.nan)


def test_steady_state_compiles_nothing_new() -> None:
    scorer = PromptScorer(load_prompt_router(calibrated()))
    texts = sample_texts(16)
    for size in (1, 4, 16):  # warm the three smallest buckets
        scorer.score(texts[:size], threshold=0.5)
    before = score_kernel._cache_size()
    for size in (1, 2, 3, 4, 5, 9, 13, 16, 7, 1):
        for threshold in (0.5, 0.1, 0.9, math.inf, -math.inf):
            scorer.score(texts[:size], threshold=threshold)
    tokens = scorer.tokenize(texts[:11])
    scorer.score_tokens(tokens, 0.25)
    assert score_kernel._cache_size() == before
    # a bigger bucket is at most one new compilation (none where another test compiled it), then none
    scorer.score(texts * 2, threshold=0.5)  # 32 -> bucket 64
    grown = score_kernel._cache_size()
    assert grown <= before + 1
    scorer.score(texts * 3, threshold=0.7)  # 48 -> bucket 64
    assert score_kernel._cache_size() == grown
    assert BATCH_BUCKETS[:4] == (1, 4, 16, 64)
