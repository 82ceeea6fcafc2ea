"""How the optax dialect is assembled: gradtx's definitions, optax's names, optax's defaults.

A dialect module exports every name of the matching optax module (``_names.NAMES``) that
gradtx defines, taking each from gradtx unchanged unless the dialect's ``_defaults`` modules
override it. An override is a ``def`` with optax's signature whose body is one call of the
gradtx definition with optax's arguments: never a second implementation.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from gradtx.compat.optax import _names

_OVERRIDE_PACKAGE = "gradtx.compat.optax"


def overrides(module: str) -> dict:
    """Every override for optax module ``module`` ("" is the top level), from the ``_defaults_*``
    files of this package; each file lists its overrides per module in ``OVERRIDES``."""
    found: dict = {}
    pkg = importlib.import_module(_OVERRIDE_PACKAGE)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_defaults"):
            mod = importlib.import_module(f"{_OVERRIDE_PACKAGE}.{info.name}")
            for name, fn in getattr(mod, "OVERRIDES", {}).get(module, {}).items():
                if name in found:
                    raise RuntimeError(f"two dialect overrides for {module or 'optax'}.{name}")
                found[name] = fn
    return found


def fill(namespace: dict, module: str, *sources) -> list[str]:
    """Put optax module ``module``'s names into ``namespace``, from the overrides or from the
    first of ``sources`` (gradtx modules) that has each; return the names exported, sorted."""
    over = overrides(module)
    for name, fn in over.items():
        if inspect.isfunction(fn) and not (fn.__doc__ or "").strip():
            fn.__doc__ = (
                f"``{name}`` with optax 0.2.8's signature and defaults: one call of gradtx's "
                f"``{name}``, whose documentation gives the update rule (the migration table "
                "lists what the dialect changes)."
            )
    exported = []
    for name in _names.NAMES[module]:
        if name in over:
            namespace[name] = over[name]
        else:
            for src in sources:
                if hasattr(src, name):
                    namespace[name] = getattr(src, name)
                    break
            else:
                continue
        exported.append(name)
    return sorted(exported)


def missing(module: str) -> list[str]:
    """optax names of ``module`` that the dialect does not have (yet)."""
    try:
        mod = importlib.import_module(f"{_OVERRIDE_PACKAGE}{'.' + module if module else ''}")
    except ModuleNotFoundError:  # a module the dialect has none of yet
        return list(_names.NAMES[module])
    return [n for n in _names.NAMES[module] if not hasattr(mod, n)]
