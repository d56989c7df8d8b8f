"""The default recipe: hashed n-grams beside the FastGRNN, the strong-gain target, and serving what was trained."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from tinydancer.cli.main import main
from tinydancer.datasets import make_synthetic_outcomes
from tinydancer.errors import ConfigError, DataError, InvalidInputError, ModelLoadError
from tinydancer.learning import (
    DEFAULT_FEATURIZER,
    DEFAULT_TARGET,
    FastGRNNScorer,
    RoutingData,
    TrainConfig,
    bag_logits,
    default_train_config,
    evaluate_scorers,
    labels,
    prepare_split,
    train_fastgrnn,
    train_router,
)
from tinydancer.model import (
    FastGRNNConfig,
    FeaturizerConfig,
    NormStats,
    TextFeaturizer,
    hashed_ngrams,
    init_fastgrnn_params,
)
from tinydancer.model.fastgrnn import fastgrnn_logits
from tinydancer.model.prompt_artifact import PromptRouterArtifact, load_prompt_router
from tinydancer.model.prompt_scoring import PromptScorer

FAST = TrainConfig(epochs=4, patience=2, learning_rate=3e-3, progress=False)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_synthetic_outcomes(400, 0).rename(columns={"weak": "weak_correct", "strong": "strong_correct"})


def test_hashed_ngrams_follow_the_documented_hash_and_weights() -> None:
    ids = np.array([[5, 7, 9, 0], [3, 0, 0, 0], [0, 0, 0, 0]])
    buckets, weights = (np.asarray(a) for a in hashed_ngrams(ids, np.array([3, 1, 0]), 1000))
    assert buckets.shape == weights.shape == (3, 7)
    a = 2654435761
    assert buckets[0, :3].tolist() == [((t * a + 97) % 2**32) % 1000 for t in (5, 7, 9)]
    assert buckets[0, 4] == ((((5 * 1000003) % 2**32) ^ ((7 * a) % 2**32)) + 12345) % 2**32 % 1000
    # Five real n-grams (three unigrams, two bigrams) of 1/sqrt(5) each; one unigram of weight 1; none at all.
    np.testing.assert_allclose((weights**2).sum(axis=1), [1.0, 1.0, 0.0], rtol=1e-6)
    assert np.count_nonzero(weights[0]) == 5 and np.count_nonzero(weights[1]) == 1
    assert buckets.min() >= 0 and buckets.max() < 1000


def test_prefix_mean_averages_the_first_tokens_and_rejects_ngrams_over_every_token() -> None:
    texts = ["What is the integral of x squared from zero to one?", ""]
    tokens = TextFeaturizer(FeaturizerConfig(kind="wordllama_tokens", dim=64, max_tokens=6))
    x, mask = tokens(texts)
    pooled = TextFeaturizer(FeaturizerConfig(kind="wordllama_prefix_mean", dim=64, max_tokens=6)).featurize(texts)
    np.testing.assert_allclose(pooled.x[0, 0], x[0][mask[0]].mean(axis=0), rtol=1e-5, atol=1e-6)
    assert pooled.x.shape == (2, 1, 64) and not pooled.x[1].any() and pooled.ngram_ids is None
    with pytest.raises(ConfigError, match="ngram_buckets"):
        FeaturizerConfig(kind="wordllama_mean", ngram_buckets=16)
    with pytest.raises(ConfigError, match="ngram_buckets"):
        FeaturizerConfig(ngram_buckets=-1)


def _token_data(n: int, seed: int) -> RoutingData:
    """Inputs that are pure noise; the label is whether n-gram bucket 3 is present (with bucket 5 as filler)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.float32)
    ids = np.where(y[:, None] == 1, 3, 5) * np.ones((n, 2), np.int32)
    return RoutingData(
        rng.normal(size=(n, 1, 4)).astype(np.float32),
        np.ones((n, 1), bool),
        y,
        None,
        ids,
        np.full((n, 2), 0.7, np.float32),
    )


