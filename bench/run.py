"""Benchmark gradtx against optax (and torch.optim when installed): ``python -m bench.run``.

Times one optimizer step (jitted, parameters and state donated, warm-up excluded) in one
process, alternating between libraries, and reports medians with min and max, the ratio to
optax and the fraction of the machine's memory limit (a jitted in-place triad). Compile time
(lower + compile) is measured at several leaf counts. The fast-fusion configuration runs in a
child process started with XLA_FLAGS set to
``--xla_backend_extra_options=xla_cpu_use_multi_output_fusion``.
Prints a table and writes JSON to ``bench/results/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys

import numpy as np

FLAG = "--xla_backend_extra_options=xla_cpu_use_multi_output_fusion"


def _stats(samples):
    return {"median_s": float(np.median(samples)), "min_s": min(samples), "max_s": max(samples)}


def interleaved_samples(
    runners: dict, reps: int, target_s: float = 0.05, batch_range=(1, 5000)
) -> dict:
    """``reps`` rounds, each timing every runner once (the order rotated each round); a sample
    is a batch of steps sized to take about ``target_s``."""
    batch = {}
    for name, r in runners.items():
        r.run(2)  # compile and warm up
        batch[name] = int(np.clip(target_s / max(r.run(2), 1e-7), *batch_range))
    samples = {name: [] for name in runners}
    names = list(runners)
    for i in range(reps):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            samples[name].append(runners[name].run(batch[name]))
    return samples


def _alternate(runners: dict, reps: int, target_s: float = 0.05) -> dict:
    """Each runner's median and range over ``reps`` interleaved samples."""
    return {name: _stats(s) for name, s in interleaved_samples(runners, reps, target_s).items()}


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def time_steps(
    config: str, reps: int, use_torch: bool, only: str = "abcd", optimizers=None
) -> tuple[list, dict]:
    import jax

    import gradtx
    from bench.workloads import (
        OPTIMIZERS,
        TRAFFIC,
        WORKLOADS,
        JaxRunner,
        TorchRunner,
        TriadRunner,
        make_tree,
    )

    limit = _alternate({"triad": TriadRunner()}, reps)["triad"]
    limit["GB_per_s"] = TriadRunner.traffic * 4 * TriadRunner.size / limit["median_s"] / 1e9
    rows = []
    for workload, shapes_fn in WORKLOADS.items():
        if workload[0] not in only:
            continue
        shapes = shapes_fn()
        params, grads = make_tree(shapes, 0), make_tree(shapes, 1)
        n_params = sum(int(np.prod(s)) for s in shapes)
        layout = gradtx.flat_layout(params)
        for opt, (make_gradtx, make_optax) in OPTIMIZERS.items():
            if optimizers and opt not in optimizers:
                continue
            runners = {
                "gradtx": JaxRunner(make_gradtx(), params, grads),
                "optax": JaxRunner(make_optax(), params, grads),
                "gradtx flat": JaxRunner(make_gradtx(), layout.buffers, layout.pack(grads)),
                "gradtx packed": JaxRunner(gradtx.pack_leaves(make_gradtx()), params, grads),
            }
            if use_torch:
                runners["torch"] = TorchRunner(opt, shapes)
            print(f"[{config}] {workload} / {opt}", file=sys.stderr, flush=True)
            result = _alternate(runners, reps)
            base = result["optax"]["median_s"]
            for lib, st in result.items():
                gbs = TRAFFIC[opt] * 4 * n_params / st["median_s"] / 1e9
                rows.append(
                    dict(
                        config=config,
                        workload=workload,
                        optimizer=opt,
                        lib=lib,
                        **st,
                        ratio_to_optax=st["median_s"] / base,
                        fraction_of_limit=gbs / limit["GB_per_s"],
                    )
                )
            del runners
            jax.clear_caches()
    return rows, limit


def time_compiles(leaf_counts, config: str) -> list:
    import jax
    import jax.numpy as jnp

    from bench.workloads import OPTIMIZERS, compile_seconds

    make_gradtx, make_optax = OPTIMIZERS["adam"]
    rows = []
    for n in leaf_counts:
        leaf = jax.ShapeDtypeStruct((64, 64), jnp.float32)
        tree = {f"p{i:05d}": leaf for i in range(n)}
        flat = {"float32": jax.ShapeDtypeStruct((n * 64 * 64,), jnp.float32)}
        cases = {
            "gradtx": (make_gradtx, tree),
            "optax": (make_optax, tree),
            "gradtx flat": (make_gradtx, flat),
        }
        samples = {k: [] for k in cases}
        print(f"[{config}] compile at {n} leaves", file=sys.stderr, flush=True)
        for _ in range(3 if n <= 100 else 1):
            for lib, (make, params) in cases.items():
                samples[lib].append(compile_seconds(make(), params))
        base = float(np.median(samples["optax"]))
        for lib, s in samples.items():
            st = _stats(s)
            rows.append(
                dict(config=config, leaves=n, lib=lib, **st, ratio_to_optax=st["median_s"] / base)
            )
    return rows


def _child(args) -> None:
    rows, limit = time_steps("fused", args.reps, use_torch=False, only=args.workloads)
    compiles = [] if args.quick or args.no_compile else time_compiles([100, 2000], "fused")
    pathlib.Path(args.out).write_text(
        json.dumps({"steps": rows, "limit": limit, "compile": compiles})
    )


