"""``optax.contrib`` in the optax dialect: gradtx's definitions with optax's defaults."""

import gradtx
import gradtx.contrib
from gradtx.compat.optax import _dialect

__all__ = _dialect.fill(globals(), "contrib", gradtx.contrib, gradtx)
