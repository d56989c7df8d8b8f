"""Routing-outcome datasets: a RouteLLM-format loader and seeded synthetic data with known truth.

RouteLLM (Ong et al. 2024) caches, per benchmark prompt, whether each model answered correctly. The
loader reads one CSV/JSONL file or a folder of per-subject CSVs (``mmlu_<subject>.csv``, as in
``routellm/evals/mmlu/responses``), drops the prompts RouteLLM marks as contaminated, and returns one
tidy frame. The routing label used throughout tinydancer is "the weak model is not good enough":
``1 - weak_correct`` (soft when the outcomes are scores in [0, 1]).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from tinydancer.errors import DataError

#: RouteLLM's MMLU pair: Mixtral-8x7B (weak) and GPT-4-1106 (strong).
DEFAULT_WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
DEFAULT_STRONG = "gpt-4-1106-preview"
CONTAMINATED_FILE = "contaminated_prompts.jsonl"
#: Outcome column names of the synthetic RouteLLM-format data (and the bundled fixture).
SYNTHETIC_WEAK = "weak"
SYNTHETIC_STRONG = "strong"
#: Column pairs recognised when the caller names none: RouteLLM's MMLU pair, then the synthetic one.
KNOWN_OUTCOME_PAIRS: tuple[tuple[str, str], ...] = ((DEFAULT_WEAK, DEFAULT_STRONG), (SYNTHETIC_WEAK, SYNTHETIC_STRONG))
#: Optional boolean column marking rows to drop (RouteLLM's contaminated prompts, in the bundled Parquet).
CONTAMINATED_COLUMN = "contaminated"
OUTCOME_COLUMNS: tuple[str, ...] = ("prompt", "subject", "weak_correct", "strong_correct")


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path)
        if path.suffix in (".jsonl", ".json"):
            return pd.read_json(path, lines=path.suffix == ".jsonl")
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: could not be parsed as {path.suffix[1:].upper()}: {exc}") from exc
    raise DataError(f"{path}: expected a .parquet, .csv, .jsonl or .json file, got suffix {path.suffix!r}")


def _outcome(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    values = frame[column]
    if values.dtype == bool:
        return values.to_numpy(np.float64)
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        lowered = values.astype(str).str.strip().str.lower()
        mapping = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0}
        if lowered.isin(list(mapping)).all():
            return lowered.map(mapping).to_numpy(np.float64)
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(numeric) | (numeric < 0) | (numeric > 1)
    if bad.any():
        example = values[bad].iloc[0]
        shown = repr(example) if isinstance(example, str) else str(example)
        rescale = np.isfinite(numeric[bad]).all()
        raise DataError(
            f"{path}: column {column!r} must hold booleans or scores in [0, 1]; "
            f"got {int(bad.sum())} other values, e.g. {shown}"
            + ("; scale ratings into [0, 1] first, e.g. (rating - 1) / 9 for a 1-10 scale" if rescale else "")
        )
    return numeric


def _outcome_columns(columns: pd.Index, path: Path, weak: str | None, strong: str | None) -> tuple[str, str]:
    if weak is None and strong is None:
        for pair in KNOWN_OUTCOME_PAIRS:
            if all(c in columns for c in pair):
                return pair
    weak = weak or DEFAULT_WEAK
    strong = strong or DEFAULT_STRONG
    missing = [c for c in ("prompt", weak, strong) if c not in columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {list(columns)}. Name the two models' outcome "
            "columns: --weak COLUMN --strong COLUMN on the command line, weak=/strong= in Python."
        )
    return weak, strong


def _normalise(frame: pd.DataFrame, path: Path, subject: str, weak: str | None, strong: str | None) -> pd.DataFrame:
    weak, strong = _outcome_columns(frame.columns, path, weak, strong)
    if CONTAMINATED_COLUMN in frame.columns:
        frame = frame[~frame[CONTAMINATED_COLUMN].astype(bool).to_numpy()]
    out = pd.DataFrame(
        {
            "prompt": frame["prompt"].astype(str).to_numpy(),
            "subject": frame["subject"].astype(str).to_numpy() if "subject" in frame.columns else subject,
            "weak_correct": _outcome(frame, weak, path),
            "strong_correct": _outcome(frame, strong, path),
        }
    )
    if "cost" in frame.columns:
        cost = pd.to_numeric(frame["cost"], errors="coerce").to_numpy(np.float64)
        if not np.all(np.isfinite(cost)) or np.any(cost < 0):
            raise DataError(f"{path}: column 'cost' must hold finite non-negative numbers")
        out["cost"] = cost
    out.attrs.update(weak_model=weak, strong_model=strong)  # the models' names, kept with the frame
    return out


def _contaminated(folder: Path) -> set[str]:
    for candidate in (folder / CONTAMINATED_FILE, folder.parent / CONTAMINATED_FILE):
        if candidate.is_file():
            with candidate.open(encoding="utf-8") as handle:
                return {json.loads(line)["eval_prompt"] for line in handle if line.strip()}
    return set()


def load_routellm_outcomes(
    path_or_dir: str | Path, *, weak: str | None = None, strong: str | None = None
) -> pd.DataFrame:
    """Load RouteLLM-format routing outcomes from a file or a folder of subject CSVs.

    A folder is read as every ``*.csv`` in it (or in its ``responses/`` subfolder); the subject is the
    file stem without a leading ``mmlu_``. A ``contaminated_prompts.jsonl`` beside the CSVs (or one
    level up) removes its ``eval_prompt`` rows, as RouteLLM's evaluation does; so does a boolean
    ``contaminated`` column (the bundled Parquet file). For a bundled dataset by name, use
    :func:`tinydancer.datasets.load`.

    Args:
        path_or_dir: A ``.parquet`` / ``.csv`` / ``.jsonl`` / ``.json`` file or a folder.
        weak: Column with the weak (cheap) model's outcome: booleans or scores in [0, 1]. With neither
            ``weak`` nor ``strong`` given, the first known pair present is used: RouteLLM's MMLU
            columns (``mistralai/Mixtral-8x7B-Instruct-v0.1``, ``gpt-4-1106-preview``), then ``weak`` /
            ``strong`` (the synthetic fixture).
        strong: Column with the strong (expensive) model's outcome.

    Returns:
        Frame with columns ``prompt`` (str), ``subject`` (str), ``weak_correct`` and
        ``strong_correct`` (float64 in [0, 1]), and ``cost`` (float64) when the source has one.

    Raises:
        DataError: The path is absent, a column is missing (the message lists those found), an
            outcome is not a boolean/score, or no rows remain.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> make_synthetic_outcomes(20, seed=0).drop(columns="subject").to_csv(folder / "mmlu_toy.csv", index=False)
        >>> df = load_routellm_outcomes(folder)
        >>> list(df.columns), df["subject"].iloc[0], len(df)
        (['prompt', 'subject', 'weak_correct', 'strong_correct', 'cost'], 'toy', 20)
    """
    path = Path(path_or_dir)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (expected RouteLLM-format outcomes there)")
    if path.is_dir():
        folder = path / "responses" if (path / "responses").is_dir() else path
        files = sorted(folder.glob("*.csv"))
        if not files:
            raise DataError(f"{folder}: expected subject CSV files (e.g. mmlu_anatomy.csv), found none")
        parts = [_normalise(_read_table(f), f, f.stem.removeprefix("mmlu_"), weak, strong) for f in files]
        frame = pd.concat(parts, ignore_index=True)
        dropped = _contaminated(folder)
    else:
        frame = _normalise(_read_table(path), path, path.stem.removeprefix("mmlu_"), weak, strong)
        dropped = _contaminated(path.parent)
    if dropped:
        frame = frame[~frame["prompt"].isin(dropped)].reset_index(drop=True)
    frame.attrs.update(parts[0].attrs if path.is_dir() else {})
    if frame.empty:
        raise DataError(f"{path}: no rows left to route (empty file, or every prompt was dropped)")
    return frame


class SyntheticRouting(NamedTuple):
    """Seeded routing data whose true probabilities are known.

    Attributes:
        x: [N, T, D] float32 token-vector sequences.
        mask: [N, T] bool, True on real steps (lengths vary from 1 to T).
        p_weak_wrong: [N] the true probability that the weak model fails.
        weak_correct: [N] float64 0/1 outcomes drawn from it.
        strong_correct: [N] float64 0/1 outcomes (the strong model is better on average).
    """

    x: np.ndarray
    mask: np.ndarray
    p_weak_wrong: np.ndarray
    weak_correct: np.ndarray
    strong_correct: np.ndarray


def make_synthetic_routing(n: int, dim: int, seed: int, *, seq_len: int = 4) -> SyntheticRouting:
    """Synthetic routing data: P(weak fails) = sigmoid(3 * mean_t(x_t) . w - 0.8), w a fixed unit vector.

    The strong model succeeds with probability 0.95 where the weak one does and 0.55 where it does not,
    so routing by the true probability beats random routing and the oracle is known.

    Args:
        n: Number of queries (>= 1).
        dim: Token-vector size D (>= 1).
        seed: Seed; equal arguments give identical arrays.
        seq_len: Maximum sequence length T (>= 1).

    Returns:
        A :class:`SyntheticRouting`.

    Raises:
        DataError: A size is not positive.

    Examples:
        >>> d = make_synthetic_routing(100, 8, seed=0)
        >>> d.x.shape, d.mask.shape, round(float(d.weak_correct.mean()), 2)
        ((100, 4, 8), (100, 4), 0.6)
    """
    if n < 1 or dim < 1 or seq_len < 1:
        raise DataError(f"expected n, dim, seq_len >= 1, got n={n}, dim={dim}, seq_len={seq_len}")
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(12345).standard_normal(dim)
    direction /= np.linalg.norm(direction)
    lengths = rng.integers(1, seq_len + 1, size=n)
    mask = np.arange(seq_len)[None, :] < lengths[:, None]
    x = rng.standard_normal((n, seq_len, dim)).astype(np.float32) * mask[..., None]
    pooled = x.sum(axis=1) / lengths[:, None]
    p_weak_wrong = 1.0 / (1.0 + np.exp(-(3.0 * pooled @ direction - 0.8)))
    weak_correct = (rng.random(n) >= p_weak_wrong).astype(np.float64)
    strong_correct = (rng.random(n) < np.where(weak_correct == 1.0, 0.95, 0.55)).astype(np.float64)
    return SyntheticRouting(x, mask, p_weak_wrong, weak_correct, strong_correct)


#: Single-token words (WordLlama's tokenizer), so every prompt stays within 20 tokens: the words that
#: carry the signal survive the featuriser's ``max_tokens`` (default 32) whole.
_EASY = ("capital", "colour", "animal", "river", "author", "planet", "season", "fruit")
_HARD = ("integral", "theorem", "isomorphism", "entropy", "tensor", "manifold", "lemma", "polynomial")
_SUBJECTS = (("geography", 0.15), ("literature", 0.25), ("physics", 0.55), ("mathematics", 0.7))
#: P(weak fails) = FLOOR + SPAN * sigmoid(STEEPNESS * (difficulty - 0.5)), difficulty in [0, 1].
_P_FLOOR, _P_SPAN, _STEEPNESS = 0.03, 0.94, 8.0
#: Share of the difficulty that comes from the subject's base rate (the rest: the prompt's hard words).
_SUBJECT_WEIGHT = 0.25


def make_synthetic_outcomes(n: int, seed: int) -> pd.DataFrame:
    """Synthetic RouteLLM-format outcomes with text prompts (for the bundled fixture and demo).

    Each prompt (``Question <i> about <subject>: <3 to 10 words>?``) mixes "easy" and "hard" words.
    Its difficulty is ``0.75 * (share of hard words) + 0.25 * (subject base rate)`` and
    P(weak fails) = 0.03 + 0.94 * sigmoid(8 * (difficulty - 0.5)), so the truth spans most of [0, 1]
    and a text router can learn it from a few hundred training rows. The strong model succeeds with
    probability 0.95 where the weak one does and 0.55 where it does not.

    Args:
        n: Number of rows (>= 1).
        seed: Seed; equal arguments give identical frames.

    Returns:
        Frame with ``prompt``, ``subject``, the outcome columns ``weak`` and ``strong`` (bool; recognised
        by :func:`load_routellm_outcomes` without naming them), ``cost`` (dollars for the strong call)
        and ``p_weak_wrong`` (the truth).

    Raises:
        DataError: ``n`` < 1.

    Examples:
        >>> df = make_synthetic_outcomes(50, seed=1)
        >>> df.shape, df["weak"].dtype.name
        ((50, 6), 'bool')
        >>> big = make_synthetic_outcomes(2000, seed=0)
        >>> hard = big["prompt"].str.count("|".join(_HARD)) > big["prompt"].str.count("|".join(_EASY))
        >>> weak_fails = ~big["weak"]  # observed: mostly-hard prompts fail far more often
        >>> round(float(weak_fails[hard].mean()), 2), round(float(weak_fails[~hard].mean()), 2)
        (0.75, 0.22)
    """
    if n < 1:
        raise DataError(f"n: expected >= 1, got {n}")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        prompt, subject, n_words, p = _synthetic_prompt(rng, i)
        weak = bool(rng.random() >= p)
        strong = bool(rng.random() < (0.95 if weak else 0.55))
        rows.append((prompt, subject, weak, strong, round(0.0005 * n_words, 6), round(float(p), 6)))
    return pd.DataFrame(rows, columns=["prompt", "subject", SYNTHETIC_WEAK, SYNTHETIC_STRONG, "cost", "p_weak_wrong"])


def _synthetic_prompt(rng: np.random.Generator, i: int) -> tuple[str, str, int, float]:
    # One prompt of the synthetic generators: (prompt, subject, number of words, P(weak fails)).
    subject, base = _SUBJECTS[int(rng.integers(len(_SUBJECTS)))]
    hard_share = float(np.clip(rng.beta(0.6, 0.6) * 0.7 + base * 0.3, 0, 1))
    words = [
        str(rng.choice(_HARD)) if rng.random() < hard_share else str(rng.choice(_EASY))
        for _ in range(int(rng.integers(3, 11)))
    ]
    true_hard = sum(w in _HARD for w in words) / len(words)
    difficulty = (1 - _SUBJECT_WEIGHT) * true_hard + _SUBJECT_WEIGHT * base
    p = float(_P_FLOOR + _P_SPAN / (1.0 + np.exp(-_STEEPNESS * (difficulty - 0.5))))
    return f"Question {i} about {subject}: " + " ".join(words) + "?", subject, len(words), p


#: Judge-score model of :func:`make_synthetic_score_outcomes`: a model's latent quality on a prompt is
#: ``1 - SLOPE * p`` (p: the prompt's P(weak fails) of :func:`make_synthetic_outcomes`), its judge rating
#: ``round(1 + 9 * clip(quality + N(0, NOISE^2), 0, 1))`` in 1..10, scaled to [0, 1] as ``(rating - 1) / 9``.
_WEAK_SLOPE, _STRONG_SLOPE, _JUDGE_NOISE = 1.0, 0.35, 0.15


def _judge(rng: np.random.Generator, quality: float) -> float:
    rating = round(1 + 9 * float(np.clip(quality + rng.normal(0.0, _JUDGE_NOISE), 0.0, 1.0)))
    return (rating - 1) / 9


def make_synthetic_score_outcomes(n: int, seed: int) -> pd.DataFrame:
    """Synthetic RouteLLM-format outcomes whose ``weak`` / ``strong`` columns are judge scores in [0, 1].

    The prompts are drawn as in :func:`make_synthetic_outcomes` (so the text carries the difficulty). With ``p`` the
    prompt's P(weak fails) there, each model's latent quality is ``1 - 1.0 * p`` (weak) and ``1 - 0.35 * p``
    (strong); an LLM judge rates an answer ``round(1 + 9 * clip(quality + N(0, 0.15^2), 0, 1))`` on a 1-10 scale,
    stored scaled as ``(rating - 1) / 9``. The strong model is better on average and most of all on hard prompts, so
    routing by difficulty beats random routing.

    Args:
        n: Number of rows (>= 1).
        seed: Seed; equal arguments give identical frames.

    Returns:
        Frame with ``prompt``, ``subject``, the outcome columns ``weak`` and ``strong`` (float64 scores on
        the grid ``k / 9``; recognised by :func:`load_routellm_outcomes`), ``cost`` and the truth:
        ``weak_quality`` and ``strong_quality`` (the latent qualities before the judge's noise).

    Raises:
        DataError: ``n`` < 1.

    Examples:
        >>> df = make_synthetic_score_outcomes(2000, seed=0)
        >>> df.shape, sorted(set((df["weak"] * 9).round(6))) == list(range(10))
        ((2000, 7), True)
        >>> round(float(df["weak"].mean()), 2), round(float(df["strong"].mean()), 2)
        (0.53, 0.82)
    """
    if n < 1:
        raise DataError(f"n: expected >= 1, got {n}")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        prompt, subject, n_words, p = _synthetic_prompt(rng, i)
        weak_quality, strong_quality = 1.0 - _WEAK_SLOPE * p, 1.0 - _STRONG_SLOPE * p
        weak, strong = _judge(rng, weak_quality), _judge(rng, strong_quality)
        rows.append(
            (
                prompt,
                subject,
                weak,
                strong,
                round(0.0005 * n_words, 6),
                round(weak_quality, 6),
                round(strong_quality, 6),
            )
        )
    columns = ["prompt", "subject", SYNTHETIC_WEAK, SYNTHETIC_STRONG, "cost", "weak_quality", "strong_quality"]
    return pd.DataFrame(rows, columns=columns)
