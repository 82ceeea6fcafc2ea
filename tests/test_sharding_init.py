"""With 8 simulated CPU devices, optimizer state takes its parameters' shardings.

The device count is fixed when jax starts, so the check runs in a fresh interpreter.
"""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import gradtx

    assert len(jax.devices()) == 8, jax.devices()
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))
    specs = {"w": P("data", "model"), "b": P("model"), "s": P()}
    shapes = {"w": (8, 12), "b": (12,), "s": ()}
    params = {
        k: jax.device_put(jnp.linspace(-1.0, 1.0, int(np.prod(shapes[k]))).reshape(shapes[k]),
                          NamedSharding(mesh, specs[k]))
        for k in shapes
    }
    grads = jax.tree.map(lambda p: p * 0.5 + 0.1, params)

    def check(state, label):
        n = 0
        for path, leaf in jax.tree_util.tree_leaves_with_path(state):
            key = jax.tree_util.keystr(path)
            for name, p in params.items():
                if key.endswith(f"['{name}']"):
                    ok = leaf.sharding.is_equivalent_to(p.sharding, p.ndim)
                    assert ok, (label, key, leaf.sharding)
                    n += 1
        return n

    for name, tx in {
        "sgd-momentum": gradtx.sgd(0.1, momentum=0.9),
        "adagrad": gradtx.adagrad(0.1),
        "rmsprop": gradtx.rmsprop(0.1, centered=True),
        "adam": gradtx.adam(0.1),
        "adamw": gradtx.adamw(0.1),
    }.items():
        state = tx.init(params)
        n = check(state, name + " init")
        assert n >= 3, (name, n)

        @jax.jit
        def step(p, s, g):
            u, s = tx.update(g, s, p)
            return gradtx.apply_updates(p, u), s

        p, s = params, state
        for _ in range(2):
            p, s = step(p, s, grads)
        check(s, name + " after jit")
        check(p, name + " params")
    print("OK")
    """
)


def test_state_follows_parameter_sharding():
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu"
    )
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("OK")
