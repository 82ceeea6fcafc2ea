"""The single-pass formulation of the moment updates, chosen when XLA can fuse it.

An adaptive step writes its new moments and, through the update, the new parameters. By
default the update formula reads the new moments, so XLA emits one kernel per written array:
three passes over memory for Adam. With XLA's CPU multi-output fusion on
(``XLA_FLAGS=--xla_backend_extra_options=xla_cpu_use_multi_output_fusion``, set before jax
starts), XLA can emit a single kernel that writes all of them, but only if the update does not
read the stored moments: it must recompute them from the old values by an expression that
shares nothing with the stored one. ``tree_accumulate`` returns both: the stored moment and the
one the update reads. In the single-pass form the second is written with every term negated,

    read = -((-keep) * acc + (-add) * updates)          (power 1)
    read = -((-keep) * acc + add * (updates * -updates)) (power 2)

which is the same value bit for bit (negation is exact and rounding is symmetric), so the
numerics do not change. Without the flag this form makes XLA copy arrays and run about four
times slower, so it is used only when the flag is set, or when forced with ``fused_updates``
or the environment variable ``GRADTX_FUSED=0/1``.
"""

from __future__ import annotations

import contextlib
import os

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.trees import acc_dtype, as_dtype, one_minus_decay, tree_map_none

_FLAG = "xla_cpu_use_multi_output_fusion"
# Leaves smaller than this keep the default form: there the kernel's launch cost dominates,
# and the single-pass kernels measured 2-2.5x slower on 10 leaves of 10 (faster from 256 up).
MIN_FUSED_SIZE = 128
_forced: list[bool] = []  # the innermost fused_updates(...) block's choice, if any


def enabled() -> bool:
    """Whether updates traced now use the single-pass form (read when the update is traced)."""
    if _forced:
        return _forced[-1]
    env = os.environ.get("GRADTX_FUSED", "")
    if env not in ("", "0", "1"):
        raise ValueError(
            f"gradtx: the environment variable GRADTX_FUSED={env!r} is not understood; expected "
            "'1' (single-pass updates), '0' (default updates) or unset (decide from XLA_FLAGS)."
        )
    if env:
        return env == "1"
    return _FLAG in os.environ.get("XLA_FLAGS", "")


@contextlib.contextmanager
def fused_updates(enabled: bool = True):
    """Force the single-pass update formulation on (or off) for updates traced in this block.

    By default gradtx uses it exactly when ``XLA_FLAGS`` contains
    ``--xla_backend_extra_options=xla_cpu_use_multi_output_fusion`` (the environment variable
    ``GRADTX_FUSED=1`` or ``0`` overrides that for the whole process). The choice is made when
    an update is traced, and jax reuses a trace it already has: switch before a step function
    is first traced. Results are identical either way; only the compiled kernels differ.

    Example:
        >>> import jax.numpy as jnp, gradtx
        >>> tx = gradtx.adam(0.1)
        >>> with gradtx.fused_updates(True):
        ...     u, _ = tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.zeros(2)}))
        >>> bool(jnp.allclose(u["w"], -0.1))
        True
    """
    if not isinstance(enabled, bool):
        raise TypeError(
            f"gradtx.fused_updates: enabled={enabled!r} is not a bool; pass True or False."
        )
    _forced.append(enabled)
    try:
        yield
    finally:
        _forced.pop()


def tree_accumulate(updates, acc, keep=None, add=None, power: int = 1):
    """``new = keep * acc + add * updates ** power`` per leaf, and the value the update reads.

    ``keep``/``add`` are hyperparameters (None means 1, no multiplication); ``power`` >= 1.
    Arithmetic is in ``acc_dtype``; ``new`` keeps the accumulator's dtype. Returns
    ``(new, read)``: ``read`` is ``new`` itself, or, when single-pass updates are on, the same
    values recomputed from the old ones by an expression that shares nothing with ``new``
    (for leaves of at least ``MIN_FUSED_SIZE`` elements).

    For ``power == 2`` the square is the real ``|updates| ** 2`` (``g * conj(g)`` for complex
    leaves), and the result is clamped to the accumulator dtype's largest finite value: one
    overflowing gradient (1e30 in float32, 1e4 in float16) would otherwise make the slot
    infinite forever, since ``inf * decay`` never decays. The leaves of ``updates`` and
    ``acc`` must have the same shapes (checked at trace time).
    """
    _checks.check_same_shapes(updates, acc, "gradtx (moment update)", "updates", "the state's slot")
    single = enabled()
    casts: dict = {}  # per dtype: keep, add and their negations, cast (and traced) once

    def coefs(dt):
        if dt not in casts:
            k = None if keep is None else as_dtype(keep, dt)
            c = None if add is None else as_dtype(add, dt)
            casts[dt] = (k, c, None if k is None else -k, None if c is None else -c)
        return casts[dt]

    def leaf(g, a, negate):
        stored, dt = a.dtype, acc_dtype(a.dtype)
        g, a = g.astype(dt), a.astype(dt)
        k, c, neg_k, neg_c = coefs(dt)

        def term(pos, neg, x):  # pos * x, or its negation written as a new expression
            if pos is None:
                return -x if negate else x
            return neg * x if negate else pos * x

        if power == 2 and jnp.issubdtype(dt, jnp.complexfloating):
            re, im = jnp.real(g), jnp.imag(g)
            g_term = term(c, neg_c, (re * re + im * im).astype(dt))
        elif power == 1:
            g_term = term(c, neg_c, g)
        elif power == 2 and negate:
            g_term = g * -g if c is None else c * (g * -g)
        else:
            g_term = term(c, neg_c, g * g if power == 2 else g**power)
        total = term(k, neg_k, a) + g_term
        total = -total if negate else total
        if power == 2:
            total = _clamp_to_finite(total, stored)
        return total

    new = tree_map_none(lambda g, a: leaf(g, a, False).astype(a.dtype), updates, acc)
    if not single:
        return new, new

    def reread(g, a, n):
        return n if a.size < MIN_FUSED_SIZE else leaf(g, a, True).astype(a.dtype)

    return new, tree_map_none(reread, updates, acc, new)


