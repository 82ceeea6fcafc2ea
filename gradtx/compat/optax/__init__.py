"""gradtx with optax 0.2.8's defaults: ``import gradtx.compat.optax as optax``.

The same library as ``gradtx`` (every function here is a gradtx definition), with optax's
defaults, argument names, argument order and formula choices where they differ from gradtx's
(which are the CS231n notes' and PyTorch's), and optax's module paths under it:
``gradtx.compat.optax.contrib``, ``.schedules``, ``.transforms``, ``.tree``, ``.tree_utils``.
Where gradtx is deliberately more accurate than optax (bias correction computed in float32,
a clamped centered variance) the dialect keeps gradtx's formula; the README's migration
section lists every difference. Names optax has and gradtx does not are absent:
``gradtx.compat.optax._dialect.missing("")`` lists them.
"""

import gradtx
from gradtx.compat.optax import (  # noqa: F401 (the submodules, as optax.contrib, ...)
    _dialect,
    contrib,
    losses,
    microbatching,
    projections,
    schedules,
    second_order,
    transforms,
    tree,
    tree_utils,
)

__all__ = _dialect.fill(globals(), "", gradtx)
