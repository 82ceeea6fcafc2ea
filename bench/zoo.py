"""Every optimizer gradtx shares with optax, one step each: ``python -m bench.run --zoo``.

For each name in both ``optax`` (the aliases of ``optax._src.alias``) and ``optax.contrib``
(the factories taking a learning rate), builds ``optax.<name>(**kwargs)`` and
``gradtx.compat.optax.<name>(**kwargs)`` with the same arguments (the optax-parity test's
``OPTAX_CASES`` from ``tests/registry``, so the two agree on defaults and on the update), and
times one jitted, donated step of each in the same process, alternating between them. A
sample is a batch of steps; the ratio is gradtx's median over optax's median, with the min and
max of the per-round ratios.
"""

from __future__ import annotations

import inspect
import sys

import numpy as np

ZOO_WORKLOADS = ("b", "c")
# Names timed without the parity case's arguments (none needed) and names not timed.
SKIP = {"dpsgd": "gradtx has no dpsgd (per-example gradients)"}


def zoo_names() -> list[str]:
    """``"adam"``, ..., ``"contrib:muon"``, ...: the optimizers both libraries have."""
    import optax
    import optax._src.alias as alias
    import optax.contrib

    import gradtx.compat.optax as dialect

    top = [
        n
        for n, f in inspect.getmembers(alias, inspect.isfunction)
        if f.__module__ == alias.__name__ and not n.startswith("_") and hasattr(dialect, n)
    ]
    contrib = []
    for n in dir(optax.contrib):
        f = getattr(optax.contrib, n)
        if n.startswith(("_", "scale_by")) or not callable(f) or isinstance(f, type):
            continue
        try:
            params = inspect.signature(f).parameters
        except (TypeError, ValueError):
            continue
        if "learning_rate" in params and n not in SKIP and hasattr(dialect.contrib, n):
            contrib.append(f"contrib:{n}")
    return sorted(top) + sorted(contrib)


def _build(lib, key: str):
    """``lib.<name>(**case kwargs)`` and the extra arguments its update takes."""
    from tests.registry import OPTAX_CASES, OptaxCase

    case = OPTAX_CASES.get(key, OptaxCase(kwargs={"learning_rate": 1e-3}))
    kwargs = case.kwargs(lib) if callable(case.kwargs) else dict(case.kwargs)
    where = lib
    *mods, name = key.split(":")
    for m in mods:
        where = getattr(where, m)
    return getattr(where, name)(*case.args, **kwargs), dict(case.extra_args)


def _runner(tx, params, grads):
    """A ``JaxRunner`` whose state leaves are distinct buffers (some inits share one array)."""
    import jax
    import jax.numpy as jnp

    from bench.workloads import JaxRunner

    r = JaxRunner(tx, params, grads)
    r.state = jax.tree.map(jnp.copy, r.state)
    return r


class _WithExtra:
    """``tx`` whose update always receives ``extra`` (a loss value, an objective)."""

    def __init__(self, tx, extra):
        self.init = tx.init
        self.update = lambda g, s, p=None: tx.update(g, s, p, **extra)


def _rounds(runners: dict, reps: int, target_s: float = 0.1) -> dict:
    """Interleaved samples (``bench.run.interleaved_samples``), batches of 2 to 2000 steps."""
    from bench.run import interleaved_samples

    return interleaved_samples(runners, reps, target_s, batch_range=(2, 2000))


def _cases(only: str, names):
    """``(workload, key, params, grads)`` for every zoo name on every chosen workload."""
    from bench.workloads import WORKLOADS, make_tree

    for workload, shapes_fn in WORKLOADS.items():
        if workload[0] not in only:
            continue
        shapes = shapes_fn()
        params, grads = make_tree(shapes, 0), make_tree(shapes, 1)
        for key in names or zoo_names():
            yield workload, key, params, grads


def precompile_zoo(cache_dir: str, only: str = "bc", names=None, workers: int = 2) -> None:
    """Compile every zoo step into jax's persistent compilation cache at ``cache_dir``,
    ``workers`` programs at a time (XLA compiles outside the GIL), before anything is timed.

    A 2,000-leaf step takes 10-60 s to compile on this machine and the timing itself a few
    seconds, so compiling two at a time halves a run; the timed steps then load the same
    executables from the cache. The programs are lowered exactly as the timing lowers them
    (the same runners, arguments and donation), so the cache keys match.
    """
    import time
    from concurrent.futures import ThreadPoolExecutor

    import jax
    import optax

    import gradtx.compat.optax as dialect

    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    pending = []
    with ThreadPoolExecutor(workers) as pool:
        for workload, key, params, grads in _cases(only, names):
            for lib, mod in (("gradtx", dialect), ("optax", optax)):
                try:
                    r = _runner(_WithExtra(*_build(mod, key)), params, grads)
                    lowered = r.step.lower(r.params, r.state, r.grads)
                except Exception:  # noqa: BLE001 (timing reports the failure)
                    continue
                del r
                while len(pending) >= workers:
                    time.sleep(0.1)
                    pending = [f for f in pending if not f.done()]
                print(f"[zoo compile] {workload} / {key} / {lib}", file=sys.stderr, flush=True)
                # the executable is dropped once written to the cache: 2,000-leaf programs
                # hold about 0.5 GB each while alive
                pending.append(pool.submit(_compile_only, lowered))
    jax.clear_caches()


