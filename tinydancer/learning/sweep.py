"""Many FastGRNN routers trained at once: one vmapped JAX computation over seeds and settings.

:func:`train_fastgrnn_many` trains M members side by side, each as :func:`~tinydancer.learning.train_fastgrnn`
would train it alone (same initialisation, shuffling, Adam, gradient clipping, schedule, early stopping and
refit), but every batch step is a single jitted call vmapped over the members: the parameters and Adam
states are stacked on a leading [M] axis and each member reads its own shuffled rows. Members may differ in
``seed``, ``learning_rate``, ``clip_norm``, ``weight_decay``, ``ngram_l2`` and ``ngram_lr_scale`` (traced numbers);
everything that shapes the computation (epochs, batch size, schedule, patience, refit, distillation) must be equal.

Each member stops on its own: once its patience runs out it leaves the stacked state, which is kept at a
power-of-two number of rows (frozen padding rows fill the rest, so at most log2(M) + 1 shapes compile), and
the loop ends when no member is training. With ``refit`` each member then trains again on the training and
validation rows for its own chosen epoch count, with its own schedule length. Results match the
one-at-a-time trainer to float32 rounding (tests compare them); a near-tie in validation loss can then be
decided differently, and with it the chosen epoch. On a 2-core CPU a step of the default recipe is
compute-bound, so the gain is modest (EVALUATION.md: 1.2-1.5x once compiled).

Examples:
    >>> from tinydancer.datasets.outcomes import make_synthetic_routing
    >>> from tinydancer.learning.train import RoutingData, TrainConfig
    >>> from tinydancer.model.fastgrnn import FastGRNNConfig
    >>> s = make_synthetic_routing(64, 4, seed=0)
    >>> d = RoutingData(s.x, s.mask, 1 - s.weak_correct)
    >>> base = TrainConfig(epochs=2, batch_size=32, progress=False)
    >>> runs = train_fastgrnn_many(FastGRNNConfig(4, 8), d, d, [base, dataclasses.replace(base, seed=1)])
    >>> [len(r.history) for r in runs], runs[1].params.w1.shape
    ([2, 2], (4, 8))
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from tqdm.auto import tqdm

from tinydancer.errors import ConfigError, TrainingError
from tinydancer.learning.train import (
    RoutingData,
    TrainConfig,
    TrainedParams,
    TrainResult,
    _after_refit,
    _concat,
    _current_lr,
    _val_metrics,
    bag_logits,
    checked_splits,
    routing_loss,
    train_fastgrnn,
)
from tinydancer.model.fastgrnn import FastGRNNConfig, fastgrnn_logits, init_fastgrnn_params

#: TrainConfig fields that may differ between members (traced numbers, or the seed of init and shuffling).
PER_MEMBER_FIELDS: tuple[str, ...] = (
    "seed",
    "learning_rate",
    "clip_norm",
    "weight_decay",
    "ngram_l2",
    "ngram_lr_scale",
)
_ADAM = optax.scale_by_adam()


@partial(jax.jit, static_argnames=("config", "distill_weight", "temp"))
def _update_many(
    params: TrainedParams,
    adam_state: optax.OptState,
    rows: tuple[jax.Array, ...],
    idx: jax.Array,
    weight: jax.Array,
    hyper: jax.Array,
    active: jax.Array,
    *,
    config: FastGRNNConfig,
    distill_weight: float,
    temp: float,
) -> tuple[TrainedParams, optax.OptState, jax.Array]:
    """Every member's step, vmapped over the leading [M] axis of ``params``, ``adam_state``, ``idx`` [M, B],
    ``hyper`` [M, 5] (this step's learning rate, clip norm, weight decay, n-gram L2, n-gram step scale) and
    ``active`` [M]: each member's batch of the device-resident ``rows``, clip, Adam, decoupled decay, ``-lr``
    scaling (times the scale on the bag); a member where ``active`` is False keeps its weights and optimiser state.
    """

    def member(
        p0: TrainedParams, state: optax.OptState, batch: jax.Array, h: jax.Array, on: jax.Array
    ) -> tuple[TrainedParams, optax.OptState, jax.Array]:
        x, mask, y, teacher, ngram_ids, ngram_weights = (a[batch] for a in rows)
        lr, clip_norm, weight_decay, ngram_l2, ngram_lr_scale = h[0], h[1], h[2], h[3], h[4]

        def loss_fn(p: TrainedParams) -> jax.Array:
            logits = fastgrnn_logits(p[0], config, x, mask) + bag_logits(p[1], ngram_ids, ngram_weights)
            return routing_loss(logits, y, teacher, weight, distill_weight, temp) + ngram_l2 * jnp.sum(p[1] ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(p0)
        norm = optax.tree.norm(grads)
        grads = jax.tree.map(lambda g: jnp.where(norm < clip_norm, g, g * clip_norm / norm), grads)
        with jax.numpy_dtype_promotion("standard"):  # optax's bias correction: float ** int32 count
            updates, new_state = _ADAM.update(grads, state, p0)
        steps = (lr, lr * ngram_lr_scale)  # the FastGRNN's step size, the bag's
        new_params = tuple(
            jax.tree.map(lambda p, u, step=step: p - step * (u + weight_decay * p), part, update)
            for part, update, step in zip(p0, updates, steps, strict=True)
        )
        keep = partial(jax.tree.map, lambda new, old: jnp.where(on, new, old))
        return keep(new_params, p0), keep(new_state, state), loss

    out: tuple[TrainedParams, optax.OptState, jax.Array] = jax.vmap(member)(params, adam_state, idx, hyper, active)
    return out


@partial(jax.jit, static_argnames=("config",))
def _validate_many(
    params: TrainedParams, x: jax.Array, mask: jax.Array, y: jax.Array, ngrams: tuple[jax.Array, jax.Array], *,
    config: FastGRNNConfig,
) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    per_member = partial(_val_metrics.__wrapped__, config=config)  # type: ignore[attr-defined]
    out: tuple[jax.Array, jax.Array] = jax.vmap(per_member, in_axes=(0, None, None, None, None))(
        params, x, mask, y, ngrams
    )
    return out


def _take(rows: np.ndarray, leaf: jax.Array) -> jax.Array:
    return leaf[rows]


def _bucket(live: int) -> int:
    """Rows of the stacked state for ``live`` training members: the next power of two (one compile per size)."""
    return 1 << (live - 1).bit_length()


def _check_members(configs: Sequence[TrainConfig]) -> TrainConfig:
    if not configs:
        raise ConfigError("configs: expected at least one TrainConfig, got none")
    base = configs[0]
    if base.sparsity < 1.0:
        raise ConfigError("sparsity: train_fastgrnn_many trains dense members only (sparsity 1.0); use train_fastgrnn")
    if base.stop_at_accuracy is not None:
        raise ConfigError("stop_at_accuracy: not supported by train_fastgrnn_many; use train_fastgrnn")
    shared = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in (*PER_MEMBER_FIELDS, "progress")]
    for k, cfg in enumerate(configs[1:], start=1):
        for name in shared:
            if getattr(cfg, name) != getattr(base, name):
                raise ConfigError(
                    f"configs[{k}].{name}: expected {getattr(base, name)!r} as configs[0] (only "
                    f"{', '.join(PER_MEMBER_FIELDS)} may differ between members), got {getattr(cfg, name)!r}"
                )
    return base


def train_fastgrnn_many(
    model_config: FastGRNNConfig,
    train: RoutingData,
    val: RoutingData,
    configs: Sequence[TrainConfig],
    *,
    ngram_buckets: int = 0,
) -> list[TrainResult]:
    """Train one member per config in one vmapped computation (module docstring).

    Args:
        model_config: The architecture shared by all members.
        train: Training split (as :func:`~tinydancer.learning.train_fastgrnn`).
        val: Validation split for each member's early stopping.
        configs: M configs; only :data:`PER_MEMBER_FIELDS` may differ. Dense only (``sparsity`` 1) and
            without ``stop_at_accuracy``.
        ngram_buckets: K of the n-gram bag each member trains; 0 for none.

    Returns:
        M :class:`~tinydancer.learning.train.TrainResult`, in the order of ``configs``.

    Raises:
        ConfigError: No configs, configs differing in a shared field (the message names it), sparsity or
            ``stop_at_accuracy``.
        DataError: As :func:`~tinydancer.learning.train_fastgrnn`.
        TrainingError: A member's loss or weights became non-finite (the message names its index and seed).
    """
    base = _check_members(configs)
    tr, va = checked_splits(model_config, train, val, base, ngram_buckets)
    chosen = _fit_many(model_config, tr, va, configs, [base.epochs] * len(configs), ngram_buckets, keep_last=False)
    if not base.refit:
        return chosen
    epochs = [r.best_epoch for r in chosen]
    refitted = _fit_many(model_config, _concat(tr, va), va, configs, epochs, ngram_buckets, keep_last=True)
    return [_after_refit(first, again) for first, again in zip(chosen, refitted, strict=True)]


def train_members(
    model_config: FastGRNNConfig,
    train: RoutingData,
    val: RoutingData,
    configs: Sequence[TrainConfig],
    *,
    ngram_buckets: int = 0,
) -> list[TrainResult]:
    """One result per config: :func:`train_fastgrnn_many` when it can (several dense configs differing only in
    :data:`PER_MEMBER_FIELDS`), else :func:`~tinydancer.learning.train_fastgrnn` one at a time.

    Examples:
        >>> from tinydancer.datasets.outcomes import make_synthetic_routing
        >>> s = make_synthetic_routing(64, 4, seed=0)
        >>> d = RoutingData(s.x, s.mask, 1 - s.weak_correct)
        >>> sparse = TrainConfig(epochs=3, batch_size=32, sparsity=0.5, progress=False)
        >>> len(train_members(FastGRNNConfig(4, 8), d, d, [sparse, dataclasses.replace(sparse, seed=1)]))
        2
    """
    try:
        if len(configs) > 1:
            _check_members(configs)
            return train_fastgrnn_many(model_config, train, val, configs, ngram_buckets=ngram_buckets)
    except ConfigError:
        pass  # not vmappable together: one at a time
    return [train_fastgrnn(model_config, train, val, c, ngram_buckets=ngram_buckets) for c in configs]


def _fit_many(
    model_config: FastGRNNConfig,
    tr: RoutingData,
    va: RoutingData,
    configs: Sequence[TrainConfig],
    epochs: Sequence[int],
    ngram_buckets: int,
    *,
    keep_last: bool,
) -> list[TrainResult]:
    """The members' loop on validated splits; member m trains at most ``epochs[m]`` epochs, then stops."""
    base, m = configs[0], len(configs)
    n, bs = tr.x.shape[0], min(base.batch_size, tr.x.shape[0])
    steps = -(-n // bs)
    member_cfgs = [dataclasses.replace(c, epochs=e) for c, e in zip(configs, epochs, strict=True)]
    members = [
        (init_fastgrnn_params(model_config, c.seed), jnp.zeros(max(ngram_buckets, 1), jnp.float32)) for c in configs
    ]
    params: Any = jax.tree.map(lambda *leaves: jnp.stack(leaves), *members)
    adam_state = jax.vmap(_ADAM.init)(params)
    teacher = tr.teacher if tr.teacher is not None else np.full(n, 0.5, np.float32)
    assert tr.ngram_ids is not None and tr.ngram_weights is not None  # checked_splits fills them
    assert va.ngram_ids is not None and va.ngram_weights is not None
    rows = tuple(jnp.asarray(a) for a in (tr.x, tr.mask, tr.y, teacher, tr.ngram_ids, tr.ngram_weights))  # once
    rngs = [np.random.default_rng(c.seed) for c in configs]
    fixed = np.array([[c.clip_norm, c.weight_decay, c.ngram_l2, c.ngram_lr_scale] for c in configs], np.float32)
    weight = np.concatenate([np.ones(n, np.float32), np.zeros(steps * bs - n, np.float32)])
    histories: list[list[dict[str, Any]]] = [[] for _ in range(m)]
    best: list[tuple[float, int, Any] | None] = [None] * m
    training = np.ones(m, bool)
    slots = list(range(m))  # the member in each row of the stacked state; -1: a frozen padding row
    for epoch in tqdm(range(max(epochs)), desc=f"train x{m}", disable=not base.progress, leave=False):
        training &= epoch < np.asarray(epochs)
        live = [int(k) for k in np.flatnonzero(training)]
        if not live:
            break
        if _bucket(len(live)) < len(slots):  # drop stopped members: they need no more steps
            kept = [slots.index(k) for k in live]
            keep = np.asarray(kept + [kept[0]] * (_bucket(len(live)) - len(live)))
            params, adam_state = jax.tree.map(partial(_take, keep), (params, adam_state))
            slots = live + [-1] * (len(keep) - len(live))
        active = np.array([k >= 0 and bool(training[k]) for k in slots])
        started = time.perf_counter()
        orders = np.zeros((len(slots), steps * bs), np.int64)
        for row, k in enumerate(slots):  # a member that stopped draws no more permutations, as when alone
            if active[row]:
                orders[row, :n] = rngs[k].permutation(n)
        settings = fixed[[max(k, 0) for k in slots]]  # [rows, 4]
        losses = []
        for b in range(steps):
            lr = [_current_lr(member_cfgs[k], steps, epoch * steps + b) if k >= 0 else 0.0 for k in slots]
            # A new array each step: JAX may read a host buffer after the call returns (asynchronous dispatch),
            # so an argument must never be written to again.
            hyper = np.concatenate([np.asarray(lr, np.float32)[:, None], settings], axis=1)
            params, adam_state, loss = _update_many(
                params, adam_state, rows, orders[:, b * bs : (b + 1) * bs], weight[b * bs : (b + 1) * bs], hyper,
                active, config=model_config, distill_weight=float(base.distill_weight), temp=float(base.kd_temperature),
            )  # fmt: skip
            losses.append(loss)
        train_loss = np.mean(np.stack(jax.device_get(losses)), axis=0)  # [rows]
        val_loss, val_acc = (
            np.asarray(v)
            for v in _validate_many(params, va.x, va.mask, va.y, (va.ngram_ids, va.ngram_weights), config=model_config)
        )
        host = jax.device_get(params)
        seconds = time.perf_counter() - started
        for row, k in enumerate(slots):
            if not active[row]:
                continue
            member = jax.tree.map(lambda leaf, row=row: leaf[row], host)
            if not (np.isfinite(train_loss[row]) and all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(member))):
                raise TrainingError(
                    f"member {k} (seed {configs[k].seed}): training diverged at epoch {epoch + 1}/{epochs[k]}: "
                    f"train loss {train_loss[row]}; lower its learning_rate or clip_norm"
                )
            histories[k].append(
                {
                    "phase": "select",
                    "epoch": epoch + 1,
                    "stage": 3,
                    "lr": _current_lr(member_cfgs[k], steps, (epoch + 1) * steps),
                    "train_loss": float(train_loss[row]),
                    "val_loss": float(val_loss[row]),
                    "val_accuracy": float(val_acc[row]),
                    "density": float(np.mean([np.mean(getattr(member[0], f) != 0) for f in ("w1", "u1")])),
                    "seconds": seconds,
                }
            )
            held = best[k]
            if keep_last or held is None or val_loss[row] < held[0]:
                best[k] = (float(val_loss[row]), epoch + 1, member)
            elif epoch + 1 - held[1] >= configs[k].patience:
                training[k] = False
    results = []
    for k, held in enumerate(best):
        assert held is not None  # every member trains at least one epoch
        net, bag = jax.tree.map(jnp.asarray, held[2])
        ngram_weights = np.asarray(bag, np.float32) if ngram_buckets else None
        results.append(TrainResult(net, model_config, pd.DataFrame(histories[k]), held[1], ngram_weights))
    return results
