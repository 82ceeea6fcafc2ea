"""Full-batch test problems for L-BFGS and the line searches, generated in code (float64).

Shared by tests/test_second_order.py and docs/guide/second_order.md's table. Each problem is
(f, x0): f a JAX function of a pytree, x0 its start. Build them inside
``jax.enable_x64(True)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def rosenbrock(x):
    """sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2; minimum 0 at x = 1."""
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def data():
    """The generated data of the problems, as NumPy float64 arrays (also read by
    tests/fixtures/make_torch_lbfgs.py to build the same problems in torch)."""
    rng = np.random.default_rng(0)
    n = 20
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    d = {"quad_a": q @ np.diag(np.logspace(-1.5, 1.5, n)) @ q.T}  # condition number 1e3
    d["quad_c"] = rng.normal(size=n)  # the minimiser; f(c) = 0, so f's rounding is small
    d["logistic_x"] = rng.normal(size=(200, 10))
    d["logistic_y"] = np.sign(d["logistic_x"] @ rng.normal(size=10) + 0.5 * rng.normal(size=200))
    d["mlp_x"] = np.random.default_rng(0).uniform(-2, 2, size=(64, 2))
    d["mlp_y"] = np.sin(d["mlp_x"][:, 0]) * np.cos(d["mlp_x"][:, 1])
    k = np.random.default_rng(2)
    d["mlp_w1"], d["mlp_w2"] = 0.5 * k.normal(size=(2, 6)), 0.5 * k.normal(size=6)
    return d


def problems():
    """{name: (f, x0)}: Rosenbrock in 2 and 20 dimensions, an ill-conditioned quadratic,
    L2-regularised logistic regression (weight 1e-2), a small tanh MLP (regression, weight
    decay 3e-2)."""
    d = {k: jnp.asarray(v) for k, v in data().items()}
    out = {}
    out["rosenbrock-2"] = (rosenbrock, jnp.asarray([-1.2, 1.0]))
    out["rosenbrock-20"] = (rosenbrock, jnp.asarray(np.tile([-1.2, 1.0], 10)))
    a, c = d["quad_a"], d["quad_c"]
    out["quadratic"] = (lambda x: 0.5 * (x - c) @ (a @ (x - c)), jnp.zeros(c.shape[0]))

    def logistic(p):
        margins = d["logistic_y"] * (d["logistic_x"] @ p["w"] + p["b"])
        return jnp.mean(jnp.logaddexp(0.0, -margins)) + 0.5e-2 * jnp.sum(p["w"] ** 2)

    out["logistic"] = (logistic, {"w": jnp.zeros(10), "b": jnp.zeros(())})

    def mlp(p):
        h = jnp.tanh(d["mlp_x"] @ p["w1"] + p["b1"][None, :])
        err = h @ p["w2"] + p["b2"] - d["mlp_y"]
        return jnp.mean(err**2) + 3e-2 * (jnp.sum(p["w1"] ** 2) + jnp.sum(p["w2"] ** 2))

    p0 = {"w1": d["mlp_w1"], "b1": jnp.zeros(6), "w2": d["mlp_w2"], "b2": jnp.zeros(())}
    out["mlp"] = (mlp, p0)
    return out


def run_gradtx(f, x0, tx, *, gtol=1e-8, max_iter=1000):
    """Drive ``tx`` (ending in a line search) on f from x0 with one jitted step.

    Returns (x, iterations, evaluations, records), records a list of per-iteration
    (x_k, f_k, g_k, updates_k, info_k) as NumPy; evaluations counts value_fn's calls (each
    with its gradient): the first point, plus each line-search trial.
    """
    import gradtx

    value_and_grad = gradtx.value_and_grad_from_state(f)

    @jax.jit
    def step(x, state):
        value, grad = value_and_grad(x, state=state)
        updates, state = tx.update(grad, state, x, value=value, grad=grad, value_fn=f)
        info = gradtx.tree_get(state, "info")
        return gradtx.apply_updates(x, updates), state, value, grad, updates, info

    x, state = x0, tx.init(x0)
    evaluations, records = 1, []
    for _ in range(max_iter):
        new_x, new_state, value, grad, updates, info = step(x, state)
        if float(jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grad)))) <= gtol:
            break
        records.append((x, value, grad, updates, info))
        evaluations += int(info.num_linesearch_steps)
        x, state = new_x, new_state
    return x, len(records), evaluations, records


def flat_value_and_grad(f, x0):
    """f and its gradient as one jitted function of the flat vector (ravel_pytree order)."""
    from jax.flatten_util import ravel_pytree

    _, unravel = ravel_pytree(x0)
    return jax.jit(jax.value_and_grad(lambda z: f(unravel(z))))


def run_scipy(f, x0, *, memory_size=10, gtol=1e-8, max_iter=1000, value_and_grad=None):
    """scipy.optimize.minimize(method="L-BFGS-B") from x0 until ||grad||_2 <= gtol.

    Returns (x as a tree, iterations, evaluations, final gradient norm).
    """
    import scipy.optimize
    from jax.flatten_util import ravel_pytree

    flat0, unravel = ravel_pytree(x0)
    value_and_grad = value_and_grad or flat_value_and_grad(f, x0)

    def fg(z):
        v, g = value_and_grad(jnp.asarray(z))
        return float(v), np.asarray(g, np.float64)

    iterations = [0]

    def callback(intermediate_result):
        iterations[0] += 1
        if np.linalg.norm(fg(intermediate_result.x)[1]) <= gtol:
            raise StopIteration

    res = scipy.optimize.minimize(
        fg,
        np.asarray(flat0),
        jac=True,
        method="L-BFGS-B",
        callback=callback,
        options={"maxcor": memory_size, "gtol": 0.0, "ftol": 0.0, "maxiter": max_iter},
    )
    # the callback's own evaluations (one per iteration) are not the solver's: nfev is
    gnorm = float(np.linalg.norm(fg(res.x)[1]))
    return unravel(jnp.asarray(res.x)), iterations[0], int(res.nfev), gnorm