def _fmt_ms(st) -> str:
    return f"{1e3 * st['median_s']:9.3f} ({1e3 * st['min_s']:.3f}-{1e3 * st['max_s']:.3f})"


def print_table(result: dict) -> None:
    for config, limit in result["limit"].items():
        print(
            f"\n== {config}: memory limit (triad) {limit['GB_per_s']:.1f} GB/s "
            f"({1e3 * limit['min_s']:.2f}-{1e3 * limit['max_s']:.2f} ms)"
        )
        print(
            f"{'workload':34} {'optimizer':13} {'lib':12} {'median ms (min-max)':>30} "
            f"{'x optax':>8} {'of limit':>8}"
        )
        for r in result["steps"]:
            if r["config"] == config:
                print(
                    f"{r['workload']:34} {r['optimizer']:13} {r['lib']:12} {_fmt_ms(r):>30} "
                    f"{r['ratio_to_optax']:8.2f} {r['fraction_of_limit']:8.2f}"
                )
    print("\n== compile time, Adam on n leaves of 64x64 (lower + compile)")
    print(f"{'config':8} {'leaves':>6} {'lib':12} {'median s (min-max)':>28} {'x optax':>8}")
    for r in result["compile"]:
        ms = f"{r['median_s']:.3f} ({r['min_s']:.3f}-{r['max_s']:.3f})"
        print(f"{r['config']:8} {r['leaves']:6d} {r['lib']:12} {ms:>28} {r['ratio_to_optax']:8.3f}")


def _zoo(args) -> None:
    from bench.zoo import ZOO_WORKLOADS, print_zoo, time_zoo

    reps = args.reps if args.reps != 9 else 5  # 5 rounds by default, 3 with --quick
    reps = 3 if args.quick and args.reps == 5 else reps
    only = "".join(w for w in args.workloads if w in ZOO_WORKLOADS)
    names = args.only.split(",") if args.only else None
    if args.hlo:
        from bench.zoo import hlo_zoo, print_hlo

        rows = hlo_zoo(only=only, names=names, leaves=args.hlo_leaves)
        print_hlo(rows)
        out = pathlib.Path(args.out or pathlib.Path(__file__).parent / "results" / "zoo-hlo.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=1))
        return
    if args.cache:
        from bench.zoo import precompile_zoo

        precompile_zoo(args.cache, only=only, names=names)
    rows = time_zoo(reps, only=only, names=names)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = pathlib.Path(args.out or pathlib.Path(__file__).parent / "results" / f"zoo-{stamp}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"zoo": rows, "reps": reps}, indent=1))
    print_zoo(rows)
    print(f"\nwrote {out}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats; compile up to 1000 leaves")
    ap.add_argument("--reps", type=int, default=None, help="samples per measurement")
    ap.add_argument("--out", default=None, help="JSON file to write")
    ap.add_argument("--no-fused", action="store_true", help="skip the fast-fusion child process")
    ap.add_argument("--no-torch", action="store_true", help="do not time torch.optim")
    ap.add_argument("--workloads", default="abcd", help="which of the workloads a-d to time")
    ap.add_argument("--no-compile", action="store_true", help="skip the compile-time table")
    ap.add_argument("--optimizers", default=None, help="comma-separated subset of the four")
    ap.add_argument("--zoo", action="store_true", help="every optimizer shared with optax, b and c")
    ap.add_argument("--hlo", action="store_true", help="with --zoo: count kernels, not time")
    ap.add_argument("--hlo-leaves", type=int, default=None, help="with --hlo: first N leaves")
    ap.add_argument("--only", default=None, help="with --zoo: comma-separated names to time")
    ap.add_argument(
        "--cache", default=None, help="with --zoo: compile into this cache first, 2 at once"
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.reps = args.reps or (5 if args.quick else 9)
    if args.child:
        return _child(args)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if args.zoo:
        return _zoo(args)
    out = pathlib.Path(args.out) if args.out else None
    if out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = pathlib.Path(__file__).parent / "results" / f"bench-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    use_torch = _torch_available() and not args.no_torch
    if not use_torch:
        print("torch is not installed (or --no-torch): skipping torch.optim", flush=True)
    optimizers = args.optimizers.split(",") if args.optimizers else None
    rows, limit = time_steps("default", args.reps, use_torch, args.workloads, optimizers)
    leaves = [10, 100, 1000] if args.quick else [10, 100, 1000, 2000, 5000]
    compiles = [] if args.no_compile else time_compiles(leaves, "default")
    result = {"steps": rows, "limit": {"default": limit}, "compile": compiles}
    if not args.no_fused:
        child_out = out.with_suffix(".fused.json")
        env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " " + FLAG).strip())
        cmd = [sys.executable, "-m", "bench.run", "--child", "--reps", str(args.reps)]
        cmd += ["--out", str(child_out), "--workloads", args.workloads]
        cmd += (["--quick"] if args.quick else []) + (["--no-compile"] if args.no_compile else [])
        subprocess.run(cmd, env=env, check=True, cwd=pathlib.Path(__file__).parent.parent)
        child = json.loads(child_out.read_text())
        child_out.unlink()
        result["steps"] += child["steps"]
        result["limit"]["fused"] = child["limit"]
        result["compile"] += child["compile"]
    import jax

    result["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
    }
    out.write_text(json.dumps(result, indent=1))
    print_table(result)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
