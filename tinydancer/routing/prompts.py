"""What a Router needs to serve a prompt router: the loaded model, prompt checks, and the response types.

A :class:`PromptModel` is a loaded :class:`~tinydancer.model.prompt_artifact.PromptRouterArtifact` with its
:class:`~tinydancer.model.prompt_scoring.PromptScorer`, or a loaded
:class:`~tinydancer.model.scorer_router.ScorerRouterArtifact` with its
:class:`~tinydancer.model.scorer_router.ScorerScoring`; the Router swaps it as one reference on reload.
:func:`check_prompts` is the one place a prompt is validated: a str, not empty or whitespace only, at most
``max_chars`` characters, encodable as UTF-8 (no lone surrogates) and without NUL bytes. A prompt longer
than the featuriser's ``max_tokens`` tokens is routed on its first ``max_tokens`` tokens (the rest of the
text is not read; ``wordllama_mean`` pools every token).

Examples:
    >>> check_prompts(["What is 2+2?"], 100)
    ['What is 2+2?']
    >>> check_prompts(["ok", "  "], 100)
    Traceback (most recent call last):
    ...
    tinydancer.errors.InvalidInputError: prompt 1: expected text with a non-whitespace character, got '  ' (1 of 2 \
prompts invalid)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from tinydancer.errors import InvalidInputError
from tinydancer.model.prompt_scoring import PromptScores
from tinydancer.model.scorer_router import RouterArtifact, ScorerRouterArtifact, serving_scorer

if TYPE_CHECKING:
    import pandas as pd

#: ``model_type`` label (metrics, spans, collector rows) of a FastGRNN prompt router.
PROMPT_MODEL_TYPE = "fastgrnn_prompt"
#: ``model_type`` label of a scorer router (:mod:`tinydancer.model.scorer_router`).
SCORER_MODEL_TYPE = "scorer_prompt"
#: Hex digits of a prompt's SHA-256 kept in the collector (``prompt_hash``).
PROMPT_HASH_CHARS = 16
#: Columns of :meth:`PromptBatch.to_frame` (``Router.route_prompts``).
PROMPT_RESULT_COLUMNS: tuple[str, ...] = (
    "request_id",
    "model",
    "use_strong",
    "p_strong",
    "confidence",
    "uncertainty",
    "prediction_set",
    "operating_point",
    "threshold",
)


class PromptModel:
    """A prompt router ready to serve: the artifact, its scoring shell, and where it came from.

    Args:
        artifact: The loaded artifact: a FastGRNN prompt router (``kind`` ``"prompt"``) or a scorer router
            (:mod:`tinydancer.model.scorer_router`, ``kind`` ``"scorer_prompt"``).
        uncertainty: The scorer's uncertainty mode (:data:`~tinydancer.model.prompt_scoring.UNCERTAINTY_MODES`).
        path: The file it was read from (for messages), or None.

    Raises:
        ConfigError: an uncertainty mode the artifact cannot give.
    """

    kind = "prompt"

    def __init__(self, artifact: RouterArtifact, uncertainty: str = "auto", path: Path | None = None) -> None:
        self.artifact = artifact
        self.scorer = serving_scorer(artifact, uncertainty)
        self.path = path
        if isinstance(artifact, ScorerRouterArtifact):
            self.kind = "scorer_prompt"


def _problem(text: object, max_chars: int) -> str | None:
    if not isinstance(text, str):
        return f"expected a str, got {type(text).__name__}"
    if len(text) > max_chars:
        return f"expected at most {max_chars} characters (max_prompt_chars), got {len(text)}"
    if "\x00" in text:
        return "expected text without NUL bytes, got one"
    if not text or text.isspace():
        return f"expected text with a non-whitespace character, got {text!r}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"expected valid Unicode, got a lone surrogate at character {exc.start}"
    return None


def check_prompts(texts: Iterable[object], max_chars: int) -> list[str]:
    """Every prompt, checked; the first bad one is named in an ``InvalidInputError`` (with how many are bad).

    Raises:
        InvalidInputError: not a list of valid prompts.
    """
    if isinstance(texts, str | bytes) or not isinstance(texts, Iterable) or not isinstance(texts, Sized):
        raise InvalidInputError(f"texts: expected a list (or pandas Series) of str, got {type(texts).__name__}")
    prompts = list(texts)
    problems = [(i, p) for i, t in enumerate(prompts) if (p := _problem(t, max_chars)) is not None]
    if problems:
        index, problem = problems[0]
        raise InvalidInputError(f"prompt {index}: {problem} ({len(problems)} of {len(prompts)} prompts invalid)")
    return prompts  # type: ignore[return-value]


def prompt_hash(text: str) -> str:
    """The first :data:`PROMPT_HASH_CHARS` hex digits of the prompt's SHA-256 (UTF-8).

    Examples:
        >>> prompt_hash("hello")
        '2cf24dba5fb0a30e'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:PROMPT_HASH_CHARS]


