"""The default prompt-router recipe: what ``python -m tinydancer train``, :func:`~tinydancer.learning.train_router`
and :class:`~tinydancer.learning.scorers.FastGRNNScorer` use unless told otherwise.

Chosen on validation rows only (never on test rows; EVALUATION.md has the sweep and its command):

- input: the mean WordLlama vector (64-d) of the first 256 tokens, one FastGRNN step (hidden 16), plus a
  bag of hashed token unigrams and bigrams of those tokens (4,096 buckets) added to the logit, trained jointly;
- target: ``"strong_gain"``, the expected gain of calling the strong model (:mod:`tinydancer.learning.labels`);
- training: Adam at 1e-3 with cosine decay (3e-3 on the n-gram bag), gradient clip 5, batches of 128, at most
  20 epochs with early stopping (patience 5) on the validation rows, L2 1e-4 on the n-gram bag; then a refit
  from the same initialisation on the training and validation rows together for the epoch count early
  stopping chose.

Its weights are 21,708 bytes in float32 (the FastGRNN 5,324 and the bag 16,384).

Examples:
    >>> DEFAULT_FEATURIZER.kind, DEFAULT_FEATURIZER.max_tokens, DEFAULT_TARGET, default_train_config(seed=3).seed
    ('wordllama_prefix_mean', 256, 'strong_gain', 3)
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from tinydancer.learning.train import TrainConfig
from tinydancer.model.text_features import FeaturizerConfig

#: How the default recipe turns prompts into inputs.
DEFAULT_FEATURIZER = FeaturizerConfig(kind="wordllama_prefix_mean", dim=64, max_tokens=256, ngram_buckets=4096)
#: The FastGRNN's architecture besides ``input_dim`` (keyword arguments of ``FastGRNNConfig``).
DEFAULT_MODEL: MappingProxyType[str, Any] = MappingProxyType({"hidden_dim": 16})
#: What the default recipe's score estimates (:data:`~tinydancer.learning.labels.TRAINING_TARGETS`).
DEFAULT_TARGET = "strong_gain"


def default_train_config(seed: int = 0, progress: bool = True) -> TrainConfig:
    """The default recipe's optimisation settings with a seed.

    Examples:
        >>> default_train_config().learning_rate, default_train_config().epochs
        (0.001, 20)
    """
    return TrainConfig(
        epochs=20, batch_size=128, learning_rate=1e-3, schedule="cosine", clip_norm=5.0, patience=5,
        ngram_l2=1e-4, ngram_lr_scale=3.0, refit=True, seed=seed, progress=progress,
    )  # fmt: skip


__all__ = ["DEFAULT_FEATURIZER", "DEFAULT_MODEL", "DEFAULT_TARGET", "default_train_config"]
