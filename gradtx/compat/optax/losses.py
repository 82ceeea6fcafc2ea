"""``optax.losses`` in the optax dialect: gradtx's losses (they take optax's arguments)."""

import gradtx
import gradtx.losses
from gradtx.compat.optax import _dialect

__all__ = _dialect.fill(globals(), "losses", gradtx.losses, gradtx)
