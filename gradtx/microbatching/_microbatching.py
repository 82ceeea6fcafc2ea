"""Split a batch into microbatches inside one jitted function and combine the results.

A function ``fun`` of a batch is evaluated on ``num_microbatches`` slices of it in a
``lax.fori_loop`` (so only one slice's intermediates are alive at a time), and an
``Accumulator`` combines the per-slice results. Sums and means are accumulated in at least
float32 (``accumulation_dtype``) and rounded to the result's dtype once, at the end.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.trees import acc_dtype


@dataclasses.dataclass(frozen=True)
class Accumulator:
    """How the per-microbatch results ``x_0 .. x_{n-1}`` of a function are combined.

    carry = init(shape_and_dtype_of(x_0))
    carry = update(carry, x_i, i)        for i = 0 .. n-1
    result = finalize(carry)

    ``aggregate(stacked)`` combines results stacked along axis 0 in one go (``micro_vmap``
    uses it inside a microbatch). Each function takes and returns a pytree.
    """

    init: Callable
    update: Callable
    finalize: Callable
    aggregate: Callable


class AccumulationType(enum.Enum):
    """The built-in ways to combine microbatch results."""

    MEAN = enum.auto()  # the sum divided by the number of microbatches
    SUM = enum.auto()  # the sum
    RUNNING_MEAN = enum.auto()  # the mean of the microbatches actually run
    CONCAT = enum.auto()  # stacked back along the batch axis, in the original order


class IndividualOutputs(NamedTuple):
    """``micro_grad``'s per-example outputs."""

    values: Any  # the function's value for each example
    metrics: Any  # metrics_fn of each example's gradient
    aux: Any  # the function's auxiliary output for each example (has_aux=True)


def _carry_dtype(dtype, accumulation_dtype):
    """The dtype a sum of values of ``dtype`` is kept in."""
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.inexact) or accumulation_dtype == "input":
        return dtype
    if accumulation_dtype is None:
        return acc_dtype(dtype)
    return jnp.dtype(accumulation_dtype)


def _require_float(spec, kind):
    for x in jax.tree.leaves(spec):
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            raise ValueError(
                f"gradtx.microbatching: the {kind} accumulator averages, and a result has dtype "
                f"{x.dtype}; averages need floating-point results. Use AccumulationType.SUM "
                "for integers."
            )


def _reducing(spec, accumulation_dtype, finalize_scale, running: bool, reduce) -> Accumulator:
    """A sum-like accumulator over the subtree ``spec``: carry in the accumulation dtype."""

    def carry_dt(s):
        return _carry_dtype(s.dtype, accumulation_dtype)

    def init(value_spec):
        return jax.tree.map(lambda s: jnp.zeros(s.shape, carry_dt(s)), value_spec)

    def update(carry, value, index):
        def one(c, v):
            v = v.astype(c.dtype)
            if not running:
                return c + v
            w = (jnp.asarray(index) / (jnp.asarray(index) + 1)).astype(c.dtype)
            return c * w + v * (1 - w)

        return jax.tree.map(one, carry, value)

    def finalize(carry):
        def one(c, s):
            if finalize_scale is not None:
                c = c / jnp.asarray(finalize_scale, c.dtype)
            return c.astype(s.dtype)

        return jax.tree.map(one, carry, spec)

    def aggregate(values):
        return jax.tree.map(lambda v: reduce(v.astype(carry_dt(v)), axis=0).astype(v.dtype), values)

    return Accumulator(init, update, finalize, aggregate)


def _concatenating(num_microbatches: int) -> Accumulator:
    def init(value_spec):
        return jax.tree.map(
            lambda s: jnp.zeros((num_microbatches,) + tuple(s.shape), s.dtype), value_spec
        )

    def update(carry, value, index):
        return jax.tree.map(lambda c, v: c.at[index].set(v), carry, value)

    def finalize(carry):  # carry[i, j] is example j * num_microbatches + i
        return jax.tree.map(lambda c: jnp.swapaxes(c, 0, 1).reshape((-1,) + c.shape[2:]), carry)

    return Accumulator(init, update, finalize, lambda values: values)