def _clamp_to_finite(x, stored_dtype):
    """``x`` (a non-negative second moment) clamped to ``stored_dtype``'s largest finite value.

    NaN stays NaN (a NaN gradient is for ``apply_if_finite`` or ``zero_nans`` to guard). The
    clamp is written for both forms alike, so the single-pass form stays bit-identical.
    """
    if not jnp.issubdtype(stored_dtype, jnp.inexact):
        return x
    big = float(jnp.finfo(stored_dtype).max)
    # A select, not jnp.minimum (same values, NaN included): with a minimum, XLA's CPU fusion
    # recomputes the moment inside the update's kernel from the old moment, and then copies
    # every second-moment buffer to keep the old one alive (161 copies, 2.8x slower on the
    # ResNet-50 tree); with the select the update reads the stored moment, as in optax.
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        re = jnp.real(x)
        return jax.lax.complex(_select_above(re, big), jnp.imag(x))
    return _select_above(x, big)


def _select_above(x, big: float):
    """``where(x > big, big, x)`` as lax ops (the same program, traced without jnp.where's
    wrapper: two fewer jitted calls per leaf to trace)."""
    cap = jax.lax.full_like(x, big)
    return jax.lax.select(jax.lax.gt(x, cap), cap, x)


def tree_moment(updates, moments, decay, power: int):
    """The moving average ``decay * m + (1 - decay) * updates ** power``, as ``(new, read)``.

    ``1 - decay`` is formed before any cast, so a Python float keeps full precision and a
    bfloat16 model does not see ``decay`` rounded to 1.
    """
    return tree_accumulate(updates, moments, decay, one_minus_decay(decay), power)


def tree_update_moment(updates, moments, decay, order: int):
    """Exponential moving average of the ``order``-th power of the updates.

    moment = decay * moment + (1 - decay) * updates ** order

    Computed in at least float32 with ``1 - decay`` formed before any cast; the new moment keeps
    its dtype. The public form of the helper every gradtx moment transform uses.
    """
    return tree_moment(updates, moments, decay, order)[0]


def _backends_started() -> bool:
    """Whether jax has created its backends (after which XLA does not read XLA_FLAGS again)."""
    from jax._src import xla_bridge

    started = getattr(xla_bridge, "backends_are_initialized", None)
    if started is not None:
        return bool(started())
    return bool(getattr(xla_bridge, "_backends", {}))


def enable_fast_cpu() -> None:
    """Turn on XLA's CPU multi-output fusion for this process, and the single-pass updates.

    Adds ``--xla_backend_extra_options=xla_cpu_use_multi_output_fusion`` to the environment
    variable ``XLA_FLAGS`` (merged into an ``--xla_backend_extra_options`` already there), so
    every step compiled afterwards fuses an optimizer's moment and parameter writes into one
    kernel (0.7x optax's step time on the ResNet-50 tree). XLA reads ``XLA_FLAGS`` once, when
    jax creates its backends, and jax 0.10 offers no per-computation route (the option is an
    entry of DebugOptions' ``xla_backend_extra_options`` map, which ``compiler_options`` cannot
    set): call this before the first jax computation. Calling it again is a no-op.

    Raises:
        RuntimeError: jax's backends are already running without the flag; set
            ``XLA_FLAGS=--xla_backend_extra_options=xla_cpu_use_multi_output_fusion`` in the
            environment before the process starts, or call this first.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if _FLAG in flags:
        return
    if _backends_started():
        raise RuntimeError(
            "gradtx.enable_fast_cpu: jax's backends are already initialised, and XLA reads "
            "XLA_FLAGS only when they start, so the flag would have no effect. Call "
            "gradtx.enable_fast_cpu() before any jax computation (right after the imports), or "
            "set the environment variable before the process starts: "
            f"XLA_FLAGS=--xla_backend_extra_options={_FLAG}"
        )
    parts = flags.split()
    for i, part in enumerate(parts):
        if part.startswith("--xla_backend_extra_options="):
            parts[i] = f"{part},{_FLAG}"
            break
    else:
        parts.append(f"--xla_backend_extra_options={_FLAG}")
    os.environ["XLA_FLAGS"] = " ".join(parts)