def prediction_set(in_weak: object, in_strong: object) -> tuple[str, ...]:
    """The conformal set as role names: ``("weak",)``, ``("strong",)``, ``("weak", "strong")`` or ``()``.

    Examples:
        >>> prediction_set(True, True)
        ('weak', 'strong')
    """
    return ("weak",) * bool(in_weak) + ("strong",) * bool(in_strong)


class PromptDecision(NamedTuple):
    """The decision for one prompt (``Router.route_prompt``).

    Attributes:
        request_id: The collector's request id.
        model: Name of the chosen model.
        use_strong: Whether the strong model serves.
        p_strong: Calibrated probability that the strong model is needed (the artifact's target: the weak
            model fails, or the strong model scores higher).
        confidence: Calibrated probability that the chosen model is the right call.
        uncertainty: In [0, 1] (:mod:`tinydancer.model.prompt_scoring`).
        prediction_set: Conformal set of roles (``("weak", "strong")`` is ambiguous), or None without one.
        operating_point: Name of the operating point in force.
        threshold: Its threshold (strong iff ``p_strong >= threshold``).
        latency_us: Wall time of the call.
        metadata: The caller's metadata, returned as given (never recorded).
    """

    request_id: int
    model: str
    use_strong: bool
    p_strong: float
    confidence: float
    uncertainty: float
    prediction_set: tuple[str, ...] | None
    operating_point: str
    threshold: float
    latency_us: float
    metadata: Mapping[str, Any] | None = None


class PromptBatch(NamedTuple):
    """The decisions of ``Router.route_prompts``, columnar (``as_frame=False``); arrays are [N].

    Attributes:
        first_request_id: Prompt i is request ``first_request_id + i``.
        scores: The scorer's outputs (:class:`~tinydancer.model.prompt_scoring.PromptScores`).
        weak_model: Name of the weak model; strong_model: of the strong one.
        strong_model: see ``weak_model``.
        operating_point: Name of the operating point in force.
        threshold: Its threshold.
        conformal: Whether ``scores.in_set_*`` hold a conformal set.
        latency_us: Wall time of the whole call.
        propensity: [N] probability of each decision taken (exploration on), or None (all 1).
        model_type: The ``model_type`` label of the router that decided (:data:`PROMPT_MODEL_TYPE` or
            :data:`SCORER_MODEL_TYPE`).
    """

    first_request_id: int
    scores: PromptScores
    weak_model: str
    strong_model: str
    operating_point: str
    threshold: float
    conformal: bool
    latency_us: float
    propensity: np.ndarray | None = None
    model_type: str = PROMPT_MODEL_TYPE

    def __len__(self) -> int:
        return len(self.scores.p_strong)

    def to_frame(self) -> pd.DataFrame:
        """One row per prompt, columns :data:`PROMPT_RESULT_COLUMNS`."""
        import pandas as pd

        s, n = self.scores, len(self)
        sets: Any = None
        if self.conformal:
            names = np.array(["", "strong", "weak", "weak,strong"], dtype=object)
            sets = names[2 * s.in_set_weak.astype(np.intp) + s.in_set_strong.astype(np.intp)]
        return pd.DataFrame(
            {
                "request_id": np.arange(self.first_request_id, self.first_request_id + n, dtype=np.int64),
                "model": pd.Series(np.where(s.use_strong, self.strong_model, self.weak_model), dtype="str"),
                "use_strong": s.use_strong,
                "p_strong": s.p_strong.astype(np.float64),
                "confidence": s.confidence.astype(np.float64),
                "uncertainty": s.uncertainty.astype(np.float64),
                "prediction_set": pd.Series(sets if sets is not None else [None] * n, dtype="str"),
                "operating_point": pd.Series([self.operating_point] * n, dtype="str"),
                "threshold": np.full(n, self.threshold),
            }
        )
