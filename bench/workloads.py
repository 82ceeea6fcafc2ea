"""What the benchmark times: parameter trees, optimizers (gradtx, optax, torch) and runners."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtx

# Arrays read or written per parameter by one step: Adam reads p, g, m, v and writes p, m, v.
TRAFFIC = {"adam": 7, "adamw": 7, "sgd_nesterov": 5, "rmsprop": 5}

OPTIMIZERS = {
    "adam": (lambda: gradtx.adam(1e-3), lambda: optax.adam(1e-3)),
    "adamw": (
        lambda: gradtx.adamw(1e-3, weight_decay=1e-2),
        lambda: optax.adamw(1e-3, weight_decay=1e-2),
    ),
    "sgd_nesterov": (
        lambda: gradtx.sgd(1e-2, momentum=0.9, nesterov=True),
        lambda: optax.sgd(1e-2, momentum=0.9, nesterov=True),
    ),
    "rmsprop": (
        lambda: gradtx.rmsprop(1e-3, decay=0.99, eps=1e-8),
        lambda: optax.rmsprop(1e-3, decay=0.99, eps=1e-8, eps_in_sqrt=False),
    ),
}


def resnet50_shapes() -> list[tuple]:
    """The 161 parameter shapes of ResNet-50 (53 convs, 53 batch norms x 2, the classifier)."""
    shapes = [(7, 7, 3, 64), (64,), (64,)]
    cin = 64
    for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for b in range(blocks):
            for k, (i, o) in zip((1, 3, 1), ((cin, width), (width, width), (width, 4 * width))):
                shapes += [(k, k, i, o), (o,), (o,)]
            if b == 0:
                shapes += [(1, 1, cin, 4 * width), (4 * width,), (4 * width,)]
            cin = 4 * width
    return shapes + [(2048, 1000), (1000,)]


WORKLOADS = {
    "a: 1 x 16M": lambda: [(16 * 2**20,)],
    "b: ResNet-50 (161 leaves, 25.6M)": resnet50_shapes,
    "c: 2000 x 64x64": lambda: [(64, 64)] * 2000,
    "d: 10 x 10": lambda: [(10,)] * 10,
}


def make_tree(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return {
        f"p{i:05d}": jnp.asarray(rng.standard_normal(s, np.float32)) for i, s in enumerate(shapes)
    }


class JaxRunner:
    """A jitted, donated step ``(params, state, grads) -> (params, state)`` of one optimizer."""

    def __init__(self, tx, params, grads):
        def step(p, s, g):
            u, s = tx.update(g, s, p)
            return optax.apply_updates(p, u), s

        self.step = jax.jit(step, donate_argnums=(0, 1))
        self.params = jax.tree.map(jnp.copy, params)
        self.state = tx.init(self.params)
        self.grads = grads

    def run(self, n: int) -> float:
        """Seconds per step over ``n`` steps, blocking on the result."""
        t0 = time.perf_counter()
        p, s = self.params, self.state
        for _ in range(n):
            p, s = self.step(p, s, self.grads)
        jax.block_until_ready((p, s))
        self.params, self.state = p, s
        return (time.perf_counter() - t0) / n


class TorchRunner:
    """``torch.optim`` on CPU tensors with fixed gradients (fused where torch supports it)."""

    def __init__(self, name, shapes):
        import torch

        self.params = [torch.zeros(s, requires_grad=True) for s in shapes]
        for p in self.params:
            p.grad = torch.randn(p.shape)
        o = torch.optim
        make = {
            "adam": lambda ps: o.Adam(ps, lr=1e-3, fused=True),
            "adamw": lambda ps: o.AdamW(ps, lr=1e-3, weight_decay=1e-2, fused=True),
            "sgd_nesterov": lambda ps: o.SGD(ps, lr=1e-2, momentum=0.9, nesterov=True, fused=True),
            "rmsprop": lambda ps: o.RMSprop(ps, lr=1e-3, alpha=0.99, eps=1e-8, foreach=True),
        }
        self.opt = make[name](self.params)

    def run(self, n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            self.opt.step()
        return (time.perf_counter() - t0) / n


class TriadRunner:
    """The memory limit: the in-place triad ``a = a + 0.5 * b`` on 16M float32, ``a`` donated.

    Read-modify-write in place, as an optimizer step is (two arrays read, one written). A form
    that writes a third, otherwise unused donated buffer (``a = b + 0.5 * c``) measured about
    half this bandwidth here, which made optimizer steps look faster than the limit.
    """

    size = 16 * 2**20
    traffic = 3

    def __init__(self):
        self.f = jax.jit(lambda a, b: a + 0.5 * b, donate_argnums=0)
        self.a, self.b = (jnp.full(self.size, float(i)) for i in range(2))

    def run(self, n: int) -> float:
        t0 = time.perf_counter()
        a = self.a
        for _ in range(n):
            a = self.f(a, self.b)
        a.block_until_ready()
        self.a = a
        return (time.perf_counter() - t0) / n


def compile_seconds(tx, params) -> float:
    """Seconds to lower and compile a fresh jitted step of ``tx`` on ``params``."""

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    state = jax.eval_shape(tx.init, params)
    t0 = time.perf_counter()
    jax.jit(step, donate_argnums=(0, 1)).lower(params, state, params).compile()
    return time.perf_counter() - t0
