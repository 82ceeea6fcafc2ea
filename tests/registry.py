"""One registry of every public transform and optimizer, with capability flags.

The contract tests in ``test_contract.py`` run over every entry; ``test_registry_covers_api``
checks that every public name of gradtx is either here or listed in ``NOT_TRANSFORMS``.
Entry names are derived from the factory (``factory.__name__``), never typed twice.
"""

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

    @property
    def name(self) -> str:
        return self.factory.__name__ + (f"[{self.label}]" if self.label else "")

    def build(self, **override) -> gradtx.GradientTransformation:
        return self.factory(**{**self.kwargs, **override})


E = Entry
ENTRIES: list[Entry] = [
    # contract
    E(gradtx.identity, {}),
    E(gradtx.stateless, {"fn": lambda u, p: jax.tree.map(lambda g: 2 * g, u)}),
    E(gradtx.chain, {}, label="empty"),
    # scaling
    E(gradtx.scale, {"step_size": 0.5}, sweep="step_size"),
    E(gradtx.scale_by_learning_rate, {"learning_rate": 0.1}, sweep="learning_rate"),
    # momentum
    E(gradtx.trace, {"decay": 0.9}, sweep="decay", sweep_values=(0.0, 0.5, 0.9)),
    E(gradtx.trace, {"decay": 0.9, "nesterov": True}, sweep="decay", label="nesterov"),
    E(gradtx.ema, {"decay": 0.9}, sweep="decay", sweep_values=(0.5, 0.9, 0.99)),
    # adaptive
    E(gradtx.scale_by_rss, {}, sweep="eps", sweep_values=(1e-10, 1e-3, 1e-1)),
    E(gradtx.scale_by_rms, {}, sweep="decay", sweep_values=(0.9, 0.99, 0.5)),
    E(
        gradtx.scale_by_rms,
        {"centered": True, "bias_correction": True, "eps_in_sqrt": True, "eps": 1e-2},
        sweep="decay",
        sweep_values=(0.9, 0.99, 0.5),
        label="centered",
    ),
    E(gradtx.scale_by_adam, {}, sweep="b1", sweep_values=(0.0, 0.5, 0.9)),
    E(
        gradtx.scale_by_adam,
        {"nesterov": True},
        sweep="b2",
        sweep_values=(0.9, 0.99),
        label="nadam",
    ),
    # decay
    E(gradtx.add_decayed_weights, {"weight_decay": 0.1}, sweep="weight_decay", needs_params=True),
    E(gradtx.add_l2_penalty, {"weight_decay": 0.1}, sweep="weight_decay", needs_params=True),
    # clipping
    E(gradtx.clip, {"max_delta": 0.1}, sweep="max_delta"),
    E(gradtx.clip_by_global_norm, {"max_norm": 0.5}, sweep="max_norm"),
    # optimizers
    E(gradtx.sgd, {"learning_rate": 0.1}, sweep="learning_rate"),
    E(gradtx.sgd, {"learning_rate": 0.1, "momentum": 0.9}, sweep="momentum", label="momentum"),
    E(
        gradtx.sgd,
        {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
        sweep="learning_rate",
        label="nesterov",
    ),
    E(gradtx.adagrad, {"learning_rate": 0.1}, sweep="learning_rate"),
    E(gradtx.rmsprop, {"learning_rate": 0.01}, sweep="learning_rate"),
    E(
        gradtx.rmsprop,
        {"learning_rate": 0.01, "centered": True, "momentum": 0.9},
        sweep="decay",
        sweep_values=(0.9, 0.99),
        label="centered-momentum",
    ),
    E(gradtx.adam, {"learning_rate": 0.01}, sweep="learning_rate"),
    E(gradtx.adamw, {"learning_rate": 0.01}, sweep="weight_decay", needs_params=True),
]

# Public names that are not gradient transformations, with what they are (tested elsewhere).
NOT_TRANSFORMS: dict[str, str] = {
    "GradientTransformation": "the contract type",
    "apply_updates": "contract helper",
    "FlatLayout": "the flat parameter layout's type (tests/test_flat.py)",
    "flat_layout": "builds a flat parameter layout (tests/test_flat.py)",
    "fused_updates": "forces the single-pass update formulation (tests/test_fused.py)",
    "global_norm": "tree helper",
    "safe_increment": "tree helper",
    "tree_bias_correction": "tree helper",
    "tree_update_moment": "tree helper",
    "tree_zeros_like": "tree helper",
}


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
