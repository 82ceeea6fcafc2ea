"""Monitoring: record statistics of the updates in the state, readable by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation, call_update, chain, stateless
from gradtx._core.trees import acc_dtype, global_norm
from gradtx.transforms._momentum import ema


def _zeros_shaped_like(abstract):
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), abstract)


def _widest(values) -> jax.Array:
    """Stack scalars of possibly different float dtypes in the widest of them."""
    dtype = max((v.dtype for v in values), key=lambda d: jnp.dtype(d).itemsize)
    return jnp.stack([v.astype(dtype) for v in values])


def _max_abs(updates) -> jax.Array:
    """The largest absolute value over every leaf (0 for an empty tree), in float32 at least."""
    leaves = [x for x in jax.tree.leaves(updates) if x is not None and jnp.size(x)]
    peaks = [jnp.max(jnp.abs(x)).astype(acc_dtype(x.dtype)) for x in leaves]
    return jnp.max(_widest(peaks)) if peaks else jnp.zeros((), jnp.float32)


def _mean(updates) -> jax.Array:
    """The mean of every entry of every leaf (0 for an empty tree), in float32 at least."""
    leaves = [x for x in jax.tree.leaves(updates) if x is not None]
    n = sum(int(jnp.size(x)) for x in leaves)
    sums = [jnp.sum(x.astype(acc_dtype(x.dtype))) for x in leaves]
    return jnp.sum(_widest(sums)) / max(n, 1) if sums else jnp.zeros((), jnp.float32)


_DEFAULT_MEASURES = {"global_norm": global_norm, "max_abs": _max_abs, "mean": _mean}


class SnapshotState(NamedTuple):
    measurement: dict  # {measure_name: measure(updates)} at the last step (zeros before it)


def snapshot(measure_name: str, measure: Callable) -> GradientTransformation:
    """Store ``measure(updates)`` in the state under ``measure_name``; updates pass unchanged.

    measurement[measure_name] = measure(updates)

    Read it with ``gradtx.get_measurement(state, measure_name)`` from the state of any chain
    the snapshot sits in.
    """

    def init(params):
        return SnapshotState({measure_name: _zeros_shaped_like(jax.eval_shape(measure, params))})

    def update(updates, state, params=None, **extra_args):
        del state, params, extra_args
        return updates, SnapshotState({measure_name: measure(updates)})

    return GradientTransformation(init, update)


class MonitorState(NamedTuple):
    measurements: dict  # {name: measurement} at the last step (zeros before the first)
    measure_states: tuple  # the state of each stateful measure, in the order of the names


def monitor(measures: dict[str, Any] | None = None) -> GradientTransformation:
    """Record several measurements of the updates, plain or stateful; updates pass unchanged.

    measurements[name] = measure(updates)                 (a callable)
    measurements[name], measure_state = measure.update(updates, measure_state, params)
                                                          (a transform, e.g. measure_with_ema)

    Args:
        measures: name -> callable or transform. Defaults to ``global_norm`` (the L2 norm of
            the whole tree), ``max_abs`` (the largest absolute entry) and ``mean``. Put one
            monitor before and one after a transform to see its input and its output.

    Example:
        >>> import jax.numpy as jnp, gradtx
        >>> tx = gradtx.chain(
        ...     gradtx.monitor(),
        ...     gradtx.clip_by_global_norm(1.0),
        ...     gradtx.monitor({"clipped": gradtx.global_norm}),
        ... )
        >>> state = tx.init({"w": jnp.zeros(2)})
        >>> _, state = tx.update({"w": jnp.array([3.0, -4.0])}, state)
        >>> [float(gradtx.get_measurement(state, n)) for n in ("global_norm", "max_abs", "clipped")]
        [5.0, 4.0, 1.0]
    """
    measures = dict(_DEFAULT_MEASURES if measures is None else measures)
    names = tuple(measures)
    txs = {
        n: (m if hasattr(m, "update") else stateless(lambda u, p, m=m: m(u)))
        for n, m in measures.items()
    }

    def init(params):
        states = tuple(txs[n].init(params) for n in names)

        def measure_all(p, s):
            return {n: txs[n].update(p, si, p)[0] for n, si in zip(names, s)}

        return MonitorState(_zeros_shaped_like(jax.eval_shape(measure_all, params, states)), states)

    def update(updates, state, params=None, **extra_args):
        results = {}
        new_states = []
        for n, s in zip(names, state.measure_states):
            results[n], s = call_update(txs[n], updates, s, params, extra_args)
            new_states.append(s)
        return updates, MonitorState(results, tuple(new_states))

    return GradientTransformation(init, update)


def measure_with_ema(
    measure: Callable, decay, debias: bool = True, accumulator_dtype=None
) -> GradientTransformation:
    """A stateful measure for ``monitor``: the moving average of ``measure(updates)``.

    m = measure(updates)
    ema = decay * ema + (1 - decay) * m; measurement = ema / (1 - decay ** count) if debias
    """
    base = ema(decay, debias, accumulator_dtype=accumulator_dtype)
    averaged = base._replace(init=lambda params: base.init(measure(params)))
    return chain(stateless(lambda u, p: measure(u)), averaged)


def get_measurement(state, name: str):
    """Find the measurement called ``name`` in a (possibly nested) optimizer state.

    Looks through every ``SnapshotState`` and ``MonitorState`` inside ``state``.
    """
    found = []
    available = []

    def visit(node):
        if isinstance(node, SnapshotState | MonitorState):
            table = node[0]
            available.extend(table)
            if name in table:
                found.append(table[name])
        if isinstance(node, tuple | list):
            for child in node:
                visit(child)
        elif isinstance(node, dict):
            for child in node.values():
                visit(child)

    visit(state)
    if len(found) != 1:
        what = "no measurement" if not found else f"{len(found)} measurements"
        raise KeyError(
            f"gradtx.get_measurement: {what} called {name!r} in the state; the measurements "
            f"there are {sorted(set(available))}. Give each snapshot or monitor measure a "
            "unique name."
        )
    return found[0]
