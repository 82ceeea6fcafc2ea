"""Performance wrappers: pack_leaves (packed optimizer state, params left as a tree)."""

from __future__ import annotations

import gradtx
from tests.registry._entry import E

ENTRIES = [
    # max_leaf_size=4 packs the example's b (4) and s (1) into one buffer and keeps w and k
    E(gradtx.pack_leaves, {"inner": gradtx.adam(0.01), "max_leaf_size": 4}),
    E(
        gradtx.pack_leaves,
        {
            "inner": gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(0.01)),
            "max_leaf_size": 100,
        },
        needs_params=True,
        label="all packed",
    ),
]
NOT_TRANSFORMS = {
    "PackLeavesState": "the state of pack_leaves (the inner state on the packed params)",
    "enable_fast_cpu": "sets XLA's CPU multi-output fusion flag before jax starts",
}
