"""The torch dialect: torch.optim 2.13's optimizers with torch's names, arguments and defaults.

``import gradtx.compat.torch as optim`` then ``optim.AdamW(lr=3e-4, weight_decay=0.1)`` is a
gradtx ``GradientTransformation`` with torch.optim.AdamW's arithmetic. Each optimizer is one
gradtx alias or chain of transforms with the options that reproduce torch (see
``docs/guide/torch.md``, which lists every difference and the largest error seen against torch
2.13 in float64). ``load_optimizer_state`` brings a torch ``optimizer.state_dict()`` (or its
``.npz`` export) into the state of the matching optimizer, so a run can continue in JAX. The
schedulers are in ``gradtx.compat.torch.lr_scheduler``.
"""

from gradtx.compat.torch._checkpoint import export_torch_optimizer_state, load_optimizer_state
from gradtx.compat.torch._optim import (
    ASGD,
    LBFGS,
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Muon,
    NAdam,
    RAdam,
    RMSprop,
    Rprop,
)

__all__ = [
    "ASGD",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Muon",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Rprop",
    "export_torch_optimizer_state",
    "load_optimizer_state",
]
