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

__all__ = [
    "E",
    "ENTRIES",
    "Entry",
    "NOT_TRANSFORMS",
    "OPTAX_CASES",
    "OptaxCase",
    "example_grads",
    "example_params",
    "is_state_class",
]
