"""WordLlama featurisers load offline, give the bundled token vectors, and normalise reproducibly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinydancer.errors import ConfigError, InvalidInputError, ModelLoadError
from tinydancer.model.text_features import (
    FeaturizerConfig,
    NormStats,
    TextFeaturizer,
    apply_norm,
    featurizer_from_metadata,
    featurizer_metadata,
    fit_norm_stats,
    load_wordllama,
)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> TextFeaturizer:
    cache = tmp_path_factory.mktemp("wl")
    return TextFeaturizer(FeaturizerConfig(kind="wordllama_tokens", dim=64, max_tokens=6), cache_dir=cache)


def test_loads_offline_from_the_given_cache_dir(tmp_path: Path) -> None:
    model = load_wordllama(128, cache_dir=tmp_path)
    assert (tmp_path / "tokenizers" / "l2_supercat_tokenizer_config.json").is_file()
    assert model.embedding.shape[1] == 128
    assert not (tmp_path / "weights").exists()  # weights come from the wheel, nothing was downloaded


def test_token_sequences_are_the_wordllama_table_rows(tokens: TextFeaturizer) -> None:
    texts = ["The mitochondria is the powerhouse of the cell and more words here", "Hi", ""]
    x, mask = tokens(texts)
    assert x.shape == (3, 6, 64) and mask.shape == (3, 6)
    ids, raw_mask = tokens.token_ids(texts)
    assert raw_mask[0].all() and raw_mask[1].sum() >= 1 and raw_mask[2].sum() == 0
    table = np.asarray(tokens._model.embedding)
    np.testing.assert_array_equal(x[0], table[ids[0]])
    assert mask[2, 0] and np.all(x[2] == 0)  # an empty text is one zero step
    assert np.all(x[~mask] == 0)


def test_mean_variant_matches_wordllama_pooling(tmp_path: Path) -> None:
    mean = TextFeaturizer(FeaturizerConfig(kind="wordllama_mean", dim=64), cache_dir=tmp_path)
    texts = ["a short question", "another, longer question about thermodynamics"]
    x, mask = mean(texts)
    assert x.shape == (2, 1, 64) and mask.all()
    ids, m = mean.token_ids(texts)
    table = np.asarray(mean._model.embedding)
    want = (table[ids] * m[..., None]).sum(1) / m.sum(1, keepdims=True)
    np.testing.assert_allclose(x[:, 0], want, rtol=1e-5, atol=1e-6)


def test_pooling_a_few_rows_at_a_time_gives_the_same_bits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pooled featurisers gather token vectors in chunks of rows (bounded memory): the result does not depend on it."""
    import tinydancer.model.text_features as text_features

    mean = TextFeaturizer(FeaturizerConfig(kind="wordllama_mean", dim=64), cache_dir=tmp_path)
    texts = [f"question {i}: " + "words " * (i % 17) for i in range(40)] + [""]
    whole = mean(texts)[0]
    monkeypatch.setattr(text_features, "_POOL_CHUNK_VALUES", 1)  # one row at a time
    np.testing.assert_array_equal(mean(texts)[0], whole)
    monkeypatch.setattr(text_features, "_POOL_CHUNK_VALUES", 64 * 3 * mean.token_ids(texts)[0].shape[1])  # 3 rows
    np.testing.assert_array_equal(mean(texts)[0], whole)


def test_bad_inputs(tokens: TextFeaturizer) -> None:
    with pytest.raises(InvalidInputError, match="list of str"):
        tokens.token_ids("not a list")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        FeaturizerConfig(kind="bert")
    with pytest.raises(ConfigError):
        FeaturizerConfig(dim=100)
    with pytest.raises(ConfigError):
        FeaturizerConfig(max_tokens=0)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, (7, 3, 4), elements=st.floats(-1e3, 1e3)), st.integers(1, 3))
def test_normalisation_standardises_real_steps(x: np.ndarray, length: int) -> None:
    mask = np.zeros((7, 3), bool)
    mask[:, :length] = True
    stats = fit_norm_stats(x, mask)
    out = apply_norm(x, stats, mask)
    real = out[mask]
    np.testing.assert_allclose(real.mean(0), 0, atol=1e-3)
    assert np.all(out[~mask] == 0)
    spread = x[mask].std(0) > 1e-3
    np.testing.assert_allclose(real.std(0)[spread], 1, rtol=1e-3)


def test_normalisation_errors() -> None:
    with pytest.raises(InvalidInputError, match="none"):
        fit_norm_stats(np.ones((2, 3, 4)), np.zeros((2, 3), bool))
    with pytest.raises(InvalidInputError, match="NaN"):
        fit_norm_stats(np.array([[np.nan, 1.0]]))


def test_metadata_round_trip() -> None:
    config = FeaturizerConfig(kind="wordllama_mean", dim=128, max_tokens=9)
    stats = NormStats(np.arange(3, dtype=np.float32), np.ones(3, np.float32) * 2)
    meta = featurizer_metadata(config, stats)
    assert all(isinstance(v, str) for v in meta.values())
    back, back_stats = featurizer_from_metadata(meta)
    assert back == config and back_stats is not None
    np.testing.assert_array_equal(back_stats.mean, stats.mean)
    np.testing.assert_array_equal(back_stats.std, stats.std)
    with pytest.raises(ModelLoadError, match="featurizer"):
        featurizer_from_metadata({"featurizer": '{"kind": "bert"}'})


def test_loading_wordllama_leaves_root_logging_alone() -> None:
    import logging
    import subprocess
    import sys

    code = (
        "import logging; from tinydancer.model.text_features import load_wordllama; load_wordllama(64); "
        "root = logging.getLogger(); print(root.level, len(root.handlers))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(logging.WARNING), "0"]
