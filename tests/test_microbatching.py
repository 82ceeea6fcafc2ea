"""gradtx.microbatching against optax.microbatching on optax's documented examples and its own
test cases, plus float32 accumulation of bfloat16 results and the optax dialect."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import gradtx.compat.optax as gx_optax
import gradtx.compat.optax.microbatching  # noqa: F401  (the dialect submodule)
from gradtx import microbatching as gmb

optax = pytest.importorskip("optax")
omb = optax.microbatching
T = gmb.AccumulationType


def _both(make, *args, **kwargs):
    """Run ``make(module)`` for gradtx's and optax's microbatching on the same arguments."""

    def as_optax(acc):
        return jax.tree.map(
            lambda a: getattr(omb.AccumulationType, a.name) if isinstance(a, T) else a,
            acc,
            is_leaf=lambda a: isinstance(a, T),
        )

    return make(gmb, lambda a: a)(*args, **kwargs), make(omb, as_optax)(*args, **kwargs)


def _per_example(c, x, y):
    return x * y, x / y * c


def _sum(c, x, y):
    return jnp.sum(c + x + 2 * y, axis=0)


def _mean(c, x, y):
    return jnp.mean(c * x), {"key": jnp.mean(y)}


def _combined(c, x, y):
    return {"per_example": _per_example(c, x, y), "sum": _sum(c, x, y), "mean": _mean(c, x, y)}


CASES = {
    "per_example": (_per_example, T.CONCAT),
    "sum": (_sum, T.SUM),
    "mean": (_mean, T.MEAN),
    "running_mean": (_mean, T.RUNNING_MEAN),
    "combined": (_combined, {"per_example": T.CONCAT, "sum": T.SUM, "mean": T.MEAN}),
}


def test_documented_examples_match_optax():
    """The examples in optax's docstrings of microbatch, micro_vmap and micro_grad."""
    data = jnp.array([1, 2, 3, 4])
    got, want = _both(
        lambda m, conv: m.microbatch(
            lambda x: (x + 1, jnp.sum(3 * x)),
            argnums=0,
            microbatch_size=2,
            accumulator=conv((T.CONCAT, T.SUM)),
        ),
        data,
    )
    chex.assert_trees_all_equal(got, want, strict=True)
    chex.assert_trees_all_equal(got, (jnp.array([2, 3, 4, 5]), jnp.array(30)))

    got, want = _both(lambda m, conv: m.micro_vmap(lambda x: x**2), jnp.arange(8))
    chex.assert_trees_all_equal(got, want, strict=True)

    def loss(params, features, targets):
        return 0.5 * jnp.mean((features @ params - targets) ** 2)

    got, want = _both(
        lambda m, conv: m.micro_grad(
            loss,
            argnums=0,
            batch_argnums=(1, 2),
            accumulator=conv(T.MEAN),
            transform_fn=lambda x: (x, x**2),
            metrics_fn=jnp.linalg.norm,
        ),
        jnp.zeros(1),
        jnp.ones((4, 1)),
        jnp.array([0.0, 2.0, 4.0, 6.0]),
    )
    chex.assert_trees_all_close(got[0], want[0], rtol=1e-6)
    chex.assert_trees_all_close(got[0], (jnp.array([-3.0]), jnp.array([14.0])))
    chex.assert_trees_all_close(tuple(got[1]), tuple(want[1]), rtol=1e-6)
    np.testing.assert_allclose(got[1].values, [0.0, 2.0, 8.0, 18.0])
    np.testing.assert_allclose(got[1].metrics, [0.0, 2.0, 4.0, 6.0])


@pytest.mark.parametrize("name", sorted(CASES))
def test_accumulators_match_optax(name):
    """optax's test functions, each accumulation type, microbatch sizes 1, 2, 5 and the whole
    batch, in one jitted program per case."""
    fun, acc = CASES[name]
    rng = np.random.default_rng(0)
    c, x, y = (jnp.asarray(rng.normal(size=s), jnp.float32) for s in ((), (10, 3), (10, 3)))

    @jax.jit
    def run(c, x, y):
        out = []
        for size in (1, 2, 5, 10):
            out.append(
                _both(
                    lambda m, conv, size=size: m.microbatch(
                        fun, argnums=(1, 2), microbatch_size=size, accumulator=conv(acc)
                    ),
                    c,
                    x,
                    y,
                )
            )
        return out

    for got, want in run(c, x, y):
        chex.assert_trees_all_close(got, want, rtol=1e-6, atol=1e-6)
    if acc is not T.RUNNING_MEAN:
        chex.assert_trees_all_close(run(c, x, y)[0][0], fun(c, x, y), rtol=1e-5, atol=1e-6)


