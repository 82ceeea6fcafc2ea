"""optax 0.2.8's choices for L-BFGS and optax.second_order, as calls of gradtx's definitions.

- scale_by_lbfgs / lbfgs: optax weights every stored pair by 1 / <s, y> whatever its sign;
  gradtx gives pairs with <s, y> <= 0 no weight (Nocedal and Wright 2006, section 7.2: the
  update is skipped so that H stays positive definite), option skip_nonpositive_curvature.
- hessian_diag: optax returns a flat vector (ravel_pytree order); gradtx a tree like params.
- fisher_diag: optax squares the gradient of the whole batch; gradtx averages per-example
  squared gradients (the empirical Fisher's diagonal), option per_example.
"""

import gradtx
import gradtx.second_order as _so
from gradtx._aliases.second_order import _ZOOM


def scale_by_lbfgs(memory_size=10, scale_init_precond=True):
    return gradtx.scale_by_lbfgs(memory_size, scale_init_precond, skip_nonpositive_curvature=False)


def lbfgs(learning_rate=None, memory_size=10, scale_init_precond=True, linesearch=_ZOOM):
    return gradtx.lbfgs(
        learning_rate, memory_size, scale_init_precond, linesearch, skip_nonpositive_curvature=False
    )


def hessian_diag(loss, params, inputs, targets):
    return _so.hessian_diag(loss, params, inputs, targets, ravel=True)


def fisher_diag(negative_log_likelihood, params, inputs, targets):
    return _so.fisher_diag(
        negative_log_likelihood, params, inputs, targets, per_example=False, ravel=True
    )


OVERRIDES = {
    "": {"scale_by_lbfgs": scale_by_lbfgs, "lbfgs": lbfgs},
    "second_order": {"hessian_diag": hessian_diag, "fisher_diag": fisher_diag},
}
