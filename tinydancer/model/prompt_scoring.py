"""Prompt text -> routing decision: tokenise in the shell, then one jitted function for all the numbers.

:class:`PromptScorer` holds a :class:`~tinydancer.model.prompt_artifact.PromptRouterArtifact`'s arrays on
the device. After tokenisation (:class:`~tinydancer.model.fast_tokenizer.PrefixTokenizer`, in C, or in Rust
where the C tokenizer was not built), everything is one jitted call, :func:`score_kernel`: embedding lookup,
normalisation, FastGRNN (or the mean of an ensemble's members), calibration, conformal set, uncertainty and the
decision ``use_strong = p_strong >= threshold``. A batch is scored in chunks of at most :data:`CHUNK_PROMPTS`,
padded to fixed buckets: batch sizes :data:`BATCH_BUCKETS`; lengths ``max_tokens``, or for a batch of at least
:data:`LENGTH_GROUPS_FROM` prompts of a pooled-prefix router, the powers of two from :data:`MIN_PADDED_TOKENS` that
hold them, each prompt in the shortest; for ``wordllama_mean``, total token counts in powers of two. So a steady
stream compiles nothing new; the threshold is an argument, so switching operating points compiles nothing either.

Outputs per prompt (:class:`PromptScores`): ``p_raw`` (the network's score: P(weak fails), or ``(1 + expected
gain of the strong model) / 2`` for a ``strong_gain`` artifact), ``p_strong`` (calibrated: P(the strong model
is needed)), ``use_strong``, ``confidence`` (calibrated probability that the chosen model is the right call:
``p_strong`` when strong, ``1 - p_strong`` when weak), ``uncertainty`` in [0, 1] and the conformal set
(``in_set_weak``, ``in_set_strong``). Uncertainty (:data:`UNCERTAINTY_MODES`):

- ``conformal``: 1 when the conformal set holds both models or neither (ambiguous), else 0;
- ``mutual_information``: the ensemble's mutual information divided by ln 2 (its maximum);
- ``original``: the original router's ``clamp(1 - 2 |p - 0.5|, 0, 1)`` on ``p_strong``;
- ``auto``: conformal when the artifact holds a conformal quantile, else mutual information for an
  ensemble, else original.
"""

from __future__ import annotations

import itertools
import math
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tinydancer.errors import ConfigError, InvalidInputError
from tinydancer.model.calibration_map import Calibrator, calibrate_jnp
from tinydancer.model.fast_tokenizer import PrefixTokenizer
from tinydancer.model.fastgrnn import FastGRNNConfig, _dense_params, _sequence_logit, member_statistics
from tinydancer.model.prompt_artifact import PromptRouterArtifact
from tinydancer.model.text_features import _encode, hashed_ngrams, load_wordllama, plain_tokenizer

#: Padded batch sizes of one jitted call; bigger batches are cut into chunks of the largest.
BATCH_BUCKETS: tuple[int, ...] = (1, 4, 16, 64, 256, 1024, 4096)
#: How uncertainty is computed (module docstring).
UNCERTAINTY_MODES: tuple[str, ...] = ("auto", "conformal", "mutual_information", "original")
_MIN_FLAT_TOKENS = 64
#: Batches of at least this many prompts of a ``wordllama_prefix_mean`` router are scored in groups of similar
#: length, each padded to the power of two (at least :data:`MIN_PADDED_TOKENS`) that holds its prompts rather
#: than to ``max_tokens``: the kernel's time grows with the padded length (the mean MMLU prompt has 109 of 256).
#: Smaller batches keep ``max_tokens``, so that single prompts compile one shape.
LENGTH_GROUPS_FROM = 64
#: The shortest padded length of a length group.
MIN_PADDED_TOKENS = 16
#: Prompts per kernel call: a larger batch is scored in chunks of this many. The gathered token vectors of 256
#: prompts stay in cache where 4,096 prompts' do not: over the 14,037 MMLU prompts, chunks of 256 scored 2-3x
#: faster than chunks of 4,096 with the recipe, and faster for every featuriser (``benchmarks/prompt_tokens.py``).
CHUNK_PROMPTS = 256
#: Steps of the FastGRNN scan per loop trip: 8 halves the time of one prompt on CPU (measured 107 -> 57 us
#: for B=1, T=32, H=16) and computes the same numbers.
SCAN_UNROLL = 8
_BOOLEAN_FIELDS = (2, 5, 6)  # use_strong, in_set_weak, in_set_strong


