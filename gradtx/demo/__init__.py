"""The ``gradtx`` command's demo and its small problems, all generated in code (no downloads).

``spiral_data``/``mlp_*``: the CS231n spiral and a 2-layer MLP; ``shapes_data``: noisy 8x8
images of ten shapes. The command itself lives in ``gradtx.demo._cli`` (``gradtx --help``).
"""

from gradtx.demo._problems import mlp_accuracy, mlp_init, mlp_logits, mlp_loss, spiral_data
from gradtx.demo._shapes import shapes_data

__all__ = [
    "mlp_accuracy",
    "mlp_init",
    "mlp_logits",
    "mlp_loss",
    "shapes_data",
    "spiral_data",
]
