"""Training FastGRNN routers with optax: BCE or distillation, Adam, clipping, schedules, early stopping.

The loss on a batch is ``(1 - a) * BCE(logit, y) + a * T^2 * BCE(logit / T, sigmoid(logit(p_teacher) / T))``
(Hinton et al. 2015 with a binary softmax; ``a`` = ``distill_weight``, ``T`` = ``kd_temperature``): the
teacher's probabilities are turned into logits once and softened once, never squashed twice (the
original router's distillation bug). With ``sparsity < 1`` training follows Kusupati et al.'s three
stages: dense, then IHT (projection every ``iht_every`` batches), then the support is frozen and the
model retrained; early stopping then only considers the sparse final stage.

With hashed n-grams (``RoutingData.ngram_ids``, ``ngram_buckets > 0``) the logit is the FastGRNN's plus a
learned weight per n-gram bucket (``sum(ngram_weights * bag[ngram_ids])``), trained jointly from zero with
an L2 penalty ``ngram_l2 * sum(bag ** 2)`` on the bag.

The jitted update is pure; the loop around it (shuffling, progress bar, history) is the shell.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from tqdm.auto import tqdm

from tinydancer.errors import ConfigError, DataError, TrainingError
from tinydancer.model.compression import apply_support, iht_project, support_mask
from tinydancer.model.fastgrnn import FastGRNNConfig, FastGRNNParams, fastgrnn_logits, init_fastgrnn_params
from tinydancer.validation import check_bool, check_choice, check_int, check_number, check_optional

SCHEDULES: tuple[str, ...] = ("constant", "cosine", "step")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (hashable; validated).

    Args:
        epochs: Maximum number of passes over the training data.
        batch_size: Rows per update (the last batch is padded with zero-weight rows: one compile).
        learning_rate: Adam's peak step size.
        schedule: ``"constant"``, ``"cosine"`` (decay to 1% over all steps) or ``"step"`` (x0.5 every
            ``step_epochs`` epochs, as the original router).
        step_epochs: Epochs between halvings for ``"step"``.
        clip_norm: Global gradient-norm clip.
        weight_decay: Decoupled weight decay (AdamW); 0 for plain Adam.
        patience: Epochs without validation improvement before stopping (best weights restored).
        distill_weight: Share ``a`` of the distillation term, in [0, 1] (needs teacher probabilities).
        kd_temperature: Distillation temperature ``T`` > 0.
        sparsity: Share of each recurrent matrix kept, in (0, 1]; < 1 runs the three-stage schedule.
        iht_every: Batches between IHT projections in stage two.
        ngram_l2: L2 penalty on the n-gram bag's weights (used only with n-grams).
        ngram_lr_scale: The n-gram bag's step size as a multiple of the FastGRNN's (same schedule): Adam moves
            each sparse bucket only when its n-grams appear, so the bag can want larger steps than the network.
        seed: Seed of initialisation and shuffling (same seed, same data: same weights).
        progress: Show a tqdm progress bar.
        stop_at_accuracy: Stop after the first (final-stage) epoch whose validation accuracy reaches
            this value, keeping that epoch's weights; None trains on (early stopping still applies).
        refit: After early stopping has chosen the epoch count E on the validation rows, train again from
            the same initialisation on the training and validation rows together for E epochs and keep
            the last weights (the validation rows then inform the weights, not only the stopping point).

    Raises:
        ConfigError: A value of the wrong type or out of range (the message names the field).

    Examples:
        >>> TrainConfig(epochs=3, schedule="cosine").epochs
        3
    """

    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-2
    schedule: str = "cosine"
    step_epochs: int = 20
    clip_norm: float = 5.0
    weight_decay: float = 0.0
    patience: int = 5
    distill_weight: float = 0.0
    kd_temperature: float = 1.0
    sparsity: float = 1.0
    iht_every: int = 15
    ngram_l2: float = 1e-4
    ngram_lr_scale: float = 1.0
    seed: int = 0
    progress: bool = True
    stop_at_accuracy: float | None = None
    refit: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "step_epochs", "patience", "iht_every"):
            check_int(name, getattr(self, name), low=1)
        for name in ("learning_rate", "clip_norm", "kd_temperature"):
            check_number(name, getattr(self, name), low=0, low_open=True)
        check_number("weight_decay", self.weight_decay, low=0)
        check_number("ngram_l2", self.ngram_l2, low=0)
        check_number("ngram_lr_scale", self.ngram_lr_scale, low=0, low_open=True)
        check_number("distill_weight", self.distill_weight, low=0, high=1)
        check_number("sparsity", self.sparsity, low=0, high=1, low_open=True)
        if self.sparsity < 1.0 and self.epochs < 3:
            raise ConfigError(
                f"epochs: expected >= 3 for the three-stage sparse schedule (sparsity < 1), got {self.epochs!r}"
            )
        check_choice("schedule", self.schedule, SCHEDULES)
        check_int("seed", self.seed, low=0)
        check_bool("progress", self.progress)
        check_bool("refit", self.refit)
        check_optional(check_number, "stop_at_accuracy", self.stop_at_accuracy, low=0, high=1, low_open=True)


