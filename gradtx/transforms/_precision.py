"""Precision: slot dtypes by name, compensated and stochastic bf16 updates, master weights, loss
scaling.

Arithmetic is always in at least float32 (``acc_dtype``); these transforms choose what is
*stored*: the dtype of each state slot (``with_dtypes``), and how a low-precision parameter
absorbs an update smaller than its rounding step (``kahan_compensation``,
``stochastic_rounding``, ``master_weights``). ``dynamic_loss_scale`` keeps float16 gradients
from underflowing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, call_update
from gradtx._core.trees import acc_dtype, as_dtype, safe_increment, tree_map_none
from gradtx.transforms._wrappers import _check_inner, apply_if_finite

_NONE_LEAF = lambda x: x is None  # noqa: E731
_INT32_MAX = int(np.iinfo(np.int32).max)


def _is_float(x) -> bool:
    return x is not None and jnp.issubdtype(jnp.result_type(x), jnp.floating)


def _rounded(x, dtype):
    """``x`` rounded to ``dtype`` and returned in ``x``'s dtype.

    The barrier between the two casts keeps XLA from folding the pair away, which it may do
    when excess precision is allowed (the GPU default): the rounding is the point here.
    """
    return jax.lax.optimization_barrier(x.astype(dtype)).astype(x.dtype)


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _children(node):
    """One level of a pytree: ``(children, treedef)``, or None when ``node`` is a leaf."""
    if node is None:
        return None
    kids, treedef = jax.tree.flatten(node, is_leaf=lambda x: x is not node)
    if jax.tree_util.treedef_is_leaf(treedef):
        return None
    return kids, treedef


def _cast_floats(tree, dtype):
    return jax.tree.map(lambda x: x.astype(dtype) if _is_float(x) else x, tree, is_leaf=_NONE_LEAF)


def _apply_policy(node, policy: Mapping[str, Any], seen: set):
    """Cast every floating array under a NamedTuple field named in ``policy`` (outermost wins)."""
    if _is_namedtuple(node):
        out = []
        for name, child in zip(node._fields, node):
            if name in policy:
                if any(_is_float(x) for x in jax.tree.leaves(child)):
                    seen.add(name)
                out.append(child if policy[name] is None else _cast_floats(child, policy[name]))
            else:
                out.append(_apply_policy(child, policy, seen))
        return type(node)(*out)
    kids = _children(node)
    if kids is None:
        return node
    return kids[1].unflatten([_apply_policy(c, policy, seen) for c in kids[0]])


def _field_names(node, found: set) -> set:
    if _is_namedtuple(node):
        found.update(node._fields)
    kids = _children(node)
    for c in kids[0] if kids else ():
        _field_names(c, found)
    return found


def _check_policy(where: str, dtypes) -> dict:
    if not isinstance(dtypes, Mapping):
        raise TypeError(
            f"{where}: dtypes={dtypes!r} is not a mapping; pass a dict from slot names to "
            'dtypes, e.g. {"mu": jnp.bfloat16, "nu": jnp.float32}.'
        )
    policy = {}
    for name, dtype in dtypes.items():
        if not isinstance(name, str):
            raise TypeError(f"{where}: the slot name {name!r} is not a string (a field name).")
        if dtype is not None:
            dtype = jnp.dtype(dtype)
            if not jnp.issubdtype(dtype, jnp.floating):
                raise ValueError(
                    f"{where}: dtypes[{name!r}]={dtype} is not a floating-point dtype; slots "
                    "are stored in a float dtype such as jnp.bfloat16 or jnp.float32."
                )
        policy[name] = dtype
    return policy


def with_dtypes(inner, dtypes: Mapping[str, Any]) -> GradientTransformation:
    """Store each named state slot of ``inner`` in the dtype the policy gives it.

    state = cast(inner.init(params), dtypes)
    updates, state = inner.update(updates, state, params)
    state = cast(state, dtypes)

    ``cast`` walks the state and, at every NamedTuple field whose name is a key of ``dtypes``
    (``mu``, ``nu``, ``trace``, ``ema``, ``sum_of_squares``, ``acc_grads``, ...), converts every
    floating-point array below that field to the given dtype (None leaves it alone); the
    outermost matching field wins, and integer, boolean and key arrays are never touched. The
    state keeps the inner state's structure and paths, so ``tree_get``, ``state_dict`` and
    checkpoints see the same names. Every gradtx transform computes in at least float32 and
    rounds a slot to its stored dtype, so the cast after the update only fixes the dtype of
    transforms that do not (foreign ones). ``mu_dtype`` and ``accumulator_dtype`` are the same
    thing for one transform: ``scale_by_adam(mu_dtype=d)`` is
    ``with_dtypes(scale_by_adam(), {"mu": d})``.

    Args:
        inner: the transform (a single one, a chain or a whole optimizer).
        dtypes: slot name -> dtype (or None for unchanged). A name that matches no floating
            field of the state is an error at init, so a typo does not pass silently.

    Example:
        >>> import jax.numpy as jnp, gradtx
        >>> tx = gradtx.with_dtypes(gradtx.adam(1e-3), {"mu": jnp.bfloat16})
        >>> state = tx.init({"w": jnp.zeros(3)})
        >>> state[0].mu["w"].dtype, state[0].nu["w"].dtype
        (dtype(bfloat16), dtype('float32'))
    """
    where = "gradtx.with_dtypes"
    _check_inner(where, inner)
    policy = _check_policy(where, dtypes)

    def init(params):
        state = inner.init(params)
        seen: set = set()
        state = _apply_policy(state, policy, seen)
        unknown = sorted(set(policy) - seen)
        if unknown:
            present = sorted(_field_names(state, set()))
            raise ValueError(
                f"{where}: the policy names {unknown}, but no field of that name holds "
                f"floating-point arrays in this state. Field names present: {present}."
            )
        return state

    def update(updates, state, params=None, **extra_args):
        updates, state = call_update(inner, updates, state, params, extra_args)
        return updates, _apply_policy(state, policy, set())

    return GradientTransformation(init, update)


class KahanCompensationState(NamedTuple):
    compensation: Any  # like params (compensation_dtype if given): what rounding dropped


def _apply_one(p, u):
    """``apply_updates`` on one leaf: the parameter the caller will hold after the step."""
    return (p + u.astype(p.dtype)).astype(p.dtype)


def kahan_compensation(*, compensation_dtype=None) -> GradientTransformation:
    """Compensated (Kahan) summation of the updates into low-precision parameters.

    Put it last in the chain; it needs ``params``. Per leaf, in at least float32:

    exact = params + updates + compensation
    new_params = round(exact)                 (to the parameter's dtype)
    updates = new_params - params             (what apply_updates then adds)
    compensation = exact - new_params         (stored in compensation_dtype)

    A bfloat16 parameter moves by multiples of its rounding step only, so an update smaller
    than half a step is lost; the compensation carries it to the next step until it adds up.
    The compensation is at most half a step of the parameter, so a bfloat16 buffer keeps 8 more
    bits of it (16 bits in all); a float32 one keeps all of them.

    Args:
        compensation_dtype: the buffer's dtype; defaults to each parameter's dtype.

    References:
        Kahan, Further remarks on reducing truncation errors, CACM 8(1), 1965.
        Zamirai, Zhang, Aberger and De Sa, Revisiting BFloat16 Training, 2020, section 3.
    """
    where = "gradtx.kahan_compensation"

    def init(params):
        return KahanCompensationState(
            tree_map_none(
                lambda p: jnp.zeros_like(p, dtype=compensation_dtype or jnp.result_type(p)),
                params,
            )
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, state.compensation, where, "updates", "state")

        leaves, treedef = jax.tree.flatten(updates, is_leaf=_NONE_LEAF)
        steps, comp = [], []
        for u, c, p in zip(
            leaves, treedef.flatten_up_to(state.compensation), treedef.flatten_up_to(params)
        ):
            if u is None:
                steps.append(None)
                comp.append(c)
                continue
            dt = acc_dtype(p.dtype)
            dt = c.dtype if c.dtype.itemsize > dt.itemsize else dt  # a wider buffer: its dtype
            exact = p.astype(dt) + u.astype(dt) + c.astype(dt)
            step = (_rounded(exact, p.dtype) - p.astype(dt)).astype(p.dtype)
            steps.append(step)
            applied = jax.lax.optimization_barrier(_apply_one(p, step)).astype(dt)
            comp.append((exact - applied).astype(c.dtype))
        steps, comp = treedef.unflatten(steps), treedef.unflatten(comp)
        return steps, KahanCompensationState(comp)

    return GradientTransformation(init, update)


def stochastic_round(x, dtype, key):
    """Round ``x`` to ``dtype`` up or down at random, with probabilities that make it unbiased.

    lo, hi = the two values of ``dtype`` around x (lo == hi == x when x is representable)
    result = hi with probability (x - lo) / (hi - lo), else lo

    so the expected result is x. Values whose nearest rounding is infinite or NaN round to
    nearest (they stay non-finite). The arithmetic is in ``x``'s dtype (at least float32).

    Args:
        x: an array (float32 or wider, or anything castable).
        dtype: the target floating dtype (bfloat16, float16, float8 types).
        key: a PRNG key; the draws are ``jax.random.uniform(key, x.shape)``.

    Example:
        >>> import jax, jax.numpy as jnp, gradtx
        >>> x = jnp.full(10000, 1.0 + 2.0**-9)   # a quarter of bf16's step above 1
        >>> r = gradtx.stochastic_round(x, jnp.bfloat16, jax.random.key(0))
        >>> sorted(set(r.astype(jnp.float32).tolist())), bool(abs(jnp.mean(r == 1.0) - 0.75) < 0.02)
        ([1.0, 1.0078125], True)
    """
    dtype = jnp.dtype(dtype)
    x = jnp.asarray(x)
    dt = acc_dtype(x.dtype)
    x = x.astype(dt)
    near = jax.lax.optimization_barrier(x.astype(dtype))  # see _rounded
    near_wide = near.astype(dt)
    up = near_wide < x
    other = jnp.nextafter(near, jnp.where(up, jnp.inf, -jnp.inf).astype(dtype))
    other = jax.lax.optimization_barrier(other).astype(dt)
    lo = jnp.where(up, near_wide, other)
    hi = jnp.where(up, other, near_wide)
    gap = hi - lo
    prob = jnp.where(gap > 0, (x - lo) / jnp.where(gap > 0, gap, 1), 0)
    draw = jax.random.uniform(key, x.shape, dt)
    rounded = jnp.where(draw < prob, hi, lo).astype(dtype)
    exact = near_wide == x
    return jnp.where(exact | ~jnp.isfinite(near_wide), near, rounded)


def _key_bits(key) -> jax.Array:
    """A PRNG key (or an int seed) as int32 words, so the state holds plain integers."""
    if isinstance(key, int):
        key = jax.random.PRNGKey(key)
    if jnp.issubdtype(jnp.result_type(key), jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return jax.lax.bitcast_convert_type(jnp.asarray(key, jnp.uint32), jnp.int32)


class StochasticRoundingState(NamedTuple):
    key: jax.Array  # int32 words of the PRNG key for the next step (split once per step)


def stochastic_rounding(key=0) -> GradientTransformation:
    """Round each low-precision parameter's new value stochastically (unbiased).

    Put it last in the chain; it needs ``params``. Per low-precision leaf (bfloat16, float16),
    in float32:

    key, step_key = split(key)
    new_params = stochastic_round(params + updates, params.dtype, step_key)
    updates = new_params - params             (what apply_updates then adds)

    An update smaller than the parameter's rounding step moves it a whole step with the
    probability that makes the expected parameter exact, instead of being lost. float32 and
    wider leaves pass through unchanged. The key lives in the state, so a step is a pure
    function of ``(updates, state, params)`` and a run is reproduced from its state.

    Args:
        key: an int seed or a PRNG key (typed or raw).

    References:
        Gupta, Agrawal, Gopalakrishnan and Narayanan, Deep Learning with Limited Numerical
        Precision, ICML 2015, section 3.
        Zamirai, Zhang, Aberger and De Sa, Revisiting BFloat16 Training, 2020, section 3.
    """
    where = "gradtx.stochastic_rounding"
    bits = _key_bits(key)

    def init(params):
        del params
        return StochasticRoundingState(bits)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, params, where, "updates", "params")
        raw = jax.lax.bitcast_convert_type(state.key, jnp.uint32)
        next_key, step_key = jax.random.split(jax.random.wrap_key_data(raw))
        leaves, treedef = jax.tree.flatten(updates, is_leaf=_NONE_LEAF)
        p_leaves = treedef.flatten_up_to(params)
        out = []
        for i, (u, p) in enumerate(zip(leaves, p_leaves)):
            if u is None or acc_dtype(p.dtype) == jnp.dtype(p.dtype):
                out.append(u)
                continue
            dt = acc_dtype(p.dtype)
            exact = p.astype(dt) + u.astype(dt)
            new_p = stochastic_round(exact, p.dtype, jax.random.fold_in(step_key, i))
            out.append((new_p.astype(dt) - p.astype(dt)).astype(p.dtype))
        new_bits = jax.lax.bitcast_convert_type(jax.random.key_data(next_key), jnp.int32)
        return treedef.unflatten(out), StochasticRoundingState(new_bits)

    return GradientTransformation(init, update)


class MasterWeightsState(NamedTuple):
    master: Any  # like params, in master_dtype: the parameters at full precision
    inner_state: Any  # the inner transform's state, built on the masters (so its slots too)


def master_weights(inner, *, master_dtype=jnp.float32) -> GradientTransformation:
    """Keep full-precision master copies of the parameters; the model sees them rounded.

    g = updates in master_dtype
    u, inner_state = inner.update(g, inner_state, master)
    master = master + u
    updates = round(master) - params          (so apply_updates gives round(master))

    The inner transform runs entirely in ``master_dtype`` (its slots are created from the
    masters), and the parameters given to ``update`` are overwritten by the rounded masters
    each step: update them only through this transform. Parameters already in
    ``master_dtype`` gain nothing but a second copy.

    Args:
        inner: the optimizer to run on the masters.
        master_dtype: the masters' dtype (float32).

    References:
        Micikevicius et al., Mixed Precision Training, ICLR 2018, section 3.1.
    """
    where = "gradtx.master_weights"
    _check_inner(where, inner)
    master_dtype = jnp.dtype(master_dtype)

    def init(params):
        master = tree_map_none(lambda p: jnp.asarray(p).astype(master_dtype), params)
        return MasterWeightsState(master, inner.init(master))

    def update(updates, state, params=None, **extra_args):
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, state.master, where, "updates", "state.master")
        grads = tree_map_none(lambda g: g.astype(master_dtype), updates)
        u, inner_state = call_update(inner, grads, state.inner_state, state.master, extra_args)
        master = tree_map_none(lambda m, d: m if d is None else _apply_one(m, d), state.master, u)

        def to_params(m, p):
            p = jnp.asarray(p)
            m = m.astype(master_dtype)  # (a policy may store the masters narrower)
            return (_rounded(m, p.dtype) - p.astype(master_dtype)).astype(p.dtype)

        return tree_map_none(to_params, master, params), MasterWeightsState(master, inner_state)

    return GradientTransformation(init, update)


class DynamicLossScaleState(NamedTuple):
    loss_scale: jax.Array  # float32 scalar: multiply the loss by this before differentiating
    good_steps: jax.Array  # int32 scalar: finite steps since the scale last changed
    inner_state: Any  # ApplyIfFiniteState around the inner transform's state


def dynamic_loss_scale(
    inner,
    initial_scale=2.0**16,
    growth_interval=2000,
    growth_factor=2.0,
    backoff_factor=0.5,
    min_scale=1.0,
) -> GradientTransformation:
    """Dynamic loss scaling for float16: unscale the gradients, skip non-finite steps.

    The caller differentiates ``loss * loss_scale`` (read it with
    ``gradtx.tree_get(state, "loss_scale")``) and passes those gradients. Then:

    g = updates / loss_scale
    finite = all(isfinite(g))
    updates, inner_state = inner.update(g, ...) if finite else (0, inner_state)   (apply_if_finite)
    loss_scale = max(loss_scale * backoff_factor, min_scale); good_steps = 0     (not finite)
    good_steps = good_steps + 1                                                   (finite)
    loss_scale = loss_scale * growth_factor; good_steps = 0     (good_steps == growth_interval)

    The skip is ``apply_if_finite`` with no limit on consecutive skips. The unscaled gradients
    keep the incoming dtype: for float16 parameters, wrap this in ``master_weights`` so they
    arrive here in float32.

    Args:
        inner: the optimizer the unscaled gradients go to.
        initial_scale: the first loss scale (PyTorch's GradScaler: 2 ** 16).
        growth_interval: finite steps in a row before the scale grows (2000).
        growth_factor: the factor it grows by (2).
        backoff_factor: the factor it shrinks by after a non-finite step (0.5).
        min_scale: the scale never goes below this (1).

    References:
        Micikevicius et al., Mixed Precision Training, ICLR 2018, section 3.2.
        torch.amp.GradScaler (the defaults).
    """
    where = "gradtx.dynamic_loss_scale"
    _check_inner(where, inner)
    _checks.check_number(where, "initial_scale", initial_scale, low=0.0, low_open=True)
    _checks.check_number(where, "growth_interval", growth_interval, low=1.0)
    _checks.check_number(where, "growth_factor", growth_factor, low=1.0)
    _checks.check_number(where, "backoff_factor", backoff_factor, low=0.0, high=1.0, low_open=True)
    _checks.check_number(where, "min_scale", min_scale, low=0.0)
    guarded = apply_if_finite(inner, max_consecutive_errors=_INT32_MAX)

    def init(params):
        scale = as_dtype(initial_scale, jnp.float32)
        return DynamicLossScaleState(scale, jnp.zeros((), jnp.int32), guarded.init(params))

    def update(updates, state, params=None, **extra_args):
        def unscale(g):
            dt = acc_dtype(g.dtype)
            return (g.astype(dt) / state.loss_scale.astype(dt)).astype(g.dtype)

        grads = tree_map_none(unscale, updates)
        updates, inner_state = guarded.update(grads, state.inner_state, params, **extra_args)
        finite = inner_state.last_finite
        good = jnp.where(finite, safe_increment(state.good_steps), 0)
        grow = good >= as_dtype(growth_interval, jnp.int32)
        f32 = lambda v: as_dtype(v, jnp.float32)  # noqa: E731
        shrunk = jnp.maximum(state.loss_scale * f32(backoff_factor), f32(min_scale))
        grown = jnp.where(grow, state.loss_scale * f32(growth_factor), state.loss_scale)
        scale = jnp.where(finite, grown, shrunk)
        good = jnp.where(grow, 0, good).astype(jnp.int32)
        return updates, DynamicLossScaleState(scale, good, inner_state)

    return GradientTransformation(init, update)
