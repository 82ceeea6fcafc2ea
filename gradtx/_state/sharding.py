"""Shardings for optimizer state: state that follows the parameters, or ZeRO-1.

Eager ``tx.init(params)`` already keeps each parameter's sharding on the slots that mirror it
(they are built with ``zeros_like`` / ``full_like``). Under ``jit`` it does not: the state does
not depend on the parameters' values, so ``jax.jit(tx.init)(params)`` puts every leaf whole on
one device. ``state_shardings`` gives the ``out_shardings`` that fix this, and the in/out
shardings of a jitted training step.

The matching rule (by tree path, never by shape): a subtree of the state whose tree structure
equals the parameters' (None counted as a leaf) mirrors them leaf by leaf, so ``state[0].mu['w']``
belongs to ``params['w']``. A mirroring leaf with its parameter's shape takes the parameter's
sharding; every other leaf (step counters, scalars, leaves of another shape such as a factored
moment) is replicated over the mesh. When the parameters are a single array, every state leaf
of its shape mirrors it.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, Sharding
from jax.sharding import PartitionSpec as P

_NONE_LEAF = lambda x: x is None  # noqa: E731
_WHERE = "gradtx.state_shardings"


def _axes_of(entry) -> tuple:
    """The mesh axis names used by one entry of a PartitionSpec."""
    if entry is None or entry is P.UNCONSTRAINED:
        return ()
    return tuple(entry) if isinstance(entry, tuple) else (entry,)


def _zero1_spec(spec: P, shape: tuple, mesh: Mesh, axes: tuple) -> P:
    """``spec`` with ``axes`` added on the first free dimension divisible by their size.

    A slot already split over ``axes`` (FSDP parameters) keeps its spec; a slot with no such
    dimension (a scalar, or sizes that do not divide) keeps it too, i.e. stays replicated over
    ``axes``.
    """
    entries = list(spec) + [None] * (len(shape) - len(spec))
    if set(axes) & {a for e in entries for a in _axes_of(e)}:
        return P(*entries)
    n = math.prod(mesh.shape[a] for a in axes)
    for d, (entry, size) in enumerate(zip(entries, shape)):
        if entry is None and size % n == 0:
            entries[d] = axes[0] if len(axes) == 1 else axes
            break
    return P(*entries)


def _param_specs(params, shardings, mesh):
    """Flat lists of (spec, shape) per parameter leaf, and the mesh they live on."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(params, is_leaf=_NONE_LEAF)
    if shardings is None:
        shard_leaves = [getattr(x, "sharding", None) for _, x in leaves]
    elif isinstance(shardings, (P, Sharding)):
        shard_leaves = [shardings] * len(leaves)
    else:
        shard_leaves = jax.tree.leaves(shardings, is_leaf=lambda x: x is None or isinstance(x, P))
        if len(shard_leaves) != len(leaves):
            raise ValueError(
                f"{_WHERE}: shardings has {len(shard_leaves)} leaves but params has "
                f"{len(leaves)}. Pass one NamedSharding or PartitionSpec per parameter (a tree "
                "with the params' structure), or a single one for all of them."
            )
    specs = []
    for (path, x), s in zip(leaves, shard_leaves):
        if x is None:
            specs.append((None, None))
            continue
        if isinstance(s, NamedSharding):
            if mesh is not None and s.mesh != mesh:
                raise ValueError(
                    f"{_WHERE}: parameter {jax.tree_util.keystr(path)} lives on the mesh "
                    f"{dict(s.mesh.shape)}, but another parameter (or mesh=) uses "
                    f"{dict(mesh.shape)}. Put every parameter on one mesh."
                )
            mesh, s = s.mesh, s.spec
        elif not isinstance(s, P):
            raise TypeError(
                f"{_WHERE}: parameter {jax.tree_util.keystr(path)} has sharding {s!r}; expected "
                "a NamedSharding or a PartitionSpec. Place the parameters with "
                "jax.device_put(params, NamedSharding(mesh, spec)) or pass shardings=."
            )
        specs.append((s, tuple(np.shape(x))))
    if mesh is None:
        raise ValueError(
            f"{_WHERE}: no mesh to place the state on: the shardings are PartitionSpecs. "
            "Pass mesh=Mesh(...)."
        )
    return specs, mesh