def _builtin(kind, spec, num_microbatches, accumulation_dtype) -> Accumulator:
    if num_microbatches is not None and num_microbatches <= 0:
        raise ValueError(
            f"gradtx.microbatching: num_microbatches={num_microbatches} must be positive."
        )
    if kind is AccumulationType.SUM:
        return _reducing(spec, accumulation_dtype, None, False, jnp.sum)
    if kind is AccumulationType.MEAN:
        _require_float(spec, "MEAN")
        return _reducing(spec, accumulation_dtype, num_microbatches, False, jnp.mean)
    if kind is AccumulationType.RUNNING_MEAN:
        _require_float(spec, "RUNNING_MEAN")
        return _reducing(spec, accumulation_dtype, None, True, jnp.mean)
    if kind is AccumulationType.CONCAT:
        return _concatenating(num_microbatches)
    raise ValueError(
        f"gradtx.microbatching: unknown accumulator {kind!r}; pass an Accumulator, an "
        "AccumulationType, or a tree of them shaped like a prefix of the function's output."
    )


def _resolve(accumulator, spec, num_microbatches, accumulation_dtype) -> Accumulator:
    """One Accumulator for the whole output, from a prefix tree of Accumulators/types."""
    is_acc = lambda x: isinstance(x, Accumulator | AccumulationType)  # noqa: E731
    accs, acc_def = jax.tree.flatten(accumulator, is_leaf=is_acc)
    specs = acc_def.flatten_up_to(spec)
    accs = [
        a if isinstance(a, Accumulator) else _builtin(a, s, num_microbatches, accumulation_dtype)
        for a, s in zip(accs, specs)
    ]

    def each(method, *trees):
        parts = [acc_def.flatten_up_to(t) for t in trees]
        return acc_def.unflatten([getattr(a, method)(*p) for a, *p in zip(accs, *parts)])

    return Accumulator(
        init=lambda value_spec: each("init", value_spec),
        update=lambda carry, value, index: acc_def.unflatten(
            [
                a.update(c, v, index)
                for a, c, v in zip(accs, acc_def.flatten_up_to(carry), acc_def.flatten_up_to(value))
            ]
        ),
        finalize=lambda carry: each("finalize", carry),
        aggregate=lambda values: each("aggregate", values),
    )


def reshape_batch_axis(tree, microbatch_size: int, axis: int = 0):
    """Split each leaf's batch axis of length B into ``(B // microbatch_size, microbatch_size)``.

    Microbatch i holds the examples ``i, i + n, i + 2n, ...`` (n = B // microbatch_size): the
    column-major split, so a sharding of the batch axis carries over to the new
    ``microbatch_size`` axis.
    """

    def leaf(x):
        x = jnp.moveaxis(x, axis, 0)
        n = x.shape[0] // microbatch_size
        x = jnp.swapaxes(x.reshape((microbatch_size, n) + x.shape[1:]), 0, 1)
        return jnp.moveaxis(jnp.moveaxis(x, 1, axis + 1), 0, axis)

    return jax.tree.map(leaf, tree)


def _as_tuple(x):
    return (x,) if isinstance(x, int | str) else tuple(x)


