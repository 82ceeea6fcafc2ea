"""gradtx.second_order: curvature for a loss ``loss(params, *args)``, as optax.second_order.

hvp (Hessian-vector products), hessian_diag (the exact Hessian diagonal, one hvp per
coordinate: small models), fisher_diag (the empirical Fisher diagonal), and power_iteration
(the dominant eigenpair of a matrix or of an operator such as ``lambda v: hvp(loss, v, w)``;
also ``gradtx.power_iteration``, as in optax). Who uses them: a user of the line searches
and of ``lbfgs`` who wants the curvature of the problem (the largest Hessian eigenvalue L
bounds the stable step of gradient descent, 2 / L, and L / mu is the conditioning that
L-BFGS copes with); a diagonal preconditioner built from hessian_diag or fisher_diag.
"""

from gradtx.second_order._hessian import fisher_diag, hessian_diag, hvp
from gradtx.second_order._linalg import power_iteration

__all__ = [
    "fisher_diag",
    "hessian_diag",
    "hvp",
    "power_iteration",
]