class PromptScores(NamedTuple):
    """Per-prompt outputs of :meth:`PromptScorer.score`; every field is [N] (numpy).

    Attributes:
        p_raw: float32 uncalibrated score (the ensemble mean for an ensemble).
        p_strong: float32 calibrated P(the strong model is needed) (the artifact's target's label).
        use_strong: bool, ``p_strong >= threshold``.
        confidence: float32 probability that the chosen model is the right call.
        uncertainty: float32 in [0, 1] (module docstring).
        in_set_weak: bool, the weak model is in the conformal set (False without one).
        in_set_strong: bool, the strong model is in the conformal set (False without one).
    """

    p_raw: np.ndarray
    p_strong: np.ndarray
    use_strong: np.ndarray
    confidence: np.ndarray
    uncertainty: np.ndarray
    in_set_weak: np.ndarray
    in_set_strong: np.ndarray


class TokenBatch(NamedTuple):
    """Tokenised prompts.

    Attributes:
        ids: [N, max_tokens] int32, each prompt's first ids then zeros; or, for ``wordllama_mean``, [L] int32
            every id of every prompt, end to end.
        counts: [N] int32 ids per prompt.
    """

    ids: np.ndarray
    counts: np.ndarray


class KernelSpec(NamedTuple):
    """The static part of :func:`score_kernel` (hashable): what to compute, not with which numbers."""

    config: FastGRNNConfig
    pooled: bool
    prefix_mean: bool
    ngram_buckets: int
    ensemble: bool
    calibrator: str
    uncertainty: str
    conformal: bool


def _logits(params: Any, spec: KernelSpec, x: jax.Array, mask: jax.Array) -> jax.Array:
    per_query = jax.vmap(partial(_sequence_logit, unroll=SCAN_UNROLL), in_axes=(None, None, 0, 0))
    if spec.ensemble:
        return jax.vmap(per_query, in_axes=(0, None, None, None))(params, spec.config, x, mask)  # [K, B]
    return per_query(_dense_params(params), spec.config, x, mask)[None]  # [1, B]


@partial(jax.jit, static_argnames=("spec",))
def score_kernel(
    arrays: dict[str, Any],
    ids: jax.Array,
    counts: jax.Array,
    segments: jax.Array,
    threshold: jax.Array,
    spec: KernelSpec,
) -> jax.Array:
    """Pure scoring of a padded batch: token ids -> the seven :class:`PromptScores` fields.

    Args:
        arrays: ``table`` [V, D], ``mean`` [D], ``std`` [D], ``params`` (FastGRNN pytree, members
            stacked for an ensemble), ``bag`` [K_members, K] n-gram weights ([1, 1] zeros without n-grams),
            ``cal`` (a, b, xs, ys) and ``q`` [] (conformal quantile).
        ids: [B, T] int32 token ids (``wordllama_tokens``, ``wordllama_prefix_mean``) or [L] flat ids
            (``wordllama_mean``).
        counts: [B] int32 real tokens per prompt.
        segments: [L] int32 prompt index of every flat id (B for padding); [0] unused when not pooled.
        threshold: [] float32.
        spec: The static choices.

    Returns:
        [7, B] float32: the :class:`PromptScores` fields in order (booleans as 0/1), stacked so that one
        transfer brings them back.
    """
    table, mean, std = arrays["table"], arrays["mean"], arrays["std"]
    b = counts.shape[0]
    if spec.pooled:
        sums = jax.ops.segment_sum(table[ids], segments, num_segments=b + 1)[:b]
        x = (sums / jnp.maximum(counts, 1).astype(jnp.float32)[:, None])[:, None, :]
        mask = jnp.ones((b, 1), bool)
        x = (x - mean) / std
    elif spec.prefix_mean:
        real = (jnp.arange(ids.shape[1])[None, :] < counts[:, None]).astype(jnp.float32)
        sums = jnp.einsum("bt,btd->bd", real, table[ids])
        x = ((sums / jnp.maximum(counts, 1).astype(jnp.float32)[:, None] - mean) / std)[:, None, :]
        mask = jnp.ones((b, 1), bool)
    else:
        real = jnp.arange(ids.shape[1])[None, :] < counts[:, None]
        mask = real.at[:, 0].set(True)  # a prompt without tokens still has one (all-zero) step
        x = (table[ids] * real[..., None].astype(jnp.float32) - mean) / std * mask[..., None].astype(jnp.float32)
    logits = _logits(arrays["params"], spec, x, mask)
    if spec.ngram_buckets:
        buckets, weights = hashed_ngrams(ids, counts, spec.ngram_buckets)
        logits = logits + jnp.sum(arrays["bag"][:, buckets] * weights, axis=-1)  # [K_members, B]
    probs = jax.nn.sigmoid(logits)
    p_raw, _, mutual_information = member_statistics(probs)
    decision = DecisionSpec(spec.calibrator, spec.uncertainty, spec.conformal)
    return _decide(p_raw, mutual_information, arrays["cal"], arrays["q"], threshold, decision)