def microbatch(
    fun: Callable,
    argnums: int | Sequence[int],
    microbatch_size: int | None,
    accumulator=AccumulationType.SUM,
    *,
    argnames: str | Sequence[str] = (),
    in_axes: int | Sequence[int] = 0,
    num_real_microbatches=None,
    accumulation_dtype=None,
) -> Callable:
    """``fun`` evaluated one microbatch at a time, its results combined by ``accumulator``.

    batch arguments -> reshape_batch_axis(arg, microbatch_size, axis)
    carry = init;  for i in range(n): carry = update(carry, fun(microbatch i), i)   (fori_loop)
    return finalize(carry)

    Args:
        fun: any function.
        argnums: positions of the arguments with a batch axis.
        microbatch_size: examples per microbatch (must divide the batch size); None returns
            ``fun`` unchanged.
        accumulator: an ``Accumulator``, an ``AccumulationType``, or a tree of them that is a
            prefix of ``fun``'s output.
        argnames: names of keyword arguments with a batch axis.
        in_axes: the batch axis of each of ``argnums`` then ``argnames`` (one int for all).
        num_real_microbatches: run only this many microbatches (an int or a traced scalar).
        accumulation_dtype: the dtype sums and means of floating results are kept in until
            the end: None (at least float32: a bfloat16 result is summed in float32),
            a dtype, or ``"input"`` (the result's own dtype, as optax does).

    Example:
        >>> import jax.numpy as jnp, gradtx
        >>> mb = gradtx.microbatching
        >>> f = mb.microbatch(lambda x: (x + 1, jnp.sum(3 * x)), argnums=0, microbatch_size=2,
        ...                   accumulator=(mb.AccumulationType.CONCAT, mb.AccumulationType.SUM))
        >>> f(jnp.array([1, 2, 3, 4]))
        (Array([2, 3, 4, 5], dtype=int32), Array(30, dtype=int32))
    """
    if microbatch_size is None:
        return fun
    argnums, argnames = _as_tuple(argnums), _as_tuple(argnames)
    axes = (in_axes,) * (len(argnums) + len(argnames)) if isinstance(in_axes, int) else in_axes
    axes = tuple(axes)

    def microbatched(*args, **kwargs):
        batch = [args[i] for i in argnums] + [kwargs[k] for k in argnames]
        sizes = [x.shape[ax] for ax, sub in zip(axes, batch) for x in jax.tree.leaves(sub)]
        if len(set(sizes)) > 1:
            raise ValueError(
                f"gradtx.microbatching.microbatch: the batch arguments have batch axes of "
                f"different sizes {sizes}; they must all be equal."
            )
        size = sizes[0]
        if size % microbatch_size:
            raise ValueError(
                f"gradtx.microbatching.microbatch: the batch size {size} is not divisible by "
                f"microbatch_size={microbatch_size}; pick a divisor of it."
            )
        num = size // microbatch_size
        args, kwargs = list(args), dict(kwargs)
        where = [("a", i) for i in argnums] + [("k", k) for k in argnames]
        for (kind, i), ax in zip(where, axes):
            holder = args if kind == "a" else kwargs
            holder[i] = reshape_batch_axis(holder[i], microbatch_size, ax)

        def on(index):
            a, k = list(args), dict(kwargs)
            for (kind, i), ax in zip(where, axes):
                holder = a if kind == "a" else k
                take = functools.partial(jnp.take, indices=index, axis=ax)
                holder[i] = jax.tree.map(take, holder[i])
            return fun(*a, **k)

        spec = jax.eval_shape(on, 0)
        acc = _resolve(accumulator, spec, num, accumulation_dtype)
        stop = num if num_real_microbatches is None else num_real_microbatches
        carry = jax.lax.fori_loop(0, stop, lambda i, c: acc.update(c, on(i), i), acc.init(spec))
        return acc.finalize(carry)

    return microbatched


def micro_vmap(
    fun: Callable,
    in_axes: int | Sequence[int | None] = 0,
    out_axes: Any = 0,
    *,
    microbatch_size: int | None = None,
    vmap_fn: Callable = jax.vmap,
    accumulator=AccumulationType.CONCAT,
    num_real_microbatches=None,
    accumulation_dtype=None,
) -> Callable:
    """``jax.vmap`` over a batch too large for memory: vmapped one microbatch at a time.

    Within a microbatch the vmapped outputs are combined by ``accumulator.aggregate``, and the
    microbatches' results by the accumulator (CONCAT, the default, gives ``jax.vmap``'s
    result). Keyword arguments are mapped over their leading axis.

    Args:
        fun: the function to map.
        in_axes: the mapped axis of each positional argument (None: not mapped).
        out_axes: must be 0.
        microbatch_size: examples per microbatch (None: one microbatch).
        vmap_fn: a function with ``jax.vmap``'s signature.
        accumulator: how results combine (see ``microbatch``).
        num_real_microbatches: run only this many microbatches.
        accumulation_dtype: see ``microbatch``.

    Example:
        >>> import jax.numpy as jnp, gradtx
        >>> gradtx.microbatching.micro_vmap(lambda x: x**2, microbatch_size=4)(jnp.arange(8))
        Array([ 0,  1,  4,  9, 16, 25, 36, 49], dtype=int32)
    """
    if out_axes != 0:
        raise NotImplementedError(
            f"gradtx.microbatching.micro_vmap: out_axes={out_axes!r}; only 0 is supported (as "
            "in optax). Map with out_axes=0 and move the axis afterwards (jnp.moveaxis)."
        )
    in_axes = (in_axes,) if isinstance(in_axes, int) else tuple(in_axes)

    def mapped_then_aggregated(*args, kwargs):
        out = vmap_fn(fun, in_axes, out_axes)(*args, **kwargs)
        n = jax.tree.leaves(out)[0].shape[0]
        return _resolve(accumulator, out, n, accumulation_dtype).aggregate(out)

    inner = microbatch(
        mapped_then_aggregated,
        argnums=tuple(i for i, ax in enumerate(in_axes) if ax is not None),
        microbatch_size=microbatch_size,
        accumulator=accumulator,
        argnames="kwargs",
        in_axes=tuple(ax for ax in in_axes if ax is not None) + (0,),
        num_real_microbatches=num_real_microbatches,
        accumulation_dtype=accumulation_dtype,
    )
    return lambda *args, **kwargs: inner(*args, kwargs=kwargs)


