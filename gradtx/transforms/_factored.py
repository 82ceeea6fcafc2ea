"""Factored second moments (Adafactor): a row and a column average instead of a full matrix.

For a leaf of rank >= 2 whose two factored axes are large enough, the second moment is held as
its mean over the column axis (``v_row``) and over the row axis (``v_col``), and rebuilt as
their outer product over the overall mean: memory n + m instead of n * m. Other leaves keep a
full moving average (``v``), as RMSProp does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.trees import acc_dtype, as_dtype, safe_increment, squares_dtype

_NONE = lambda x: x is None  # noqa: E731


def factored_axes(shape, factored: bool, min_dim_size_to_factor: int, factor_largest: bool):
    """The (row, column) axes a leaf of ``shape`` is factored over, or None for a full moment.

    factor_largest=False: the last two axes (the paper's matrices, Tensor2Tensor and torch).
    factor_largest=True: the two largest axes, the smaller of them the row axis (optax).
    Either way, only when both axes have at least ``min_dim_size_to_factor`` elements.
    """
    if not factored or len(shape) < 2:
        return None
    if factor_largest:
        order = np.argsort(shape)
        row, col = int(order[-2]), int(order[-1])
    else:
        row, col = len(shape) - 2, len(shape) - 1
    if min(shape[row], shape[col]) < min_dim_size_to_factor:
        return None
    return row, col


class FactoredState(NamedTuple):
    count: jax.Array  # int32 scalar: the 0-based step of the next update
    v_row: object  # per leaf: factored leaves' mean over the column axis (keepdims), else None
    v_col: object  # per leaf: factored leaves' mean over the row axis (keepdims), else None
    v: object  # per leaf: unfactored leaves' full moving average (like the leaf), else None


def scale_by_factored_rms(
    factored: bool = True,
    decay_rate=0.8,
    step_offset=0,
    min_dim_size_to_factor: int = 0,
    epsilon=1e-30,
    decay_rate_fn: Callable | None = None,
    *,
    factor_largest: bool = False,
    eps_clamp: bool = False,
) -> GradientTransformation:
    """Adafactor's scaling by a factored estimate of the root mean square of the gradient.

    t = count - step_offset + 1;  beta = 1 - t ** -decay_rate     (decay_rate_fn(t - 1, ...))
    g2 = updates ** 2 + epsilon                                  (eps_clamp=False: the paper)
    factored leaves (row axis r, column axis c):
        v_row = beta * v_row + (1 - beta) * mean(g2, over c)
        v_col = beta * v_col + (1 - beta) * mean(g2, over r)
        v_hat = v_row / mean(v_row, over r) * v_col
    other leaves:
        v = beta * v + (1 - beta) * g2;  v_hat = v
    updates = updates / sqrt(v_hat)

    With eps_clamp=True (torch.optim.Adafactor's placement) epsilon is not added to g2;
    instead v_hat = v_row / max(mean(v_row, over r), epsilon) * v_col, and
    updates = updates / sqrt(max(v_hat, epsilon ** 2)).

    Args:
        factored: factor the second moment of leaves of rank >= 2 (False: never).
        decay_rate: the exponent c of the schedule beta = 1 - t ** -c (torch's -beta2_decay).
        step_offset: subtracted from the step, e.g. the first step of a fine-tuning run.
        min_dim_size_to_factor: factor only when both factored axes are at least this long
            (0: every matrix, as the paper and torch; optax uses 128).
        epsilon: the paper's epsilon1 (1e-30); None: each leaf dtype's machine epsilon
            (torch's default).
        decay_rate_fn: ``(step, decay_rate) -> beta`` replacing the schedule (step 0-based).
        factor_largest: factor the two largest axes instead of the last two (optax).
        eps_clamp: use torch's placement of epsilon (a clamp) instead of the paper's.

    References:
        Shazeer and Stern, Adafactor: Adaptive Learning Rates with Sublinear Memory Cost, ICML
        2018, Algorithms 4 (matrices) and 5 (vectors), and Section 7 (beta_t = 1 - t ** -0.8).
    """
    where = "gradtx.scale_by_factored_rms"
    _checks.check_number(where, "decay_rate", decay_rate, low=0.0)
    _checks.check_number(where, "step_offset", step_offset, low=0.0)
    if epsilon is not None:
        _checks.check_number(where, "epsilon", epsilon, low=0.0)
    if not isinstance(min_dim_size_to_factor, int | np.integer) or min_dim_size_to_factor < 0:
        raise TypeError(
            f"{where}: min_dim_size_to_factor={min_dim_size_to_factor!r} must be a Python int "
            ">= 0 (it decides the state's shapes; with inject_hyperparams, list it in "
            "static_args)."
        )
    if decay_rate_fn is not None and not callable(decay_rate_fn):
        raise TypeError(f"{where}: decay_rate_fn={decay_rate_fn!r} is not callable.")

    def axes(x):
        return factored_axes(x.shape, factored, min_dim_size_to_factor, factor_largest)

    def init_leaf(p):
        ax = axes(p)
        sq = squares_dtype(p.dtype)  # float32 for float16 params (squares underflow)
        if ax is None:
            return None, None, jnp.zeros_like(p, dtype=sq)
        row, col = ax
        # jax.eval_shape keeps each slot's sharding, as zeros_like does.
        v_row = jax.eval_shape(lambda x: jnp.mean(x, axis=col, keepdims=True), p)
        v_col = jax.eval_shape(lambda x: jnp.mean(x, axis=row, keepdims=True), p)
        return jnp.zeros_like(v_row, dtype=sq), jnp.zeros_like(v_col, dtype=sq), None

    def init(params):
        leaves, treedef = jax.tree.flatten(params, is_leaf=_NONE)
        slots = [(None, None, None) if p is None else init_leaf(p) for p in leaves]
        v_row, v_col, v = (treedef.unflatten([s[i] for s in slots]) for i in range(3))
        return FactoredState(jnp.zeros((), jnp.int32), v_row, v_col, v)

    def leaf(g, v_row, v_col, v, count):
        dt = acc_dtype(g.dtype)
        step = (count - step_offset).astype(dt)
        if decay_rate_fn is None:
            add = (step + 1) ** -as_dtype(decay_rate, dt)  # 1 - beta, without the rounding
            keep = 1 - add
        else:
            keep = as_dtype(decay_rate_fn(count - step_offset, decay_rate), dt)
            add = 1 - keep
        eps = as_dtype(jnp.finfo(g.dtype).eps if epsilon is None else epsilon, dt)
        gd = g.astype(dt)
        g2 = jnp.square(gd) if eps_clamp else jnp.square(gd) + eps
        ax = axes(g)
        if ax is None:
            new_v = keep * v.astype(dt) + add * g2
            v_hat = jnp.maximum(new_v, eps * eps) if eps_clamp else new_v
            return (gd / jnp.sqrt(v_hat)).astype(g.dtype), None, None, new_v.astype(v.dtype)
        row, col = ax
        new_row = keep * v_row.astype(dt) + add * jnp.mean(g2, axis=col, keepdims=True)
        new_col = keep * v_col.astype(dt) + add * jnp.mean(g2, axis=row, keepdims=True)
        mean_row = jnp.mean(new_row, axis=row, keepdims=True)
        if eps_clamp:
            v_hat = jnp.maximum(new_row / jnp.maximum(mean_row, eps) * new_col, eps * eps)
        else:  # the row ratio first: new_row * new_col can underflow (1e-30 ** 2 in float32)
            v_hat = new_row / mean_row * new_col
        out = (gd / jnp.sqrt(v_hat)).astype(g.dtype)
        return out, new_row.astype(v_row.dtype), new_col.astype(v_col.dtype), None

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        leaves, treedef = jax.tree.flatten(updates, is_leaf=_NONE)
        try:
            slots = [treedef.flatten_up_to(s) for s in (state.v_row, state.v_col, state.v)]
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"{where}: the tree structure of updates differs from that of the state "
                f"(built by init from the parameters): {e}. Pass updates shaped like the "
                "parameters given to init."
            ) from None
        done = [
            (None,) * 4 if g is None else leaf(g, r, c, v, state.count)
            for g, r, c, v in zip(leaves, *slots)
        ]
        out, v_row, v_col, v = (treedef.unflatten([d[i] for d in done]) for i in range(4))
        count = safe_increment(state.count)
        return out, FactoredState(count, v_row, v_col, v)

    return GradientTransformation(init, update)
