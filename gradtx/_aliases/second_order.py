"""Quasi-Newton optimizers for full-batch problems: L-BFGS with a line search."""

from __future__ import annotations

import functools

import jax

from gradtx._core.base import GradientTransformation, call_update, chain, identity
from gradtx._core.trees import tree_map_none
from gradtx.transforms._lbfgs import scale_by_lbfgs
from gradtx.transforms._linesearch import scale_by_zoom_linesearch
from gradtx.transforms._scaling import scale, scale_by_learning_rate

_ZOOM = scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one")


def maximizing_objective(tx: GradientTransformation, maximize: bool) -> GradientTransformation:
    """``tx`` fed -updates and the objective -value_fn (with -value, -grad) when ``maximize``.

    A line search minimizes ``value_fn``, so maximizing f means searching on -f; the state
    keeps f's own value and gradient (the sign flipped back), so
    ``value_and_grad_from_state(f)`` still returns f and grad f.
    """
    if not isinstance(maximize, bool):
        raise TypeError(f"maximize={maximize!r} must be a Python bool (True or False).")
    if not maximize:
        return tx

    def negate(tree):
        return tree_map_none(jax.numpy.negative, tree)

    def flip_state(state):
        def flip(node):
            fields = getattr(node, "_fields", ())
            if "value" in fields and "grad" in fields:
                return node._replace(value=-node.value, grad=negate(node.grad))
            return node

        return jax.tree.map(flip, state, is_leaf=lambda n: hasattr(n, "_fields"))

    def update(updates, state, params=None, **extra_args):
        extra = dict(extra_args)
        if "value" in extra:
            extra["value"] = -extra["value"]
        if "grad" in extra:
            extra["grad"] = negate(extra["grad"])
        if "value_fn" in extra:
            fn = extra["value_fn"]
            extra["value_fn"] = functools.wraps(fn)(lambda *a, **k: -fn(*a, **k))
        updates, state = call_update(tx, negate(updates), flip_state(state), params, extra)
        return updates, flip_state(state)

    return GradientTransformation(tx.init, update)


def lbfgs(
    learning_rate=None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch=_ZOOM,
    *,
    skip_nonpositive_curvature: bool = True,
    maximize: bool = False,
) -> GradientTransformation:
    """L-BFGS: chain(scale_by_lbfgs, scale(-1) or scale_by_learning_rate, linesearch).

    The direction -H grad from ``scale_by_lbfgs`` is scaled by -1 (learning_rate=None) or by
    the learning rate, then by the line search's step (by default
    scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one"), strong
    Wolfe; ``linesearch=None`` for none). With a line search, update takes value, grad and
    value_fn; ``value_and_grad_from_state(value_fn)`` reuses the search's last evaluation.
    Defaults are optax's (memory 10, as SciPy's L-BFGS-B; torch.optim.LBFGS keeps 100).
    skip_nonpositive_curvature: see scale_by_lbfgs (optax: False).
    """
    return maximizing_objective(
        chain(
            scale_by_lbfgs(
                memory_size,
                scale_init_precond,
                skip_nonpositive_curvature=skip_nonpositive_curvature,
            ),
            scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate),
            identity() if linesearch is None else linesearch,
        ),
        maximize,
    )