def _compile_only(lowered) -> None:
    try:
        lowered.compile()
    except Exception:  # noqa: BLE001 (timing reports the failure)
        pass


def time_zoo(reps: int, only: str = "bc", names=None) -> list[dict]:
    import jax
    import optax

    import gradtx.compat.optax as dialect

    rows = []
    for workload, key, params, grads in _cases(only, names):
        print(f"[zoo] {workload} / {key}", file=sys.stderr, flush=True)
        try:
            runners = {
                lib: _runner(_WithExtra(*_build(mod, key)), params, grads)
                for lib, mod in (("gradtx", dialect), ("optax", optax))
            }
            s = _rounds(runners, reps)
        except Exception as e:  # noqa: BLE001 (a failing optimizer is a row, not a crash)
            msg = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
            rows.append(dict(workload=workload, optimizer=key, error=msg))
            print(f"    failed: {msg}", file=sys.stderr, flush=True)
            continue
        finally:
            jax.clear_caches()
        per_round = np.asarray(s["gradtx"]) / np.asarray(s["optax"])
        rows.append(
            dict(
                workload=workload,
                optimizer=key,
                gradtx_ms=1e3 * float(np.median(s["gradtx"])),
                optax_ms=1e3 * float(np.median(s["optax"])),
                ratio=float(np.median(s["gradtx"]) / np.median(s["optax"])),
                ratio_min=float(per_round.min()),
                ratio_max=float(per_round.max()),
            )
        )
        print(f"    {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def print_zoo(rows: list[dict]) -> None:
    print(
        f"\n{'workload':34} {'optimizer':28} {'gradtx ms':>10} {'optax ms':>10} "
        f"{'ratio (min-max)':>20}"
    )
    for r in rows:
        if "error" in r:
            print(f"{r['workload']:34} {r['optimizer']:28} failed: {r['error']}")
            continue
        mark = "  *" if r["ratio"] > 1.05 else ""
        span = f"{r['ratio']:.2f} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f})"
        print(
            f"{r['workload']:34} {r['optimizer']:28} {r['gradtx_ms']:10.3f} "
            f"{r['optax_ms']:10.3f} {span:>20}{mark}"
        )


def entry_ops(text: str) -> list[str]:
    """The instruction lines of a compiled program's entry computation, parameters left out."""
    entry = text[text.index("\nENTRY") :]
    return [ln for ln in entry.splitlines() if " = " in ln and "parameter(" not in ln]


def hlo_counts(tx, params, extra=None) -> dict:
    """Kernels (fusions and other top-level ops), copies and buffers of one compiled step."""
    import re

    import jax
    import optax

    extra = extra or {}

    def step(p, s, g):
        u, s = tx.update(g, s, p, **extra)
        return optax.apply_updates(p, u), s

    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    state = jax.eval_shape(tx.init, abstract)
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(abstract, state, abstract).compile()
    text = compiled.as_text()
    ops = entry_ops(text)
    kernels = [ln for ln in ops if not re.search(r" (tuple|get-tuple-element|bitcast)\(", ln)]
    return dict(
        kernels=len(kernels),
        fusions=sum(" fusion(" in ln for ln in ops),
        copies=sum(" copy(" in ln for ln in ops),
        temp_bytes=int(compiled.memory_analysis().temp_size_in_bytes),
    )


def hlo_zoo(only: str = "bc", names=None, leaves: int | None = None) -> list[dict]:
    """``hlo_counts`` of gradtx and optax for every zoo name (each workload cut to its first
    ``leaves`` leaves when given: the counts per leaf are the same, the compiles cheaper)."""
    import jax
    import optax

    import gradtx.compat.optax as dialect
    from bench.workloads import WORKLOADS, make_tree

    rows = []
    for workload, shapes_fn in WORKLOADS.items():
        if workload[0] not in only:
            continue
        shapes = shapes_fn()[:leaves] if leaves else shapes_fn()
        params = make_tree(shapes, 0)
        for key in names or zoo_names():
            print(f"[zoo hlo] {workload} / {key}", file=sys.stderr, flush=True)
            row = dict(workload=workload, optimizer=key, leaves=len(shapes))
            for lib, mod in (("gradtx", dialect), ("optax", optax)):
                try:
                    tx, extra = _build(mod, key)
                    row[lib] = hlo_counts(tx, params, extra)
                except Exception as e:  # noqa: BLE001
                    row[lib] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"}
                jax.clear_caches()
            rows.append(row)
            print(f"    {row}", file=sys.stderr, flush=True)
    return rows


def print_hlo(rows: list[dict]) -> None:
    print(
        f"\n{'workload':34} {'optimizer':28} {'kernels g/o':>13} {'copies g/o':>11} "
        f"{'temp MB g/o':>14}"
    )
    for r in rows:
        g, o = r["gradtx"], r["optax"]
        if "error" in g or "error" in o:
            print(
                f"{r['workload']:34} {r['optimizer']:28} {g.get('error', '')} {o.get('error', '')}"
            )
            continue
        mark = "  *" if g["kernels"] > o["kernels"] or g["copies"] > o["copies"] else ""
        print(
            f"{r['workload']:34} {r['optimizer']:28} {g['kernels']:6d}/{o['kernels']:<6d} "
            f"{g['copies']:5d}/{o['copies']:<5d} "
            f"{g['temp_bytes'] / 1e6:6.1f}/{o['temp_bytes'] / 1e6:<6.1f}{mark}"
        )
