"""Replay: re-route recorded traffic under another operating point or another artifact, and compare.

:func:`replay` reads a recording segment by segment (memory bounded by a segment plus 24 bytes per joined
outcome, which are read first, from every segment, so that an outcome saved after its decision still joins)
and decides every recorded prompt again: with the recorded ``p_strong`` and a new threshold
(no prompt text needed), or with a new artifact, which re-scores the recorded prompt text (the router must
have recorded it: ``RouterConfig(record_prompts=True)``). Per request it gives the old and new decision
and whether it flipped; where outcomes were joined, the quality either way (the chosen model's outcome;
NaN where the newly chosen model's outcome is unknown).

Off-policy estimates: when the recorded router explored (``RouterConfig(exploration_rate=...)``: a share of
prompts routed at random, every decision's propensity recorded), the new policy's quality is also estimated
from the served model's outcomes alone, with importance weights ``w = 1[new decision == recorded] /
propensity``: inverse propensity scoring ``mean(w r)`` and its self-normalised form ``sum(w r) / sum(w)``,
each with a 95 % normal interval (the self-normalised one by the delta method). Without exploration every
flipped decision has propensity 0 and the estimates are NaN.

Examples:
    >>> import tempfile
    >>> from tinydancer.observability.collector import Collector
    >>> folder = Path(tempfile.mkdtemp()) / "empty"
    >>> _ = Collector().save(folder)
    >>> replay(folder, threshold=0.5).summary["requests"]
    0
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from tinydancer.errors import ConfigError, DataError
from tinydancer.model.scorer_router import PromptScoring, RouterArtifact, load_router, serving_scorer
from tinydancer.observability.recording import Recording, joined_outcomes, recording_segments

#: Columns of :attr:`ReplayResult.requests`.
REPLAY_COLUMNS: tuple[str, ...] = (
    "request_id",
    "old_p_strong",
    "new_p_strong",
    "old_use_strong",
    "new_use_strong",
    "flipped",
    "old_quality",
    "new_quality",
    "propensity",
    "weight",
)


class ReplayResult(NamedTuple):
    """What :func:`replay` found.

    Attributes:
        requests: One row per replayed prompt (:data:`REPLAY_COLUMNS`).
        summary: ``requests``, ``flipped``, ``to_strong``, ``to_weak``, ``old_strong_share``,
            ``new_strong_share``, ``with_outcomes`` (rows whose quality is known either way),
            ``old_quality`` and ``new_quality`` (means over those rows; NaN with none), ``threshold``;
            off-policy: ``explored`` (whether any recorded propensity is below 1), ``with_reward`` (rows whose
            served model's outcome is known), ``ips_quality``, ``ips_low``, ``ips_high``,
            ``snips_quality``, ``snips_low``, ``snips_high`` (NaN without exploration).
    """

    requests: pd.DataFrame
    summary: dict[str, Any]


def _outcome_of(chosen_strong: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.where(chosen_strong, strong, weak)
    return out


def _replay_part(
    recording: Recording, scorer: PromptScoring | None, threshold: float, outcomes: pd.DataFrame
) -> pd.DataFrame:
    decisions = recording.decisions[recording.decisions["p_strong"].notna()]
    if decisions.empty:
        return _empty_requests()
    old_p = decisions["p_strong"].to_numpy(np.float64)
    old_strong = ~decisions["use_lightweight"].to_numpy(bool)
    if scorer is None:
        new_p = old_p
    else:
        if decisions["prompt"].isna().any():
            raise DataError(
                "replay with another model re-scores the recorded prompts, but this recording has no prompt text "
                "(route with RouterConfig(record_prompts=True)); replay a threshold instead"
            )
        new_p = scorer.score(decisions["prompt"].astype(str).tolist(), threshold).p_strong.astype(np.float64)
    new_strong = new_p >= np.float32(threshold)
    propensity = decisions["propensity"].to_numpy(np.float64) if "propensity" in decisions else np.ones(len(decisions))
    known = outcomes.reindex(decisions["request_id"].to_numpy())  # outcomes of any segment, late ones too
    weak, strong = known["weak_correct"].to_numpy(np.float64), known["strong_correct"].to_numpy(np.float64)
    return pd.DataFrame(
        {
            "request_id": decisions["request_id"].to_numpy(np.int64),
            "old_p_strong": old_p,
            "new_p_strong": new_p,
            "old_use_strong": old_strong,
            "new_use_strong": new_strong,
            "flipped": old_strong != new_strong,
            "old_quality": _outcome_of(old_strong, weak, strong),
            "new_quality": _outcome_of(new_strong, weak, strong),
            "propensity": propensity,
            "weight": (new_strong == old_strong) / propensity,
        }
    )


def replay(
    recording: str | Path | Recording,
    model: str | Path | RouterArtifact | None = None,
    operating_point: str | None = None,
    *,
    threshold: float | None = None,
    keep_requests: bool = True,
) -> ReplayResult:
    """Decide every recorded prompt again and compare with what was decided.

    Args:
        recording: A recording folder (``Collector.save``; read segment by segment), or a recording already
            loaded (``td.load_recording``).
        model: Another artifact (path or loaded; a FastGRNN prompt router or a scorer router) to re-score the
            recorded prompt text with; None keeps the recorded ``p_strong``.
        operating_point: An operating point of ``model`` (its default when None and no ``threshold``).
        threshold: A threshold on p_strong instead of an operating point.
        keep_requests: Return the per-request frame; False returns an empty one and only the summary,
            so memory stays bounded by one segment however long the recording.

    Returns:
        A :class:`ReplayResult`.

    Raises:
        ConfigError: neither a model nor a threshold, both an operating point and a threshold, or an unknown
            operating point.
        DataError: a model replay of a recording without prompt text, or not a recording.
    """
    if operating_point is not None and threshold is not None:
        raise ConfigError("replay: expected an operating point or a threshold, not both")
    artifact = load_router(model) if isinstance(model, str | Path) else model
    if artifact is None and threshold is None:
        raise ConfigError("replay: expected a threshold, or a model (whose operating point gives one)")
    if threshold is None:
        assert artifact is not None
        threshold = artifact.operating_point(operating_point).threshold
    if math.isnan(threshold):
        raise ConfigError("replay: threshold: expected a number or +-inf, got NaN")
    scorer = None if artifact is None else serving_scorer(artifact, uncertainty="original")
    totals = dict.fromkeys(("requests", "flipped", "to_strong", "to_weak", "old_strong", "new_strong", "known"), 0)
    quality = {"old": 0.0, "new": 0.0}
    sums = dict.fromkeys(("n", "wr", "wr2", "w", "w2", "w2r", "w2r2"), 0.0)  # off-policy running sums
    explored = False
    kept = []
    if isinstance(recording, Recording):
        segments: Iterable[Recording] = [recording]
        reports = recording.outcomes[recording.outcomes["joined"]]
        outcomes = reports.groupby("request_id")[["weak_correct", "strong_correct"]].last().astype("float64")
    else:
        segments, outcomes = recording_segments(recording), joined_outcomes(recording)
    for segment in segments:
        part = _replay_part(segment, scorer, threshold, outcomes)
        flipped, new_strong = part["flipped"].to_numpy(bool), part["new_use_strong"].to_numpy(bool)
        known = (part["old_quality"].notna() & part["new_quality"].notna()).to_numpy()
        counts = {
            "requests": len(part),
            "flipped": flipped.sum(),
            "to_strong": (flipped & new_strong).sum(),
            "to_weak": (flipped & ~new_strong).sum(),
            "old_strong": part["old_use_strong"].sum(),
            "new_strong": new_strong.sum(),
            "known": known.sum(),
        }
        for key, value in counts.items():
            totals[key] += int(value)
        quality["old"] += float(part["old_quality"].to_numpy()[known].sum())
        quality["new"] += float(part["new_quality"].to_numpy()[known].sum())
        explored = explored or bool((part["propensity"] < 1.0).any())
        served = part["old_quality"].notna().to_numpy()
        w, r = part["weight"].to_numpy()[served], part["old_quality"].to_numpy()[served]
        for key, value in (("n", served.sum()), ("wr", w @ r), ("wr2", (w * r) @ (w * r)), ("w", w.sum()),
                           ("w2", w @ w), ("w2r", (w * w) @ r), ("w2r2", (w * w) @ (r * r))):  # fmt: skip
            sums[key] += float(value)
        if keep_requests:
            kept.append(part)
    n, k = totals["requests"], totals["known"]
    summary = {
        "requests": n,
        "flipped": totals["flipped"],
        "to_strong": totals["to_strong"],
        "to_weak": totals["to_weak"],
        "old_strong_share": totals["old_strong"] / n if n else math.nan,
        "new_strong_share": totals["new_strong"] / n if n else math.nan,
        "with_outcomes": k,
        "old_quality": quality["old"] / k if k else math.nan,
        "new_quality": quality["new"] / k if k else math.nan,
        "threshold": float(threshold),
        **_off_policy(sums, explored),
    }
    frame = pd.concat(kept, ignore_index=True) if kept else _empty_requests()
    return ReplayResult(frame, summary)


def _off_policy(sums: dict[str, float], explored: bool) -> dict[str, Any]:
    """IPS and self-normalised IPS estimates with 95 % normal intervals from the running sums."""
    n, nan = sums["n"], math.nan
    out: dict[str, Any] = {"explored": explored, "with_reward": int(n)}
    keys = ("ips_quality", "ips_low", "ips_high", "snips_quality", "snips_low", "snips_high")
    if not explored or n < 2 or sums["w"] <= 0:
        return out | dict.fromkeys(keys, nan)
    ips = sums["wr"] / n
    ips_se = math.sqrt(max(sums["wr2"] / n - ips * ips, 0.0) / n)
    snips = sums["wr"] / sums["w"]
    mean_w = sums["w"] / n
    spread = (sums["w2r2"] - 2 * snips * sums["w2r"] + snips * snips * sums["w2"]) / n  # E[w^2 (r - snips)^2]
    snips_se = math.sqrt(max(spread, 0.0) / n) / mean_w
    z = 1.959963984540054
    values = (ips, ips - z * ips_se, ips + z * ips_se, snips, snips - z * snips_se, snips + z * snips_se)
    return out | dict(zip(keys, values, strict=True))


def _empty_requests() -> pd.DataFrame:
    dtypes = ("int64", "float64", "float64", "bool", "bool", "bool", "float64", "float64", "float64", "float64")
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in zip(REPLAY_COLUMNS, dtypes, strict=True)})
