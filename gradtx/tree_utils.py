"""gradtx.tree_utils: optax's older ``tree_*`` spellings of the ``gradtx.tree`` functions.

``tree_utils.tree_add is gradtx.tree.add``, and so on for every name: nothing is defined twice.
"""

import jax as _jax

from gradtx import tree as _tree

NamedTupleKey = _jax.tree_util.GetAttrKey  # optax's key type for NamedTuple fields

__all__ = ["NamedTupleKey"] + [f"tree_{name}" for name in _tree.__all__]
globals().update({f"tree_{name}": getattr(_tree, name) for name in _tree.__all__})
