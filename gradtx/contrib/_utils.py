"""Small contrib utilities: normalising by the global norm, complex leaves as real pairs."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import EmptyState, GradientTransformation, call_update
from gradtx._core.trees import acc_dtype, global_norm, tree_map_none

NormalizeState = EmptyState


def normalize() -> GradientTransformation:
    """Divide the updates by their global L2 norm (SAM's ascent direction).

    norm = sqrt(sum over leaves of sum(updates ** 2))
    updates = updates / norm          (all-zero updates stay 0 rather than 0 / 0)

    References:
        Foret et al., Sharpness-Aware Minimization for Efficiently Improving Generalization,
        ICLR 2021, eq. 2 (eps_hat = rho * g / ||g||_2 for p = 2).
    """

    def init(params):
        del params
        return NormalizeState()

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        norm = global_norm(updates)
        safe = jnp.where(norm > 0, norm, jnp.ones_like(norm))

        def leaf(g):
            dt = acc_dtype(g.dtype)
            return (g.astype(dt) / safe.astype(dt)).astype(g.dtype)

        return tree_map_none(leaf, updates), state

    return GradientTransformation(init, update)


class SplitRealAndImaginaryArrays(NamedTuple):
    real: jax.Array  # the real part of a complex leaf
    imaginary: jax.Array  # its imaginary part


def _to_pair(x):
    return SplitRealAndImaginaryArrays(x.real, x.imag) if jnp.iscomplexobj(x) else x


def _from_pair(x):
    if isinstance(x, SplitRealAndImaginaryArrays):
        return jax.lax.complex(x.real, x.imaginary)
    return x


def _is_pair(x):
    return isinstance(x, SplitRealAndImaginaryArrays)


class SplitRealAndImaginaryState(NamedTuple):
    inner_state: object  # the state of ``inner``, on the tree with complex leaves split


def split_real_and_imaginary(inner) -> GradientTransformation:
    """Run ``inner`` on complex leaves as pairs of real arrays (real part, imaginary part).

    updates = complex(inner(real(updates)), inner(imag(updates)))  (one inner call on the tree
    where each complex leaf is the pair (real, imaginary); real leaves pass as they are)

    So an optimizer whose moments square the gradient (Adam's updates ** 2) treats the real
    and imaginary parts as two real parameters, rather than squaring a complex number.

    Args:
        inner: the transform to run on the split tree.
    """

    def init(params):
        return SplitRealAndImaginaryState(inner.init(tree_map_none(_to_pair, params)))

    def update(updates, state, params=None, **extra_args):
        split = tree_map_none(_to_pair, updates)
        split_params = None if params is None else tree_map_none(_to_pair, params)
        out, inner_state = call_update(inner, split, state.inner_state, split_params, extra_args)
        out = jax.tree.map(_from_pair, out, is_leaf=lambda x: _is_pair(x) or x is None)
        return out, SplitRealAndImaginaryState(inner_state)

    return GradientTransformation(init, update)