def test_axes_kwargs_early_stop_and_vmap_match_optax():
    rng = np.random.default_rng(1)
    a0 = jnp.asarray(rng.normal(size=(10, 4, 5)), jnp.float32)

    @jax.jit
    def run(a0):
        out = {}
        for acc in (T.SUM, T.MEAN, T.RUNNING_MEAN, T.CONCAT):
            out[f"axis1-{acc.name}"] = _both(
                lambda m, conv, acc=acc: m.microbatch(
                    functools.partial(jnp.einsum, "ibj,kbj->ik"),
                    argnums=(0, 1),
                    microbatch_size=2,
                    in_axes=1,
                    accumulator=conv(acc),
                ),
                jnp.swapaxes(a0, 0, 1),
                jnp.swapaxes(a0, 0, 1),
            )
        out["kwargs"] = _both(
            lambda m, conv: m.microbatch(
                lambda c, x, *, z: jnp.sum(c + x + 2 * z, axis=0),
                argnums=1,
                argnames="z",
                microbatch_size=5,
            ),
            jnp.float32(0.5),
            a0[:, 0],
            z=a0[:, 1],
        )
        x = jnp.arange(12).astype(jnp.float32) + 1
        out["early-concat"] = _both(
            lambda m, conv: m.microbatch(
                lambda x: x,
                argnums=0,
                accumulator=conv(T.CONCAT),
                microbatch_size=3,
                num_real_microbatches=2,
            ),
            x,
        )
        out["vmap-axis1"] = _both(
            lambda m, conv: m.micro_vmap(jnp.sum, in_axes=1, microbatch_size=2),
            jnp.arange(64.0).reshape(2, 4, 8),
        )
        out["vmap-early"] = _both(
            lambda m, conv: m.micro_vmap(
                jnp.sum, microbatch_size=4, num_real_microbatches=3, accumulator=conv(T.SUM)
            ),
            jnp.ones(16),
        )
        out["grad-early"] = _both(
            lambda m, conv: m.micro_grad(
                lambda c, x: c * x.sum(), microbatch_size=4, num_real_microbatches=3
            ),
            1.0,
            jnp.ones(16),
        )
        out["reshape"] = (
            gmb.reshape_batch_axis(a0, 2, axis=1),
            omb.reshape_batch_axis(a0, 2, axis=1),
        )
        return out

    for name, (got, want) in run(a0).items():
        try:  # leaves: optax's aux namedtuple is another class with the same fields
            chex.assert_trees_all_close(
                jax.tree.leaves(got), jax.tree.leaves(want), rtol=1e-6, atol=1e-6
            )
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
    assert int(jnp.sum(run(a0)["early-concat"][0] != 0)) == 6
    np.testing.assert_allclose(run(a0)["grad-early"][0][0], 12.0)


def test_errors_name_the_problem():
    f = gmb.microbatch(jnp.sum, argnums=(0, 1), microbatch_size=3)
    with pytest.raises(ValueError, match="not divisible by microbatch_size=3"):
        f(jnp.ones(4), jnp.ones(4))
    with pytest.raises(ValueError, match="different sizes"):
        f(jnp.ones(6), jnp.ones(3))
    with pytest.raises(ValueError, match="floating-point"):
        gmb.microbatch(jnp.sum, 0, 2, T.MEAN)(jnp.arange(4))


def test_bf16_results_accumulate_in_float32():
    """Summing 64 bfloat16 microbatch results: gradtx keeps the sum in float32 and rounds
    once (within half a bf16 step of the float64 sum); optax, and the dialect, sum in bf16
    (bit for bit the same as each other), which drifts by many steps."""
    x = jnp.asarray(1.0 + np.arange(256) / 1000.0, jnp.bfloat16)
    exact = float(np.sum(np.asarray(x, np.float64)))
    got = gmb.microbatch(jnp.sum, argnums=0, microbatch_size=4)(x)
    optax_sum = omb.microbatch(jnp.sum, argnums=0, microbatch_size=4)(x)
    dialect = gx_optax.microbatching.microbatch(jnp.sum, argnums=0, microbatch_size=4)(x)
    assert got.dtype == optax_sum.dtype == dialect.dtype == jnp.bfloat16
    half_step = 2.0 ** (np.floor(np.log2(exact)) - 8)
    assert abs(float(got) - exact) <= half_step
    assert abs(float(optax_sum) - exact) > 3 * half_step
    chex.assert_trees_all_equal(dialect, optax_sum)
    assert gradtx.microbatch is gmb.microbatch
    assert gx_optax.microbatch is gx_optax.microbatching.microbatch
