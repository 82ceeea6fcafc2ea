"""Registry entries for L-BFGS and the line searches (gradtx.second_order is tested in
tests/test_second_order.py).

The line searches read the objective through update's extra arguments. The registry's runs
feed fixed ones: value_fn(p) = 0.5 * sum(p ** 2) over the example tree, with value and grad
of it at the example params, while the contract tests' updates are their random directions.
That is not a consistent optimisation run (the direction is often uphill, so searches fail
and fall back), but every search is deterministic and finite, which is what the contract
tests check; convergence and the Wolfe and Armijo conditions are checked in
tests/test_second_order.py against SciPy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from tests.registry._entry import E, OptaxCase, example_params


def _half_sum_squares(params):
    return 0.5 * sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(params))


_P = example_params()
OBJECTIVE = {"value": _half_sum_squares(_P), "grad": _P, "value_fn": _half_sum_squares}

ENTRIES = [
    E(gradtx.scale_by_lbfgs, {"memory_size": 3}, needs_params=True),
    E(gradtx.lbfgs, {}, needs_params=True, extra_args=OBJECTIVE, any_tree=False),
    E(
        gradtx.scale_by_zoom_linesearch,
        {"max_linesearch_steps": 8},
        sweep="curv_rtol",
        sweep_values=(0.1, 0.5, 0.9),
        needs_params=True,
        extra_args=OBJECTIVE,
        any_tree=False,  # the objective is written for the example tree
    ),
    E(
        gradtx.scale_by_backtracking_linesearch,
        {"max_backtracking_steps": 8, "store_grad": True},
        sweep="decrease_factor",
        sweep_values=(0.3, 0.5, 0.8),
        needs_params=True,
        extra_args=OBJECTIVE,
        any_tree=False,  # the objective is written for the example tree
    ),
]

NOT_TRANSFORMS = {
    "ZoomLinesearchInfo": "the zoom line search's report, in its state (info)",
    "BacktrackingLinesearchInfo": "the backtracking line search's report, in its state (info)",
    "value_and_grad_from_state": "jax.value_and_grad that reuses a line search's last evaluation",
    "power_iteration": "linear algebra: dominant eigenpair of a matrix or operator",
}

# The parity test's tree (tests/test_compat_optax.py: w (3, 2), b (2,), s ()) with a fixed
# objective: NumPy arrays and a Python float, so they fit its float64 and float32 runs alike.
_PARITY_OBJECTIVE = {
    "value": 0.7,
    "grad": {"w": np.full((3, 2), 0.5), "b": np.asarray([-0.3, 0.2]), "s": np.asarray(0.2)},
    "value_fn": _half_sum_squares,
}

OPTAX_CASES = {
    "scale_by_lbfgs": OptaxCase(kwargs={"memory_size": 4}),
    "lbfgs": OptaxCase(kwargs={"linesearch": None, "memory_size": 4}),
    "lbfgs#zoom": OptaxCase(kwargs={"memory_size": 4}, extra_args=_PARITY_OBJECTIVE),
    "scale_by_zoom_linesearch": OptaxCase(
        kwargs={"max_linesearch_steps": 8}, extra_args=_PARITY_OBJECTIVE
    ),
    "scale_by_backtracking_linesearch": OptaxCase(
        kwargs={"max_backtracking_steps": 8, "store_grad": True}, extra_args=_PARITY_OBJECTIVE
    ),
}
