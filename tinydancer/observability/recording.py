"""Recordings that last: a collector's frames saved as append-only Parquet segments, and read back exactly.

Layout of a recording folder (format ``tinydancer-recording``, version :data:`RECORDING_VERSION`)::

    manifest.json                 {"format", "version", "segments": [{"name", "saved_at", "rows", "dropped"}]}
    segment-000000/requests.parquet, decisions.parquet, spans.parquet, logs.parquet, metrics.parquet,
                   outcomes.parquet
    segment-000001/...

Each :meth:`Collector.save <tinydancer.observability.collector.Collector.save>` writes one segment with what
the collector holds at that moment (by default moving the records out, so a long-running router that
saves periodically keeps bounded memory), then rewrites the manifest atomically: a segment is part of the
recording once the manifest lists it. The frames are the collector's own (columns and dtypes in
:mod:`tinydancer.observability.collector`); the dict-valued columns (``logs.fields``,
``spans.attributes``, ``metrics.labels``) are stored as JSON text and decoded on load (span attribute
lists come back as tuples, as OpenTelemetry keeps them). ``metrics`` is a snapshot of the router's
Prometheus registry at each save, with an added ``segment`` column. Prompt text is in ``decisions`` only
when the router was configured to record it (``RouterConfig(record_prompts=True)``).

One folder is written by one process; recordings of many router processes are combined by reading their
folders' Parquet files together (e.g. DuckDB ``read_parquet('recordings/*/segment-*/decisions.parquet')``).

Examples:
    >>> import tempfile
    >>> from tinydancer.observability.collector import Collector
    >>> c = Collector()
    >>> c.record_log({"event": "hello", "level": "info", "timestamp": 1.0, "n": 3})
    >>> folder = Path(tempfile.mkdtemp()) / "rec"
    >>> _ = c.save(folder)
    >>> rec = load_recording(folder)
    >>> rec.logs["fields"].tolist(), len(rec.segments)
    ([{'n': 3}], 1)
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from tinydancer.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from tinydancer.observability.collector import Collector

RECORDING_FORMAT = "tinydancer-recording"
#: The version this code writes; it reads every version up to it.
RECORDING_VERSION = 1
#: The frames of a recording, in file order.
RECORDING_KINDS: tuple[str, ...] = ("requests", "decisions", "spans", "logs", "metrics", "outcomes")
#: Dict-valued columns, stored as JSON text.
_JSON_COLUMNS = {"logs": "fields", "spans": "attributes", "metrics": "labels"}
_MANIFEST = "manifest.json"


class Recording(NamedTuple):
    """The frames of every segment of a recording, concatenated in save order.

    Attributes:
        requests: As ``Collector.requests()``.
        decisions: As ``Collector.decisions()``.
        spans: As ``Collector.spans()``.
        logs: As ``Collector.logs()``.
        metrics: As ``Collector.metrics()`` at each save, plus ``segment`` (int64, which save).
        outcomes: As ``Collector.outcomes()`` (outcome reports joined to routed prompts).
        segments: One row per segment: ``segment``, ``name``, ``saved_at`` (UTC), rows and drops per kind.
    """

    requests: pd.DataFrame
    decisions: pd.DataFrame
    spans: pd.DataFrame
    logs: pd.DataFrame
    metrics: pd.DataFrame
    outcomes: pd.DataFrame
    segments: pd.DataFrame


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / _MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"recording {str(folder)!r}: expected a {_MANIFEST} (a folder written by Collector.save)"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"recording {str(folder)!r}: unreadable {_MANIFEST} ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != RECORDING_FORMAT:
        raise DataError(f"recording {str(folder)!r}: {_MANIFEST} is not a {RECORDING_FORMAT} manifest")
    version = manifest.get("version")
    if not isinstance(version, int) or version < 1:
        raise DataError(f"recording {str(folder)!r}: invalid version {version!r} in {_MANIFEST}")
    if version > RECORDING_VERSION:
        raise DataError(
            f"recording {str(folder)!r} has version {version}, newer than this tinydancer reads "
            f"({RECORDING_VERSION}): upgrade tinydancer to read it"
        )
    return manifest


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".manifest-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(manifest, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, folder / _MANIFEST)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value: object) -> object:
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)


def save_recording(collector: Collector, path: str | Path, *, clear: bool = True) -> Path:
    """Append one segment with the collector's records (moved when ``clear``) to the recording at ``path``.

    Args:
        collector: The collector (a Router's ``router.collector``).
        path: The recording folder; created with its manifest on the first save.
        clear: Move the records out of the collector (bounded memory) instead of copying them.

    Returns:
        The segment folder written.

    Raises:
        DataError: ``path`` holds something that is not a recording of a version this code reads.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = (
        _read_manifest(folder)
        if (folder / _MANIFEST).exists()
        else {"format": RECORDING_FORMAT, "version": RECORDING_VERSION, "segments": []}
    )
    if manifest["version"] != RECORDING_VERSION:
        raise DataError(f"recording {str(folder)!r}: version {manifest['version']}; start a new folder to append")
    snapshot = collector.detach(clear=clear)
    saved_at = datetime.datetime.now(datetime.UTC).isoformat()
    frames = {
        "requests": snapshot.requests(),
        "decisions": snapshot.decisions(),
        "spans": snapshot.spans(),
        "logs": snapshot.logs(),
        "metrics": snapshot.metrics(),
        "outcomes": snapshot.outcomes(),
    }
    number = len(manifest["segments"])
    name = f"segment-{number:06d}"
    segment = folder / name
    segment.mkdir(exist_ok=False)
    for kind, frame in frames.items():
        column = _JSON_COLUMNS.get(kind)
        if column is not None:
            frame = frame.assign(**{column: [json.dumps(v, default=_json_default) for v in frame[column]]})
        if kind == "metrics":
            frame = frame.assign(segment=number)
        frame.to_parquet(segment / f"{kind}.parquet", index=False)
    manifest["segments"].append(
        {
            "name": name,
            "saved_at": saved_at,
            "rows": {kind: len(frame) for kind, frame in frames.items()},
            "dropped": snapshot.dropped,
        }
    )
    _write_manifest(folder, manifest)
    return segment


def _decode(kind: str, frame: pd.DataFrame) -> pd.DataFrame:
    column = _JSON_COLUMNS.get(kind)
    if column is None:
        return frame
    values = [json.loads(v) for v in frame[column]]
    if kind == "spans":  # OpenTelemetry keeps sequence attributes as tuples
        values = [{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()} for d in values]
    return frame.assign(**{column: _object_series(values, frame.index)})


def _object_series(values: list[Any], index: pd.Index) -> pd.Series:
    import pandas as pd

    return pd.Series(values, index=index, dtype=object)


def _segments_frame(entries: list[dict[str, Any]], first: int = 0) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {
            "segment": pd.Series(range(first, first + len(entries)), dtype="int64"),
            "name": pd.Series([e["name"] for e in entries], dtype="str"),
            "saved_at": pd.to_datetime([e["saved_at"] for e in entries], utc=True),
            **{
                f"{kind}_rows": pd.Series([e["rows"].get(kind, 0) for e in entries], dtype="int64")
                for kind in RECORDING_KINDS
            },
            **{
                f"{kind}_dropped": pd.Series([e["dropped"].get(kind, 0) for e in entries], dtype="int64")
                for kind in ("requests", "decisions", "spans", "logs")
            },
        }
    )


