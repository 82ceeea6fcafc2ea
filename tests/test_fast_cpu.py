"""enable_fast_cpu: sets XLA's multi-output fusion flag before jax starts, refuses after."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os
    import jax, jax.numpy as jnp, optax
    import gradtx
    from gradtx._core import fused

    assert not fused.enabled()
    gradtx.enable_fast_cpu()  # before any computation: sets the flag, keeps the others
    flags = os.environ["XLA_FLAGS"].split()
    assert flags == ["--xla_cpu_enable_fast_math=false",
                     "--xla_backend_extra_options=xla_cpu_use_multi_output_fusion"], flags
    assert fused.enabled()

    tx = gradtx.adam(0.1)
    p = {"w": jnp.ones(1024)}
    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s
    hlo = jax.jit(step, donate_argnums=(0, 1)).lower(p, tx.init(p), p).compile().as_text()
    entry = hlo[hlo.index("\\nENTRY"):]
    # XLA read the flag: one kernel writes the new params, mu and nu
    multi = [l for l in entry.splitlines() if " fusion(" in l and "= (f32[1024]" in l]
    assert multi, entry

    gradtx.enable_fast_cpu()  # the flag is there: a no-op
    os.environ["XLA_FLAGS"] = ""
    try:
        gradtx.enable_fast_cpu()
    except RuntimeError as e:
        msg = str(e)
    else:
        raise AssertionError("no error after jax started")
    assert "already initialised" in msg, msg
    assert "XLA_FLAGS=--xla_backend_extra_options=xla_cpu_use_multi_output_fusion" in msg, msg
    print("ok")
    """
)


def test_sets_the_flag_before_jax_starts_and_raises_after():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "GRADTX_FUSED")}
    env.update(XLA_FLAGS="--xla_cpu_enable_fast_math=false", JAX_PLATFORMS="cpu")
    root = pathlib.Path(__file__).parent.parent
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
