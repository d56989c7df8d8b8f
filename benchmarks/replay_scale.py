"""Replay at scale (issue 15): ``td.replay`` over a recording of millions of prompt decisions, with its memory.

A real prompt router (``td.learning.train_router`` on ``routellm-mmlu``, 1 epoch, temperature
calibration, ``strong-share=0.5`` operating point ``s50`` as the default) routes ``--seed-prompts`` real
prompts in batches and is told half of their outcomes (``record_outcomes``); ``router.collector.save``
writes that as the genuine segment 0 of the recording. Routing 10 million prompts through it would take
hours here, so the other segments are written from that genuine segment's own frames: its
``requests``, ``decisions`` and ``outcomes`` rows tiled to ``--segment-rows`` rows, with new request ids,
later timestamps, a fresh uniform ``p_strong`` per prompt and the decision it implies under the recorded
threshold (``use_lightweight``, ``decision``); ``metrics`` is the genuine snapshot with its ``segment``
number, ``spans`` and ``logs`` are empty. Each is listed in ``manifest.json`` as ``Collector.save`` lists
a segment (``name``, ``saved_at``, ``rows`` per kind, ``dropped``), so ``td.load_recording`` and
``td.observability.recording_segments`` read it like any other recording.

Each measurement then runs in a fresh child process (so its peak RSS is its own, not the generator's):

* ``replay``: ``td.replay(folder, threshold=t)`` over every segment, keeping the per-request frame: wall
  time, requests/s, RSS before, peak RSS (``VmHWM``, and a 20 ms ``VmRSS`` sampler) and the summary;
* ``summary``: ``td.replay(folder, threshold=t, keep_requests=False)``: the summary streamed over the
  segments, memory bounded by one segment;

both for the whole recording (N requests) and for about its first tenth (a folder of symlinks to the
first segments that hold at least N/10 decisions, same files), so peak RSS at N and N/10 can be compared.

Usage::

    .venv/bin/python -m benchmarks.replay_scale                     # 10,000,000 requests, 500,000 a segment
    .venv/bin/python -m benchmarks.replay_scale --quick             # 1,000,000 requests
    .venv/bin/python -m benchmarks.replay_scale --requests 2e6 --segment-rows 250000 --out benchmarks/results

Writes ``<out>/replay_scale_<N>.json`` and ``.md``; ``<out>`` defaults to ``$BENCH_OUT`` or the
git-ignored ``.cache/bench/results``. The recording goes to a new folder under ``--folder`` (default
``/tmp``), deleted afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import tinydancer as td
from benchmarks.run import machine_facts
from benchmarks.training import DEFAULT_DATA, SCRATCH_RESULTS

#: Replay threshold: not the recorded one, so some decisions flip.
REPLAY_THRESHOLD = 0.6


# --- memory -------------------------------------------------------------------------------------------------


def proc_status_mib(key: str) -> float:
    """A ``/proc/self/status`` field (``VmRSS``, ``VmHWM``) in MiB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return math.nan


class RssSampler:
    """Samples ``VmRSS`` every ``period`` seconds on a thread; ``peak`` is the largest seen."""

    def __init__(self, period: float = 0.02) -> None:
        self.period, self.peak, self.samples = period, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, proc_status_mib("VmRSS"))
            self.samples += 1
            self._stop.wait(self.period)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, proc_status_mib("VmRSS"))


# --- the recording --------------------------------------------------------------------------------------------


def genuine_segment(folder: Path, seed_prompts: int, workdir: Path) -> dict[str, Any]:
    """Train the artifact, route ``seed_prompts`` real prompts, report half the outcomes, save segment 0."""
    t0 = time.perf_counter()
    frame = td.datasets.load(DEFAULT_DATA)
    path = workdir / "router.safetensors"
    td.learning.train_router(frame, path, train=td.learning.TrainConfig(epochs=1, progress=False))
    td.learning.calibrate_router(path, frame, "temperature")
    tuned = td.learning.tune_router(path, frame, "strong-share=0.5", "s50", default=True)
    trained_s = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        router = td.Router(td.RouterConfig(model_path=str(path)), log_config=td.LogConfig(renderer="none"))
    rows = np.random.default_rng(0).permutation(len(frame))[:seed_prompts]
    prompts = frame["prompt"].to_numpy()[rows].tolist()
    t1 = time.perf_counter()
    routed = pd.concat([router.route_prompts(prompts[i : i + 500]) for i in range(0, len(prompts), 500)])
    route_s = time.perf_counter() - t1
    half = len(routed) // 2
    router.record_outcomes(
        {
            "request_id": routed["request_id"].to_numpy()[:half].tolist(),
            "weak_correct": frame["weak_correct"].to_numpy()[rows][:half].astype(float).tolist(),
            "strong_correct": frame["strong_correct"].to_numpy()[rows][:half].astype(float).tolist(),
        }
    )
    router.collector.save(folder)
    entry = json.loads((folder / "manifest.json").read_text())["segments"][0]
    return {
        "rows": entry["rows"],
        "dataset": DEFAULT_DATA,
        "prompts": len(prompts),
        "outcomes_reported": half,
        "operating_point": tuned.name,
        "recorded_threshold": float(tuned.point.threshold),
        "train_calibrate_tune_s": trained_s,
        "route_s": route_s,
    }


