"""Serve any scorer: a prompt router whose raw score comes from a model other than the built-in FastGRNN.

A :class:`ServableScorer` is a scorer (``name``, ``score(prompts) -> [N]`` in [0, 1]) that can write itself as
arrays and JSON (``state()``) and be rebuilt from them (``from_state``). A :class:`ScorerRouterArtifact` holds
one with the serving policy every router artifact has (:class:`~tinydancer.model.prompt_artifact.ServingPolicy`:
calibrator, pass mark, conformal quantile, model names and prices, operating points, drift reference, split,
provenance, target), so calibration, tuning, evaluation and the Router treat it as they treat a FastGRNN prompt
router. :class:`ScorerScoring` is its serving side: the scorer's raw scores, then the same jitted decision step
as a FastGRNN router (:func:`~tinydancer.model.prompt_scoring.decision_kernel`).

Format ``tinydancer-scorer-router-v1`` is a safetensors file. Its tensors are the scorer's state tensors
(float32, float64, int8, int32, int64 or uint8), each named ``scorer.<name>``. Its ``__metadata__`` holds the
policy entries of :mod:`tinydancer.model.prompt_artifact` (``calibrator`` to ``provenance``), ``format`` and
``scorer``: JSON ``{"class": "module:QualName", "name", "config", "tensors": {name: [dtype, shape]}}``.

Loading never unpickles anything: it imports the class's module and calls its ``from_state``. Importing a module
runs its code, so load files whose scorer class you trust, and keep that class importable where the router is
loaded (a class defined in a notebook loads in that notebook's kernel only; put it in a module to serve it
elsewhere).

Examples:
    >>> import tempfile
    >>> from pathlib import Path
    >>> art = ScorerRouterArtifact(LengthScorer(scale=100.0), weak_model="small", strong_model="large")
    >>> path = save_scorer_router(Path(tempfile.mkdtemp()) / "r.safetensors", art)
    >>> back = load_scorer_router(path)
    >>> back.scorer.scale, back.strong_model
    (100.0, 'large')
    >>> ScorerScoring(back).score(["short", "x" * 90], threshold=0.5).use_strong.tolist()
    [False, True]
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Self, runtime_checkable

import jax.numpy as jnp
import numpy as np

from tinydancer.errors import ConfigError, InvalidInputError, ModelLoadError
from tinydancer.model.prompt_artifact import (
    PromptRouterArtifact,
    ServingPolicy,
    is_prompt_router_file,
    named_errors,
    policy_fields,
    policy_metadata,
    prompt_router_from_file,
    save_prompt_router,
)
from tinydancer.model.prompt_scoring import (
    BATCH_BUCKETS,
    UNCERTAINTY_MODES,
    DecisionSpec,
    PromptScorer,
    PromptScores,
    _bucket,
    calibration_arrays,
    decision_kernel,
    joined_scores,
)
from tinydancer.model.safetensors_file import (
    DTYPES,
    MAX_FILE_BYTES,
    MAX_HEADER_BYTES,
    SafetensorsFile,
    read_safetensors,
    read_tensors,
    write_safetensors,
)

FORMAT = "tinydancer-scorer-router-v1"
#: What an artifact of this format is called in error messages.
WHAT = "scorer router"
#: Prefix of the scorer's tensor names in the file.
TENSOR_PREFIX = "scorer."
_TAGS = {np.dtype(t): tag for tag, t in DTYPES.items()}
#: A generous bound on one tensor's header entry (name, dtype, shape, offsets) for the size checks.
_HEADER_BYTES_PER_TENSOR = 256


class ScorerState(NamedTuple):
    """A scorer as data: named arrays (any of the format's dtypes) and a JSON-ready ``config`` mapping."""

    tensors: Mapping[str, np.ndarray]
    config: Mapping[str, Any]


@runtime_checkable
class ServableScorer(Protocol):
    """A scorer a Router can serve: :class:`~tinydancer.learning.Scorer`'s ``name`` and ``score``, plus its state.

    ``state()`` returns a :class:`ScorerState`; the classmethod ``from_state(state)`` rebuilds an equal scorer
    (same scores). Long lists of strings (a vocabulary) go in a tensor (:func:`texts_to_tensor`), not in
    ``config``: the file's JSON header is capped at 1 MiB. A Router may call ``score`` from several threads at
    once; whatever it raises fails that request as an ``InferenceError`` (counted by the breaker).
    """

    name: str

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        """[N] float64 raw scores in [0, 1]."""
        ...

    def state(self) -> ScorerState:
        """The scorer's arrays and settings."""
        ...

    @classmethod
    def from_state(cls, state: ScorerState) -> Self:
        """Rebuild the scorer from :meth:`state`."""
        ...


class LengthScorer:
    """A servable scorer of the prompt's length: ``min(characters / scale, 1)`` (examples and tests).

    Examples:
        >>> LengthScorer(scale=10.0).score(["abcde", "x" * 40]).tolist()
        [0.5, 1.0]
    """

    name = "length"

    def __init__(self, scale: float = 1000.0) -> None:
        self.scale = float(scale)

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        """[N] float64 in [0, 1]."""
        return np.minimum(np.fromiter(map(len, prompts), np.float64, len(prompts)) / self.scale, 1.0)

    def state(self) -> ScorerState:
        """No arrays; the scale in the config."""
        return ScorerState({}, {"scale": self.scale})

    @classmethod
    def from_state(cls, state: ScorerState) -> LengthScorer:
        """Inverse of :meth:`state`."""
        return cls(state.config["scale"])


def check_raw_scores(name: str, scores: object, n: int) -> np.ndarray:
    """A scorer's output as [n] float64, checked: finite and in [0, 1] (the learning wing checks with it too).

    Raises:
        InvalidInputError: another shape, or a value that is not a finite number in [0, 1].

    Examples:
        >>> check_raw_scores("mine", [0.25, 1.0], 2).tolist()
        [0.25, 1.0]
    """
    arr = np.asarray(scores, np.float64)
    if arr.shape != (n,):
        raise InvalidInputError(f"{name}.score: expected shape ({n},), got {arr.shape}")
    if not (np.isfinite(arr).all() and ((arr >= 0.0) & (arr <= 1.0)).all()):
        raise InvalidInputError(f"{name}.score: expected finite scores in [0, 1], got min {arr.min()!r}")
    return arr


def texts_to_tensor(texts: Sequence[str]) -> np.ndarray:
    """Strings as one uint8 tensor: each text's UTF-8 bytes followed by a NUL (texts must not contain NUL).

    Examples:
        >>> tensor_to_texts(texts_to_tensor(["a b", "", "é"]))
        ['a b', '', 'é']
    """
    if any("\x00" in t for t in texts):
        raise InvalidInputError("texts: expected strings without NUL characters")
    try:
        encoded = "".join(f"{t}\x00" for t in texts).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"texts: expected valid Unicode, got a lone surrogate ({exc.reason})") from None
    return np.frombuffer(encoded, np.uint8).copy()