class DecisionSpec(NamedTuple):
    """The static part of turning raw scores into decisions (hashable): calibrator kind, uncertainty mode and
    whether a conformal quantile exists."""

    calibrator: str
    uncertainty: str
    conformal: bool


def _decide(
    p_raw: jax.Array, mutual_information: jax.Array, cal: Any, q: jax.Array, threshold: jax.Array, spec: DecisionSpec
) -> jax.Array:
    """[B] raw scores -> the [7, B] :class:`PromptScores` fields: calibrate, decide, conformal set, uncertainty."""
    a, bias, xs, ys = cal
    p = calibrate_jnp(spec.calibrator, a, bias, xs, ys, p_raw)
    use_strong = p >= threshold
    confidence = jnp.where(use_strong, p, 1.0 - p)
    in_weak = (p <= q) & spec.conformal
    in_strong = (1.0 - p <= q) & spec.conformal
    if spec.uncertainty == "conformal":
        uncertainty = (in_weak == in_strong).astype(jnp.float32)
    elif spec.uncertainty == "mutual_information":
        uncertainty = jnp.clip(mutual_information / math.log(2.0), 0.0, 1.0)
    else:
        uncertainty = jnp.clip(1.0 - 2.0 * jnp.abs(p - 0.5), 0.0, 1.0)
    fields = (p_raw, p, use_strong, confidence, uncertainty, in_weak, in_strong)
    return jnp.stack([f.astype(jnp.float32) for f in fields])


@partial(jax.jit, static_argnames=("spec",))
def decision_kernel(p_raw: jax.Array, cal: Any, q: jax.Array, threshold: jax.Array, spec: DecisionSpec) -> jax.Array:
    """Pure decisions from raw scores computed elsewhere (a scorer outside JAX): the tail of :func:`score_kernel`.

    Args:
        p_raw: [B] float32 raw scores in [0, 1].
        cal: ``(a, b, xs, ys)`` float32 calibrator arrays (:func:`calibration_arrays`).
        q: [] float32 conformal quantile (unused without one).
        threshold: [] float32.
        spec: The static choices (``uncertainty`` is ``"conformal"`` or ``"original"``: one model, no ensemble).

    Returns:
        [7, B] float32, as :func:`score_kernel`.

    Examples:
        >>> cal = calibration_arrays(Calibrator("none"))
        >>> out = decision_kernel(jnp.array([0.2, 0.9]), cal, jnp.float32(0), jnp.float32(0.5),
        ...                       DecisionSpec("none", "original", False))
        >>> out[2].tolist(), [round(float(u), 2) for u in out[4]]
        ([0.0, 1.0], [0.4, 0.2])
    """
    return _decide(p_raw, jnp.zeros_like(p_raw), cal, q, threshold, spec)


def calibration_arrays(calibrator: Calibrator) -> tuple[jax.Array, ...]:
    """``(a, b, xs, ys)`` as float32 device arrays, the ``cal`` argument of the kernels (knots only for isotonic)."""
    knots = (calibrator.xs, calibrator.ys) if calibrator.kind == "isotonic" else ((0.0,), (0.0,))
    return tuple(jnp.asarray(v, jnp.float32) for v in (calibrator.a, calibrator.b, *knots))


