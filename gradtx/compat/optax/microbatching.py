"""``optax.microbatching`` in the optax dialect: gradtx's definitions with optax's defaults."""

import gradtx
import gradtx.microbatching
from gradtx.compat.optax import _dialect

__all__ = _dialect.fill(globals(), "microbatching", gradtx.microbatching, gradtx)
