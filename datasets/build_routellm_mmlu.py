"""Rebuild ``datasets/routellm-mmlu.parquet`` from a copy of RouteLLM's cached MMLU outcomes.

The source is the folder ``routellm/evals/mmlu/`` of github.com/lm-sys/RouteLLM at commit
0b64fdafe049e596a3f5657c219329f24af24198: ``responses/mmlu_<subject>.csv`` (57 files) and
``contaminated_prompts.jsonl``. Run from the repository root::

    .venv/bin/python datasets/build_routellm_mmlu.py --source PATH/TO/routellm/evals/mmlu

Rows keep the source order (subject files sorted by name, rows in file order); the five prompts RouteLLM
drops before evaluating are kept and marked ``contaminated = True``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"


def build(source: Path) -> pd.DataFrame:
    """The tidy frame: prompt, subject, the two models' correctness (bool) and the contamination mark."""
    files = sorted((source / "responses").glob("mmlu_*.csv"))
    if len(files) != 57:
        raise SystemExit(f"{source}/responses: expected 57 mmlu_<subject>.csv files, found {len(files)}")
    parts = []
    for path in files:
        frame = pd.read_csv(path)
        parts.append(
            pd.DataFrame(
                {
                    "prompt": frame["prompt"].astype(str),
                    "subject": path.stem.removeprefix("mmlu_"),
                    WEAK: frame[WEAK].astype(bool),
                    STRONG: frame[STRONG].astype(bool),
                }
            )
        )
    table = pd.concat(parts, ignore_index=True)
    with (source / "contaminated_prompts.jsonl").open(encoding="utf-8") as handle:
        contaminated = {json.loads(line)["eval_prompt"] for line in handle if line.strip()}
    table["contaminated"] = table["prompt"].isin(contaminated)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="RouteLLM's routellm/evals/mmlu folder")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("routellm-mmlu.parquet"), help="Parquet file to write"
    )
    args = parser.parse_args()
    table = build(args.source)
    pq.write_table(
        pa.Table.from_pandas(table, preserve_index=False),
        args.out,
        compression="zstd",
        compression_level=19,
    )
    print(f"{args.out}: {len(table)} rows, {int(table['contaminated'].sum())} marked contaminated")


if __name__ == "__main__":
    main()