def tensor_to_texts(tensor: np.ndarray) -> list[str]:
    """Inverse of :func:`texts_to_tensor`."""
    return bytes(np.asarray(tensor, np.uint8)).decode("utf-8").split("\x00")[:-1]


@dataclass(frozen=True)
class ScorerRouterArtifact(ServingPolicy):
    """A servable scorer and its serving policy (the policy's keyword fields as in a FastGRNN artifact).

    Attributes:
        scorer: A fitted :class:`ServableScorer`.

    Raises:
        ModelLoadError: the scorer is not servable, or a policy field is out of range.
    """

    scorer: Any

    def __post_init__(self) -> None:
        if not isinstance(self.scorer, ServableScorer) or not isinstance(getattr(self.scorer, "name", None), str):
            raise ModelLoadError(
                f"{WHAT}: scorer: expected an object with a str name, score(), state() and from_state() "
                f"(ServableScorer), got {type(self.scorer).__name__}"
            )
        self._check_policy(WHAT)


def _class_path(scorer: object) -> str:
    kind = type(scorer)
    return f"{kind.__module__}:{kind.__qualname__}"


def save_scorer_router(path: str | Path, artifact: ScorerRouterArtifact) -> Path:
    """Write the artifact atomically (a failed write keeps the old file); returns the path written.

    Raises:
        ConfigError: the scorer's state is malformed (a tensor of another dtype, a config that is not JSON), too
            large for a loader (a header over ``MAX_HEADER_BYTES``, a file over ``MAX_FILE_BYTES``), or its class
            cannot be imported by name (defined inside a function).
    """
    scorer = artifact.scorer
    state = scorer.state()
    if not isinstance(state, ScorerState):
        raise ConfigError(f"{scorer.name}.state(): expected a ScorerState, got {type(state).__name__}")
    tensors, shapes = {}, {}
    for name, value in state.tensors.items():
        array = np.ascontiguousarray(value)
        if not isinstance(name, str) or np.dtype(array.dtype) not in _TAGS:
            raise ConfigError(
                f"{scorer.name}.state(): tensor {name!r}: expected a str name and a dtype among "
                f"{sorted(str(d) for d in _TAGS)}, got {array.dtype}"
            )
        tensors[TENSOR_PREFIX + name] = array
        shapes[name] = [_TAGS[np.dtype(array.dtype)], list(array.shape)]
    if "<locals>" in _class_path(scorer):
        raise ConfigError(f"scorer class {_class_path(scorer)}: expected a class importable by name, not a local one")
    try:
        entry = json.dumps(
            {"class": _class_path(scorer), "name": scorer.name, "config": dict(state.config), "tensors": shapes},
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{scorer.name}.state(): config: expected JSON-ready values ({exc})") from exc
    metadata = {"format": FORMAT, "scorer": entry, **policy_metadata(artifact)}
    # What a loader would refuse is refused here, before anything is written.
    header = len(json.dumps(metadata)) + _HEADER_BYTES_PER_TENSOR * len(tensors)
    if header > MAX_HEADER_BYTES:
        raise ConfigError(
            f"{scorer.name}.state(): the file's header would be ~{header:,} bytes, over the {MAX_HEADER_BYTES:,} a "
            "loader reads; put long lists in tensors (texts_to_tensor), not in config"
        )
    size = header + sum(t.nbytes for t in tensors.values())
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"{scorer.name}.state(): ~{size:,} bytes, over the {MAX_FILE_BYTES:,} a loader reads")
    return write_safetensors(path, tensors, metadata)