class RoutingData(NamedTuple):
    """One split of training data.

    Attributes:
        x: [N, T, I] (or [N, I]) float32 inputs.
        mask: [N, T] bool, True on real steps.
        y: [N] labels in [0, 1] (1 = route to the strong model, i.e. the weak model fails).
        teacher: Optional [N] teacher probabilities in [0, 1] for distillation.
        ngram_ids: Optional [N, G] int32 hashed n-gram buckets
            (:func:`~tinydancer.model.text_features.hashed_ngrams`).
        ngram_weights: [N, G] float32 weights of those n-grams (given with ``ngram_ids``).
    """

    x: np.ndarray
    mask: np.ndarray
    y: np.ndarray
    teacher: np.ndarray | None = None
    ngram_ids: np.ndarray | None = None
    ngram_weights: np.ndarray | None = None


class TrainResult(NamedTuple):
    """Outcome of :func:`train_fastgrnn`.

    Attributes:
        params: The best weights (lowest validation loss; in the final stage when sparse).
        config: The architecture.
        history: One row per epoch: phase, epoch, stage, lr, train_loss, val_loss, val_accuracy, density,
            seconds. ``phase`` is ``"select"`` (early stopping on the validation rows) or, with
            ``TrainConfig.refit``, ``"refit"`` (training and validation rows; its validation loss is then
            measured on rows it trains on).
        best_epoch: The epoch chosen by early stopping (whose weights were restored, or which the refit ran to).
        ngram_weights: [K] float32 bag of n-gram weights trained with the FastGRNN, or None without n-grams.
    """

    params: FastGRNNParams
    config: FastGRNNConfig
    history: pd.DataFrame
    best_epoch: int
    ngram_weights: np.ndarray | None = None


