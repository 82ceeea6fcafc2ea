"""``optax.tree_utils`` in the optax dialect: gradtx's definitions with optax's names."""

import gradtx.tree_utils
from gradtx.compat.optax import _dialect

__all__ = _dialect.fill(globals(), "tree_utils", gradtx.tree_utils)
