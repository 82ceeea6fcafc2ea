"""``optax.tree`` in the optax dialect: gradtx's definitions with optax's names."""

import gradtx.tree
from gradtx.compat.optax import _dialect

__all__ = _dialect.fill(globals(), "tree", gradtx.tree)
