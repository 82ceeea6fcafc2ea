"""Registry entries for the matrix-preconditioned optimizers in gradtx.contrib (Muon)."""

from __future__ import annotations

import jax

from gradtx.contrib import (
    GaLoreDimensionNumbers,
    galore,
    muon,
    scale_by_galore,
    scale_by_muon,
    scale_by_shampoo,
    scale_by_soap,
    shampoo,
    soap,
)
from gradtx.contrib import MuonDimensionNumbers as D
from tests.registry._entry import E, OptaxCase

# every leaf of the example tree as a matrix: the vector as 1 x 4, the scalar as 1 x 1, the
# (2, 3, 2) tensor as two 3 x 2 slices
ALL_MATRICES = {"w": D(), "b": D((), 0), "block": {"s": D((), ()), "k": D(1, 2)}}


def _tensor_dims(params):
    """3-D leaves as (fan_in, everything else), matrices as they are, others to AdamW."""
    rule = {2: D(), 3: D(0, (1, 2))}
    return jax.tree.map(lambda x: rule.get(x.ndim), params)


# block_size and rank shape the state (Python ints), so the entries keep their defaults:
# inject_hyperparams would store them as arrays
ENTRIES = [
    E(
        muon,
        {"learning_rate": 0.02},
        sweep="beta",
        sweep_values=(0.5, 0.9, 0.95),
        needs_params=True,
    ),
    E(
        muon,
        {
            "learning_rate": 0.02,
            "muon_weight_dimension_numbers": _tensor_dims,
            "bias_correction": True,
            "eps_clamp": False,
            "consistent_rms": 0.2,
            "batch_same_shape": True,
        },
        sweep="weight_decay",
        sweep_values=(0.0, 0.1, 0.2),
        needs_params=True,
        label="tensor-optax-rules",
    ),
    # no sweep here: vmap's batched matmuls round differently, and unscaled Newton-Schulz
    # outputs of order 1 then differ from the unbatched ones by ~2e-5 in float32
    E(scale_by_muon, {"weight_dimension_numbers": ALL_MATRICES}, any_tree=False),
    E(
        scale_by_muon,
        {"weight_dimension_numbers": ALL_MATRICES, "nesterov": False, "adaptive": True},
        any_tree=False,
        sweep="eps",
        sweep_values=(1e-8, 1e-7, 1e-3),
        label="adaptive",
    ),
]

NOT_TRANSFORMS = {
    "MuonDimensionNumbers": "a spec type: which axes of a leaf Muon reads as rows and columns",
    "muon_bytes_moved": "a function: the bytes a jitted Muon step moves between devices",
}

# optax.contrib.scale_by_muon rejects the parity tree's vector and scalar (rank < 2), so it is
# compared with optax in tests/test_muon.py on matrices instead
OPTAX_CASES = {
    "contrib:muon": OptaxCase(kwargs={"learning_rate": 0.05, "weight_decay": 0.01}),
    "contrib:muon#rms": OptaxCase(
        kwargs={"learning_rate": 0.05, "beta": 0.9, "consistent_rms": 0.2, "adaptive": True}
    ),
}

# Shampoo: statistics stay float32 for bf16 params (bf16_ok=False: the contract wants bf16
# slots), and eigh of the degenerate early statistics (eps * I + rank one) has no derivative
ENTRIES += [
    E(
        shampoo,
        {"learning_rate": 0.01, "precondition_frequency": 2},
        sweep="graft_b1",
        sweep_values=(0.0, 0.5, 0.9),
        bf16_ok=False,
        differentiable=False,
    ),
    E(
        scale_by_shampoo,
        {"precondition_frequency": 3},
        sweep="beta2",
        sweep_values=(0.9, 0.99, 1.0),
        bf16_ok=False,
        differentiable=False,
    ),
]
NOT_TRANSFORMS["ShampooLeaf"] = "the per-matrix part of ShampooState (statistics and roots)"

# GaLore: eigen/SVD projectors are not differentiable at the degenerate early steps
ENTRIES += [
    E(
        galore,
        {"learning_rate": 0.01, "update_proj_gap": 2},
        sweep="weight_decay",
        sweep_values=(0.0, 0.1, 0.2),
        needs_params=True,
        differentiable=False,
    ),
    E(
        scale_by_galore,
        {
            "update_proj_gap": 3,
            "weight_dimension_numbers": {
                "w": GaLoreDimensionNumbers(),
                "b": None,
                "block": {"s": None, "k": GaLoreDimensionNumbers(0, (1, 2))},
            },
        },
        sweep="scale",
        sweep_values=(0.25, 0.5, 1.0),
        differentiable=False,
        any_tree=False,
    ),
]
NOT_TRANSFORMS["GaLoreDimensionNumbers"] = "a spec type: which axes GaLore reads as a matrix"
OPTAX_CASES["contrib:galore"] = OptaxCase(
    kwargs={"learning_rate": 0.05, "rank": 1, "update_proj_gap": 3, "weight_decay": 0.01}
)
OPTAX_CASES["contrib:scale_by_galore"] = OptaxCase(kwargs={"rank": 1, "update_proj_gap": 4})

# SOAP: float32 statistics and eigenvectors for bf16 params; eigh is not differentiated
ENTRIES += [
    E(
        soap,
        {"learning_rate": 0.01, "precondition_frequency": 2},
        sweep="b1",
        sweep_values=(0.0, 0.5, 0.9),
        needs_params=True,
        bf16_ok=False,
        differentiable=False,
    ),
    # no sweep: vmap's batched eigh and matmuls round differently (~3e-5 on unscaled steps)
    E(
        scale_by_soap,
        {"precondition_frequency": 1},
        bf16_ok=False,
        differentiable=False,
    ),
]
NOT_TRANSFORMS["SoapLeaf"] = "the per-leaf part of SoapState (moments, statistics, bases)"
