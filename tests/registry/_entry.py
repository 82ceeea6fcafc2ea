"""The registry's entry type and the example tree every entry runs on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import gradtx


@dataclasses.dataclass(frozen=True)
class Entry:
    factory: Callable[..., gradtx.GradientTransformation]
    kwargs: dict[str, Any]
    sweep: str | None = None  # a numeric hyperparameter that vmap may batch over
    sweep_values: tuple = (0.01, 0.05, 0.1)
    needs_params: bool = False  # update needs params
    extra_args: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. loss=...
    bf16_ok: bool = True
    label: str = ""  # tells apart two entries of one factory
    # maps the example params (a plain tree) to what init/update take, e.g. LookaheadParams;
    # gradients stay shaped like the plain tree
    params_fn: Callable[[Any], Any] | None = None
    differentiable: bool = True  # the loss after K steps is differentiable in learning_rate etc.
    wraps: Callable | None = None  # for wrappers of factories: build = factory(wraps)(**kwargs)
    args: tuple = ()  # positional arguments, for factories taking *args (chain, named_chain)
    # some slots of bf16 params are kept in float32 by design (e.g. MultiSteps' accumulator)
    float32_slots: bool = False
    complex_ok: bool = False  # complex64 params and gradients are supported (property tests)
    any_tree: bool = True  # runs on any parameter tree (False: it names the example's keys)
    # maps the gradients every test feeds (shaped like the params) to what update takes, e.g.
    # per-example gradients with a leading batch axis (DP-SGD); build() applies it in front of
    # the transform's update, so every test that builds the entry feeds it that form
    grads_fn: Callable[[Any], Any] | None = None

    @property
    def name(self) -> str:
        inner = self.wraps.__name__ if self.wraps is not None else ""
        label = ",".join(x for x in (inner, self.label) if x)
        return self.factory.__name__ + (f"[{label}]" if label else "")

    def params(self, dtype=jnp.float32):
        """The example params in the form this entry's init and update take."""
        plain = example_params(dtype)
        return plain if self.params_fn is None else self.params_fn(plain)

    def wrap(self, plain):
        return plain if self.params_fn is None else self.params_fn(plain)

    def build(self, **override) -> gradtx.GradientTransformation:
        kwargs = {**self.kwargs, **override}
        if self.wraps is not None:
            tx = self.factory(self.wraps)(**kwargs)
        else:
            tx = self.factory(*self.args, **kwargs)
        if self.grads_fn is None:
            return tx

        def update(updates, state, params=None, **extra_args):
            return tx.update(self.grads_fn(updates), state, params, **extra_args)

        return gradtx.GradientTransformation(tx.init, update)


E = Entry


def is_state_class(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, tuple) and obj.__name__.endswith("State")


def example_params(dtype=jnp.float32):
    """A nested tree with mixed shapes and a scalar leaf."""
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    return {
        "w": jax.random.normal(k[0], (3, 4), dtype),
        "b": jax.random.normal(k[1], (4,), dtype),
        "block": {"s": jnp.asarray(0.7, dtype), "k": jax.random.normal(k[2], (2, 3, 2), dtype)},
    }


def example_grads(step: int, dtype=jnp.float32):
    """Deterministic gradients for step ``step``, shaped like ``example_params``."""
    key = jax.random.fold_in(jax.random.PRNGKey(1), step)
    params = example_params(dtype)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(
        treedef, [jax.random.normal(kk, x.shape, dtype) for kk, x in zip(keys, leaves)]
    )


@dataclasses.dataclass(frozen=True)
class OptaxCase:
    """How the optax-dialect parity test calls one name, in optax and in the dialect alike.

    A registry module lists its cases in ``OPTAX_CASES: dict[str, OptaxCase]``, keyed by the
    optax path of the name: ``"adamax"`` for the top level, ``"contrib:muon"`` for a submodule.
    The test builds ``optax.<path>(*args, **kwargs)`` and ``gradtx.compat.optax.<path>(...)``,
    runs both ``steps`` steps (6 by default) on a small float64 tree (params passed to update)
    and compares every step's updates. ``kind="schedule"`` compares values at counts 0..steps
    (0..10 by default) instead.
    ``kwargs`` may be a function ``library -> kwargs`` (library: optax or the dialect), for
    arguments that are themselves transforms of that library.
    """

    kwargs: dict[str, Any] | Callable[[Any], dict[str, Any]] = dataclasses.field(
        default_factory=dict
    )
    args: tuple = ()
    extra_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    kind: str = "transform"  # or "schedule"
    scalar_leaf: bool = True  # False where optax fails on a 0-d leaf (optax's sm3)
    float32: bool = True  # False for a case whose arguments name float64 (run under x64 only)
    steps: int | None = None  # None: 6 steps of a transform, counts 0..10 of a schedule
    rtol: float = 1e-10
    atol: float = 1e-12
