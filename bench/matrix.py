"""The matrix work of Muon, Shampoo and SOAP alone, one call per matrix against one batched call
per shape: ``python -m bench.matrix``.

These optimizers are bound by their matrix work, not by memory: Muon's Newton-Schulz
orthogonalisation (five quintic iterations, three matmuls each), Shampoo's inverse fourth
roots and SOAP's eigenvectors of the block statistics (an ``eigh`` each, at every
``precondition_frequency``-th step). For each, this times the work alone, jitted, on the
matrices the optimizer would see in (b) the ResNet-50 tree (for Muon its 53 convolutions
reshaped to (kh * kw * c_in, c_out) and the classifier; for Shampoo and SOAP, which take 2-D
leaves only, the classifier's 128 blocks of 128 x 128) and (c) 2,000 leaves of 64 x 64 (the first
200 of them), in two forms timed alternately in one process:

- per matrix: one call per leaf (how ``scale_by_muon`` runs by default, and how
  ``scale_by_shampoo`` and ``scale_by_soap`` refresh each leaf's blocks);
- batched: the matrices of one shape stacked and done in one call (``scale_by_muon``'s
  ``batch_same_shape=True``).

It reports the median time (min-max over rounds) and the compiled program's kernel count
(top-level fusions, matmuls, custom calls; see ``bench.zoo.hlo_counts``).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
import time

import numpy as np


def _resnet_matrices() -> list[tuple]:
    """ResNet-50's weights as Muon reshapes them: (kh * kw * c_in, c_out), and the classifier."""
    from bench.workloads import resnet50_shapes

    return [(s[0] * s[1] * s[2], s[3]) for s in resnet50_shapes() if len(s) == 4] + [(2048, 1000)]


def _kernels(fn, *args) -> int:
    import jax

    from bench.zoo import entry_ops

    ops = entry_ops(jax.jit(fn).lower(*args).compile().as_text())
    # as bench.zoo.hlo_counts, constants left out too (the iteration's coefficients)
    return sum(not re.search(r" (tuple|get-tuple-element|bitcast|constant)\(", ln) for ln in ops)


class _Runner:
    def __init__(self, fn, args):
        import jax

        self.fn, self.args = jax.jit(fn), args

    def run(self, n: int) -> float:
        import jax

        t0 = time.perf_counter()
        for _ in range(n):  # each call waited for: many queued eigh programs stalled XLA's CPU
            jax.block_until_ready(self.fn(*self.args))  # client here (idle, never finishing)
        return (time.perf_counter() - t0) / n


def _muon_forms(shapes):
    import jax.numpy as jnp

    from gradtx.contrib._muon import DEFAULT_NS_COEFFS, _coeff_rows, _orthogonalize_all

    coeffs = _coeff_rows(DEFAULT_NS_COEFFS, 5, "bench.matrix")  # scale_by_muon's defaults
    rng = np.random.default_rng(0)
    stacks = [jnp.asarray(rng.standard_normal((1,) + s, np.float32)) for s in shapes]

    def form(batch):
        return lambda xs: _orthogonalize_all(xs, coeffs, 1e-7, "frobenius", True, batch, None, None)

    return {"per matrix": form(False), "batched": form(True)}, (stacks,)


