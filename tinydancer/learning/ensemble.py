"""Deep ensembles of FastGRNN routers: K seeds stacked on a leading axis, one jitted vmapped forward.

A FastGRNN router is a few kilobytes, so K members cost K times almost nothing. The ensemble mean is
the prediction; the spread across members (standard deviation) and the mutual information
``H(mean) - mean(H(member))`` (Lakshminarayanan et al. 2017; Depeweg et al. 2018) are epistemic
uncertainty signals: high where the members disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tinydancer.errors import InvalidInputError
from tinydancer.learning.sweep import train_members
from tinydancer.learning.train import RoutingData, TrainConfig
from tinydancer.model.fastgrnn import FastGRNNConfig, FastGRNNParams, _check_inputs, _sequence_logit, member_statistics


class EnsemblePrediction(NamedTuple):
    """Per-query ensemble outputs.

    Attributes:
        mean: [B] mean probability over members.
        std: [B] standard deviation of the members' probabilities.
        mutual_information: [B] epistemic part of the predictive entropy, in nats (>= 0).
    """

    mean: jax.Array
    std: jax.Array
    mutual_information: jax.Array


def stack_params(members: Sequence[FastGRNNParams]) -> FastGRNNParams:
    """Stack K parameter sets of one architecture on a new leading axis.

    Raises:
        InvalidInputError: No members, or members of different shapes.

    Examples:
        >>> from tinydancer.model.fastgrnn import init_fastgrnn_params
        >>> cfg = FastGRNNConfig(input_dim=3, hidden_dim=4)
        >>> stack_params([init_fastgrnn_params(cfg, s) for s in range(3)]).w1.shape
        (3, 3, 4)
    """
    if not members:
        raise InvalidInputError("members: expected at least one parameter set, got none")
    shapes = {tuple(np.shape(leaf) for leaf in jax.tree.leaves(m)) for m in members}
    if len(shapes) != 1:
        raise InvalidInputError(f"members: expected one architecture, got {len(shapes)} different shapes")
    stacked: FastGRNNParams = jax.tree.map(lambda *leaves: jnp.stack(leaves), *members)
    return stacked


@partial(jax.jit, static_argnames=("config",))
def _ensemble(stacked: FastGRNNParams, config: FastGRNNConfig, x: jax.Array, mask: jax.Array) -> EnsemblePrediction:
    per_query = jax.vmap(_sequence_logit, in_axes=(None, None, 0, 0))
    logits = jax.vmap(per_query, in_axes=(0, None, None, None))(stacked, config, x, mask)  # [K, B]
    return EnsemblePrediction(*member_statistics(jax.nn.sigmoid(logits)))


def ensemble_predict(
    stacked: FastGRNNParams,
    config: FastGRNNConfig,
    x: jax.Array | np.ndarray,
    mask: jax.Array | np.ndarray | None = None,
) -> EnsemblePrediction:
    """Mean, spread and mutual information of K stacked members in one jitted call.

    Args:
        stacked: Parameters with a leading member axis (:func:`stack_params`).
        config: The shared architecture.
        x: [B, T, I] or [B, I] inputs.
        mask: Optional [B, T].

    Returns:
        An :class:`EnsemblePrediction`.

    Examples:
        >>> from tinydancer.model.fastgrnn import init_fastgrnn_params
        >>> cfg = FastGRNNConfig(input_dim=3, hidden_dim=4)
        >>> out = ensemble_predict(stack_params([init_fastgrnn_params(cfg, s) for s in range(2)]), cfg, np.ones((5, 3)))
        >>> out.mean.shape, float(out.std.max())
        ((5,), 0.0)
    """
    xs, m = _check_inputs(config, x, mask)
    out: EnsemblePrediction = _ensemble(stacked, config, xs, m)
    return out


def train_ensemble(
    model_config: FastGRNNConfig,
    train: RoutingData,
    val: RoutingData,
    config: TrainConfig,
    seeds: Sequence[int],
) -> FastGRNNParams:
    """Train one member per seed (different initialisation and shuffling) and stack them.

    Dense members train together in one vmapped computation (:func:`~tinydancer.learning.sweep.train_members`).

    Examples:
        >>> from tinydancer.datasets.outcomes import make_synthetic_routing
        >>> s = make_synthetic_routing(64, 3, seed=0)
        >>> d = RoutingData(s.x, s.mask, 1 - s.weak_correct)
        >>> train_ensemble(FastGRNNConfig(3, 4), d, d, TrainConfig(epochs=1, progress=False), [0, 1]).w1.shape
        (2, 3, 4)
    """
    configs = [dataclasses.replace(config, seed=seed) for seed in seeds]
    return stack_params([r.params for r in train_members(model_config, train, val, configs)])
