"""``optax.second_order`` in the optax dialect: gradtx's definitions with optax's defaults."""

import gradtx
import gradtx.second_order
from gradtx.compat.optax import _dialect

__all__ = _dialect.fill(globals(), "second_order", gradtx.second_order, gradtx)
