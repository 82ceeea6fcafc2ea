"""Small problems for demos, benchmarks and tests: the CS231n spiral and a 2-layer MLP.

Everything here is generated in code; nothing is downloaded.
"""

from gradtx.demo._problems import mlp_accuracy, mlp_init, mlp_loss, spiral_data

__all__ = ["mlp_accuracy", "mlp_init", "mlp_loss", "spiral_data"]
