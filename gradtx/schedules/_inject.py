"""Hyperparameters kept in the optimizer state, so they change without recompiling."""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, call_update
from gradtx._core.trees import safe_increment


class Hyperparams(dict):
    """The ``hyperparams`` dict of an injected state, which remembers each value's valid range.

    A plain ``{name: array}`` dict to read and index, and a pytree whose children are the
    values (keys sorted, as a dict). Its static part also holds the range checks the factory
    ran on each hyperparameter when the transform was built, so ``tree_set`` applies the same
    checks to a new Python, NumPy or concrete JAX value (a value inside jit or vmap is a tracer
    and passes unchecked, as at build time).
    """

    def __init__(self, values=(), *, checks=()):
        super().__init__(values)
        self.checks = checks  # ((name, where, ((key, value), ...)), ...): check_number specs

    def check_value(self, name: str, value, where: str) -> None:
        """Run the build-time checks of hyperparameter ``name`` on ``value``."""
        for check_name, check_where, spec in self.checks:
            if check_name == name:
                _checks.check_number(
                    f"{where} (checked as {check_where} checks it)", name, value, **dict(spec)
                )

    def __repr__(self) -> str:
        return f"Hyperparams({dict.__repr__(self)})"


def _flatten_hyperparams(h):
    keys = tuple(sorted(h))
    return [(jax.tree_util.DictKey(k), h[k]) for k in keys], (keys, h.checks)


def _unflatten_hyperparams(aux, children):
    keys, checks = aux
    return Hyperparams(zip(keys, children), checks=checks)


jax.tree_util.register_pytree_with_keys(Hyperparams, _flatten_hyperparams, _unflatten_hyperparams)


def _build_checks(factory, static, values):
    """The check_number specs the factory applies to each hyperparameter, by name.

    The factory is built once more with each value replaced by a fresh array (so a check is
    matched to the hyperparameter by identity, whatever name the factory checks it under, e.g.
    sgd's ``momentum`` as trace's ``decay``). Checks the factory cannot attribute are dropped.
    """
    markers = {k: jnp.array(v, copy=True) for k, v in values.items()}
    try:
        with _checks.recording() as calls:
            factory(**static, **markers)
    except Exception:  # the factory did not accept arrays here; no checks to remember
        return ()
    out = []
    for check_where, _, value, spec in calls:
        for k, m in markers.items():
            if value is m:
                out.append((k, check_where, tuple(sorted(spec.items()))))
    return tuple(out)


class InjectHyperparamsState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken, the argument of the schedules
    hyperparams: dict[str, jax.Array]  # name -> scalar (or array) value used by the last step
    inner_state: Any  # the state of the wrapped transform


def _is_numeric(x) -> bool:
    if isinstance(x, bool | np.bool_):
        return False
    if isinstance(x, numbers.Number):
        return True
    if isinstance(x, jax.Array | np.ndarray | np.generic):
        return jnp.issubdtype(jnp.result_type(x), jnp.number)
    return False


def _is_schedule(x) -> bool:
    return callable(x) and not isinstance(x, type | np.dtype) and not _is_numeric(x)


def _stored(x, float_dtype):
    """A hyperparameter value as the array kept in the state (its documented dtype)."""
    if isinstance(x, jax.Array | np.ndarray | np.generic):
        return jnp.asarray(x)
    if isinstance(x, numbers.Integral):
        return jnp.asarray(x, jnp.int32)
    return jnp.asarray(x, float_dtype)


def _bind_positional(factory, args, kwargs, where) -> dict:
    """Name positional arguments through ``factory``'s signature, as optax does."""
    try:
        bound = inspect.signature(factory).bind_partial(*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"{where}: cannot bind the arguments {args!r} ({err}).") from err
    except ValueError as err:  # no signature (a builtin or C callable)
        raise TypeError(
            f"{where}: {args!r} were passed by position, but the factory's signature cannot be "
            "read; pass every argument by keyword (e.g. learning_rate=0.1)."
        ) from err
    named = dict(bound.arguments)
    for name, param in inspect.signature(factory).parameters.items():
        if param.kind is inspect.Parameter.VAR_POSITIONAL and name in named:
            raise TypeError(f"{where}: the factory takes *{name}; pass arguments by keyword.")
        if param.kind is inspect.Parameter.VAR_KEYWORD and name in named:
            named.update(named.pop(name))
    return named


