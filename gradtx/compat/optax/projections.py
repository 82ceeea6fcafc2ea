"""``optax.projections`` in the optax dialect: gradtx's projections (optax's arguments)."""

import gradtx
import gradtx.projections
from gradtx.compat.optax import _dialect

__all__ = _dialect.fill(globals(), "projections", gradtx.projections, gradtx)