def _eigh_forms(shapes, root: bool):
    """Shampoo's refresh (inverse fourth roots of both statistics) or SOAP's (their
    eigenvectors), per leaf or batched over all blocks of one shape."""
    import jax.numpy as jnp

    from gradtx.contrib._shampoo import _blocking, _inverse_root
    from gradtx.contrib._soap import _eigenvectors

    rng = np.random.default_rng(0)
    stats = []
    for s in shapes:
        br, nr, bc, nc = _blocking(s, 128)
        for b in (br, bc):
            a = rng.standard_normal((nr, nc, b, b)).astype(np.float32)
            spd = a @ np.swapaxes(a, -1, -2) + 1e-3 * np.eye(b, dtype=np.float32)
            stats.append(jnp.asarray(spd))
    op = (lambda s: _inverse_root(s, 4, 1e-6)) if root else _eigenvectors

    def per_leaf(xs):
        return [op(x) for x in xs]

    def batched(xs):
        groups: dict = {}
        for i, x in enumerate(xs):
            groups.setdefault(x.shape[2:], []).append(i)
        out = [None] * len(xs)
        for idx in groups.values():
            flat = jnp.concatenate([xs[i].reshape((-1,) + xs[i].shape[2:]) for i in idx])
            res = op(flat)
            start = 0
            for i in idx:
                n = xs[i].shape[0] * xs[i].shape[1]
                out[i] = res[start : start + n].reshape(xs[i].shape)
                start += n
        return out

    return {"per matrix": per_leaf, "batched": batched}, (stats,)


WORKLOADS = {
    "b": ("b: ResNet-50", _resnet_matrices, lambda: [(2048, 1000)]),
    # (c): the first 200 of the 2,000 leaves (time and kernels grow linearly with the number
    # of matrices; one program of 2,000 separate Newton-Schulz iterations, or of 4,000
    # separate eigh calls, takes over 5 minutes to compile here)
    "c": ("c: 200 of 2000 x 64x64", lambda: [(64, 64)] * 200, lambda: [(64, 64)] * 200),
}


def time_matrix(reps: int, only: str = "bc", which=("muon", "shampoo", "soap")) -> list[dict]:
    import jax

    from bench.run import interleaved_samples

    rows = []
    for w in only:
        label, muon_shapes, leaf_shapes = WORKLOADS[w]
        for name in which:
            if name == "muon":
                forms, args = _muon_forms(muon_shapes())
                work = "Newton-Schulz (5 iterations)"
            else:
                forms, args = _eigh_forms(leaf_shapes(), root=name == "shampoo")
                work = "inverse 4th roots" if name == "shampoo" else "eigenvectors"
            print(f"[matrix] {label} / {name}", file=sys.stderr, flush=True)
            kernels = {k: _kernels(f, *args) for k, f in forms.items()}
            runners = {k: _Runner(f, args) for k, f in forms.items()}
            samples = interleaved_samples(runners, reps, 0.2, batch_range=(1, 1000))
            base = float(np.median(samples["per matrix"]))
            for k, s in samples.items():
                rows.append(
                    dict(
                        workload=label,
                        optimizer=name,
                        work=work,
                        matrices=sum(int(np.prod(x.shape[:-2])) for x in args[0]),
                        form=k,
                        median_ms=1e3 * float(np.median(s)),
                        min_ms=1e3 * min(s),
                        max_ms=1e3 * max(s),
                        ratio=float(np.median(s)) / base,
                        kernels=kernels[k],
                    )
                )
                print(f"    {rows[-1]}", file=sys.stderr, flush=True)
            del runners
            jax.clear_caches()
    return rows


def print_matrix(rows) -> None:
    print(
        f"\n{'workload':16} {'optimizer':8} {'work':28} {'form':11} "
        f"{'median ms (min-max)':>26} {'x per matrix':>12} {'kernels':>8}"
    )
    for r in rows:
        ms = f"{r['median_ms']:.2f} ({r['min_ms']:.2f}-{r['max_ms']:.2f})"
        print(
            f"{r['workload']:16} {r['optimizer']:8} {r['work']:28} {r['form']:11} {ms:>26} "
            f"{r['ratio']:12.2f} {r['kernels']:8d}"
        )


def main(argv=None) -> None:
    import os

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--workloads", default="bc", help="b, c or both")
    ap.add_argument("--only", default="muon,shampoo,soap", help="comma-separated optimizers")
    ap.add_argument("--out", default=None, help="JSON file to write")
    args = ap.parse_args(argv)
    rows = time_matrix(args.reps, args.workloads, tuple(args.only.split(",")))
    print_matrix(rows)
    out = pathlib.Path(args.out or pathlib.Path(__file__).parent / "results" / "matrix.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
