"""GaLore: a base optimizer run on low-rank projections of the gradients (Zhao et al. 2024)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._aliases._common import maximizing
from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, call_update, chain
from gradtx._core.trees import acc_dtype, safe_increment, tree_map_none
from gradtx.transforms._adaptive import scale_by_adam
from gradtx.transforms._decay import add_decayed_weights
from gradtx.transforms._scaling import scale_by_learning_rate


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a leaf form the (reduction, output) matrix GaLore projects (optax's spec).

    Every axis must be in one of the two groups; the reduction axes are flattened into rows,
    the output axes into columns.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


def _is_spec(x) -> bool:
    return x is None or isinstance(x, GaLoreDimensionNumbers)


def _specs(spec, tree):
    """A GaLoreDimensionNumbers or None per leaf (optax's rules)."""
    if spec is None:
        return jax.tree.map(lambda p: GaLoreDimensionNumbers() if p.ndim == 2 else None, tree)
    if callable(spec):
        return spec(tree)
    if isinstance(spec, GaLoreDimensionNumbers):
        return jax.tree.map(lambda p: spec if p.ndim >= 2 else None, tree)
    return spec


def _matrix(x, spec, where):
    """``x`` as a (rows, cols) matrix, and the function that undoes it."""
    nd = x.ndim
    red = (spec.reduction_axis,) if isinstance(spec.reduction_axis, int) else spec.reduction_axis
    out = (spec.output_axis,) if isinstance(spec.output_axis, int) else spec.output_axis
    red, out = tuple(a % nd for a in red), tuple(a % nd for a in out)
    if nd < 2 or set(red) & set(out) or sorted(red + out) != list(range(nd)):
        raise ValueError(
            f"{where}: GaLoreDimensionNumbers {spec} do not split the axes of shape {x.shape} "
            "into disjoint reduction and output axes covering every axis."
        )
    order = red + out
    sizes = [x.shape[a] for a in order]
    shape2 = (math.prod(sizes[: len(red)]), math.prod(sizes[len(red) :]))
    inverse = tuple(np.argsort(order))
    return x.transpose(order).reshape(shape2), lambda y: y.reshape(sizes).transpose(inverse)


class GaLoreState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken
    base_optimizer_state: Any  # the base optimizer's state, on the low-rank gradients
    projector: Any  # per leaf: the (m, r) or (n, r) projector P; (0, 0) for other leaves


def scale_by_galore(
    rank=128,
    update_proj_gap=200,
    scale=0.25,
    base_optimizer=None,
    weight_dimension_numbers=None,
    *,
    svd_dtype=None,
) -> GradientTransformation:
    """Run ``base_optimizer`` on low-rank projections of the matrix gradients.

    For each matrix G (m x n) with r = min(rank, m, n), every update_proj_gap steps (from
    step 1) the projector is refreshed from the SVD G = U S V^T:
    m >= n: P = U[:, :r],   R = P^T G,   update = scale * P @ base(R)
    m < n:  P = V[:, :r],   R = G P,     update = scale * base(R) @ P^T
    Other leaves go to ``base_optimizer`` whole and unscaled. In one line:
    updates = scale * P @ base_optimizer(P^T @ updates)        (m >= n; transposed for m < n)

    Args:
        rank: the projection rank (a Python int).
        update_proj_gap: steps between projector refreshes (a Python int).
        scale: the factor on the projected-back updates (the paper's alpha = 0.25).
        base_optimizer: a transform that needs no params (default ``scale_by_adam()``).
        weight_dimension_numbers: None (the 2-D leaves), one GaLoreDimensionNumbers for
            every leaf of rank >= 2, a tree of them (None: not projected), or a function
            of the params returning one.
        svd_dtype: the dtype of the SVD; None for each leaf's arithmetic dtype (at least
            float32; optax always uses float32).

    References:
        Zhao et al., GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection,
        ICML 2024, Algorithm 2.
    """
    where = "gradtx.contrib.scale_by_galore"
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"{where}: rank={rank!r}; expected a positive Python int (a shape).")
    _checks.check_number(
        where, "update_proj_gap", update_proj_gap, low=1
    )  # may be an array: only count % update_proj_gap
    base = scale_by_adam() if base_optimizer is None else base_optimizer

    def shapes(p, spec):
        if spec is None:
            return jnp.zeros((0, 0), p.dtype), jnp.zeros_like(p)
        m, n = _matrix(p, spec, where)[0].shape
        r = min(rank, m, n)
        proj, proxy = ((m, r), (r, n)) if m >= n else ((n, r), (m, r))
        return jnp.zeros(proj, p.dtype), jnp.zeros(proxy, p.dtype)

    def split(pairs, tree):
        treedef = jax.tree.structure(tree)
        flat = treedef.flatten_up_to(pairs)
        return treedef.unflatten([a for a, _ in flat]), treedef.unflatten([b for _, b in flat])

    def init(params):
        specs = _specs(weight_dimension_numbers, params)
        pairs = tree_map_none(shapes, params, specs)
        projectors, proxies = split(pairs, params)
        return GaLoreState(jnp.zeros((), jnp.int32), base.init(proxies), projectors)

    def update(updates, state, params=None, **extra_args):
        del params
        refresh = (state.count % update_proj_gap) == 0
        specs = _specs(weight_dimension_numbers, updates)

        def project(g, proj, spec):
            if spec is None:
                return g, proj
            g2 = _matrix(g, spec, where)[0]
            m, n = g2.shape
            r = min(rank, m, n)
            dt = svd_dtype or acc_dtype(g.dtype)

            def fresh():
                u, _, vh = jnp.linalg.svd(g2.astype(dt), full_matrices=False)
                return (u[:, :r] if m >= n else vh[:r, :].T).astype(g.dtype)

            proj = jax.lax.cond(refresh, fresh, lambda: proj)
            return (proj.T @ g2 if m >= n else g2 @ proj), proj

        pairs = tree_map_none(project, updates, state.projector, specs)
        low, projectors = split(pairs, updates)
        low_updates, base_state = call_update(
            base, low, state.base_optimizer_state, None, extra_args
        )

        def back(u, proj, g, spec):
            if spec is None:
                return u
            g2, undo = _matrix(g, spec, where)
            full = proj @ u if g2.shape[0] >= g2.shape[1] else u @ proj.T
            dt = acc_dtype(g.dtype)
            return (jnp.asarray(scale, dt) * undo(full).astype(dt)).astype(g.dtype)

        out = tree_map_none(back, low_updates, projectors, updates, specs)
        return out, GaLoreState(safe_increment(state.count), base_state, projectors)

    return GradientTransformation(init, update)


def galore(
    learning_rate=0.01,
    rank=128,
    update_proj_gap=200,
    scale=0.25,
    base_optimizer=None,
    weight_decay=0.0,
    mask=None,
    weight_dimension_numbers=None,
    *,
    svd_dtype=None,
    maximize: bool = False,
) -> GradientTransformation:
    """GaLore: chain(scale_by_galore(rank, update_proj_gap, scale, base_optimizer,
    weight_dimension_numbers), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate)). Defaults are the paper's (lr 0.01, alpha 0.25);
    ``gradtx.compat.optax.contrib.galore`` has optax's (scale 1).

    References:
        Zhao et al., GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection,
        ICML 2024.
    """
    return maximizing(
        chain(
            scale_by_galore(
                rank,
                update_proj_gap,
                scale,
                base_optimizer,
                weight_dimension_numbers,
                svd_dtype=svd_dtype,
            ),
            add_decayed_weights(weight_decay, mask),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )
