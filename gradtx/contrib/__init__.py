"""gradtx.contrib: what optax keeps in ``optax.contrib``.

Every name here is also ``gradtx.<name>`` where optax has it at its top level.
"""

from gradtx.contrib._galore import (
    GaLoreDimensionNumbers,
    GaLoreState,
    galore,
    scale_by_galore,
)
from gradtx.contrib._muon import (
    MuonDimensionNumbers,
    MuonState,
    muon,
    muon_bytes_moved,
    scale_by_muon,
)
from gradtx.contrib._plateau import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)
from gradtx.contrib._shampoo import (
    ShampooLeaf,
    ShampooState,
    scale_by_shampoo,
    shampoo,
)
from gradtx.contrib._soap import (
    SoapLeaf,
    SoapState,
    scale_by_soap,
    soap,
)

__all__ = [
    "GaLoreDimensionNumbers",
    "GaLoreState",
    "MuonDimensionNumbers",
    "MuonState",
    "ReduceLROnPlateauState",
    "ShampooLeaf",
    "ShampooState",
    "SoapLeaf",
    "SoapState",
    "galore",
    "muon",
    "muon_bytes_moved",
    "reduce_on_plateau",
    "scale_by_galore",
    "scale_by_muon",
    "scale_by_shampoo",
    "scale_by_soap",
    "shampoo",
    "soap",
]
