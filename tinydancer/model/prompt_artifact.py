"""One file per learned prompt router: weights, featuriser, calibrator, conformal quantile, operating points.

Format ``tinydancer-prompt-router-v1`` is a safetensors file. Its tensors are those of a FastGRNN
checkpoint (:mod:`tinydancer.model.fastgrnn_file`: float32, int8 ``.values``/``.scale`` pairs, or K
float32 members stacked on a leading axis for an ensemble; IHT-sparse weights are stored dense, with
their zeros), plus ``ngram_weights`` (float32 [K], or [K_members, K]) when the featuriser hashes n-grams
into K buckets. Its ``__metadata__`` string entries, each JSON unless said otherwise:

================================  ==========================================================================
``format``                        ``tinydancer-prompt-router-v1`` (plain string)
``config``, ``quantized``,        the FastGRNN architecture, ``"true"``/``"false"``, and K for an ensemble
``members``                       (as in a FastGRNN checkpoint)
``featurizer``, ``norm_stats``    :class:`~tinydancer.model.text_features.FeaturizerConfig`; per-dimension
                                  ``mean`` and ``std`` fitted on the training rows
``calibrator``                    ``{"kind", "a", "b", "xs", "ys"}`` (:class:`Calibrator`)
``pass_mark``                     weak outcomes below it were failures for calibration (number)
``target``                        what the raw score was trained to estimate: ``"weak_fails"`` or
                                  ``"strong_gain"`` (:mod:`tinydancer.learning.labels`); absent: weak_fails
``conformal``                     ``{"q", "alpha"}`` split-conformal quantile, or absent
``models``                        ``{"weak", "strong", "weak_price", "strong_price"}`` (prices in $ per
                                  million tokens, or null)
``operating_points``              name -> :class:`OperatingPoint` fields
``default_operating_point``       a name in ``operating_points``, or null
``reference``                     feature -> 101 quantiles of ``p_strong`` and ``prompt_chars`` on the
                                  calibration rows (drift monitoring), or absent
``split``                         ``{"kind", "seed", "data"}``: the rows ``train`` used (evaluation reuses it)
``provenance``                    ``{"data_sha256", "rows", "created"}`` of the training data
================================  ==========================================================================

A FastGRNN checkpoint written before this format (``tinydancer-fastgrnn-v1`` with a ``featurizer``
entry) still loads: it has no operating point, no conformal quantile and models named ``weak`` and
``strong``. A missing or inconsistent part is a ``ModelLoadError`` that names it.

Examples:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from tinydancer.model.fastgrnn import FastGRNNConfig, init_fastgrnn_params
    >>> from tinydancer.model.text_features import FeaturizerConfig, NormStats
    >>> cfg = FastGRNNConfig(input_dim=64, hidden_dim=4)
    >>> art = PromptRouterArtifact(init_fastgrnn_params(cfg), cfg, FeaturizerConfig(),
    ...     NormStats(np.zeros(64, np.float32), np.ones(64, np.float32)))
    >>> art = art.with_operating_point("half", OperatingPoint(0.5, "strong_share", 0.5), default=True)
    >>> path = save_prompt_router(Path(tempfile.mkdtemp()) / "r.safetensors", art)
    >>> back = load_prompt_router(path)
    >>> back.default_operating_point, back.operating_point().threshold, back.weak_model
    ('half', 0.5, 'weak')
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Self

import numpy as np

from tinydancer.errors import ConfigError, ModelLoadError
from tinydancer.model.calibration_map import CALIBRATORS, Calibrator
from tinydancer.model.compression import QuantizedFastGRNNParams
from tinydancer.model.fastgrnn import FastGRNNConfig, FastGRNNParams
from tinydancer.model.fastgrnn_file import FORMAT as FASTGRNN_FORMAT
from tinydancer.model.fastgrnn_file import PROMPT_ROUTER_FORMAT as FORMAT
from tinydancer.model.fastgrnn_file import fastgrnn_from_file, save_fastgrnn, stacked_members
from tinydancer.model.safetensors_file import SafetensorsFile, read_safetensors
from tinydancer.model.text_features import FeaturizerConfig, NormStats, featurizer_from_metadata, featurizer_metadata
from tinydancer.validation import check_number, check_text

#: What an artifact is called in error messages.
WHAT = "prompt router"
#: Targets an operating point may have been tuned for (``fixed``: a threshold set by hand).
TARGETS: tuple[str, ...] = ("strong_share", "quality_share", "weak_error", "fixed")
#: Operating-point and model names: they become Prometheus label values, so a fixed alphabet.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
#: What a router's raw score was trained to estimate (:mod:`tinydancer.learning.labels`).
TRAINING_TARGETS: tuple[str, ...] = ("weak_fails", "strong_gain")
#: The operating point of an artifact that has none: strong iff p_strong >= 0.5.
IMPLICIT_OPERATING_POINT = "p0.5"
#: Entries every file of this format has (``conformal``, ``split`` and ``provenance`` are optional).
_REQUIRED = ("calibrator", "pass_mark", "models", "operating_points", "default_operating_point")


def reference_quantiles(values: np.ndarray) -> tuple[float, ...]:
    """The 101 quantiles (0 %, 1 %, ..., 100 %) of a feature on reference rows (an artifact's ``reference``).

    Examples:
        >>> q = reference_quantiles(np.arange(101.0))
        >>> len(q), q[0], q[50], q[-1]
        (101, 0.0, 50.0, 100.0)
    """
    return tuple(float(v) for v in np.quantile(np.asarray(values, np.float64), np.linspace(0, 1, 101)))


def check_name(what: str, name: object) -> str:
    """A name usable as a label value: 1-64 characters of ``[A-Za-z0-9_.:-]``.

    Raises:
        ConfigError: anything else.

    Examples:
        >>> check_name("operating point", "share-0.5")
        'share-0.5'
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{what}: expected 1-64 characters of [A-Za-z0-9_.:-], got {name!r}")
    return name


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and what it was tuned for: the strong model is called iff ``p_strong >= threshold``.

    Attributes:
        threshold: On ``p_strong`` (calibrated); ``inf`` never calls strong, ``-inf`` always does.
        target: One of :data:`TARGETS`.
        value: The target's level (0.5 strong share, 0.95 quality share, alpha of a weak error), or None.
        delta: Failure probability of a ``weak_error`` guarantee, else None.
        reached: What the threshold gave on the tuning rows, e.g. ``{"strong_share": 0.49, "quality": 0.8}``.
        source: Where it came from: ``data_sha256``, ``data``, ``split``, ``rows``, ``seed``, ``n_rows``,
            ``created`` (ISO 8601), as far as known.

    Raises:
        ConfigError: unknown target, non-numeric threshold, or a level outside [0, 1] (quality share:
            >= 0).

    Examples:
        >>> OperatingPoint(0.4, "weak_error", 0.2, 0.1).delta
        0.1
    """

    threshold: float
    target: str = "fixed"
    value: float | None = None
    delta: float | None = None
    reached: Mapping[str, float] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ConfigError(f"operating point target: expected one of {TARGETS}, got {self.target!r}")
        if (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, int | float)
            or math.isnan(self.threshold)
        ):
            raise ConfigError(f"operating point threshold: expected a number or +-inf, got {self.threshold!r}")
        if self.value is not None:
            check_number(
                "operating point value", self.value, low=0, high=math.inf if self.target == "quality_share" else 1
            )
        if self.delta is not None:
            check_number("operating point delta", self.delta, low=0, high=1, low_open=True)
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "reached", MappingProxyType(dict(self.reached)))
        object.__setattr__(self, "source", MappingProxyType(dict(self.source)))

    def as_json(self) -> dict[str, Any]:
        """JSON-ready fields (infinite thresholds as the strings ``"inf"`` / ``"-inf"``)."""
        t = self.threshold
        return {
            "threshold": t if math.isfinite(t) else ("inf" if t > 0 else "-inf"),
            "target": self.target,
            "value": self.value,
            "delta": self.delta,
            "reached": dict(self.reached),
            "source": dict(self.source),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> OperatingPoint:
        """Inverse of :meth:`as_json`."""
        t = raw["threshold"]
        return cls(
            threshold=float(t) if isinstance(t, str) else t,
            target=raw.get("target", "fixed"),
            value=raw.get("value"),
            delta=raw.get("delta"),
            reached=raw.get("reached") or {},
            source=raw.get("source") or {},
        )


class ConformalSpec(tuple[float, float]):
    """Split-conformal quantile ``q`` and its miscoverage ``alpha``: the set of label y is ``1 - p(y) <= q``."""

    __slots__ = ()

    def __new__(cls, q: float, alpha: float) -> ConformalSpec:
        check_number("conformal q", q, low=0, high=1)
        check_number("conformal alpha", alpha, low=0, high=1, low_open=True, high_open=True)
        return super().__new__(cls, (float(q), float(alpha)))

    @property
    def q(self) -> float:
        """The quantile."""
        return self[0]

    @property
    def alpha(self) -> float:
        """The miscoverage level it was fitted for."""
        return self[1]


@dataclass(frozen=True, kw_only=True)
class ServingPolicy:
    """How a served router's scores become decisions: the part every router artifact has besides its scorer.

    Keyword-only fields, documented in :class:`PromptRouterArtifact`: ``calibrator``, ``pass_mark``,
    ``conformal``, ``weak_model``, ``strong_model``, ``weak_price``, ``strong_price``, ``operating_points``,
    ``default_operating_point``, ``split``, ``provenance``, ``reference`` and ``target``. An artifact that
    inherits it validates them with :meth:`_check_policy` in its ``__post_init__``.
    """

    calibrator: Calibrator = field(default_factory=lambda: Calibrator("none"))
    pass_mark: float = 0.5
    conformal: ConformalSpec | None = None
    weak_model: str = "weak"
    strong_model: str = "strong"
    weak_price: float | None = None
    strong_price: float | None = None
    operating_points: Mapping[str, OperatingPoint] = field(default_factory=dict)
    default_operating_point: str | None = None
    split: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    reference: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    target: str = "weak_fails"

    def _check_policy(self, what: str) -> None:
        """Validate the policy fields and freeze its mappings (a frozen dataclass's ``__post_init__`` calls it).

        Raises:
            ModelLoadError: a field out of range, named with ``what``.
        """
        if self.target not in TRAINING_TARGETS:
            raise ModelLoadError(f"{what}: target: expected one of {TRAINING_TARGETS}, got {self.target!r}")
        if self.calibrator.kind not in CALIBRATORS:
            raise ModelLoadError(
                f"{what}: calibrator kind: expected one of {CALIBRATORS}, got {self.calibrator.kind!r}"
            )
        if self.calibrator.kind == "isotonic" and (
            len(self.calibrator.xs) != len(self.calibrator.ys) or not self.calibrator.xs
        ):
            raise ModelLoadError(f"{what}: isotonic calibrator: expected as many knots as values (at least one)")
        try:
            check_number("pass_mark", self.pass_mark, low=0, high=1, low_open=True)
            for who, name in (("weak model name", self.weak_model), ("strong model name", self.strong_model)):
                if len(check_text(who, name)) > 200:
                    raise ConfigError(f"{who}: expected at most 200 characters, got {len(name)}")
            for who, price in (("weak_price", self.weak_price), ("strong_price", self.strong_price)):
                if price is not None:
                    check_number(who, price, low=0)
            for name in self.operating_points:
                check_name("operating point name", name)
        except ConfigError as exc:
            raise ModelLoadError(f"{what}: {exc}") from exc
        if self.default_operating_point is not None and self.default_operating_point not in self.operating_points:
            raise ModelLoadError(
                f"{what}: default_operating_point {self.default_operating_point!r} is not one of its operating "
                f"points {sorted(self.operating_points)}"
            )
        object.__setattr__(self, "operating_points", MappingProxyType(dict(self.operating_points)))
        object.__setattr__(self, "split", MappingProxyType(dict(self.split)))
        object.__setattr__(self, "provenance", MappingProxyType(dict(self.provenance)))
        reference = {k: tuple(float(x) for x in v) for k, v in self.reference.items()}
        if any(len(q) != 101 or any(b < a for a, b in itertools.pairwise(q)) for q in reference.values()):
            raise ModelLoadError(f"{what}: reference: expected 101 non-decreasing quantiles per feature")
        object.__setattr__(self, "reference", MappingProxyType(reference))

    def resolve_operating_point(self, name: str | None = None) -> tuple[str, OperatingPoint]:
        """``(name, point)``: ``name``, else the default, else the first, else the implicit ``p0.5``.

        Raises:
            ConfigError: ``name`` is not one of the artifact's operating points.
        """
        if name is None:
            name = self.default_operating_point or next(iter(self.operating_points), None)
            if name is None:
                return IMPLICIT_OPERATING_POINT, OperatingPoint(0.5, "fixed", None, source={"implicit": True})
        point = self.operating_points.get(name)
        if point is None:
            if name == IMPLICIT_OPERATING_POINT and not self.operating_points:
                return self.resolve_operating_point(None)
            raise ConfigError(f"operating point: expected one of {sorted(self.operating_points)}, got {name!r}")
        return name, point

    def operating_point(self, name: str | None = None) -> OperatingPoint:
        """The point :meth:`resolve_operating_point` gives."""
        return self.resolve_operating_point(name)[1]

    def with_operating_point(self, name: str, point: OperatingPoint, *, default: bool = False) -> Self:
        """A copy with ``name`` added or replaced (and made the default when ``default``).

        Raises:
            ConfigError: ``name`` is not a valid name.
        """
        check_name("operating point name", name)
        points = {**self.operating_points, name: point}
        chosen = name if default else self.default_operating_point
        return dataclasses.replace(self, operating_points=points, default_operating_point=chosen)


@dataclass(frozen=True)
class PromptRouterArtifact(ServingPolicy):
    """Everything needed to route a prompt: the learned router, its featuriser, calibration and thresholds.

    Attributes:
        params: FastGRNN parameters: float32, int8, or float32 members stacked on a leading axis.
        model_config: Their architecture (``input_dim`` equals the featuriser's dim).
        featurizer: How prompts become inputs.
        norm: Normalisation statistics of the training rows ([D] mean and std).
        calibrator: Raw score -> calibrated P(the strong model is needed): P(weak fails) for ``weak_fails``,
            P(strong scores higher) for ``strong_gain``.
        pass_mark: Weak outcomes below it were failures for calibration and conformal sets.
        conformal: The conformal quantile, or None (no prediction sets).
        weak_model: Name of the cheap model (any text up to 200 characters: never a label value).
        strong_model: Name of the expensive model, likewise.
        weak_price: $ per million tokens, or None; strong_price likewise.
        strong_price: see ``weak_price``.
        operating_points: name -> :class:`OperatingPoint`.
        default_operating_point: The name a Router starts with, or None (the first one; with none at all,
            the implicit ``p0.5``).
        split: ``{"kind", "seed", "data"}`` of the training split, or empty.
        provenance: ``{"data_sha256", "rows", "created"}`` of the training data, or empty.
        reference: feature (``p_strong``, ``prompt_chars``) -> 101 quantiles on the calibration rows, or
            empty (drift is then not monitored).
        target: What the raw score was trained to estimate, one of :data:`TRAINING_TARGETS`.
        ngram_weights: The n-gram bag added to the logit, [K] (or [members, K] for an ensemble) float32, where
            K = ``featurizer.ngram_buckets`` > 0; None without n-grams.

    Raises:
        ModelLoadError: the parts do not fit together (a dim, a name, an unknown default).
    """

    params: FastGRNNParams | QuantizedFastGRNNParams
    model_config: FastGRNNConfig
    featurizer: FeaturizerConfig
    norm: NormStats
    ngram_weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        self._check_policy(WHAT)
        d = self.featurizer.dim
        k = self.featurizer.ngram_buckets
        if (self.ngram_weights is None) != (k == 0):
            raise ModelLoadError(
                f"{WHAT}: the featuriser has ngram_buckets={k} but ngram_weights is {self.ngram_weights!r:.40}"
            )
        if self.ngram_weights is not None:
            bag = np.asarray(self.ngram_weights, np.float32)
            if bag.shape != self.ngram_shape or not np.all(np.isfinite(bag)):
                raise ModelLoadError(
                    f"{WHAT}: ngram_weights: expected finite float32 {self.ngram_shape}, got {bag.shape}"
                )
            object.__setattr__(self, "ngram_weights", bag)
        if self.model_config.input_dim != d:
            raise ModelLoadError(
                f"{WHAT}: featuriser dim {d} does not match the FastGRNN input_dim {self.model_config.input_dim}"
            )
        if np.shape(self.norm.mean) != (d,) or np.shape(self.norm.std) != (d,):
            raise ModelLoadError(
                f"{WHAT}: norm_stats: expected mean and std of shape ({d},), got {np.shape(self.norm.mean)}"
            )
        if not (np.all(np.isfinite(self.norm.mean)) and np.all(np.asarray(self.norm.std) > 0)):
            raise ModelLoadError(f"{WHAT}: norm_stats: expected finite means and positive standard deviations")

    @property
    def members(self) -> int:
        """Ensemble members (1 for a single model)."""
        return stacked_members(self.params, self.model_config) or 1

    @property
    def ngram_shape(self) -> tuple[int, ...]:
        """Shape of ``ngram_weights``: (K,) for one model, (members, K) for an ensemble; () without n-grams."""
        k = self.featurizer.ngram_buckets
        if not k:
            return ()
        members = stacked_members(self.params, self.model_config)
        return (k,) if members is None else (members, k)

    @property
    def quantized(self) -> bool:
        """Whether the parameters are int8."""
        return isinstance(self.params, QuantizedFastGRNNParams)


def policy_metadata(policy: ServingPolicy) -> dict[str, str]:
    """The ``__metadata__`` entries of a policy (this module's table, from ``calibrator`` to ``provenance``)."""
    a, meta = policy, {}
    meta["calibrator"] = json.dumps(a.calibrator._asdict())
    meta["pass_mark"] = json.dumps(a.pass_mark)
    meta["target"] = json.dumps(a.target)
    if a.conformal is not None:
        meta["conformal"] = json.dumps({"q": a.conformal.q, "alpha": a.conformal.alpha})
    meta["models"] = json.dumps(
        {"weak": a.weak_model, "strong": a.strong_model, "weak_price": a.weak_price, "strong_price": a.strong_price}
    )
    meta["operating_points"] = json.dumps({k: v.as_json() for k, v in a.operating_points.items()})
    meta["default_operating_point"] = json.dumps(a.default_operating_point)
    if a.split:
        meta["split"] = json.dumps(dict(a.split))
    if a.provenance:
        meta["provenance"] = json.dumps(dict(a.provenance))
    if a.reference:
        meta["reference"] = json.dumps({k: list(v) for k, v in a.reference.items()})
    return meta


def save_prompt_router(path: str | Path, artifact: PromptRouterArtifact) -> Path:
    """Write the artifact atomically (a failed write keeps the old file); returns the path written."""
    bag = {} if artifact.ngram_weights is None else {"ngram_weights": artifact.ngram_weights}
    meta = featurizer_metadata(artifact.featurizer, artifact.norm) | policy_metadata(artifact)
    return save_fastgrnn(path, artifact.params, artifact.model_config, meta, file_format=FORMAT, extra_tensors=bag)


def load_prompt_router(path: str | Path) -> PromptRouterArtifact:
    """Read an artifact (or a FastGRNN checkpoint trained on prompts) in one bounded read.

    Raises:
        ModelLoadError: unreadable, another format, or a part missing or inconsistent (named).
    """
    return prompt_router_from_file(read_safetensors(path, WHAT))


def is_prompt_router_file(file: SafetensorsFile) -> bool:
    """Whether a file read whole is a prompt router (this format, or a FastGRNN checkpoint on prompt text)."""
    meta = file.metadata or {}
    return meta.get("format") == FORMAT or (meta.get("format") == FASTGRNN_FORMAT and "featurizer" in meta)


def _part(file: SafetensorsFile, meta: Mapping[str, str], key: str, default: Any, required_in: str = FORMAT) -> Any:
    if key not in meta:
        if meta.get("format") == required_in and key in _REQUIRED:
            raise file.error(f"has no {key!r} entry in __metadata__ (every {required_in} file has one)")
        return default
    try:
        return json.loads(meta[key])
    except (TypeError, ValueError, RecursionError) as exc:
        raise file.error(f"has an invalid {key!r} entry: expected JSON ({exc})") from exc


def _ngram_shapes(meta: Mapping[str, str]) -> dict[str, tuple[int, ...]]:
    """The n-gram bag tensor a file's metadata declares (its featuriser's buckets; its members)."""
    try:
        k = featurizer_from_metadata(dict(meta))[0].ngram_buckets
    except ModelLoadError:
        return {}  # the featuriser is read again below, and its error names the file
    members = meta.get("members", "")
    return {"ngram_weights": (int(members), k) if members.isdigit() else (k,)} if k else {}


def prompt_router_from_file(file: SafetensorsFile) -> PromptRouterArtifact:
    """:func:`load_prompt_router` of a file already read whole.

    Raises:
        ModelLoadError: as :func:`load_prompt_router`.
    """
    meta = file.metadata or {}
    if meta.get("format") == FASTGRNN_FORMAT and "featurizer" not in meta:
        raise file.error(
            "is a FastGRNN checkpoint without a featuriser (a candidate-feature model): serve it with "
            "Router.route(), or train a prompt router with `python -m tinydancer train`"
        )
    params, config, extra, tensors = fastgrnn_from_file(file, (FORMAT, FASTGRNN_FORMAT), _ngram_shapes(meta))
    featurizer, norm = featurizer_from_metadata(extra)
    if norm is None:
        raise file.error("has no 'norm_stats' entry: retrain it with `python -m tinydancer train`")
    with named_errors(file, WHAT):
        return PromptRouterArtifact(
            params=params,
            model_config=config,
            featurizer=featurizer,
            norm=norm,
            ngram_weights=tensors.get("ngram_weights"),
            **policy_fields(file, FORMAT),
        )


def policy_fields(file: SafetensorsFile, required_in: str) -> dict[str, Any]:
    """The policy's fields from a file's ``__metadata__`` (keyword arguments of an artifact).

    Args:
        file: The file read whole.
        required_in: The format whose files must hold every required entry (older formats get defaults).

    Raises:
        ModelLoadError: an entry missing or not JSON; ``KeyError``, ``TypeError`` or ``ValueError`` for a
            malformed one (:func:`named_errors` names the file).
    """
    meta = file.metadata or {}
    raw_cal = _part(file, meta, "calibrator", {"kind": "none"}, required_in)
    calibrator = Calibrator(
        raw_cal["kind"], float(raw_cal.get("a", 1.0)), float(raw_cal.get("b", 0.0)),
        tuple(map(float, raw_cal.get("xs", ()))), tuple(map(float, raw_cal.get("ys", ()))),
    )  # fmt: skip
    raw_conf = _part(file, meta, "conformal", None, required_in)
    models = _part(file, meta, "models", {}, required_in)
    points = _part(file, meta, "operating_points", {}, required_in)
    return {
        "calibrator": calibrator,
        "pass_mark": float(_part(file, meta, "pass_mark", 0.5, required_in)),
        "conformal": None if raw_conf is None else ConformalSpec(raw_conf["q"], raw_conf["alpha"]),
        "weak_model": models.get("weak", "weak"),
        "strong_model": models.get("strong", "strong"),
        "weak_price": models.get("weak_price"),
        "strong_price": models.get("strong_price"),
        "operating_points": {k: OperatingPoint.from_json(v) for k, v in points.items()},
        "default_operating_point": _part(file, meta, "default_operating_point", None, required_in),
        "split": _part(file, meta, "split", {}, required_in),
        "provenance": _part(file, meta, "provenance", {}, required_in),
        "reference": _part(file, meta, "reference", {}, required_in),
        "target": _part(file, meta, "target", "weak_fails", required_in),
    }


@contextlib.contextmanager
def named_errors(file: SafetensorsFile, what: str) -> Iterator[None]:
    """Turn an artifact's validation errors and malformed metadata into ModelLoadErrors that name the file."""
    try:
        yield
    except ModelLoadError as exc:
        if str(exc).startswith(f"{what} '"):  # already names the file
            raise
        raise file.error(str(exc).removeprefix(f"{what}: ")) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise file.error(f"has an invalid part: {type(exc).__name__}: {exc}") from exc
