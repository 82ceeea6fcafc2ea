"""gradtx.tree_utils: optax's older ``tree_*`` spellings of the ``gradtx.tree`` functions.

``tree_utils.tree_add is gradtx.tree.add``, and so on for every name: nothing is defined twice.
"""

import dataclasses as _dataclasses

from gradtx import tree as _tree


@_dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """optax's path entry for a NamedTuple field: the tuple's class name and the field name.

    gradtx's look-ups return jax's own ``GetAttrKey`` entries; this type exists so that code
    naming optax's type keeps importing.
    """

    tuple_name: str
    name: str


__all__ = ["NamedTupleKey"] + [f"tree_{name}" for name in _tree.__all__]
globals().update({f"tree_{name}": getattr(_tree, name) for name in _tree.__all__})
