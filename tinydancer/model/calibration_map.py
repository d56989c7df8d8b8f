"""A fitted recalibration map as data, and its jittable application (the serving side of calibration).

The learning wing fits a :class:`Calibrator` (:func:`tinydancer.learning.calibration.fit_calibrator`)
and applies it in float64 numpy; a served router applies the same map inside its jitted scoring
function with :func:`calibrate_jnp`. Both read ``p`` as P(the weak model fails).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

#: The recalibration maps a router can hold.
CALIBRATORS: tuple[str, ...] = ("none", "temperature", "platt", "isotonic")
#: Probabilities are clipped to [eps, 1 - eps] before taking their logit.
LOGIT_EPS = 1e-7


class Calibrator(NamedTuple):
    """A fitted recalibration map (JSON-friendly: floats and tuples only).

    Attributes:
        kind: One of :data:`CALIBRATORS`.
        a: Temperature-scaling slope ``1/T`` or Platt slope.
        b: Platt intercept (0 otherwise).
        xs: Isotonic knots (sorted probabilities); empty otherwise.
        ys: Isotonic values at the knots.

    Examples:
        >>> Calibrator("platt", a=2.0, b=-1.0).b
        -1.0
    """

    kind: str
    a: float = 1.0
    b: float = 0.0
    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()


def calibrate_jnp(kind: str, a: jax.Array, b: jax.Array, xs: jax.Array, ys: jax.Array, p: jax.Array) -> jax.Array:
    """Apply a calibrator inside a jitted function (``kind`` is static; the rest are arrays).

    Args:
        kind: One of :data:`CALIBRATORS`.
        a: [] slope; b: [] intercept (temperature and Platt).
        xs: [K] isotonic knots; ys: [K] isotonic values (any K >= 1 for the other kinds).
        p: [B] probabilities.

    Returns:
        [B] calibrated probabilities (float32 for float32 inputs).

    Examples:
        >>> import numpy as np
        >>> one = jnp.ones(1)
        >>> calibrate_jnp("platt", jnp.float32(1.0), jnp.float32(0.0), one, one, jnp.array([0.25])).round(6).tolist()
        [0.25]
    """
    if kind == "none":
        return p
    if kind == "isotonic":
        return jnp.interp(p, xs, ys)
    q = jnp.clip(p, LOGIT_EPS, 1 - LOGIT_EPS)
    return jax.nn.sigmoid(a * (jnp.log(q) - jnp.log1p(-q)) + b)
