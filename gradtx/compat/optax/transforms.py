"""``optax.transforms`` in the optax dialect: gradtx's definitions with optax's defaults."""

import gradtx
import gradtx.transforms
from gradtx.compat.optax import _dialect

__all__ = _dialect.fill(globals(), "transforms", gradtx.transforms, gradtx)
