"""Query text -> FastGRNN input: WordLlama token-vector sequences (or their mean), normalised, and hashed n-grams.

WordLlama (PyPI ``wordllama`` 0.4.0.post1, MIT) ships static 256-d token embeddings and a tokenizer
inside its wheel. Its loader looks for the tokenizer under ``wordllama/tokenizer/`` while the wheel
has ``wordllama/tokenizers/``, and would then try a download; :func:`load_wordllama` copies the bundled
file into ``<cache_dir>/tokenizers/`` and loads with ``disable_download=True``, so nothing is fetched.

A featuriser may also hash the unigrams and bigrams of the first ``max_tokens`` token ids into
``ngram_buckets`` buckets (:func:`hashed_ngrams`); a prompt router adds a learned weight per bucket to its
logit (a linear bag-of-n-grams term beside the FastGRNN).

The featuriser's choice (:class:`FeaturizerConfig`) and the per-dimension normalisation statistics
(:class:`NormStats`, fitted on training data) are saved with the model (:func:`featurizer_metadata`).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tinydancer.errors import ConfigError, InvalidInputError, ModelLoadError
from tinydancer.validation import check_choice, check_int

FEATURIZER_KINDS: tuple[str, ...] = ("wordllama_tokens", "wordllama_mean", "wordllama_prefix_mean")
_WORDLLAMA_DIMS: tuple[int, ...] = (64, 128, 256)
_TOKENIZER_FILE = "l2_supercat_tokenizer_config.json"


@dataclass(frozen=True)
class FeaturizerConfig:
    """How query text becomes model input.

    Args:
        kind: ``"wordllama_tokens"`` (a [T, D] sequence per query), ``"wordllama_mean"`` (one [D] mean of
            every token vector, a sequence of length 1) or ``"wordllama_prefix_mean"`` (one [D] mean of the
            first ``max_tokens`` token vectors).
        dim: Token-vector size D: 64, 128 or 256 (WordLlama's Matryoshka truncations of 256).
        max_tokens: Tokens kept (the first ones) for ``wordllama_tokens`` and ``wordllama_prefix_mean``.
        ngram_buckets: Buckets K of the hashed unigrams and bigrams of the first ``max_tokens`` tokens
            (:func:`hashed_ngrams`); 0 for none. Not with ``wordllama_mean``.

    Raises:
        ConfigError: Unknown kind, unsupported dim, max_tokens < 1, ngram_buckets < 0, or n-grams with
            ``wordllama_mean``.

    Examples:
        >>> FeaturizerConfig(kind="wordllama_mean", dim=64).dim
        64
    """

    kind: str = "wordllama_tokens"
    dim: int = 64
    max_tokens: int = 32
    ngram_buckets: int = 0

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, FEATURIZER_KINDS)
        check_choice("dim", self.dim, _WORDLLAMA_DIMS)
        check_int("max_tokens", self.max_tokens, low=1)
        check_int("ngram_buckets", self.ngram_buckets, low=0)
        if self.ngram_buckets and self.kind == "wordllama_mean":
            raise ConfigError(
                "ngram_buckets: n-grams are hashed from the first max_tokens tokens; use kind "
                "'wordllama_prefix_mean' or 'wordllama_tokens' with them, not 'wordllama_mean'"
            )

    @property
    def prefix(self) -> bool:
        """Whether only the first ``max_tokens`` tokens are read (every kind but ``wordllama_mean``)."""
        return self.kind != "wordllama_mean"


#: Multipliers of the n-gram hash (Knuth's multiplicative constant; a large prime), in uint32 arithmetic.
_HASH_A, _HASH_B = 2654435761, 1000003


def hashed_ngrams(
    ids: jax.Array | np.ndarray, counts: jax.Array | np.ndarray, buckets: int
) -> tuple[jax.Array, jax.Array]:
    """Bucket and weight of every unigram and bigram of padded token-id rows (pure, jittable).

    Unigram ``a`` goes to bucket ``(a * 2654435761 + 97) mod 2^32 mod K``; bigram ``(a, b)`` to
    ``((a * 1000003) xor (b * 2654435761) + 12345) mod 2^32 mod K``. Each of a prompt's ``n`` real n-grams
    (``count`` unigrams and ``count - 1`` bigrams) weighs ``1 / sqrt(n)``; padding weighs 0. The n-gram term of
    a logit is ``sum(weights * bag[buckets])``.

    Args:
        ids: [B, T] token ids (real ones first).
        counts: [B] real tokens per row (at most T).
        buckets: K >= 1.

    Returns:
        ``(buckets [B, 2T - 1] int32, weights [B, 2T - 1] float32)``.

    Examples:
        >>> b, w = hashed_ngrams(np.array([[5, 7, 0]]), np.array([2]), 16)
        >>> b.shape, [round(float(v), 3) for v in w[0]]
        ((1, 5), [0.577, 0.577, 0.0, 0.577, 0.0])
    """
    u = jnp.asarray(ids).astype(jnp.uint32)
    k, mul = jnp.uint32(buckets), jnp.uint32(_HASH_A)
    unigrams = (u * mul + jnp.uint32(97)) % k
    bigrams = (((u[:, :-1] * jnp.uint32(_HASH_B)) ^ (u[:, 1:] * mul)) + jnp.uint32(12345)) % k
    count = jnp.asarray(counts).astype(jnp.int32)
    position = jnp.arange(u.shape[1], dtype=jnp.int32)[None, :]
    real = jnp.concatenate([position < count[:, None], position[:, :-1] < count[:, None] - 1], axis=1)
    n = jnp.maximum(2 * count - 1, 1).astype(jnp.float32)
    weights = real.astype(jnp.float32) / jnp.sqrt(n)[:, None]
    return jnp.concatenate([unigrams, bigrams], axis=1).astype(jnp.int32), weights


class NormStats(NamedTuple):
    """Per-dimension standardisation ``(x - mean) / std`` fitted on real (unmasked) steps.

    Attributes:
        mean: [D] float32.
        std: [D] float32, floored at 1e-6.
    """

    mean: np.ndarray
    std: np.ndarray


def fit_norm_stats(x: np.ndarray, mask: np.ndarray | None = None) -> NormStats:
    """Mean and standard deviation of every input dimension over the real steps.

    Args:
        x: [N, T, D] or [N, D] features.
        mask: Optional [N, T] (or [N]) bool, True on real steps.

    Returns:
        The statistics.

    Raises:
        InvalidInputError: No real step, or non-finite features.

    Examples:
        >>> fit_norm_stats(np.array([[1.0, 2.0], [3.0, 2.0]])).mean.tolist()
        [2.0, 2.0]
    """
    arr = np.asarray(x, np.float64)
    rows = arr.reshape(-1, arr.shape[-1])
    if mask is not None:
        rows = rows[np.asarray(mask, bool).reshape(-1)]
    if rows.shape[0] == 0:
        raise InvalidInputError("fit_norm_stats: expected at least one real step, got none")
    if not np.all(np.isfinite(rows)):
        raise InvalidInputError("fit_norm_stats: features contain NaN or infinity")
    return NormStats(rows.mean(0).astype(np.float32), np.maximum(rows.std(0), 1e-6).astype(np.float32))


def apply_norm(x: np.ndarray, stats: NormStats, mask: np.ndarray | None = None) -> np.ndarray:
    """Standardise features; padded steps stay exactly zero.

    Args:
        x: [N, T, D] or [N, D] features.
        stats: From :func:`fit_norm_stats`.
        mask: Optional [N, T] bool.

    Returns:
        float32 array of ``x``'s shape.

    Examples:
        >>> apply_norm(np.array([[1.0, 2.0], [3.0, 2.0]]), NormStats(np.array([2.0, 2.0]), np.ones(2))).tolist()
        [[-1.0, 0.0], [1.0, 0.0]]
    """
    out: np.ndarray = ((np.asarray(x, np.float32) - stats.mean) / stats.std).astype(np.float32)
    if mask is not None:
        out *= np.asarray(mask, bool)[..., None]
    return out


def load_wordllama(dim: int = 256, cache_dir: str | Path | None = None) -> Any:
    """Load the bundled WordLlama model fully offline.

    Args:
        dim: 64, 128 or 256 (truncation of the bundled 256-d weights).
        cache_dir: Folder for the tokenizer copy; default ``~/.cache/tinydancer/wordllama``, falling
            back to a temporary folder when home is not writable.

    Returns:
        A ``wordllama`` ``WordLlamaInference`` (``.embedding`` [V, dim], ``.tokenizer``).

    Raises:
        ModelLoadError: ``wordllama`` is not installed or its bundled files are missing.

    Examples:
        >>> load_wordllama(64).embedding.shape[1]
        64
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        import wordllama
    except ImportError as exc:  # pragma: no cover - dependency is pinned
        raise ModelLoadError("wordllama is not installed; `pip install wordllama==0.4.0.post1`") from exc
    finally:  # wordllama calls logging.basicConfig(level=INFO) on import: undo that process-wide change
        root.setLevel(level)
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
    bundled = Path(wordllama.__file__).parent / "tokenizers" / _TOKENIZER_FILE
    if not bundled.is_file():
        raise ModelLoadError(f"wordllama's bundled tokenizer is missing: expected {bundled}")
    folders = [Path(cache_dir)] if cache_dir is not None else []
    folders += [Path.home() / ".cache" / "tinydancer" / "wordllama", Path(tempfile.gettempdir()) / "tinydancer-wl"]
    for folder in folders:
        target = folder / "tokenizers" / _TOKENIZER_FILE
        try:
            if not target.is_file() or target.stat().st_size != bundled.stat().st_size:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(bundled, target)
        except OSError:
            continue
        try:
            return wordllama.WordLlama.load(
                cache_dir=folder, dim=256, trunc_dim=None if dim == 256 else dim, disable_download=True
            )
        except FileNotFoundError as exc:
            raise ModelLoadError(f"wordllama could not load offline from {folder}: {exc}") from exc
    raise ModelLoadError(f"no writable cache folder for wordllama's tokenizer among {folders}")


#: Characters read per wanted token before the fallback to the whole text (:func:`first_token_ids`).
PREFIX_CHARS_PER_TOKEN = 6
#: Extra tokens a prefix must yield beyond ``max_tokens``: the last word of a cut text may tokenise
#: differently from the same word inside the whole text, so it must lie beyond the tokens kept.
PREFIX_MARGIN_TOKENS = 8


def plain_tokenizer(model: Any) -> Any:
    """A copy of WordLlama's tokenizer without padding or truncation (its own pads every batch to the longest)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(model.tokenizer.to_str())
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def _encode(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # no offsets: ~2x faster
    return [enc.ids for enc in encode(texts, add_special_tokens=False)]


def _cut(text: str, chars: int) -> str:
    """``text`` cut before its last whitespace within ``chars`` characters, trailing whitespace dropped."""
    if len(text) <= chars:
        return text
    head = text[: chars + 1]
    at = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    return head[:at].rstrip() if at > 0 else head


def first_token_ids(tokenizer: Any, texts: list[str], max_tokens: int) -> list[list[int]]:
    """The first ``max_tokens`` token ids of every text, without tokenising all of a long text.

    Each text is cut at a word boundary after ``PREFIX_CHARS_PER_TOKEN * (max_tokens + margin)``
    characters and tokenised; when the cut text yields fewer than ``max_tokens + PREFIX_MARGIN_TOKENS``
    tokens (and was cut), the whole text is tokenised instead. Tokens before the last word of a cut text
    are those of the whole text (the pre-tokeniser splits at whitespace), so the result equals the
    first ``max_tokens`` ids of the whole text; ``tests/model/test_prompt_scoring.py`` checks it on every
    bundled MMLU prompt.

    Args:
        tokenizer: A ``tokenizers.Tokenizer`` without padding (:func:`plain_tokenizer`).
        texts: The texts.
        max_tokens: Tokens wanted per text.

    Returns:
        One list of at most ``max_tokens`` ids per text.
    """
    need = max_tokens + PREFIX_MARGIN_TOKENS
    cuts = [_cut(t, PREFIX_CHARS_PER_TOKEN * need) for t in texts]
    ids = _encode(tokenizer, cuts)
    redo = [
        i for i, (row, cut, text) in enumerate(zip(ids, cuts, texts, strict=True)) if len(row) < need and cut != text
    ]
    if redo:
        for i, row in zip(redo, _encode(tokenizer, [texts[i] for i in redo]), strict=True):
            ids[i] = row
    return [row[:max_tokens] for row in ids]


class TextFeatures(NamedTuple):
    """Raw (unnormalised) features of N texts.

    Attributes:
        x: [N, T, D] float32 token vectors (T = 1 for the pooled kinds).
        mask: [N, T] bool, True on real steps (every sequence has at least one).
        ngram_ids: [N, G] int32 hashed n-gram buckets (:func:`hashed_ngrams`), or None without n-grams.
        ngram_weights: [N, G] float32 weights of those n-grams (0 on padding), or None.
    """

    x: np.ndarray
    mask: np.ndarray
    ngram_ids: np.ndarray | None = None
    ngram_weights: np.ndarray | None = None


#: Pooled featurisers gather at most this many float32 values (64 MiB) of token vectors at a time.
_POOL_CHUNK_VALUES = 16 * 2**20


class TextFeaturizer:
    """Stateful shell around the WordLlama tables: texts -> (x, mask) per :class:`FeaturizerConfig`.

    Args:
        config: The featuriser choice.
        cache_dir: Passed to :func:`load_wordllama`.

    Examples:
        >>> f = TextFeaturizer(FeaturizerConfig(kind="wordllama_tokens", dim=64, max_tokens=8))
        >>> x, mask = f(["What is 2+2?", "Prove the Riemann hypothesis."])
        >>> x.shape, mask.dtype.name
        ((2, 8, 64), 'bool')
    """

    def __init__(self, config: FeaturizerConfig, cache_dir: str | Path | None = None) -> None:
        self.config = config
        self._model = load_wordllama(config.dim, cache_dir)
        self.tokenizer = plain_tokenizer(self._model)
        self.table: np.ndarray = np.asarray(self._model.embedding, np.float32)

    def token_ids(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids [N, T] int32 and mask [N, T] bool: the first ``max_tokens`` tokens (every token, T the
        longest, for ``wordllama_mean``)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InvalidInputError("texts: expected a list of str")
        texts = list(texts)
        if self.config.prefix:
            rows = first_token_ids(self.tokenizer, texts, self.config.max_tokens)
        else:
            rows = _encode(self.tokenizer, texts)
        t = self.config.max_tokens if self.config.prefix else max([len(r) for r in rows] + [1])
        ids = np.zeros((len(texts), t), np.int32)
        mask = np.zeros((len(texts), t), bool)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = True
        np.clip(ids, 0, self.table.shape[0] - 1, out=ids)
        return ids, mask

    def _pooled(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """[N, D] float32 means of the masked token vectors, a few rows at a time: the [rows, T, D] gather of
        all N rows at once would need N * T * D floats (tens of GB for 14,000 long prompts with every token)."""
        pooled = np.empty((len(ids), self.table.shape[1]), np.float32)
        step = max(1, _POOL_CHUNK_VALUES // max(1, ids.shape[1] * self.table.shape[1]))
        for start in range(0, len(ids), step):
            rows = slice(start, start + step)
            x = self.table[ids[rows]] * mask[rows, :, None]
            counts = np.maximum(mask[rows].sum(axis=1, keepdims=True), 1).astype(np.float32)
            pooled[rows] = x.sum(axis=1, dtype=np.float32) / counts
        return pooled

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw (unnormalised) features: x [N, T, D] float32 and mask [N, T] bool (T = 1 when pooled)."""
        features = self.featurize(texts)
        return features.x, features.mask

    def featurize(self, texts: list[str]) -> TextFeatures:
        """Raw features and, with ``ngram_buckets``, the hashed n-grams (:class:`TextFeatures`).

        ``wordllama_mean`` averages every token's vector (an empty text gives zeros), as WordLlama's
        ``embed(norm=False)``; ``wordllama_prefix_mean`` the first ``max_tokens``. A text with no token
        gets one all-zero step, so every sequence has at least one real step.

        Examples:
            >>> f = TextFeaturizer(FeaturizerConfig(kind="wordllama_prefix_mean", max_tokens=8, ngram_buckets=64))
            >>> out = f.featurize(["What is 2+2?", ""])
            >>> out.x.shape, out.ngram_ids.shape, float(out.ngram_weights[1].sum())
            ((2, 1, 64), (2, 15), 0.0)
        """
        ids, mask = self.token_ids(texts)
        ngram_ids = ngram_weights = None
        if self.config.ngram_buckets:
            buckets, weights = hashed_ngrams(ids, mask.sum(axis=1), self.config.ngram_buckets)
            ngram_ids, ngram_weights = np.asarray(buckets), np.asarray(weights)
        if self.config.kind != "wordllama_tokens":
            pooled = self._pooled(ids, mask)[:, None, :]
            return TextFeatures(pooled, np.ones((len(ids), 1), bool), ngram_ids, ngram_weights)
        x = self.table[ids] * mask[..., None]
        mask[:, 0] = True
        return TextFeatures(x.astype(np.float32), mask, ngram_ids, ngram_weights)


def featurizer_metadata(config: FeaturizerConfig, stats: NormStats | None) -> dict[str, str]:
    """String metadata (for a safetensors header) recording the featuriser and its statistics.

    Examples:
        >>> sorted(featurizer_metadata(FeaturizerConfig(), None))
        ['featurizer']
    """
    meta = {"featurizer": json.dumps(asdict(config), sort_keys=True)}
    if stats is not None:
        meta["norm_stats"] = json.dumps({"mean": stats.mean.tolist(), "std": stats.std.tolist()})
    return meta


def featurizer_from_metadata(meta: dict[str, str]) -> tuple[FeaturizerConfig, NormStats | None]:
    """Inverse of :func:`featurizer_metadata`.

    Raises:
        ModelLoadError: The metadata has no (valid) featuriser entry.

    Examples:
        >>> featurizer_from_metadata(featurizer_metadata(FeaturizerConfig(dim=128), None))[0].dim
        128
    """
    try:
        config = FeaturizerConfig(**json.loads(meta["featurizer"]))
        stats = None
        if "norm_stats" in meta:
            raw = json.loads(meta["norm_stats"])
            stats = NormStats(np.asarray(raw["mean"], np.float32), np.asarray(raw["std"], np.float32))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"model metadata: expected a valid 'featurizer' entry, got {meta!r:.200}") from exc
    return config, stats
