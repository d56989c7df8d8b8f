"""FastGRNN dense / sparse (IHT) / int8 model size and latency, when tinydancer.model.fastgrnn works."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from benchmarks.batch_throughput import repeat

CONFIG = {"input_dim": 64, "hidden_dim": 32, "w_rank": 16, "u_rank": 16}
SPARSE_FRACTION = 0.25


def _median_us(fn: Any, reps: int) -> float:
    return float(np.median(repeat(fn, reps))) * 1e6


def measure_fastgrnn(reps: int) -> dict[str, Any]:
    """Size in bytes and predict() latency (batch 1 and 1000, one step) per variant, or why not."""
    try:
        from tinydancer.model import (
            FastGRNNConfig,
            fastgrnn_predict,
            iht_project,
            init_fastgrnn_params,
            model_size_bytes,
            quantize_params,
        )

        config = FastGRNNConfig(**CONFIG)  # type: ignore[arg-type]
        dense = init_fastgrnn_params(config, seed=0)
        sparse = iht_project(dense, SPARSE_FRACTION)
        variants = {
            "dense float32": (dense, model_size_bytes(dense)),
            f"sparse {SPARSE_FRACTION:.0%} (IHT), float32": (sparse, model_size_bytes(sparse, sparse=True)),
            "int8 (dense)": (quantize_params(dense), model_size_bytes(quantize_params(dense))),
        }
        rng = np.random.default_rng(0)
        x1 = rng.normal(size=(1, config.input_dim)).astype(np.float32)
        x1000 = rng.normal(size=(1000, config.input_dim)).astype(np.float32)
        rows = {}
        for name, (params, size) in variants.items():
            rows[name] = {
                "size_bytes": int(size),
                "batch1_us": _median_us(lambda p=params: jax.block_until_ready(fastgrnn_predict(p, config, x1)), reps),
                "batch1000_us": _median_us(
                    lambda p=params: jax.block_until_ready(fastgrnn_predict(p, config, x1000)), reps
                ),
            }
        return {"measured": True, "config": CONFIG, "sparse_fraction": SPARSE_FRACTION, "variants": rows}
    except Exception as exc:  # another helper's module: report, do not fail the whole run
        return {"measured": False, "why": f"{type(exc).__name__}: {exc}"}