def is_scorer_router_file(file: SafetensorsFile) -> bool:
    """Whether a file read whole is of this format."""
    return (file.metadata or {}).get("format") == FORMAT


def _import_class(file: SafetensorsFile, path: str) -> type:
    module_name, _, qualname = path.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as exc:
        raise file.error(
            f"names scorer class {path!r}, which cannot be imported here ({type(exc).__name__}: {exc}); the class "
            "must be importable where the router is loaded"
        ) from exc
    if not isinstance(found, type) or not callable(getattr(found, "from_state", None)):
        raise file.error(f"names {path!r}, which is not a class with a from_state classmethod")
    return found


def scorer_router_from_file(file: SafetensorsFile) -> ScorerRouterArtifact:
    """The artifact of a file already read whole.

    Raises:
        ModelLoadError: another format, a missing or malformed part, a class that cannot be imported, or a
            ``from_state`` that fails (each names the file).
    """
    meta = file.metadata or {}
    if meta.get("format") != FORMAT:
        raise file.error(f"has format {meta.get('format')!r}, expected {FORMAT!r}")
    with named_errors(file, WHAT):
        entry = json.loads(meta["scorer"])
        shapes = {name: (tag, tuple(shape)) for name, (tag, shape) in entry["tensors"].items()}
        kind = _import_class(file, entry["class"])
        stored = read_tensors(file, {TENSOR_PREFIX + k: v for k, v in shapes.items()})
        state = ScorerState({k.removeprefix(TENSOR_PREFIX): v for k, v in stored.items()}, entry["config"])
        try:
            scorer = kind.from_state(state)  # type: ignore[attr-defined]
        except Exception as exc:
            raise file.error(f"{entry['class']}.from_state failed: {type(exc).__name__}: {exc}") from exc
        return ScorerRouterArtifact(scorer, **policy_fields(file, FORMAT))


def load_scorer_router(path: str | Path) -> ScorerRouterArtifact:
    """Read an artifact in one bounded read (module docstring: it imports the scorer's class).

    Raises:
        ModelLoadError: as :func:`scorer_router_from_file`, or the file cannot be read.
    """
    return scorer_router_from_file(read_safetensors(path, WHAT))


