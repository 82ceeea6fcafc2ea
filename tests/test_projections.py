"""gradtx.projections checked by the optimality conditions of a Euclidean projection.

p = argmin_{q in C} ||x - q||^2 for a closed convex set C exactly when p is in C and
<x - p, y - p> <= 0 for every y in C (the variational inequality; Boyd and Vandenberghe,
Convex Optimization, 2004, section 8.1.1). Each test draws feasible points y independently
of gradtx (in NumPy) and checks feasibility and that inequality; for the two spheres (not
convex) it checks that p is feasible and no farther from x than any sampled point of the
sphere. The results are also compared with optax's (skipped without optax).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import gradtx
import gradtx.projections as P

RNG = np.random.default_rng(5)
SHAPES = {"w": (3, 4), "b": (4,), "block": {"s": (), "k": (2, 3)}}
N = 12 + 4 + 1 + 6
TOL = 1e-10


def _tree(vec):
    """A vector of length N as the nested tree of SHAPES (float64)."""
    out, i = {}, 0
    for key, shape in (("w", (3, 4)), ("b", (4,))):
        n = int(np.prod(shape))
        out[key] = jnp.asarray(vec[i : i + n].reshape(shape))
        i += n
    out["block"] = {"s": jnp.asarray(vec[i]), "k": jnp.asarray(vec[i + 1 : i + 7].reshape(2, 3))}
    return out


def _vec(tree):
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


_PERM = _vec(_tree(np.arange(N, dtype=np.float64))).astype(int)  # exact integers


def _leaf_order(vec):
    """The vector (or rows) in jax.tree.leaves order (b, block.k, block.s, w), from SHAPES
    order, in NumPy float64."""
    return np.asarray(vec)[..., _PERM]


def _assert_variational_inequality(x, p, ys):
    """<x - p, y - p> <= 0 for every row y of ys (tolerance relative to the scales)."""
    inner = (ys - p) @ (x - p)
    scale = np.linalg.norm(x - p) * np.max(np.linalg.norm(ys - p, axis=1)) + 1.0
    assert np.max(inner) <= TOL * scale, (np.max(inner), p.dtype)


def _sets():
    """(name, gradtx call on a tree, feasibility test on a vector, feasible points [m, N])."""
    m = 200
    lo, hi = -0.3 * np.ones(N), 0.2 + RNG.random(N)
    a = RNG.normal(size=N)
    b = 0.7
    z = RNG.normal(size=(m, N)) * 2
    l1_dirs = RNG.laplace(size=(m, N))
    l1_pts = l1_dirs / np.abs(l1_dirs).sum(1, keepdims=True) * 1.5 * RNG.random((m, 1))
    l2_dirs = RNG.normal(size=(m, N))
    l2_pts = l2_dirs / np.linalg.norm(l2_dirs, axis=1, keepdims=True) * 0.8 * RNG.random((m, 1))
    over = np.maximum((z @ a - b) / (a @ a), 0)[:, None]
    reorder = _leaf_order
    return [
        ("non_negative", P.projection_non_negative, lambda v: v.min() >= 0, np.abs(z)),
        (
            "box",
            lambda t: P.projection_box(t, _tree(lo), _tree(hi)),
            lambda v: np.all(v >= _leaf_order(lo)) and np.all(v <= _leaf_order(hi)),
            reorder(lo + (hi - lo) * RNG.random((m, N))),
        ),
        (
            "box_scalar",
            lambda t: P.projection_box(t, -0.25, 0.5),
            lambda v: v.min() >= -0.25 and v.max() <= 0.5,
            -0.25 + 0.75 * RNG.random((m, N)),
        ),
        (
            "hypercube",
            lambda t: P.projection_hypercube(t, 2.0),
            lambda v: v.min() >= 0 and v.max() <= 2.0,
            2.0 * RNG.random((m, N)),
        ),
        (
            "simplex",
            lambda t: P.projection_simplex(t, 2.5),
            lambda v: v.min() >= 0 and abs(v.sum() - 2.5) < TOL,
            2.5 * RNG.dirichlet(np.ones(N) * 0.3, m),
        ),
        (
            "l1_ball",
            lambda t: P.projection_l1_ball(t, 1.5),
            lambda v: np.abs(v).sum() <= 1.5 + TOL,
            l1_pts,
        ),
        (
            "l2_ball",
            lambda t: P.projection_l2_ball(t, 0.8),
            lambda v: np.linalg.norm(v) <= 0.8 + TOL,
            l2_pts,
        ),
        (
            "linf_ball",
            lambda t: P.projection_linf_ball(t, 0.4),
            lambda v: np.abs(v).max() <= 0.4,
            0.4 * (2 * RNG.random((m, N)) - 1),
        ),
        (
            "hyperplane",
            lambda t: P.projection_hyperplane(t, _tree(a), b),
            lambda v: abs(v @ _leaf_order(a) - b) < TOL * 10,
            reorder(z + ((b - z @ a) / (a @ a))[:, None] * a),
        ),
        (
            "halfspace",
            lambda t: P.projection_halfspace(t, _tree(a), b),
            lambda v: v @ _leaf_order(a) <= b + TOL * 10,
            reorder(z - (over + RNG.random((m, 1))) * a),
        ),
        (
            "vector",
            lambda t: P.projection_vector(t, _tree(a)),
            lambda v: np.linalg.matrix_rank(np.stack([v, _leaf_order(a)]), tol=1e-8) <= 1,
            reorder(RNG.normal(size=(m, 1)) * a),
        ),
    ]


def test_convex_projections_satisfy_the_optimality_conditions():
    sets = _sets()
    points = [RNG.normal(size=N) * s for s in (0.05, 1.0, 3.0)]
    points.append(np.where(RNG.random(N) > 0.5, 0.0, RNG.normal(size=N)))  # exact zeros
    with jax.enable_x64(True):
        project_all = jax.jit(lambda t: [f(t) for _, f, _, _ in sets])
        for x in points:
            xs = _leaf_order(x)
            for (name, _, feasible, ys), p_tree in zip(sets, project_all(_tree(x))):
                p = _vec(p_tree)
                assert feasible(p), (name, p)
                try:
                    _assert_variational_inequality(xs, p, ys)
                except AssertionError as err:
                    raise AssertionError(name) from err


def test_spheres_are_feasible_and_closest():
    """The l1 and l2 spheres are not convex: check ||p|| = scale and ||x - p|| <= ||x - y||
    for sampled y on the sphere (also for x with zero entries, and x = 0)."""
    m = 500
    d1 = RNG.laplace(size=(m, N))
    on_l1 = 1.5 * d1 / np.abs(d1).sum(1, keepdims=True)
    d2 = RNG.normal(size=(m, N))
    on_l2 = 0.8 * d2 / np.linalg.norm(d2, axis=1, keepdims=True)
    xs = [RNG.normal(size=N) * s for s in (0.01, 1.0, 5.0)]
    xs.append(np.where(RNG.random(N) > 0.5, 0.0, 0.01 * RNG.normal(size=N)))
    xs.append(np.zeros(N))
    with jax.enable_x64(True):
        both = jax.jit(lambda t: (P.projection_l1_sphere(t, 1.5), P.projection_l2_sphere(t, 0.8)))
        for x in xs:
            p1, p2 = (_vec(p) for p in both(_tree(x)))
            v = _leaf_order(x)
            assert abs(np.abs(p1).sum() - 1.5) < TOL and abs(np.linalg.norm(p2) - 0.8) < TOL
            assert np.linalg.norm(v - p1) <= np.min(np.linalg.norm(v - on_l1, axis=1)) + TOL
            assert np.linalg.norm(v - p2) <= np.min(np.linalg.norm(v - on_l2, axis=1)) + TOL


def test_simplex_gradient_and_sparsemax_jacobian():
    """The Jacobian of the simplex projection, diag(s) - s s^T / |s| on the support s
    (Martins and Astudillo 2016, Proposition 2), against finite differences and in closed form."""
    x = jnp.asarray(RNG.normal(size=7))
    with jax.enable_x64(True):
        x = x.astype(jnp.float64)
        check_grads(jax.jit(lambda v: P.projection_simplex(v, 1.3)), (x,), 1, modes=("rev",))
        jac, p = jax.jit(
            lambda v: (jax.jacobian(P.projection_simplex)(v), P.projection_simplex(v))
        )(x)
        s = (np.asarray(p) > 0).astype(np.float64)
        np.testing.assert_allclose(jac, np.diag(s) - np.outer(s, s) / s.sum(), atol=1e-14)


def test_dtypes_and_mixed_trees():
    """Each leaf keeps its dtype (bf16 next to float32 under strict promotion); the tree-wide
    sums are in float32 at least."""
    tree = {"a": jnp.asarray([3.0, -1.0, 0.5], jnp.bfloat16), "b": jnp.asarray([2.0, 0.25])}
    fns = (
        P.projection_simplex,
        P.projection_l1_ball,
        P.projection_l2_ball,
        P.projection_l2_sphere,
        P.projection_l1_sphere,
        P.projection_linf_ball,
        P.projection_non_negative,
        P.projection_hypercube,
    )
    radii = jnp.asarray([0.5, 1.0, 4.0])

    def everything(t):
        outs = [fn(t) for fn in fns]
        box = P.projection_hypercube(t, {"a": 1.0, "b": 0.1})  # a scale per leaf
        norms = jax.vmap(lambda r: gradtx.global_norm(P.projection_l2_ball(t, r)))(radii)
        return outs, box, norms

    outs, box, norms = jax.jit(everything)(tree)
    for fn, out in zip(fns, outs):
        assert out["a"].dtype == jnp.bfloat16 and out["b"].dtype == jnp.float32, fn.__name__
    total = float(jnp.sum(outs[0]["a"].astype(jnp.float32)) + jnp.sum(outs[0]["b"]))
    assert abs(total - 1.0) < 1e-2
    np.testing.assert_allclose(np.asarray(box["b"]), [0.1, 0.1])
    np.testing.assert_allclose(np.asarray(norms), [0.5, 1.0, 3.79], rtol=1e-2)
    with pytest.raises(ValueError, match="lower must be"):
        P.projection_box(tree, {"a": 0.0}, 1.0)


def test_projections_equal_optax():
    optax = pytest.importorskip("optax")
    import gradtx.compat.optax.projections as dialect

    x = _tree(RNG.normal(size=N) * 2)
    a = _tree(RNG.normal(size=N))
    arr = jnp.asarray(RNG.normal(size=9))
    calls = [
        ("projection_non_negative", (x,)),
        (
            "projection_box",
            (x, jax.tree.map(lambda v: v * 0 - 0.3, x), jax.tree.map(lambda v: v * 0 + 0.4, x)),
        ),
        ("projection_box", (arr, -0.3, 0.4)),
        ("projection_hypercube", (arr, 0.7)),
        ("projection_simplex", (x, 2.0)),
        ("projection_l1_sphere", (x, 1.5)),
        ("projection_l1_ball", (x, 1.5)),
        ("projection_l1_ball", (x, 1e3)),
        ("projection_l2_sphere", (x, 1.5)),
        ("projection_l2_ball", (x, 0.5)),
        ("projection_linf_ball", (x, 0.5)),
        ("projection_vector", (x, a)),
        ("projection_hyperplane", (x, a, 0.3)),
        ("projection_halfspace", (x, a, -0.3)),
    ]
    assert (
        {n for n, _ in calls}
        == set(dialect.__all__)
        == {n for n in dir(optax.projections) if not n.startswith("_")}
    )
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        args64 = [(n, jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), c)) for n, c in calls]
        want = jax.jit(lambda: [getattr(optax.projections, n)(*c) for n, c in args64])()
        got = jax.jit(lambda: [getattr(dialect, n)(*c) for n, c in args64])()
        for (name, _), w, g in zip(calls, want, got):
            for wl, gl in zip(jax.tree.leaves(w), jax.tree.leaves(g)):
                np.testing.assert_allclose(gl, wl, rtol=1e-12, atol=1e-14, err_msg=name)