def _read_segment(folder: Path, entry: dict[str, Any], kinds: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    import pandas as pd

    frames = {}
    for kind in kinds:
        file = folder / entry["name"] / f"{kind}.parquet"
        try:
            frames[kind] = _decode(kind, pd.read_parquet(file))
        except FileNotFoundError:
            missing = f"segment file {file.name} of {entry['name']} is missing"
            raise DataError(f"recording {str(folder)!r}: {missing}") from None
    return frames


def load_recording(path: str | Path) -> Recording:
    """Read every segment of a recording back into the collector's DataFrames.

    Args:
        path: A folder written by ``Collector.save``.

    Returns:
        A :class:`Recording`.

    Raises:
        DataError: no manifest, another format, a newer version, or a listed segment file missing.
    """
    folder = Path(path)
    entries = _read_manifest(folder)["segments"]
    parts = [_read_segment(folder, entry, RECORDING_KINDS) for entry in entries]
    frames = {kind: _concat(kind, [p[kind] for p in parts]) for kind in RECORDING_KINDS}
    return Recording(**frames, segments=_segments_frame(entries))


def recording_segments(path: str | Path) -> Iterator[Recording]:
    """The recording one segment at a time (memory bounded by a segment): each a :class:`Recording`.

    Examples:
        >>> import tempfile
        >>> from tinydancer.observability.collector import Collector
        >>> folder = Path(tempfile.mkdtemp()) / "rec"
        >>> _, _ = Collector().save(folder), Collector().save(folder)
        >>> [len(r.segments) for r in recording_segments(folder)]
        [1, 1]
    """
    folder = Path(path)
    for number, entry in enumerate(_read_manifest(folder)["segments"]):
        frames = _read_segment(folder, entry, RECORDING_KINDS)
        yield Recording(**{k: _concat(k, [f]) for k, f in frames.items()}, segments=_segments_frame([entry], number))


def _concat(kind: str, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Segments in order; an empty recording gives the collector's empty frame (with ``segment`` for metrics)."""
    import pandas as pd

    from tinydancer.observability.collector import Collector

    empty: pd.DataFrame = getattr(Collector(), kind)()
    if not frames:
        return empty.assign(segment=pd.Series(dtype="int64")) if kind == "metrics" else empty
    if len(frames) == 1:
        return frames[0]
    categorical = [c for c in empty.columns if isinstance(empty[c].dtype, pd.CategoricalDtype)]
    both = pd.concat(frames, ignore_index=True)
    for column in categorical:  # categories differ between segments: concat falls back to object
        both[column] = both[column].astype("category")
    return both


def joined_outcomes(path: str | Path) -> pd.DataFrame:
    """Every joined outcome of a recording, merged per request (the last value reported for each field wins),
    across segments: a late outcome may be saved in a later segment than its decision.

    Only the ``outcomes`` files are read (request_id, weak_correct, strong_correct), so memory grows with the
    outcomes (24 bytes each), not with the rest of the recording.

    Returns:
        weak_correct and strong_correct (float64, NaN where never reported), indexed by request_id.
    """
    import pandas as pd

    folder = Path(path)
    columns = ["request_id", "weak_correct", "strong_correct", "joined"]
    parts = []
    for entry in _read_manifest(folder)["segments"]:
        file = folder / entry["name"] / "outcomes.parquet"
        if not file.exists():
            raise DataError(f"recording {str(folder)!r}: segment file {file.name} of {entry['name']} is missing")
        reports = pd.read_parquet(file, columns=columns)
        parts.append(reports[reports["joined"]].drop(columns="joined"))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns[:3])
    merged: pd.DataFrame = frame.groupby("request_id", sort=True)[["weak_correct", "strong_correct"]].last()
    return merged.astype("float64")


#: ``recording_outcomes(require=...)``: which outcomes a row must have.
REQUIRE_OUTCOMES: tuple[str, ...] = ("weak", "both")


def recording_outcomes(recording: Recording, *, require: str = "both") -> pd.DataFrame:
    """A recording's routed prompts joined with their outcomes: a training and evaluation set.

    Partial reports of one request are merged (the last value reported for each field wins). The frame
    has the columns ``tinydancer.datasets.load`` gives (``prompt``, ``subject`` = ``"recording"``,
    ``weak_correct``, ``strong_correct``) plus ``request_id``, ``timestamp``, ``p_strong``, ``use_strong``,
    ``operating_point``, ``quality`` and ``cost`` of the recorded decision; it feeds
    ``td.learning.train_router`` (``require="weak"``: the label) and ``evaluate`` / ``tune``
    (``require="both"``: quality needs both models' outcomes).

    Args:
        recording: From :func:`load_recording`.
        require: ``"weak"`` (rows with a weak outcome) or ``"both"`` (rows with both outcomes).

    Returns:
        One row per routed prompt with the required outcomes, in request order.

    Raises:
        DataError: the recording has no prompt text (route with ``RouterConfig(record_prompts=True)``), or
            no row has the required outcomes.
    """
    import pandas as pd

    if require not in REQUIRE_OUTCOMES:
        raise DataError(f"require: expected one of {REQUIRE_OUTCOMES}, got {require!r}")
    decisions = recording.decisions[recording.decisions["p_strong"].notna()]  # a prompt router's rows
    if decisions.empty:
        raise DataError("recording: expected decisions of a prompt router, found none")
    if decisions["prompt"].isna().all():
        raise DataError(
            "recording: its decisions carry no prompt text; a recording becomes training data only when the "
            "router records prompts (RouterConfig(record_prompts=True))"
        )
    fields = ["weak_correct", "strong_correct", "quality", "cost"]
    reports = recording.outcomes[recording.outcomes["joined"]]
    merged = reports.groupby("request_id", sort=False)[fields].last()  # last non-null value of each field
    frame = decisions.merge(merged, left_on="request_id", right_index=True, how="inner")
    needed = ["weak_correct"] if require == "weak" else ["weak_correct", "strong_correct"]
    frame = frame.dropna(subset=["prompt", *needed]).sort_values("request_id", kind="stable")
    if frame.empty:
        raise DataError(f"recording: no routed prompt has {' and '.join(needed)} outcomes yet")
    out = pd.DataFrame(
        {
            "prompt": frame["prompt"].astype(str).to_numpy(),
            "subject": "recording",
            "weak_correct": frame["weak_correct"].to_numpy(np.float64),
            "strong_correct": frame["strong_correct"].to_numpy(np.float64),
            "request_id": frame["request_id"].to_numpy(np.int64),
            "timestamp": frame["timestamp"].to_numpy(),
            "p_strong": frame["p_strong"].to_numpy(np.float64),
            "use_strong": ~frame["use_lightweight"].to_numpy(bool),
            "operating_point": frame["operating_point"].astype(str).to_numpy(),
            "quality": frame["quality"].to_numpy(np.float64),
            "cost": frame["cost"].to_numpy(np.float64),
        }
    )
    models = frame["model"].dropna().unique().tolist()
    out.attrs.update(source="recording", models=models)
    return out
