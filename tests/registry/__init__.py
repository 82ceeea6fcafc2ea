"""One registry of every public transform and optimizer, with capability flags.

Each module of this package holds the entries of one family (``ENTRIES``) and the public
names of that family that are not transforms (``NOT_TRANSFORMS``, name -> what it is), and
how the optax-dialect parity test calls its optax names (``OPTAX_CASES``). This
file gathers every module it finds, so adding a family is adding a file. The contract tests in
``test_contract.py`` run over every entry; ``test_registry_covers_api`` checks that every
public name is either an entry's factory or listed in some ``NOT_TRANSFORMS``. Entry names are
derived from the factory (``factory.__name__``), never typed twice.
"""

from __future__ import annotations

import importlib
import pkgutil

from tests.registry._entry import (
    E,
    Entry,
    OptaxCase,
    example_grads,
    example_params,
    is_state_class,
)

ENTRIES: list[Entry] = []
NOT_TRANSFORMS: dict[str, str] = {}
OPTAX_CASES: dict[str, OptaxCase] = {}
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_"):
        continue
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    ENTRIES.extend(getattr(_module, "ENTRIES", []))
    NOT_TRANSFORMS.update(getattr(_module, "NOT_TRANSFORMS", {}))
    OPTAX_CASES.update(getattr(_module, "OPTAX_CASES", {}))

# Transforms that look at one leaf at a time (a norm or mean per leaf or unit, a mask or label per
# leaf path): on a flat buffer they see one big leaf, so they differ from the tree by design.
PER_LEAF = {
    "clip_by_block_rms",
    "adaptive_grad_clip",
    "centralize",
    "masked",
    "partition",
    "freeze",
    "selective_transform",
    "param_groups",
    # zoo_misc: one noise key per leaf (optax's draw), DoG's distance and gradient norm per leaf
    "add_noise",
    "noisy_sgd",
    "scale_by_distance_over_gradients",
    # one norm, mean or accumulator per leaf (trust ratios, layer-wise and factored moments)
    "scale_by_trust_ratio",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "lamb",
    "lars",
    "fromage",
    "scale_by_novograd",
    "novograd",
    "scale_by_sm3",
    "sm3",
    "scale_by_factored_rms",
    "adafactor",
    # matrix preconditioners: they depend on each leaf's matrix shape
    "muon",
    "scale_by_muon",
    "shampoo",
    "scale_by_shampoo",
    "soap",
    "scale_by_soap",
    "galore",
    "scale_by_galore",
}
# Entries whose params are not a plain tree (lookahead's LookaheadParams): not flattenable as is.
ELEMENTWISE = [
    e for e in ENTRIES if e.factory.__name__ not in PER_LEAF and e.params_fn is None and e.any_tree
]


# Entries whose injected-state sweep or hypergradient disagrees with the reference: each is a
# bug to fix, listed here rather than hidden (empty: the six found after the 0.2 merge are fixed).
OPEN_GAPS: set[str] = set()

__all__ = [
    "E",
    "ELEMENTWISE",
    "ENTRIES",
    "Entry",
    "NOT_TRANSFORMS",
    "OPEN_GAPS",
    "OPTAX_CASES",
    "OptaxCase",
    "PER_LEAF",
    "example_grads",
    "example_params",
    "is_state_class",
]