class ScorerScoring:
    """The serving side of a :class:`ScorerRouterArtifact`, with :class:`PromptScorer`'s interface.

    ``tokenize`` passes the prompts through (the scorer reads text); ``score_tokens`` runs the scorer, checks its
    output (an [N] array of finite numbers in [0, 1], else ``InferenceError`` via the Router) and applies the
    jitted decision step, padded to :data:`BATCH_BUCKETS` so a steady stream compiles nothing new.

    Args:
        artifact: The router to serve.
        uncertainty: ``"auto"`` (conformal with a conformal quantile, else original), ``"conformal"`` or
            ``"original"``; one scorer has no ensemble, so ``"mutual_information"`` is a ConfigError.

    Raises:
        ConfigError: an uncertainty mode the artifact cannot give.
    """

    def __init__(self, artifact: ScorerRouterArtifact, *, uncertainty: str = "auto") -> None:
        if uncertainty not in UNCERTAINTY_MODES:
            raise ConfigError(f"uncertainty: expected one of {UNCERTAINTY_MODES}, got {uncertainty!r}")
        if uncertainty == "auto":
            uncertainty = "conformal" if artifact.conformal else "original"
        if uncertainty == "conformal" and artifact.conformal is None:
            raise ConfigError("uncertainty 'conformal': the artifact has no conformal quantile (run calibrate)")
        if uncertainty == "mutual_information":
            raise ConfigError("uncertainty 'mutual_information': a scorer router holds one model, not an ensemble")
        self.artifact = artifact
        self.uncertainty = uncertainty
        self._cal = calibration_arrays(artifact.calibrator)
        self._q = jnp.float32(artifact.conformal.q if artifact.conformal else 0.0)
        self._spec = DecisionSpec(artifact.calibrator.kind, uncertainty, artifact.conformal is not None)

    def tokenize(self, texts: list[str]) -> list[str]:
        """The prompts themselves (the scorer featurises them in :meth:`score_tokens`)."""
        return texts

    def raw_scores(self, texts: list[str]) -> np.ndarray:
        """[N] float64 raw scores of the scorer, checked.

        Raises:
            InvalidInputError: the scorer returned something other than [N] finite numbers in [0, 1].
        """
        scorer = self.artifact.scorer
        return check_raw_scores(scorer.name, scorer.score(texts), len(texts))

    def score_tokens(self, texts: list[str], threshold: float) -> PromptScores:
        """Score prompts: the scorer once, then one jitted decision call per chunk of at most ``BATCH_BUCKETS[-1]``.

        Raises:
            InvalidInputError: ``threshold`` is NaN, or the scorer's output is malformed.
        """
        if math.isnan(threshold):
            raise InvalidInputError("threshold: expected a number or +-inf, got NaN")
        raw = self.raw_scores(texts).astype(np.float32)
        t = np.float32(threshold)
        parts = []
        for start in range(0, len(raw), BATCH_BUCKETS[-1]):
            chunk = raw[start : start + BATCH_BUCKETS[-1]]
            padded = np.zeros(_bucket(len(chunk)), np.float32)
            padded[: len(chunk)] = chunk
            parts.append(np.asarray(decision_kernel(padded, self._cal, self._q, t, self._spec))[:, : len(chunk)])
        return joined_scores(parts)

    def score(self, texts: list[str], threshold: float | None = None) -> PromptScores:
        """Score; ``threshold`` defaults to the artifact's default operating point's."""
        if threshold is None:
            threshold = self.artifact.operating_point().threshold
        return self.score_tokens(list(texts), threshold)


class PromptScoring(Protocol):
    """What a Router runs for a prompt router of either family (:class:`PromptScorer`, :class:`ScorerScoring`)."""

    uncertainty: str

    def tokenize(self, texts: list[str]) -> Any:
        """The scorer's input for ``score_tokens`` (token ids, or the texts themselves)."""
        ...

    def score_tokens(self, tokens: Any, threshold: float) -> PromptScores:
        """Decisions for tokenised prompts."""
        ...

    def score(self, texts: list[str], threshold: float | None = None) -> PromptScores:
        """Tokenise and score."""
        ...


#: A router artifact of either family.
RouterArtifact = PromptRouterArtifact | ScorerRouterArtifact


def router_from_file(file: SafetensorsFile) -> RouterArtifact:
    """A FastGRNN prompt router or a scorer router, by the file's format.

    Raises:
        ModelLoadError: neither, or invalid (:func:`scorer_router_from_file`,
            :func:`~tinydancer.model.prompt_artifact.prompt_router_from_file`).
    """
    return scorer_router_from_file(file) if is_scorer_router_file(file) else prompt_router_from_file(file)


def load_router(path: str | Path) -> RouterArtifact:
    """Read an artifact of either family in one bounded read.

    Raises:
        ModelLoadError: unreadable, or not a valid router of either family.
    """
    return router_from_file(read_safetensors(path, "prompt router"))


def is_router_file(file: SafetensorsFile) -> bool:
    """Whether a file read whole is a router of either family."""
    return is_scorer_router_file(file) or is_prompt_router_file(file)


def save_router(path: str | Path, artifact: RouterArtifact) -> Path:
    """Write an artifact of either family atomically; returns the path written."""
    if isinstance(artifact, ScorerRouterArtifact):
        return save_scorer_router(path, artifact)
    return save_prompt_router(path, artifact)


def serving_scorer(artifact: RouterArtifact, uncertainty: str = "auto") -> PromptScoring:
    """The scoring shell a Router runs for an artifact of either family (same ``tokenize``/``score_tokens``).

    Raises:
        ConfigError: an uncertainty mode the artifact cannot give.
    """
    if isinstance(artifact, ScorerRouterArtifact):
        return ScorerScoring(artifact, uncertainty=uncertainty)
    return PromptScorer(artifact, uncertainty=uncertainty)
