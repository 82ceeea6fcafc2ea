"""Registry entries for DP-SGD (gradtx.contrib.dpsgd and its aggregation transform).

Both take per-example gradients (a leading batch axis on every leaf); ``grads_fn`` makes three
examples from each gradient the tests feed: one inside the clipping bound, two clipped. The
entries have no ``sweep`` because test_hyperparams' injected-state sweep feeds raw gradients to
the unwrapped factory; tests/test_privacy.py vmaps over noise_multiplier and l2_norm_clip.
The key is uint32 key data, which the contract's bf16 check does not admit among state
dtypes; test_privacy checks bf16. The noisy entries draw one key per leaf, so a flat layout
(test_flat) draws other noise: they are kept to the example tree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import gradtx.contrib as gc
from tests.registry._entry import E


def per_example(grads):
    """Three examples per gradient: 0.05 * g (inside a bound of 1), g and -2 * g (clipped)."""
    return jax.tree.map(lambda g: jnp.stack([0.05 * g, g, -2.0 * g]), grads)


_DP = {"grads_fn": per_example, "bf16_ok": False}

ENTRIES = [
    E(
        gc.dpsgd,
        {"learning_rate": 0.1, "l2_norm_clip": 1.0, "noise_multiplier": 0.0, "seed": 0},
        label="exact",
        **_DP,
    ),
    E(
        gc.dpsgd,
        {
            "learning_rate": 0.1,
            "l2_norm_clip": 1.0,
            "noise_multiplier": 1.1,
            "seed": 5,
            "momentum": 0.9,
            "nesterov": True,
        },
        label="noisy",
        any_tree=False,
        **_DP,
    ),
    E(
        gc.differentially_private_aggregate,
        {"l2_norm_clip": 1.0, "noise_multiplier": 0.5, "key": 3},
        any_tree=False,
        **_DP,
    ),
]

NOT_TRANSFORMS = {
    "per_example_layer_norm_clip": "clips per-example gradients layer by layer and sums them "
    "(a pure function; tests/test_privacy.py)",
    "multi_normal": "a diagonal normal distribution (tests/test_optax_names.py)",
    "nnls": "linear algebra: non-negative least squares (tests/test_optax_names.py)",
    "ShouldSkipUpdateFunction": "the Protocol type of MultiSteps' should_skip_update_fn",
}