def _as_data(data: RoutingData, name: str, ngram_buckets: int = 0) -> RoutingData:
    x = np.asarray(data.x, np.float32)
    if x.ndim == 2:
        x = x[:, None, :]
    mask = np.ones(x.shape[:2], bool) if data.mask is None else np.asarray(data.mask, bool)
    y = np.asarray(data.y, np.float32)
    if x.ndim != 3 or mask.shape != x.shape[:2] or y.shape != (x.shape[0],):
        raise DataError(f"{name}: expected x [N, T, I], mask [N, T], y [N]; got {x.shape}, {mask.shape}, {y.shape}")
    if x.shape[0] == 0:
        raise DataError(f"{name}: expected at least one row, got none")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise DataError(f"{name}: inputs or labels contain NaN or infinity")
    if np.any((y < 0) | (y > 1)):
        raise DataError(f"{name}: labels must lie in [0, 1]")
    teacher = None
    if data.teacher is not None:
        teacher = np.asarray(data.teacher, np.float32)
        if teacher.shape != y.shape or not np.all((teacher >= 0) & (teacher <= 1)):
            raise DataError(f"{name}: teacher must be [N] probabilities in [0, 1], got shape {teacher.shape}")
    if ngram_buckets == 0:  # one code path: a single always-zero bucket
        return RoutingData(x, mask, y, teacher, np.zeros((len(y), 1), np.int32), np.zeros((len(y), 1), np.float32))
    if data.ngram_ids is None or data.ngram_weights is None:
        raise DataError(f"{name}: ngram_buckets={ngram_buckets} needs ngram_ids and ngram_weights")
    ids, weights = np.asarray(data.ngram_ids), np.asarray(data.ngram_weights, np.float32)
    if ids.ndim != 2 or ids.shape != weights.shape or ids.shape[0] != len(y):
        raise DataError(f"{name}: expected ngram_ids and ngram_weights [N, G], got {ids.shape}, {weights.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= ngram_buckets):
        raise DataError(f"{name}: ngram_ids must lie in [0, {ngram_buckets}), got {ids.min()}..{ids.max()}")
    if not np.all(np.isfinite(weights)):
        raise DataError(f"{name}: ngram_weights contain NaN or infinity")
    return RoutingData(x, mask, y, teacher, ids.astype(np.int32), weights)


def bag_logits(bag: jax.Array, ngram_ids: jax.Array, ngram_weights: jax.Array) -> jax.Array:
    """The n-gram term of each logit: [K] bag, [B, G] ids and weights -> [B] ``sum(weights * bag[ids])``.

    Examples:
        >>> bag_logits(jnp.array([0.0, 1.0, 2.0]), jnp.array([[1, 2]]), jnp.array([[0.5, 0.5]])).tolist()
        [1.5]
    """
    return jnp.sum(bag[ngram_ids] * ngram_weights, axis=-1)


def _bce(logits: jax.Array, targets: jax.Array) -> jax.Array:
    out: jax.Array = optax.sigmoid_binary_cross_entropy(logits, targets)
    return out


def routing_loss(
    logits: jax.Array,
    y: jax.Array,
    teacher: jax.Array,
    weight: jax.Array,
    distill_weight: float | jax.Array,
    temp: float | jax.Array,
) -> jax.Array:
    """Weighted mean of the BCE / distillation mix (see module docstring).

    Args:
        logits: [B] student logits.
        y: [B] hard (or soft) labels.
        teacher: [B] teacher probabilities (ignored when ``distill_weight`` is 0).
        weight: [B] row weights (0 on padding rows).
        distill_weight: ``a`` in [0, 1].
        temp: Temperature ``T``.

    Returns:
        [] the loss.

    Examples:
        >>> z = jnp.array([0.0, 2.0])
        >>> round(float(routing_loss(z, jnp.array([1.0, 1.0]), z, jnp.ones(2), 0.0, 1.0)), 4)
        0.41
    """
    hard = _bce(logits, y)
    t = jnp.clip(teacher, 1e-6, 1 - 1e-6)
    soft_target = jax.nn.sigmoid((jnp.log(t) - jnp.log1p(-t)) / temp)
    soft = _bce(logits / temp, soft_target) * temp**2
    per_row = (1.0 - distill_weight) * hard + distill_weight * soft
    return jnp.sum(per_row * weight) / jnp.maximum(jnp.sum(weight), 1.0)


class _OptSpec(NamedTuple):
    # Only what shapes the optimiser: runs differing in seed or progress share one compilation.
    learning_rate: float
    schedule: str
    step_epochs: int
    clip_norm: float
    weight_decay: float
    epochs: int
    steps_per_epoch: int


def _optimizer(spec: _OptSpec) -> optax.GradientTransformation:
    total = spec.epochs * spec.steps_per_epoch
    lr: optax.ScalarOrSchedule = spec.learning_rate
    if spec.schedule == "cosine":
        lr = optax.cosine_decay_schedule(spec.learning_rate, total, alpha=0.01)
    elif spec.schedule == "step":
        lr = optax.exponential_decay(spec.learning_rate, spec.step_epochs * spec.steps_per_epoch, 0.5, staircase=True)
    adam = optax.adamw(lr, weight_decay=spec.weight_decay) if spec.weight_decay > 0 else optax.adam(lr)
    return optax.chain(optax.clip_by_global_norm(spec.clip_norm), adam)


#: What training updates: the FastGRNN and the n-gram bag ([K]; [1] and always zero without n-grams).
TrainedParams = tuple[FastGRNNParams, jax.Array]


@partial(jax.jit, static_argnames=("config", "spec"))
def _update(
    params: TrainedParams,
    opt_state: optax.OptState,
    batch: tuple[jax.Array, ...],
    support: FastGRNNParams,
    *,
    config: FastGRNNConfig,
    spec: _OptSpec,
    distill_weight: jax.Array,
    temp: jax.Array,
    ngram_l2: jax.Array,
    ngram_lr_scale: jax.Array,
) -> tuple[TrainedParams, optax.OptState, jax.Array]:
    x, mask, y, teacher, weight, ngram_ids, ngram_weights = batch

    def loss_fn(p: TrainedParams) -> jax.Array:
        logits = fastgrnn_logits(p[0], config, x, mask) + bag_logits(p[1], ngram_ids, ngram_weights)
        return routing_loss(logits, y, teacher, weight, distill_weight, temp) + ngram_l2 * jnp.sum(p[1] ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    # optax's Adam bias correction computes `float ** int32 count`, which strict dtype promotion
    # (tests, equinox habit) rejects; scope the standard rules to the optimiser only.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = _optimizer(spec).update(grads, opt_state, params)
    net, bag = optax.apply_updates(params, (updates[0], updates[1] * ngram_lr_scale))
    return (apply_support(net, support), bag), opt_state, loss


@partial(jax.jit, static_argnames=("spec",))
def _init_opt_state(params: TrainedParams, *, spec: _OptSpec) -> optax.OptState:
    return _optimizer(spec).init(params)  # one compile instead of one per leaf and op


@partial(jax.jit, static_argnames=("config",))
def _val_metrics(
    params: TrainedParams, x: jax.Array, mask: jax.Array, y: jax.Array, ngrams: tuple[jax.Array, jax.Array], *,
    config: FastGRNNConfig,
) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    logits = fastgrnn_logits(params[0], config, x, mask) + bag_logits(params[1], *ngrams)
    return jnp.mean(_bce(logits, y)), jnp.mean((logits >= 0) == (y >= 0.5))


def _validation(params: TrainedParams, data: RoutingData, config: FastGRNNConfig) -> tuple[float, float]:
    assert data.ngram_ids is not None and data.ngram_weights is not None  # _as_data fills them
    loss, accuracy = _val_metrics(
        params, data.x, data.mask, data.y, (data.ngram_ids, data.ngram_weights), config=config
    )
    return float(loss), float(accuracy)


def evaluate_loss(
    params: FastGRNNParams, config: FastGRNNConfig, data: RoutingData, ngram_weights: np.ndarray | None = None
) -> tuple[float, float]:
    """Validation BCE and accuracy (threshold 0.5) on hard labels.

    Args:
        params: The FastGRNN.
        config: Its architecture.
        data: The rows (with n-grams when ``ngram_weights`` is given).
        ngram_weights: [K] n-gram bag (:attr:`TrainResult.ngram_weights`), or None.

    Examples:
        >>> cfg = FastGRNNConfig(input_dim=2, hidden_dim=4)
        >>> d = RoutingData(np.ones((3, 2)), np.ones((3, 1), bool), np.array([1.0, 0.0, 1.0]))
        >>> round(evaluate_loss(init_fastgrnn_params(cfg), cfg, d)[0], 4)
        0.6931
    """
    bag = np.zeros(1, np.float32) if ngram_weights is None else np.asarray(ngram_weights, np.float32)
    d = _as_data(data, "data", 0 if ngram_weights is None else len(bag))
    return _validation((params, jnp.asarray(bag)), d, config)


def _stage_of(epoch: int, cfg: TrainConfig) -> int:
    if cfg.sparsity >= 1.0:
        return 3
    third = max(1, cfg.epochs // 3)
    return 1 if epoch < third else 2 if epoch < 2 * third else 3


def train_fastgrnn(
    model_config: FastGRNNConfig,
    train: RoutingData,
    val: RoutingData,
    config: TrainConfig | None = None,
    *,
    ngram_buckets: int = 0,
) -> TrainResult:
    """Train a FastGRNN router (and its n-gram bag); deterministic for a given seed.

    Args:
        model_config: The architecture (``input_dim`` must match the inputs' last axis).
        train: Training split (``teacher`` required when ``distill_weight > 0``).
        val: Validation split for early stopping.
        config: Optimisation settings (defaults: :class:`TrainConfig`).
        ngram_buckets: K of the n-gram bag trained beside the FastGRNN (both splits need ``ngram_ids``
            and ``ngram_weights``); 0 for none.

    Returns:
        A :class:`TrainResult` with the best weights restored (with ``refit``: the weights of the refit on
        ``train`` and ``val`` together for the chosen number of epochs).

    Raises:
        DataError: Malformed splits, a single-class training set, a missing teacher, or missing n-grams.
        TrainingError: The loss or weights became non-finite (the message names the epoch).

    Examples:
        >>> from tinydancer.datasets.outcomes import make_synthetic_routing
        >>> s = make_synthetic_routing(64, 4, seed=0)
        >>> d = RoutingData(s.x, s.mask, 1 - s.weak_correct)
        >>> r = train_fastgrnn(FastGRNNConfig(4, 8), d, d, TrainConfig(epochs=2, batch_size=32, progress=False))
        >>> list(r.history.columns)[:4], len(r.history)
        (['phase', 'epoch', 'stage', 'lr'], 2)
        >>> refit = TrainConfig(epochs=2, batch_size=32, progress=False, refit=True)
        >>> r = train_fastgrnn(FastGRNNConfig(4, 8), d, d, refit)
        >>> r.history["phase"].tolist()[-1], len(r.history) == 2 + r.best_epoch
        ('refit', True)
    """
    cfg = config or TrainConfig()
    tr, va = checked_splits(model_config, train, val, cfg, ngram_buckets)
    chosen = _fit(model_config, tr, va, cfg, ngram_buckets, keep_last=False)
    if not cfg.refit:
        return chosen
    both = _concat(tr, va)
    refit_cfg = replace(cfg, epochs=chosen.best_epoch, patience=chosen.best_epoch, refit=False, stop_at_accuracy=None)
    return _after_refit(chosen, _fit(model_config, both, va, refit_cfg, ngram_buckets, keep_last=True))


def _after_refit(chosen: TrainResult, refitted: TrainResult) -> TrainResult:
    """The refit's weights, with both phases' history and the epoch count early stopping chose."""
    history = pd.concat([chosen.history, refitted.history.assign(phase="refit")], ignore_index=True)
    return refitted._replace(history=history, best_epoch=chosen.best_epoch)


def checked_splits(
    model_config: FastGRNNConfig, train: RoutingData, val: RoutingData, cfg: TrainConfig, ngram_buckets: int
) -> tuple[RoutingData, RoutingData]:
    """Both splits validated and filled in (float32, masks, n-gram arrays), or a :class:`DataError`."""
    check_int("ngram_buckets", ngram_buckets, low=0)
    tr, va = _as_data(train, "train", ngram_buckets), _as_data(val, "val", ngram_buckets)
    if tr.x.shape[-1] != model_config.input_dim or va.x.shape[-1] != model_config.input_dim:
        raise DataError(f"inputs: expected last axis {model_config.input_dim}, got {tr.x.shape[-1]}")
    if len(np.unique(np.round(tr.y))) < 2:
        raise DataError("train: expected both classes among the labels, got a single class")
    if cfg.distill_weight > 0 and tr.teacher is None:
        raise DataError("train: distill_weight > 0 needs teacher probabilities (RoutingData.teacher)")
    if cfg.refit and cfg.distill_weight > 0 and va.teacher is None:
        raise DataError("val: refit with distill_weight > 0 needs teacher probabilities for the validation rows")
    return tr, va


def _concat(a: RoutingData, b: RoutingData) -> RoutingData:
    """Rows of ``a`` then ``b`` (validated splits), zero-padding the step and n-gram axes to the longer."""

    def stack(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        width = max(u.shape[1], v.shape[1])
        pad = [(0, 0)] * u.ndim
        parts = [np.pad(w, [(0, 0), (0, width - w.shape[1]), *pad[2:]]) for w in (u, v)]
        return np.concatenate(parts)

    assert a.ngram_ids is not None and a.ngram_weights is not None  # _as_data fills them
    assert b.ngram_ids is not None and b.ngram_weights is not None
    teacher = None if a.teacher is None or b.teacher is None else np.concatenate([a.teacher, b.teacher])
    return RoutingData(
        stack(a.x, b.x), stack(a.mask, b.mask), np.concatenate([a.y, b.y]), teacher,
        stack(a.ngram_ids, b.ngram_ids), stack(a.ngram_weights, b.ngram_weights),
    )  # fmt: skip


def _fit(
    model_config: FastGRNNConfig, tr: RoutingData, va: RoutingData, cfg: TrainConfig, ngram_buckets: int, *,
    keep_last: bool,
) -> TrainResult:  # fmt: skip
    """The training loop on validated splits; ``keep_last`` keeps the final epoch's weights (no early stopping)."""
    n, bs = tr.x.shape[0], min(cfg.batch_size, tr.x.shape[0])
    steps = -(-n // bs)
    spec = _OptSpec(
        cfg.learning_rate, cfg.schedule, cfg.step_epochs, cfg.clip_norm, cfg.weight_decay, cfg.epochs, steps
    )
    net = init_fastgrnn_params(model_config, cfg.seed)
    params: TrainedParams = (net, jnp.zeros(max(ngram_buckets, 1), jnp.float32))
    opt_state = _init_opt_state(params, spec=spec)
    support = support_mask(net, 1.0)
    teacher = tr.teacher if tr.teacher is not None else np.full(n, 0.5, np.float32)
    assert tr.ngram_ids is not None and tr.ngram_weights is not None  # _as_data fills them
    rng = np.random.default_rng(cfg.seed)
    rows: list[dict[str, str | float | int]] = []
    best: tuple[float, int, TrainedParams] | None = None
    bar = tqdm(range(cfg.epochs), desc="train", disable=not cfg.progress, leave=False)
    for epoch in bar:
        started = time.perf_counter()
        stage = _stage_of(epoch, cfg)
        if stage == 3 and cfg.sparsity < 1.0 and (epoch == 0 or _stage_of(epoch - 1, cfg) != 3):
            params = (iht_project(params[0], cfg.sparsity), params[1])
            support = support_mask(params[0], cfg.sparsity)
            best = None  # only the sparse final stage may be restored
        order = np.concatenate([rng.permutation(n), np.zeros(steps * bs - n, np.int64)])
        weight = np.concatenate([np.ones(n, np.float32), np.zeros(steps * bs - n, np.float32)])
        losses = []
        for b in range(steps):
            idx, w = order[b * bs : (b + 1) * bs], weight[b * bs : (b + 1) * bs]
            batch = (tr.x[idx], tr.mask[idx], tr.y[idx], teacher[idx], w, tr.ngram_ids[idx], tr.ngram_weights[idx])
            params, opt_state, loss = _update(
                params,
                opt_state,
                batch,
                support,
                config=model_config,
                spec=spec,
                distill_weight=np.float32(cfg.distill_weight),
                temp=np.float32(cfg.kd_temperature),
                ngram_l2=np.float32(cfg.ngram_l2),
                ngram_lr_scale=np.float32(cfg.ngram_lr_scale),
            )
            losses.append(loss)
            if stage == 2 and (b + 1) % cfg.iht_every == 0:
                params = (iht_project(params[0], cfg.sparsity), params[1])
        train_loss = float(np.mean(jax.device_get(losses)))
        host_params = jax.device_get(params)  # the diagnostics below run in numpy: no per-op compiles
        finite = all(bool(np.isfinite(leaf).all()) for leaf in jax.tree.leaves(host_params))
        if not (np.isfinite(train_loss) and finite):
            raise TrainingError(
                f"training diverged at epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss}; "
                "lower learning_rate or clip_norm (no weights were kept from this epoch)"
            )
        val_loss, val_acc = _validation(params, va, model_config)
        density = float(np.mean([np.mean(getattr(host_params[0], f) != 0) for f in ("w1", "u1")]))
        lr = _current_lr(cfg, steps, (epoch + 1) * steps)
        rows.append(
            {
                "phase": "select",
                "epoch": epoch + 1,
                "stage": stage,
                "lr": lr,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "density": density,
                "seconds": time.perf_counter() - started,
            }
        )
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
        if stage == 3 and cfg.stop_at_accuracy is not None and val_acc >= cfg.stop_at_accuracy:
            best = (val_loss, epoch + 1, params)
            break
        if keep_last or (stage == 3 and (best is None or val_loss < best[0])):
            best = (val_loss, epoch + 1, params)
        elif stage == 3 and best is not None and epoch + 1 - best[1] >= cfg.patience:
            break
    bar.close()
    assert best is not None  # the last stage always runs at least one epoch
    net, bag = best[2]
    ngram_weights = np.asarray(bag, np.float32) if ngram_buckets else None
    return TrainResult(net, model_config, pd.DataFrame(rows), best[1], ngram_weights)


def _current_lr(cfg: TrainConfig, steps_per_epoch: int, step: int) -> float:
    if cfg.schedule == "cosine":  # optax.cosine_decay_schedule(lr, total, alpha=0.01), in host floats
        total = cfg.epochs * steps_per_epoch
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        return cfg.learning_rate * (0.99 * cosine + 0.01)
    if cfg.schedule == "step":
        return cfg.learning_rate * 0.5 ** (step // (cfg.step_epochs * steps_per_epoch))
    return cfg.learning_rate
