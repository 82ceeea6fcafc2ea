"""``optax.schedules`` in the optax dialect: gradtx's definitions with optax's defaults."""

import gradtx
import gradtx.schedules
from gradtx.compat.optax import _dialect

__all__ = _dialect.fill(globals(), "schedules", gradtx.schedules, gradtx)