def test_the_bag_learns_what_the_recurrent_inputs_cannot_see() -> None:
    train, val = _token_data(512, 0), _token_data(256, 1)
    config = FastGRNNConfig(4, 4)
    with_bag = train_fastgrnn(config, train, val, TrainConfig(epochs=10, progress=False), ngram_buckets=8)
    without = train_fastgrnn(config, train, val, TrainConfig(epochs=10, progress=False))
    assert with_bag.ngram_weights is not None and with_bag.ngram_weights.shape == (8,) and without.ngram_weights is None
    assert with_bag.history["val_accuracy"].max() > 0.95  # the bag reads the label's token
    assert without.history["val_accuracy"].max() < 0.65  # noise alone: near chance
    assert with_bag.ngram_weights[3] > 0 > with_bag.ngram_weights[5]
    assert np.all(with_bag.ngram_weights[[0, 1, 2, 4, 6, 7]] == 0)  # never seen: only the L2 pull, from zero


def test_training_with_buckets_needs_valid_ngrams() -> None:
    data, config = _token_data(64, 0), FastGRNNConfig(4, 4)
    with pytest.raises(DataError, match="needs ngram_ids"):
        train_fastgrnn(config, data._replace(ngram_ids=None), data, FAST, ngram_buckets=8)
    with pytest.raises(DataError, match=r"ngram_ids must lie in \[0, 4\)"):
        train_fastgrnn(config, data, data, FAST, ngram_buckets=4)
    with pytest.raises(DataError, match="ngram_ids and ngram_weights"):
        train_fastgrnn(config, data._replace(ngram_weights=np.ones((64, 3), np.float32)), data, FAST, ngram_buckets=8)


def test_labels_by_target(frame: pd.DataFrame) -> None:
    weak, strong = frame["weak_correct"].to_numpy(), frame["strong_correct"].to_numpy()
    np.testing.assert_allclose(labels(frame, "strong_gain"), (1 + strong - weak) / 2)
    np.testing.assert_allclose(labels(frame), 1 - weak)
    with pytest.raises(DataError, match="strong_correct"):
        labels(frame.drop(columns=["strong_correct"]), "strong_gain")
    with pytest.raises(InvalidInputError, match="target"):
        labels(frame, "weak_wins")