def inject_hyperparams(
    factory: Callable[..., GradientTransformation],
    *,
    static_args: Sequence[str] = (),
    hyperparam_dtype=None,
) -> Callable[..., GradientTransformation]:
    """Wrap a transform factory so its numeric hyperparameters live in the state.

    ``inject_hyperparams(adam)(learning_rate=1e-3, b1=0.9)`` behaves like
    ``adam(learning_rate=1e-3, b1=0.9)``, but its state is
    ``InjectHyperparamsState(count, hyperparams, inner_state)`` with
    ``hyperparams = {"learning_rate": ..., "b1": ...}``. Change a value with
    ``gradtx.tree_set(state, learning_rate=3e-4)``: the jitted step is not recompiled.

    Each keyword argument is sorted, by its type only, into
    - a hyperparameter (Python int or float, numeric NumPy or JAX scalar, tracer): stored as a
      scalar array; Python floats as float32 (or ``hyperparam_dtype``), Python ints as int32,
      arrays keep their dtype. Python and NumPy numbers are range-checked now by the factory,
      and ``tree_set`` later runs the same checks on new values. JAX arrays pass unchecked:
      keep them float32 (a bfloat16 array holding 0.999 *is* 1.0); ``1 - b2`` and the bias
      correction are computed in float32 whatever the array's dtype;
    - a schedule (any other callable): evaluated at ``count`` on each step; the value used is
      stored under the same name (float32, or ``hyperparam_dtype``), so it can be read but
      setting it lasts only until the next step recomputes it;
    - static (bool, str, None, dtypes, transforms, trees, every name in ``static_args`` and in
      the factory's own ``factory.static_args``, where it names arguments that set shapes,
      such as ``mechanize``'s ``num_betas``): passed to ``factory`` unchanged. Name
      non-schedule callables (a ``mask`` function) here.

    On every ``init`` and ``update`` the inner transform is rebuilt, at trace time only, by
    ``factory(**static, **hyperparams)``; no signature is inspected. The transform casts each
    value to each parameter's dtype and computes ``1 - b2`` and bias corrections in at least
    float32, so float32 hyperparameters keep a bfloat16 model in bfloat16 without rounding
    b2 = 0.999 to 1.

    Args:
        factory: a function returning a GradientTransformation (``gradtx.adam``, ...).
        static_args: names of keyword arguments never to store (non-numeric or
            Python-int-only arguments, callables that are not schedules).
        hyperparam_dtype: the dtype of Python floats and schedule values (float32 or
            float64; narrower types would round b2 = 0.999 to 1).

    Returns:
        ``wrapped(*args, **kwargs) -> GradientTransformation``. Positional arguments are
        named through ``factory``'s signature (as optax does); keywords need no signature.
    """
    fname = getattr(factory, "__name__", repr(factory))
    where = f"gradtx.inject_hyperparams({fname})"
    float_dtype = jnp.dtype(hyperparam_dtype or jnp.float32)
    if not jnp.issubdtype(float_dtype, jnp.floating) or float_dtype.itemsize < 4:
        raise ValueError(
            f"{where}: hyperparam_dtype={float_dtype} is not float32 or float64. Narrower "
            "floats round decays such as b2=0.999 to 1.0 (NaN bias correction); the transform "
            "already casts each value to each parameter's dtype where it is used."
        )
    # a factory may name arguments that can never be injected (shapes: mechanize's num_betas)
    static_names = frozenset(static_args) | frozenset(getattr(factory, "static_args", ()))

    def wrapped(*args, **kwargs) -> GradientTransformation:
        if args:
            kwargs = _bind_positional(factory, args, kwargs, where)
        static = {k: v for k, v in kwargs.items() if k in static_names or not _is_numeric(v)}
        schedules = {k: v for k, v in static.items() if k not in static_names and _is_schedule(v)}
        static = {k: v for k, v in static.items() if k not in schedules}
        numbers_ = {k: v for k, v in kwargs.items() if k not in static and k not in schedules}
        for k, v in numbers_.items():
            _checks.check_scalar(where, k, v)
        factory(**kwargs)  # validates Python and NumPy numbers now, with the factory's errors
        checks = _build_checks(factory, static, {**numbers_, **dict.fromkeys(schedules, 0.0)})

        def evaluate(name, schedule, count):
            try:
                value = jnp.asarray(schedule(count)).astype(float_dtype)
            except Exception as err:
                raise TypeError(
                    f"{where}: {name}={schedule!r} was taken for a schedule (count -> number) "
                    f"but calling it with the step count did not give a number ({err}). If it "
                    f"is not a schedule, pass static_args=({name!r},)."
                ) from err
            _checks.check_scalar(where, f"the value of the schedule {name}={schedule!r}", value)
            return value

        def current(hyperparams, count):
            values = {**hyperparams, **{k: evaluate(k, s, count) for k, s in schedules.items()}}
            return Hyperparams(values, checks=checks)

        def init(params):
            count = jnp.zeros((), jnp.int32)
            hyperparams = current({k: _stored(v, float_dtype) for k, v in numbers_.items()}, count)
            inner_state = factory(**static, **hyperparams).init(params)
            return InjectHyperparamsState(count, hyperparams, inner_state)

        def update(updates, state, params=None, **extra_args):
            hyperparams = current(state.hyperparams, state.count)
            inner = factory(**static, **hyperparams)
            updates, inner = call_update(inner, updates, state.inner_state, params, extra_args)
            return updates, InjectHyperparamsState(safe_increment(state.count), hyperparams, inner)

        return GradientTransformation(init, update)

    wrapped.__name__ = f"injected_{fname}"
    wrapped.__doc__ = f"{fname} with its numeric hyperparameters kept in the state."
    return wrapped