def _tile(frame: pd.DataFrame, idx: np.ndarray) -> pd.DataFrame:
    return frame.iloc[idx].reset_index(drop=True)


def write_tiled_segments(folder: Path, total: int, segment_rows: int, threshold: float, seed: int = 1) -> int:
    """Append segments tiled from segment 0 until the recording holds ``total`` prompt decisions."""
    seg0 = folder / "segment-000000"
    requests = pd.read_parquet(seg0 / "requests.parquet")
    decisions = pd.read_parquet(seg0 / "decisions.parquet")
    outcomes = pd.read_parquet(seg0 / "outcomes.parquet")
    metrics = pd.read_parquet(seg0 / "metrics.parquet")
    spans = pd.read_parquet(seg0 / "spans.parquet").iloc[:0]
    logs = pd.read_parquet(seg0 / "logs.parquet").iloc[:0]
    n = len(decisions)
    ids0 = decisions["request_id"].to_numpy(np.int64)
    position = pd.Series(np.arange(n), index=ids0)  # genuine request id -> row of decisions
    req_pos = position.reindex(requests["request_id"].to_numpy(np.int64)).to_numpy()
    out_pos = position.reindex(outcomes["request_id"].to_numpy(np.int64)).to_numpy()
    if np.isnan(req_pos).any() or np.isnan(out_pos).any():
        raise SystemExit("replay_scale: the genuine segment's requests/outcomes do not match its decisions")
    req_order = np.argsort(req_pos, kind="stable")
    requests, req_pos = requests.iloc[req_order].reset_index(drop=True), req_pos[req_order].astype(np.int64)
    out_pos = out_pos.astype(np.int64)
    span_s = float((decisions["timestamp"].max() - decisions["timestamp"].min()).total_seconds()) + 1.0
    categories = decisions["decision"].cat.categories  # ("powerful", "lightweight"): code = use_lightweight
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    rng = np.random.default_rng(seed)
    written = n
    next_id = int(ids0.max()) + 1
    while written < total:
        rows = min(segment_rows, total - written)
        number = len(manifest["segments"])
        name = f"segment-{number:06d}"
        copies = -(-rows // n)
        tile = np.arange(rows) % n
        new_ids = next_id + np.arange(rows, dtype=np.int64)
        shift = pd.Timedelta(seconds=span_s * number)
        p = rng.random(rows)
        light = p < np.float32(threshold)
        dec = _tile(decisions, tile)
        dec["request_id"] = new_ids
        dec["timestamp"] = dec["timestamp"] + shift
        dec["p_strong"] = p.astype(dec["p_strong"].dtype)
        dec["use_lightweight"] = light.astype(dec["use_lightweight"].dtype)
        dec["decision"] = pd.Categorical.from_codes(light.astype(np.int8), categories=categories)
        # requests and outcomes: every copy of segment 0 within `rows`, re-keyed to the new ids
        flat_r = (np.arange(copies)[:, None] * n + req_pos[None, :]).ravel()
        keep_r = flat_r < rows
        req = _tile(requests, np.tile(np.arange(len(requests)), copies)[keep_r])
        req["request_id"] = new_ids[flat_r[keep_r]]
        req["timestamp"] = req["timestamp"] + shift
        flat_o = (np.arange(copies)[:, None] * n + out_pos[None, :]).ravel()
        keep_o = flat_o < rows
        out = _tile(outcomes, np.tile(np.arange(len(outcomes)), copies)[keep_o])
        out["request_id"] = new_ids[flat_o[keep_o]]
        out["timestamp"] = out["timestamp"] + shift
        frames = {
            "requests": req,
            "decisions": dec,
            "spans": spans,
            "logs": logs,
            "metrics": metrics.assign(segment=number),
            "outcomes": out,
        }
        (folder / name).mkdir()
        for kind, f in frames.items():
            f.to_parquet(folder / name / f"{kind}.parquet", index=False)
        manifest["segments"].append(
            {
                "name": name,
                "saved_at": dt.datetime.now(dt.UTC).isoformat(),
                "rows": {kind: len(f) for kind, f in frames.items()},
                "dropped": manifest["segments"][0]["dropped"],
            }
        )
        manifest_path.write_text(json.dumps(manifest, indent=1))
        written += rows
        next_id += rows
        print(f"  {name}: {rows:,} decisions ({written:,} / {total:,})", flush=True)
    return written


def subset_folder(folder: Path, segments: int, dest: Path) -> Path:
    """A recording of the first ``segments`` segments of ``folder``: symlinks to the same files, own manifest."""
    dest.mkdir()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["segments"] = manifest["segments"][:segments]
    for entry in manifest["segments"]:
        (dest / entry["name"]).symlink_to(folder / entry["name"], target_is_directory=True)
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return dest


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (symlinks not followed)."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


# --- the measurements (in a child process) --------------------------------------------------------------------


def measure(mode: str, folder: Path, threshold: float) -> dict[str, Any]:
    """One measurement in this process: ``replay`` (td.replay, every row kept) or ``summary`` (keep_requests=False)."""
    before = proc_status_mib("VmRSS")
    t0 = time.perf_counter()
    with RssSampler() as sampler:
        if mode == "replay":
            result = td.replay(folder, threshold=threshold)
            summary = {k: v for k, v in result.summary.items() if not isinstance(v, float) or not math.isnan(v)}
            kept_mib = float(result.requests.memory_usage(deep=True).sum() / 2**20)
            segments = None
        else:  # the streamed summary: td.replay(keep_requests=False), memory bounded by a segment
            result = td.replay(folder, threshold=threshold, keep_requests=False)
            summary = {k: v for k, v in result.summary.items() if not isinstance(v, float) or not math.isnan(v)}
            kept_mib = 0.0
            segments = None
    seconds = time.perf_counter() - t0
    requests = int(summary["requests"])
    return {
        "mode": mode,
        "seconds": seconds,
        "requests": requests,
        "requests_per_s": requests / seconds if seconds else math.nan,
        "rss_before_mib": before,
        "peak_rss_mib": max(proc_status_mib("VmHWM"), sampler.peak),
        "peak_rss_sampled_mib": sampler.peak,
        "rss_after_mib": proc_status_mib("VmRSS"),
        "result_frame_mib": kept_mib,
        "segments": segments,
        "summary": summary,
    }


def run_child(mode: str, folder: Path, threshold: float) -> dict[str, Any]:
    """:func:`measure` in a fresh ``nice``-inherited interpreter; its JSON result."""
    command = [sys.executable, "-m", "benchmarks.replay_scale", "--child", mode, "--folder", str(folder)]
    command += ["--threshold", repr(threshold)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- report ---------------------------------------------------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    """The Markdown report of one run."""
    m, cfg, rec = result["machine"], result["config"], result["recording"]
    lines = [
        f"## Replay at scale: {cfg['requests']:,} recorded prompt decisions",
        "",
        f"Command: `{result['command']}` ({result['date_utc']}).",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu_model']}), load average {m['loadavg'][0]:.2f} at start, "
        f"{m['loadavg_end'][0]:.2f} at end; Python {m['python']}, tinydancer {m['tinydancer']}.",
        "",
        f"Recording: {rec['segments']} segments of up to {cfg['segment_rows']:,} decisions "
        f"(segment 0 genuine: {rec['genuine']['prompts']:,} routed prompts, "
        f"{rec['genuine']['outcomes_reported']:,} outcomes; its rows per kind {rec['genuine']['rows']}), "
        f"{rec['bytes'] / 2**20:,.0f} MiB on disk, "
        f"written in {rec['write_s']:.0f} s; recorded threshold {rec['genuine']['recorded_threshold']:.4f}, "
        f"replayed at {cfg['threshold']}.",
        "",
        "| run | requests | segments | seconds | requests/s | RSS before MiB | peak RSS MiB | peak - before MiB | "
        "result frame MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["runs"]:
        lines.append(
            f"| {row['label']} | {row['requests']:,} | {row['folder_segments']} | {row['seconds']:.1f} | "
            f"{row['requests_per_s']:,.0f} | {row['rss_before_mib']:,.0f} | {row['peak_rss_mib']:,.0f} | "
            f"{row['peak_rss_mib'] - row['rss_before_mib']:,.0f} | {row['result_frame_mib']:,.0f} |"
        )
    lines += ["", "Verdicts:", ""]
    lines += [f"* {text}" for text in result["verdicts"]]
    return "\n".join(lines) + "\n"


def verdicts(runs: list[dict[str, Any]]) -> list[str]:
    """Plain statements from the runs: is the peak RSS growth bounded (N vs N/10)?"""
    by = {row["label"]: row for row in runs}
    out = []
    for mode in ("replay", "summary"):
        big, small = by.get(f"{mode} N"), by.get(f"{mode} N/10")
        if big is None or small is None:
            continue
        g_big = big["peak_rss_mib"] - big["rss_before_mib"]
        g_small = small["peak_rss_mib"] - small["rss_before_mib"]
        ratio = g_big / g_small if g_small > 0 else math.inf
        bounded = ratio < 2.0
        name = "td.replay (per-request frame kept)" if mode == "replay" else "td.replay(keep_requests=False)"
        out.append(
            f"{name}: peak RSS growth {g_small:,.0f} MiB at {small['requests']:,} requests, {g_big:,.0f} MiB at "
            f"{big['requests']:,} ({ratio:.1f}x for 10x the requests): "
            + ("bounded by a segment, not by N." if bounded else "**grows with N (not bounded)**.")
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=float, default=1e7, help="recorded prompt decisions (default 1e7)")
    parser.add_argument("--segment-rows", type=float, default=5e5, help="decisions per segment (default 5e5)")
    parser.add_argument("--quick", action="store_true", help="1,000,000 requests")
    parser.add_argument("--seed-prompts", type=int, default=5000, help="real prompts routed for segment 0")
    parser.add_argument("--threshold", type=float, default=REPLAY_THRESHOLD, help="replay threshold")
    parser.add_argument("--folder", type=Path, help="where to make the recording's folder (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the recording folder")
    default_out = Path(os.environ.get("BENCH_OUT") or SCRATCH_RESULTS)
    parser.add_argument("--out", type=Path, default=default_out, help="results folder (default: %(default)s)")
    parser.add_argument("--child", choices=("replay", "summary"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.folder, args.threshold), default=float))
        return
    total = 1_000_000 if args.quick else int(args.requests)
    segment_rows = int(args.segment_rows)
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.replay_scale", *sys.argv[1:]]),
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {"requests": total, "segment_rows": segment_rows, "threshold": args.threshold},
        "machine": machine_facts() | {"tinydancer": td.__version__},
    }
    if args.folder is not None:
        args.folder.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="replay_scale-", dir=args.folder or "/tmp"))  # only this is deleted
    folder = base / "recording"
    try:
        print(f"replay_scale: {total:,} decisions, {segment_rows:,} a segment, in {folder}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            genuine = genuine_segment(folder, args.seed_prompts, Path(tmp))
        print(f"  genuine segment 0: {genuine}", flush=True)
        t0 = time.perf_counter()
        written = write_tiled_segments(folder, total, segment_rows, genuine["recorded_threshold"])
        segments = len(json.loads((folder / "manifest.json").read_text())["segments"])
        result["recording"] = {
            "genuine": genuine,
            "decisions": written,
            "segments": segments,
            "bytes": folder_bytes(folder),
            "write_s": time.perf_counter() - t0,
        }
        rows = [e["rows"]["decisions"] for e in json.loads((folder / "manifest.json").read_text())["segments"]]
        prefix = int(np.searchsorted(np.cumsum(rows), written / 10)) + 1  # first segments holding >= N/10
        tenth = subset_folder(folder, prefix, base / "tenth")
        runs = []
        for label, where, count in (("N/10", tenth, prefix), ("N", folder, segments)):
            for mode in ("summary", "replay"):
                row = run_child(mode, where, args.threshold) | {"label": f"{mode} {label}", "folder_segments": count}
                print(
                    f"  {row['label']:>12}: {row['requests']:,} requests in {row['seconds']:.1f} s = "
                    f"{row['requests_per_s']:,.0f}/s, RSS {row['rss_before_mib']:.0f} -> peak "
                    f"{row['peak_rss_mib']:.0f} MiB",
                    flush=True,
                )
                runs.append(row)
        result["runs"] = runs
        result["verdicts"] = verdicts(runs)
        result["machine"]["loadavg_end"] = list(os.getloadavg())
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"replay_scale_{total}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    text = markdown(result)
    (args.out / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
