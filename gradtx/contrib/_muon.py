"""Muon: momentum orthogonalised by Newton-Schulz (optax's ``contrib.muon`` names).

A matrix leaf's momentum is replaced by an approximation of its orthogonal polar factor
U V^T (for momentum = U S V^T), computed with a few quintic Newton-Schulz iterations; leaves
that are not matrices go to an Adam fallback in ``muon``. Higher-rank leaves are matrices
after a reshape that ``MuonDimensionNumbers`` describes (which axes are the reduction, i.e.
input, axes and which the output axes; the others are batch axes, orthogonalised one slice at
a time).

Sharding: Newton-Schulz needs each whole matrix. With ``shard_policy="gspmd"`` (the default)
the arithmetic is written on the sharded arrays and XLA inserts the collectives the matmuls
need, which is correct for any sharding. ``shard_policy="owner"`` stacks the matrices of one
shape into a batch, splits that batch over ``owner_axis`` of ``mesh`` so each device
orthogonalises whole matrices of its own, and lets XLA bring the results back to the
parameters' sharding. ``muon_bytes_moved`` measures what either policy moves per step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._aliases._common import maximizing
from gradtx._aliases.seed import adamw
from gradtx._core import checks as _checks
from gradtx._core.base import EmptyState, GradientTransformation, chain
from gradtx._core.fused import tree_update_moment
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    safe_increment,
    tree_bias_correction,
    tree_cast,
    tree_map_none,
    tree_zeros_like,
)
from gradtx.transforms._combine import TreeOrFn, first_mismatch, make_partition, path_str
from gradtx.transforms._decay import add_decayed_weights
from gradtx.transforms._scaling import scale_by_learning_rate

_NONE = lambda x: x is None  # noqa: E731

#: Jordan's quintic coefficients (a, b, c), chosen to maximise the slope at zero.
DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
#: Per-step coefficients of Ahn et al. (Dion), 2025, as optax's "dion" preset.
DION_NS_COEFFS = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)
_PRESETS = {"standard": DEFAULT_NS_COEFFS, "dion": DION_NS_COEFFS}
_PRECONDITIONINGS = ("frobenius", "spectral")
_SHARD_POLICIES = ("gspmd", "owner")


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a leaf form the matrix Muon orthogonalises (optax's spec).

    The leaf is read as a matrix x @ W = y: ``reduction_axis`` (one int or a sequence) are the
    input axes, flattened into the rows, ``output_axis`` the output axes, flattened into the
    columns; every other axis is a batch axis and each slice is orthogonalised separately.
    The default (0, 1) is a plain (fan_in, fan_out) matrix. An empty tuple is a dimension of
    size 1 (a gradtx extension; optax needs rank >= 2): ``MuonDimensionNumbers((), 0)`` reads a
    vector as a 1 x n matrix, whose orthogonalisation is close to v / |v|.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


def _is_spec(x) -> bool:
    return x is None or isinstance(x, MuonDimensionNumbers)


def _axes(spec: MuonDimensionNumbers, ndim: int, path: str, where: str):
    """(batch, reduction, output) axes of a rank-``ndim`` leaf, normalised and checked."""

    def norm(ax, name):
        ax = (ax,) if isinstance(ax, int) else tuple(ax)
        bad = [a for a in ax if not -ndim <= a < ndim]
        if bad:
            raise ValueError(
                f"{where}: {name}={ax} for the rank-{ndim} leaf '{path}'; expected axes in "
                f"[-{ndim}, {ndim})."
            )
        return tuple(a % ndim for a in ax)

    red, out = norm(spec.reduction_axis, "reduction_axis"), norm(spec.output_axis, "output_axis")
    if set(red) & set(out) or len(set(red)) < len(red) or len(set(out)) < len(out):
        raise ValueError(
            f"{where}: the leaf '{path}' has reduction axes {red} and output axes {out}; each "
            "axis may appear once, in one of the two."
        )
    batch = tuple(a for a in range(ndim) if a not in red + out)
    return batch, red, out


def _leaf_specs(spec, tree, where: str, default_2d_only: bool):
    """One MuonDimensionNumbers (or None: not a Muon leaf) per leaf of ``tree``.

    spec None: every 2-D leaf is a (0, 1) matrix; the others are not Muon leaves when
    ``default_2d_only`` (muon's rule), else an error (scale_by_muon's). A tree (or prefix) of
    specs, or a function of the tree returning one: None entries mean the (0, 1) default for
    2-D leaves in scale_by_muon and "not a Muon leaf" in muon.
    """
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_NONE)
    paths = [path_str(p) for p, _ in paths_leaves]
    leaves = [x for _, x in paths_leaves]
    if spec is None:
        values = [None] * len(leaves)
    else:
        value = spec(tree) if callable(spec) else spec
        if _is_spec(value):
            values = [value] * len(leaves)
        else:
            full_def = err = None
            try:
                full = jax.tree.map(
                    lambda v, sub: jax.tree.map(lambda _: v, sub, is_leaf=_NONE),
                    value,
                    tree,
                    is_leaf=_is_spec,
                )
                values, full_def = jax.tree.flatten(full, is_leaf=_is_spec)
            except (ValueError, TypeError) as e:
                err = e
            if full_def is None or len(values) != len(leaves):
                raise ValueError(
                    f"{where}: the weight dimension numbers are not shaped like the parameters "
                    f"(nor a prefix of them): {first_mismatch(value, tree)}. Give a tree of "
                    "MuonDimensionNumbers or None with the parameters' structure, or a function "
                    "of the parameters returning one."
                ) from err
    out = []
    for path, leaf, v in zip(paths, leaves, values):
        if leaf is None:
            out.append(None)
            continue
        if v is None:
            if default_2d_only and (spec is not None or jnp.ndim(leaf) != 2):
                out.append(None)  # muon: not a Muon leaf, for the fallback
                continue
            if jnp.ndim(leaf) == 2:
                v = MuonDimensionNumbers()
            else:
                raise ValueError(
                    f"{where}: the leaf '{path}' has shape {jnp.shape(leaf)}, not a matrix, and "
                    "no MuonDimensionNumbers. Give weight_dimension_numbers for it (which axes "
                    "are the reduction and output axes), or keep it out of Muon (muon sends "
                    "such leaves to Adam)."
                )
        _axes(v, jnp.ndim(leaf), path, where)
        out.append(v)
    return out


def _to_batched(x, spec):
    """``x`` as a (batch, fan_in, fan_out) stack, and the function that undoes it."""
    batch, red, out = _axes(spec, x.ndim, "", "")
    order = batch + red + out
    sizes = [x.shape[a] for a in order]
    flat = (
        math.prod(sizes[: len(batch)]),
        math.prod(sizes[len(batch) : len(batch) + len(red)]),
        math.prod(sizes[len(batch) + len(red) :]),
    )
    inverse = tuple(np.argsort(order))
    return x.transpose(order).reshape(flat), lambda y: y.reshape(sizes).transpose(inverse)


def _fans(shape, spec):
    _, red, out = _axes(spec, len(shape), "", "")
    return math.prod(shape[a] for a in red), math.prod(shape[a] for a in out)


def newton_schulz(x, ns_coeffs, eps, *, preconditioning="frobenius", eps_clamp=True, mesh=None):
    """Orthogonalise one matrix with quintic Newton-Schulz iterations.

    x = x.T if rows > cols (the iteration then works on the smaller Gram matrix)
    x = x / max(norm(x), eps)           (eps_clamp=True, torch; x / (norm(x) + eps) otherwise)
    for (a, b, c) in ns_coeffs:         (one row per iteration)
        A = x @ x^H
        x = a * x + (b * A + c * A @ A) @ x
    transpose back.

    norm is the Frobenius norm (preconditioning="frobenius") or the spectral norm
    ("spectral", from an SVD: exact but slower). Both bound the spectral norm by 1, which the
    iteration needs. ``ns_coeffs`` is a (steps, 3) NumPy array of constants (float64, so
    float64 parameters see the exact coefficients); the arithmetic is in x's dtype.

    With a ``mesh`` (inside a jitted, sharded program) the layout is pinned so that every sum
    runs in one device's order: x and each Gram matrix have their rows split over all of the
    mesh's axes and the contraction axis whole on every device, and the norm is taken of a
    gathered (replicated) copy. Left to GSPMD, a split contraction axis or a split norm adds
    partial sums across devices in another order, which the iteration amplifies to ~1e-6
    (float32) relative to the one-device result.
    """
    pin = replicated = lambda v: v  # noqa: E731
    if mesh is not None:
        from jax.sharding import NamedSharding, PartitionSpec

        rows = NamedSharding(mesh, PartitionSpec(tuple(mesh.axis_names), None))
        pin = lambda v: jax.lax.with_sharding_constraint(v, rows)  # noqa: E731
        whole = NamedSharding(mesh, PartitionSpec())
        replicated = lambda v: jax.lax.with_sharding_constraint(v, whole)  # noqa: E731
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    if preconditioning == "spectral":
        norm = jnp.linalg.norm(replicated(x), ord=2)
    else:
        norm = jnp.sqrt(jnp.sum(jnp.real(replicated(x) * jnp.conj(replicated(x)))))
    eps = as_dtype(eps, norm.dtype)
    x = pin(x / (jnp.maximum(norm, eps) if eps_clamp else norm + eps).astype(x.dtype))
    for a, b, c in np.asarray(ns_coeffs):
        a, b, c = (jnp.asarray(v, x.dtype) for v in (a, b, c))
        gram = pin(x @ jnp.conj(x.T))
        x = pin(a * x + (b * gram + c * (gram @ gram)) @ x)
    return x.T if transposed else x


def _coeff_rows(ns_coeffs, ns_steps, where):
    """ns_coeffs as a (steps, 3) array: a (3,) triple repeated ns_steps times, or the rows."""
    arr = np.asarray(ns_coeffs, dtype=np.float64)
    if arr.ndim == 1 and arr.shape == (3,):
        if not isinstance(ns_steps, int) or isinstance(ns_steps, bool) or ns_steps < 1:
            raise ValueError(
                f"{where}: ns_steps={ns_steps!r}; expected a positive Python int (the number "
                "of Newton-Schulz iterations, unrolled when tracing)."
            )
        return np.tile(arr, (ns_steps, 1))
    if arr.ndim == 2 and arr.shape[1] == 3 and arr.shape[0] >= 1:
        return arr
    raise ValueError(
        f"{where}: ns_coeffs has shape {arr.shape}; expected (a, b, c) or a sequence of such "
        "triples (one per iteration), e.g. (3.4445, -4.7750, 2.0315)."
    )


def _owner_sharding(mesh, owner_axis):
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec(owner_axis, None, None))


def _orthogonalize_all(
    stacks, ns_coeffs, eps, precond, eps_clamp, batch, mesh, owner_axis, pin_mesh=None
):
    """Newton-Schulz on every (n, fan_in, fan_out) stack; one call per shape if ``batch``.
    ``pin_mesh``: the gspmd policy's mesh, which pins the iteration's layout."""
    ns = jax.vmap(
        lambda m: newton_schulz(
            m, ns_coeffs, eps, preconditioning=precond, eps_clamp=eps_clamp, mesh=pin_mesh
        )
    )
    if not batch:
        return [ns(s) for s in stacks]
    groups: dict = {}
    for i, s in enumerate(stacks):
        groups.setdefault((s.shape[1:], s.dtype), []).append(i)
    out: list = [None] * len(stacks)
    for idx in groups.values():
        big = jnp.concatenate([stacks[i] for i in idx]) if len(idx) > 1 else stacks[idx[0]]
        n = big.shape[0]
        if mesh is not None:
            k = math.prod(
                mesh.shape[a]
                for a in (owner_axis if isinstance(owner_axis, tuple) else (owner_axis,))
            )
            pad = -n % k
            if pad:  # zero matrices orthogonalise to zero; they are dropped below
                big = jnp.concatenate([big, jnp.zeros((pad,) + big.shape[1:], big.dtype)])
            # shard_map: each device runs the iteration on its own whole matrices, with no
            # collective inside (the partitioner may not split the intermediate matmuls)
            spec = _owner_sharding(mesh, owner_axis).spec
            big = jax.lax.with_sharding_constraint(big, _owner_sharding(mesh, owner_axis))
            res = jax.shard_map(ns, mesh=mesh, in_specs=spec, out_specs=spec)(big)[:n]
        else:
            res = ns(big)
        start = 0
        for i in idx:
            out[i] = res[start : start + stacks[i].shape[0]]
            start += stacks[i].shape[0]
    return out


class MuonState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken
    mu: Any  # momentum, shaped like the params (mu_dtype or each param's dtype)


def scale_by_muon(
    ns_coeffs=DEFAULT_NS_COEFFS,
    ns_steps=5,
    beta=0.95,
    eps=1e-7,
    mu_dtype=None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    weight_dimension_numbers=None,
    bias_correction: bool = False,
    eps_clamp: bool = True,
    batch_same_shape: bool = False,
    shard_policy: str = "gspmd",
    mesh=None,
    owner_axis=None,
) -> GradientTransformation:
    """Muon's scaling: the momentum of each matrix replaced by its Newton-Schulz polar factor.

    mu = beta * mu + (1 - beta) * updates
    m_hat = beta * mu + (1 - beta) * updates      (nesterov; m_hat = mu otherwise)
    updates = newton_schulz(m_hat)                (per matrix, see ``newton_schulz``)
    updates = sum(m_hat * updates) * updates      (adaptive=True: scaled by the dual norm)

    With bias_correction=True (optax's rule) m_hat is built from bias-corrected terms:
    m_hat = beta * mu / (1 - beta ** (t + 1)) + (1 - beta) * updates / (1 - beta ** t)
    (nesterov), or m_hat = mu / (1 - beta ** t).

    Every leaf must be a matrix, or have ``MuonDimensionNumbers`` that make it one: the leaf
    is transposed and reshaped to (batch, fan_in, fan_out) and each slice orthogonalised.
    Arithmetic is in at least float32; updates keep each leaf's dtype.

    Args:
        ns_coeffs: (a, b, c) for every iteration, or one triple per iteration.
        ns_steps: number of iterations for a single triple (a Python int).
        beta: momentum decay, in [0, 1).
        eps: guards the normalisation: x / max(norm, eps) (torch), or x / (norm + eps) with
            eps_clamp=False (optax).
        mu_dtype: dtype of the momentum; defaults to each parameter's dtype.
        nesterov: orthogonalise the Nesterov look-ahead instead of the momentum.
        adaptive: scale the result by <m_hat, updates> (Bernstein and Newhouse, 2024).
        preconditioning: "frobenius" or "spectral": the norm the matrix is divided by.
        weight_dimension_numbers: a MuonDimensionNumbers for every leaf, a tree (or prefix)
            of them shaped like the params, or a function params -> such a tree; None entries
            (and None) mean (0, 1) for 2-D leaves.
        bias_correction: build m_hat from bias-corrected moments (optax).
        eps_clamp: divide by max(norm, eps) (True, torch) or norm + eps (False, optax).
        batch_same_shape: stack the matrices of one (fan_in, fan_out) shape and dtype and
            orthogonalise them in one batched call (fewer kernels). The arithmetic is the
            same per matrix, but a batched matmul may use another kernel than single ones, so
            bit-identical results are not promised (on CPU, jax 0.10.2, they were identical).
        shard_policy: "gspmd" (default): the iteration runs on the arrays as they are
            sharded and XLA adds the collectives, correct for any sharding. "owner": the
            stacks (as with batch_same_shape) are split over ``owner_axis`` of ``mesh``, so
            each device orthogonalises whole matrices and only inputs and results move.
        mesh: the ``jax.sharding.Mesh`` for shard_policy="owner". With "gspmd" a mesh pins
            the iteration's layout (each matrix's rows split over every mesh axis, the
            contraction axis whole, the norm from a gathered copy) so every sum runs in one
            device's order and the result matches one device's (to 5e-8 in float32 on the
            tests' block, against 1.3e-6 unpinned), at about twice the bytes moved.
        owner_axis: a mesh axis name, or a tuple of names, to split the matrices over.

    References:
        Jordan et al., Muon: An optimizer for hidden layers in neural networks, 2024
        (https://kellerjordan.github.io/posts/muon/), the Newton-Schulz iteration.
        Liu et al., Muon is Scalable for LLM Training, 2025 (arXiv:2502.16982), Algorithm 1.
        Bernstein and Newhouse, Old Optimizer, New Norm: An Anthology, 2024 (adaptive).
    """
    where = "gradtx.contrib.scale_by_muon"
    _checks.check_number(where, "beta", beta, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "eps", eps, low=0.0)
    rows = _coeff_rows(ns_coeffs, ns_steps, where)
    if preconditioning not in _PRECONDITIONINGS:
        raise ValueError(
            f"{where}: preconditioning={preconditioning!r}; expected one of "
            f"{_PRECONDITIONINGS} (optax's 'aol' and 'schatten' are not implemented)."
        )
    if shard_policy not in _SHARD_POLICIES:
        raise ValueError(
            f"{where}: shard_policy={shard_policy!r}; expected one of {_SHARD_POLICIES}."
        )
    if shard_policy == "owner" and (mesh is None or owner_axis is None):
        raise ValueError(
            f"{where}: shard_policy='owner' needs mesh= (a jax.sharding.Mesh) and owner_axis= "
            f"(a mesh axis name); got mesh={mesh!r}, owner_axis={owner_axis!r}."
        )
    owner = shard_policy == "owner"

    def init(params):
        _leaf_specs(weight_dimension_numbers, params, where, default_2d_only=False)
        return MuonState(jnp.zeros((), jnp.int32), tree_zeros_like(params, mu_dtype))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.mu, where, "updates", "state.mu")
        specs = _leaf_specs(weight_dimension_numbers, updates, where, default_2d_only=False)
        count = safe_increment(state.count)
        mu = tree_update_moment(updates, state.mu, beta, 1)
        if bias_correction:
            m_next = tree_bias_correction(mu, beta, safe_increment(count) if nesterov else count)
            g_now = tree_bias_correction(updates, beta, count)
        else:
            m_next, g_now = mu, updates

        def look(m, g):
            dt = acc_dtype(g.dtype)
            m = m.astype(dt)
            if not nesterov:
                return m
            return as_dtype(beta, dt) * m + as_dtype(1 - beta, dt) * g.astype(dt)

        m_hat = tree_map_none(look, m_next, g_now)
        leaves, treedef = jax.tree.flatten(m_hat, is_leaf=_NONE)
        live = [i for i, x in enumerate(leaves) if x is not None]
        stacked = [_to_batched(leaves[i], specs[i]) for i in live]
        done = _orthogonalize_all(
            [s for s, _ in stacked],
            rows,
            eps,
            preconditioning,
            eps_clamp,
            batch_same_shape or owner,
            mesh if owner else None,
            owner_axis,
            None if owner else mesh,
        )
        out = list(leaves)
        for i, (_, undo), o in zip(live, stacked, done):
            o = undo(o)
            if adaptive:
                o = jnp.sum(jnp.conj(leaves[i]) * o) * o
            out[i] = o
        new = treedef.unflatten(out)
        new = tree_map_none(lambda o, g: o.astype(g.dtype), new, updates)
        return new, MuonState(count, tree_cast(mu, mu_dtype))

    return GradientTransformation(init, update)


def _scale_by_shape(weight_dimension_numbers, consistent_rms, where):
    """updates *= sqrt(max(1, fan_out / fan_in)), or consistent_rms * sqrt(max(fans))."""

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        specs = _leaf_specs(weight_dimension_numbers, updates, where, default_2d_only=False)
        leaves, treedef = jax.tree.flatten(updates, is_leaf=_NONE)

        def leaf(u, spec):
            if u is None:
                return None
            fan_in, fan_out = _fans(u.shape, spec)
            dt = acc_dtype(u.dtype)
            if consistent_rms is None:
                s = jnp.sqrt(jnp.asarray(max(1.0, fan_out / fan_in), dt))
            else:
                s = jnp.sqrt(jnp.asarray(max(fan_in, fan_out), dt)) * as_dtype(consistent_rms, dt)
            return (s * u.astype(dt)).astype(u.dtype)

        return treedef.unflatten(map(leaf, leaves, specs)), state

    return GradientTransformation(lambda params: EmptyState(), update)


def muon(
    learning_rate=1e-3,
    ns_coeffs=DEFAULT_NS_COEFFS,
    ns_steps=5,
    beta=0.95,
    eps=1e-7,
    weight_decay=0.1,
    weight_decay_mask=None,
    mu_dtype=None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1=0.9,
    adam_b2=0.999,
    adam_eps=1e-8,
    adam_eps_root=0.0,
    adam_weight_decay=0.0,
    adam_learning_rate=None,
    adam_nesterov: bool = False,
    muon_weight_dimension_numbers=None,
    consistent_rms=None,
    bias_correction: bool = False,
    eps_clamp: bool = True,
    batch_same_shape: bool = False,
    shard_policy: str = "gspmd",
    mesh=None,
    owner_axis=None,
    maximize: bool = False,
) -> GradientTransformation:
    """Muon for the matrices, AdamW for every other leaf.

    Matrix leaves (2-D, or those given MuonDimensionNumbers):
    chain(scale_by_muon(...), scale by sqrt(max(1, fan_out / fan_in)),
          add_decayed_weights(weight_decay, weight_decay_mask),
          scale_by_learning_rate(learning_rate))
    i.e. W -= learning_rate * (sqrt(max(1, fan_out / fan_in)) * O + weight_decay * W), torch's
    update with adjust_lr_fn="original" (torch's (A, B) weight is (fan_out, fan_in)). With
    consistent_rms=r the factor is r * sqrt(max(fan_in, fan_out)) (torch's
    "match_rms_adamw" for r=0.2).
    Other leaves: adamw(adam_learning_rate or learning_rate, adam_b1, adam_b2, adam_eps,
    adam_eps_root, adam_weight_decay, nesterov=adam_nesterov).

    Defaults are torch.optim.Muon's (lr=1e-3, weight_decay=0.1, momentum 0.95, Nesterov,
    eps=1e-7 clamped, no bias correction); ``gradtx.compat.optax.contrib.muon`` has optax's.

    Args:
        learning_rate: a number, array or schedule.
        ns_coeffs: (a, b, c), a sequence of triples (one per iteration), or a preset name
            ("standard", "dion").
        ns_steps, beta, eps, mu_dtype, nesterov, adaptive, preconditioning, bias_correction,
            eps_clamp, batch_same_shape, shard_policy, mesh, owner_axis: see
            ``scale_by_muon``.
        weight_decay: decoupled decay of the matrices, multiplied by the learning rate.
        weight_decay_mask: which matrices decay: a tree of bools, or a function of params.
        adam_b1, adam_b2, adam_eps, adam_eps_root, adam_weight_decay: the fallback's AdamW.
        adam_learning_rate: the fallback's learning rate (None: learning_rate).
        adam_nesterov: NAdam for the fallback (optax ties it to ``nesterov``).
        muon_weight_dimension_numbers: which leaves are matrices: None (the 2-D ones), or a
            tree (or prefix) of MuonDimensionNumbers / None shaped like the params, or a
            function params -> such a tree; None marks a leaf for the fallback.
        consistent_rms: None for width scaling, or r for r * sqrt(max(fan_in, fan_out)).
        maximize: ascend instead of descend.

    References:
        Jordan et al., Muon: An optimizer for hidden layers in neural networks, 2024.
        Liu et al., Muon is Scalable for LLM Training, 2025 (arXiv:2502.16982), Algorithm 1
        and the consistent-RMS scaling (Sec. 2.2).
    """
    where = "gradtx.contrib.muon"
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in _PRESETS:
            raise ValueError(
                f"{where}: ns_coeffs={ns_coeffs!r} is not a preset; expected one of "
                f"{sorted(_PRESETS)} or coefficients."
            )
        ns_coeffs = _PRESETS[ns_coeffs]
    spec = muon_weight_dimension_numbers

    def muon_specs(tree):
        return _leaf_specs(spec, tree, where, default_2d_only=True)

    def labels(tree):
        leaves, treedef = jax.tree.flatten(tree, is_leaf=_NONE)
        return treedef.unflatten(["muon" if s is not None else "adam" for s in muon_specs(tree)])

    def inner_specs(tree):  # for the Muon branch, whose tree has None for Adam's leaves
        leaves, treedef = jax.tree.flatten(tree, is_leaf=_NONE)
        return treedef.unflatten(
            [s if x is not None else None for s, x in zip(muon_specs(tree), leaves)]
        )

    lr_adam = learning_rate if adam_learning_rate is None else adam_learning_rate
    return maximizing(
        make_partition(
            {
                "muon": chain(
                    scale_by_muon(
                        ns_coeffs,
                        ns_steps,
                        beta,
                        eps,
                        mu_dtype,
                        nesterov=nesterov,
                        adaptive=adaptive,
                        preconditioning=preconditioning,
                        weight_dimension_numbers=inner_specs,
                        bias_correction=bias_correction,
                        eps_clamp=eps_clamp,
                        batch_same_shape=batch_same_shape,
                        shard_policy=shard_policy,
                        mesh=mesh,
                        owner_axis=owner_axis,
                    ),
                    _scale_by_shape(inner_specs, consistent_rms, where),
                    add_decayed_weights(weight_decay, weight_decay_mask),
                    scale_by_learning_rate(learning_rate),
                ),
                "adam": adamw(
                    lr_adam,
                    adam_b1,
                    adam_b2,
                    adam_eps,
                    adam_eps_root,
                    adam_weight_decay,
                    mu_dtype=mu_dtype,
                    nesterov=adam_nesterov,
                ),
            },
            TreeOrFn(labels, "muon_weight_dimension_numbers", needs_params=False),
            where,
            allow_unused=("muon", "adam"),
        ),
        maximize,
    )


_COLLECTIVES = (
    "all-gather",
    "all-reduce",
    "all-to-all",
    "collective-permute",
    "reduce-scatter",
    "collective-broadcast",
)
_SHAPE = re.compile(r"\b(pred|s8|u8|s16|u16|s32|u32|s64|u64|bf16|f16|f32|f64|c64|c128)\[([\d,]*)\]")
_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "bf16": 2, "f16": 2}


def _hlo_collective_bytes(text: str) -> dict:
    """Bytes each device receives per collective kind: the output buffers of the collectives
    in a compiled (SPMD-partitioned, per-device) HLO module."""
    found: dict = {}
    for line in text.splitlines():
        if "=" not in line:
            continue
        lhs, rhs = line.split("=", 1)
        m = re.match(r"\s*(\(.*?\)|\S+)\s+([\w-]+?)(-start)?\(", rhs)
        if not m or m.group(2) not in _COLLECTIVES:
            continue
        total = 0
        for dtype, dims in _SHAPE.findall(m.group(1)):
            size = math.prod(int(d) for d in dims.split(",") if d)
            total += size * _BYTES.get(dtype, 16 if dtype == "c128" else 8 if "64" in dtype else 4)
        found[m.group(2)] = found.get(m.group(2), 0) + total
    return found


def muon_bytes_moved(tx, params, grads=None) -> dict:
    """What one jitted ``tx.update`` step moves between devices, from its compiled program.

    ``params`` (and ``grads``, by default shaped and sharded like the params) are sharded
    arrays; the state comes from an eager ``tx.init`` (slots follow the params' shardings)
    and keeps its sharding as the step's output. Returns ``{"bytes_per_device": total,
    "by_collective": {kind: bytes}}``: the bytes of every collective's output buffer on one
    device (an upper bound on what it receives), summed over the program.
    """
    grads = params if grads is None else grads
    from gradtx._state.sharding import state_shardings

    state_shard = state_shardings(tx, params)
    state = jax.jit(tx.init, out_shardings=state_shard)(params)
    step = jax.jit(
        lambda g, s, p: tx.update(g, s, p),
        out_shardings=(jax.tree.map(lambda x: x.sharding, params), state_shard),
    )
    text = step.lower(grads, state, params).compile().as_text()
    by = _hlo_collective_bytes(text)
    return {"bytes_per_device": int(sum(by.values())), "by_collective": by}