def state_shardings(tx, params, shardings=None, *, mesh=None, zero1_axis=None):
    """The shardings of ``tx.init(params)``, for parameters sharded as given.

    By default each slot mirroring a parameter takes that parameter's sharding and everything
    else is replicated (the matching rule is in this module's docstring). With ``zero1_axis``
    (ZeRO-1), every slot of one or more dimensions is instead also split along that mesh axis,
    on its first dimension that is not sharded yet and is divisible by the axis size; slots with
    no such dimension stay as they are (replicated over the axis). The parameters keep their own
    sharding (replicated, or FSDP-sharded), so per-device optimizer memory for split slots is
    the unsharded size divided by the axis size.

    Usage:
        shard = gradtx.state_shardings(tx, params)
        state = jax.jit(tx.init, out_shardings=shard)(params)
        step = jax.jit(step, in_shardings=(param_shard, shard, batch_shard),
                       out_shardings=(param_shard, shard), donate_argnums=(0, 1))

    Args:
        tx: the gradient transformation (anything with optax's ``init``).
        params: the parameters: arrays or ``jax.ShapeDtypeStruct``s.
        shardings: the parameters' shardings: a tree with the params' structure of
            ``NamedSharding``s or ``PartitionSpec``s, or one of them for every parameter. None
            (default) reads each parameter's own ``.sharding``.
        mesh: the ``Mesh`` (or ``AbstractMesh``); needed only when ``shardings`` are
            PartitionSpecs.
        zero1_axis: a mesh axis name (or a tuple of names) to split optimizer slots along.

    Returns:
        A tree of ``NamedSharding`` with the structure of ``jax.eval_shape(tx.init, params)``
        (None where the state holds None).
    """
    specs, mesh = _param_specs(params, shardings, mesh)
    axes = None
    if zero1_axis is not None:
        axes = tuple(zero1_axis) if isinstance(zero1_axis, (tuple, list)) else (zero1_axis,)
        unknown = [a for a in axes if a not in mesh.axis_names]
        if unknown:
            raise ValueError(
                f"{_WHERE}: zero1_axis={zero1_axis!r} names {unknown}, which the mesh does not "
                f"have; the mesh axes are {mesh.axis_names}."
            )

    def place(spec, shape):
        if axes is not None and len(shape) > 0:
            spec = _zero1_spec(spec, shape, mesh, axes)
        return NamedSharding(mesh, spec)

    abstract = jax.eval_shape(tx.init, params)
    pdef = jax.tree.structure(params, is_leaf=_NONE_LEAF)
    return _place_state(abstract, pdef, specs, place)


def _place_state(abstract, pdef, specs, place):
    """Shardings of an abstract state whose mirroring subtrees have structure ``pdef``."""
    mirrors = lambda node: jax.tree.structure(node, is_leaf=_NONE_LEAF) == pdef  # noqa: E731
    # a pack_leaves state: its inner state mirrors the packed params, not the params
    packed = lambda node: hasattr(node, "packed_specs") and hasattr(node, "plan")  # noqa: E731

    def leaf_or_subtree(node):
        if packed(node):
            shapes = node.packed_shapes()
            inner_specs = [
                (s, tuple(x.shape))
                for s, x in zip(
                    jax.tree.leaves(
                        node.packed_specs([s for s, shape in specs if shape is not None]),
                        is_leaf=_IS_SPEC,
                    ),
                    jax.tree.leaves(shapes),
                )
            ]
            inner = _place_state(node.inner, jax.tree.structure(shapes), inner_specs, place)
            return type(node)(inner, node.plan)
        if node is not None and mirrors(node):
            flat, sdef = jax.tree.flatten(node, is_leaf=_NONE_LEAF)
            out = [
                None
                if x is None
                else place(spec if shape == tuple(x.shape) else P(), tuple(x.shape))
                for x, (spec, shape) in zip(flat, specs)
            ]
            return jax.tree.unflatten(sdef, out)
        return place(P(), tuple(node.shape))

    return jax.tree.map(
        leaf_or_subtree, abstract, is_leaf=lambda n: n is not None and (packed(n) or mirrors(n))
    )


_IS_SPEC = lambda x: x is None or isinstance(x, P)  # noqa: E731


def bytes_per_device(tree) -> dict[Any, int]:
    """Bytes each (addressable) device holds of the arrays in ``tree``, as ``{device: bytes}``.

    Counts every addressable shard, so a replicated array counts in full on each device.
    """
    held: dict[Any, int] = {}
    for x in jax.tree.leaves(tree):
        for shard in getattr(x, "addressable_shards", ()):
            held[shard.device] = held.get(shard.device, 0) + shard.data.nbytes
    return held