def joined_scores(parts: list[np.ndarray]) -> PromptScores:
    """The kernels' [7, B] outputs of consecutive chunks as one :class:`PromptScores` (booleans as bool)."""
    return _as_scores(np.concatenate(parts, axis=1) if parts else np.zeros((len(PromptScores._fields), 0), np.float32))


def _as_scores(out: np.ndarray) -> PromptScores:
    """[7, N] kernel outputs as :class:`PromptScores` (booleans as bool)."""
    return PromptScores(*(out[i] > 0.5 if i in _BOOLEAN_FIELDS else out[i] for i in range(len(out))))


def _bucket(n: int) -> int:
    return next((size for size in BATCH_BUCKETS if size >= n), BATCH_BUCKETS[-1])


class PromptScorer:
    """The stateful shell of prompt scoring: the tokenizer and the artifact's arrays on the device.

    Args:
        artifact: The router to serve.
        uncertainty: One of :data:`UNCERTAINTY_MODES`.
        cache_dir: WordLlama's tokenizer cache (:func:`~tinydancer.model.text_features.load_wordllama`).

    Raises:
        ConfigError: an uncertainty mode the artifact cannot give (conformal without a conformal
            quantile, mutual information without an ensemble).

    Examples:
        >>> from tinydancer.model.fastgrnn import FastGRNNConfig, init_fastgrnn_params
        >>> from tinydancer.model.text_features import FeaturizerConfig, NormStats
        >>> cfg = FastGRNNConfig(input_dim=64, hidden_dim=4)
        >>> art = PromptRouterArtifact(init_fastgrnn_params(cfg), cfg, FeaturizerConfig(max_tokens=8),
        ...     NormStats(np.zeros(64, np.float32), np.ones(64, np.float32)))
        >>> scores = PromptScorer(art).score(["What is 2+2?", "Prove Fermat's last theorem."], threshold=0.5)
        >>> scores.p_strong.shape, scores.use_strong.tolist()
        ((2,), [True, True])
    """

    def __init__(
        self, artifact: PromptRouterArtifact, *, uncertainty: str = "auto", cache_dir: str | Path | None = None
    ) -> None:
        if uncertainty not in UNCERTAINTY_MODES:
            raise ConfigError(f"uncertainty: expected one of {UNCERTAINTY_MODES}, got {uncertainty!r}")
        ensemble = artifact.members > 1
        if uncertainty == "auto":
            uncertainty = "conformal" if artifact.conformal else "mutual_information" if ensemble else "original"
        if uncertainty == "conformal" and artifact.conformal is None:
            raise ConfigError("uncertainty 'conformal': the artifact has no conformal quantile (run calibrate)")
        if uncertainty == "mutual_information" and not ensemble:
            raise ConfigError("uncertainty 'mutual_information': the artifact holds one model, not an ensemble")
        self.artifact = artifact
        self.uncertainty = uncertainty
        feat = artifact.featurizer
        wordllama = load_wordllama(feat.dim, cache_dir)
        self._tokenizer = plain_tokenizer(wordllama)
        self._prefix_tokenizer = PrefixTokenizer(self._tokenizer)
        table = np.asarray(wordllama.embedding, np.float32)
        self._vocab = table.shape[0]
        cal = artifact.calibrator
        self._arrays = {
            "table": jnp.asarray(table),
            "mean": jnp.asarray(artifact.norm.mean, jnp.float32),
            "std": jnp.asarray(artifact.norm.std, jnp.float32),
            "params": artifact.params,
            "bag": jnp.asarray(
                np.zeros((1, 1))
                if artifact.ngram_weights is None
                else artifact.ngram_weights.reshape(-1, feat.ngram_buckets),
                jnp.float32,
            ),
            "cal": calibration_arrays(cal),
            "q": jnp.float32(artifact.conformal.q if artifact.conformal else 0.0),
        }
        self._spec = KernelSpec(
            config=artifact.model_config,
            pooled=not feat.prefix,
            prefix_mean=feat.kind == "wordllama_prefix_mean",
            ngram_buckets=feat.ngram_buckets,
            ensemble=ensemble,
            calibrator=cal.kind,
            uncertainty=uncertainty,
            conformal=artifact.conformal is not None,
        )
        self._no_segments = np.zeros(1, np.int32)

    def tokenize(self, texts: list[str]) -> TokenBatch:
        """Token ids of every text (the first ``max_tokens``; every token for ``wordllama_mean``)."""
        feat = self.artifact.featurizer
        if feat.prefix:
            return TokenBatch(*self._prefix_tokenizer(texts, feat.max_tokens))
        rows = _encode(self._tokenizer, texts)
        counts = np.array([len(r) for r in rows], np.int32)
        return TokenBatch(np.fromiter(itertools.chain.from_iterable(rows), np.int32, int(counts.sum())), counts)

    def _padded(self, ids: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One chunk's kernel inputs: ids, counts and segments padded to :data:`BATCH_BUCKETS` (module docstring)."""
        n, size = len(counts), _bucket(len(counts))
        padded_counts = np.zeros(size, np.int32)
        padded_counts[:n] = counts
        if self._spec.pooled:
            total = len(ids)
            flat_size = max(_MIN_FLAT_TOKENS, 1 << max(total - 1, 0).bit_length())
            flat = np.zeros(flat_size, np.int32)
            segments = np.full(flat_size, size, np.int32)
            flat[:total] = ids
            segments[:total] = np.repeat(np.arange(n, dtype=np.int32), counts)
            np.clip(flat, 0, self._vocab - 1, out=flat)
            return flat, padded_counts, segments
        padded = np.zeros((size, ids.shape[1]), np.int32)
        padded[:n] = ids
        np.clip(padded, 0, self._vocab - 1, out=padded)
        return padded, padded_counts, self._no_segments

    def _chunks(self, tokens: TokenBatch) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(positions [n], ids, counts) of the prompts of each kernel call: chunks of at most :data:`CHUNK_PROMPTS`,
        and for a large pooled-prefix batch, groups of one padded length each (module docstring)."""
        n, chunk, counts = len(tokens.counts), CHUNK_PROMPTS, tokens.counts
        if self._spec.pooled:
            ends = np.cumsum(counts)
            return [
                (np.arange(a, z), tokens.ids[ends[a] - counts[a] : ends[z - 1]], counts[a:z])
                for a, z in ((a, min(a + chunk, n)) for a in range(0, n, chunk))
            ]
        max_tokens = tokens.ids.shape[1]
        widths = np.full(n, max_tokens)
        if self._spec.prefix_mean and n >= LENGTH_GROUPS_FROM:
            fits = np.left_shift(1, np.ceil(np.log2(np.maximum(counts, MIN_PADDED_TOKENS))).astype(np.int64))
            widths = np.minimum(fits, max_tokens)
        out = []
        for width in np.unique(widths):
            group = np.flatnonzero(widths == width)
            for rows in (group[a : a + chunk] for a in range(0, len(group), chunk)):
                out.append((rows, tokens.ids[rows, :width], counts[rows]))
        return out

    def score_tokens(self, tokens: TokenBatch, threshold: float) -> PromptScores:
        """Score tokenised prompts, one jitted call per padded chunk of at most :data:`CHUNK_PROMPTS`.

        Raises:
            InvalidInputError: ``threshold`` is NaN.
        """
        if math.isnan(threshold):
            raise InvalidInputError("threshold: expected a number or +-inf, got NaN")
        t = np.float32(threshold)  # a numpy scalar: jnp.float32() would run a JAX conversion per call
        out = np.zeros((len(PromptScores._fields), len(tokens.counts)), np.float32)
        for rows, ids, counts in self._chunks(tokens):
            scored = score_kernel(self._arrays, *self._padded(ids, counts), t, self._spec)
            out[:, rows] = np.asarray(scored)[:, : len(rows)]
        return _as_scores(out)

    def score(self, texts: list[str], threshold: float | None = None) -> PromptScores:
        """Tokenise and score; ``threshold`` defaults to the artifact's default operating point's."""
        if threshold is None:
            threshold = self.artifact.operating_point().threshold
        return self.score_tokens(self.tokenize(list(texts)), threshold)