@pytest.fixture(scope="module")
def recipe_router(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("recipe") / "router.safetensors"
    return train_router(frame, out, data_tag="synthetic").path


def test_the_default_recipe_is_what_train_router_writes(recipe_router: Path) -> None:
    artifact = load_prompt_router(recipe_router)
    assert artifact.featurizer == DEFAULT_FEATURIZER and artifact.target == DEFAULT_TARGET == "strong_gain"
    assert artifact.model_config.hidden_dim == 16 and artifact.model_config.input_dim == 64
    assert artifact.ngram_weights is not None and artifact.ngram_weights.shape == (4096,)
    assert np.count_nonzero(artifact.ngram_weights) > 100  # trained, not left at zero


def test_serving_scores_what_training_computed(recipe_router: Path, frame: pd.DataFrame) -> None:
    artifact = load_prompt_router(recipe_router)
    prepared = prepare_split(frame, DEFAULT_FEATURIZER, "random", 0, target="strong_gain")
    rows = prepared.rows["test"][:50]
    data = prepared.data("test")
    logits = fastgrnn_logits(artifact.params, artifact.model_config, data.x[:50], data.mask[:50])
    assert artifact.ngram_weights is not None and data.ngram_ids is not None and data.ngram_weights is not None
    logits = logits + bag_logits(jnp.asarray(artifact.ngram_weights), data.ngram_ids[:50], data.ngram_weights[:50])
    served = PromptScorer(artifact).score(frame["prompt"].iloc[rows].tolist(), threshold=0.5).p_raw
    np.testing.assert_allclose(served, np.asarray(jax.nn.sigmoid(logits)), rtol=0, atol=2e-5)


def test_an_ensemble_keeps_one_bag_per_member(frame: pd.DataFrame, tmp_path: Path) -> None:
    trained = train_router(frame, tmp_path / "ens.safetensors", ensemble=2, train=FAST)
    artifact = load_prompt_router(trained.path)
    assert artifact.members == 2 and artifact.ngram_weights is not None and artifact.ngram_weights.shape == (2, 4096)
    assert not np.array_equal(artifact.ngram_weights[0], artifact.ngram_weights[1])
    scores = PromptScorer(artifact).score(frame["prompt"].iloc[:8].tolist(), threshold=0.5)
    assert np.all((scores.p_raw > 0) & (scores.p_raw < 1))


def test_an_artifact_whose_bag_does_not_fit_its_featuriser_is_refused() -> None:
    config = FastGRNNConfig(input_dim=64, hidden_dim=4)
    norm = NormStats(np.zeros(64, np.float32), np.ones(64, np.float32))
    feat = FeaturizerConfig(kind="wordllama_prefix_mean", max_tokens=8, ngram_buckets=16)
    params = init_fastgrnn_params(config)
    with pytest.raises(ModelLoadError, match="ngram_buckets=16"):
        PromptRouterArtifact(params, config, feat, norm)
    with pytest.raises(ModelLoadError, match=r"expected finite float32 \(16,\)"):
        PromptRouterArtifact(params, config, feat, norm, ngram_weights=np.zeros(8, np.float32))
    with pytest.raises(ModelLoadError, match="target"):
        PromptRouterArtifact(params, config, feat, norm, ngram_weights=np.zeros(16, np.float32), target="other")


class _RecordsTargets:
    """A user's scorer that remembers the targets it was fitted on and scores by prompt length."""

    name = "records"

    def __init__(self) -> None:
        self.seen: np.ndarray = np.zeros(0)

    def fit(self, prompts: list[str], y: np.ndarray, *, val: object = None) -> _RecordsTargets:
        self.seen = np.asarray(y)
        return self

    def score(self, prompts: list[str]) -> np.ndarray:
        return np.array([min(len(p) / 500, 1.0) for p in prompts])


def test_the_harness_fits_on_the_chosen_target_and_rows(frame: pd.DataFrame) -> None:
    rows = {
        "train": np.arange(0, 100),
        "val": np.arange(100, 120),
        "cal": np.arange(120, 160),
        "test": np.arange(160, 400),
    }
    scorer = _RecordsTargets()
    table = evaluate_scorers(frame, [scorer], rows=rows)
    np.testing.assert_allclose(scorer.seen, labels(frame, "strong_gain")[:100])
    assert 0 <= table["auroc_gain"].iloc[0] <= 1
    evaluate_scorers(frame, [scorer], rows=rows, target="weak_fails")
    np.testing.assert_allclose(scorer.seen, labels(frame)[:100])
    with pytest.raises(InvalidInputError, match="rows"):
        evaluate_scorers(frame, [scorer], rows={"train": np.arange(10)})


def test_the_scorer_default_is_the_recipe() -> None:
    scorer = FastGRNNScorer()
    assert scorer.featurizer_config == DEFAULT_FEATURIZER and scorer.train_config == default_train_config(
        progress=False
    )
    assert scorer.train_config.learning_rate == 1e-3 and scorer.train_config.refit


def test_cli_train_defaults_to_the_recipe_and_takes_the_older_label(frame: pd.DataFrame, tmp_path: Path) -> None:
    data = tmp_path / "outcomes.csv"
    frame.to_csv(data, index=False)
    base = ["train", "--data", str(data), "--weak", "weak_correct", "--strong", "strong_correct", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a.safetensors"), "--epochs", "3"]) == 0
    recipe = load_prompt_router(tmp_path / "a.safetensors")
    assert recipe.target == "strong_gain" and recipe.featurizer == DEFAULT_FEATURIZER
    older = [*base, "--out", str(tmp_path / "b.safetensors"), "--epochs", "3", "--train-target", "weak_fails"]
    assert main([*older, "--featurizer", "wordllama_mean", "--dim", "64"]) == 0  # no n-grams with the whole mean
    plain = load_prompt_router(tmp_path / "b.safetensors")
    assert plain.target == "weak_fails" and plain.ngram_weights is None and plain.featurizer.ngram_buckets == 0
    assert json.loads(json.dumps(plain.featurizer.__dict__))["kind"] == "wordllama_mean"