def micro_grad(
    fun: Callable,
    has_aux: bool = False,
    argnums: int | Sequence[int] = 0,
    *,
    batch_argnums: int | Sequence[int] = 1,
    keep_batch_dim: bool = True,
    microbatch_size: int | None = None,
    accumulator=AccumulationType.SUM,
    transform_fn: Callable = lambda g: g,
    metrics_fn: Callable = lambda g: None,
    num_real_microbatches=None,
    accumulation_dtype=None,
) -> Callable:
    """Per-example gradients, transformed, then combined over the batch in microbatches.

    for each example b:  value_b, g_b = value_and_grad(fun)(..., example b, ...)
    result = accumulate over b of transform_fn(g_b)      (accumulator: SUM by default)
    aux = IndividualOutputs(values=[value_b], metrics=[metrics_fn(g_b)], aux=[aux_b])

    Returns a function with ``fun``'s arguments giving ``(result, aux)``. With
    ``keep_batch_dim`` each example is passed with a batch axis of size 1.

    Args:
        fun: the loss; ``fun(params, batch, ...)`` by default.
        has_aux: ``fun`` returns ``(value, aux)``.
        argnums: the arguments to differentiate.
        batch_argnums: the arguments with a batch axis (axis 0).
        keep_batch_dim: give ``fun`` each example with a leading axis of size 1.
        microbatch_size: examples per microbatch (None: one microbatch).
        accumulator: how the transformed gradients combine.
        transform_fn: applied to each example's gradient (e.g. clipping for DP-SGD).
        metrics_fn: applied to each example's gradient; returned per example.
        num_real_microbatches: run only this many microbatches.
        accumulation_dtype: see ``microbatch``.

    Example:
        >>> import jax.numpy as jnp, gradtx
        >>> loss = lambda w, x, y: 0.5 * jnp.mean((x @ w - y) ** 2)
        >>> (g, g2), aux = gradtx.microbatching.micro_grad(
        ...     loss, batch_argnums=(1, 2),
        ...     accumulator=gradtx.microbatching.AccumulationType.MEAN,
        ...     transform_fn=lambda g: (g, g**2),
        ... )(jnp.zeros(1), jnp.ones((4, 1)), jnp.array([0.0, 2.0, 4.0, 6.0]))
        >>> g, g2
        (Array([-3.], dtype=float32), Array([14.], dtype=float32))
    """
    batch_argnums = _as_tuple(batch_argnums)
    with_aux = fun if has_aux else (lambda *a, **k: (fun(*a, **k), None))
    value_and_grad = jax.value_and_grad(with_aux, argnums, has_aux=True)

    def per_example(*args, **kwargs):
        (value, aux), grad = value_and_grad(*args, **kwargs)
        return transform_fn(grad), IndividualOutputs(value, metrics_fn(grad), aux)

    axes = [None] * (max(batch_argnums) + 1)
    for i in batch_argnums:
        axes[i] = 0
    mapped = micro_vmap(
        per_example,
        in_axes=axes,
        accumulator=(accumulator, AccumulationType.CONCAT),
        microbatch_size=microbatch_size,
        num_real_microbatches=num_real_microbatches,
        accumulation_dtype=accumulation_dtype,
    )
    if not keep_batch_dim:
        return mapped

    def with_batch_dim(*args, **kwargs):
        args = list(args)
        for i in batch_argnums:
            args[i] = jax.tree.map(lambda x: jnp.expand_dims(x, 1), args[i])
        return mapped(*args, **kwargs)

    return with_batch_dim
