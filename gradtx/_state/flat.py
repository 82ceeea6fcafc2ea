"""A flat parameter layout: a few large buffers in place of a tree of many small arrays.

An optimizer step costs about a microsecond per kernel and compiles in time that grows faster
than the number of leaves. Keeping the parameters in a few buffers (one per dtype and sharding,
or one per shape) and giving the model a tree *view* of them inside the loss makes the
gradients arrive as buffers too, so the whole optimizer step runs on a handful of arrays.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class _Slot(NamedTuple):
    buffer: str  # the name of the buffer that holds the leaf
    index: int  # start offset in a flat buffer, or position in a stacked one
    shape: tuple  # the leaf's shape


def _sharding(x):
    """The leaf's sharding when it spans several devices, else None."""
    if not isinstance(x, jax.Array) or isinstance(x, jax.core.Tracer):
        return None
    return x.sharding if len(x.sharding.device_set) > 1 else None


def _buffer_sharding(sharding, shape, stacked: bool, name: str):
    """Where a group's buffer lives: the leaves' sharding, over the buffer's own axes."""
    spec = getattr(sharding, "spec", None)
    if sharding is None or spec is None or sharding.is_fully_replicated:
        return sharding
    mesh = sharding.mesh
    if stacked:
        return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, *spec))
    axes = tuple(a for s in spec if s is not None for a in (s if isinstance(s, tuple) else (s,)))
    ways = math.prod(mesh.shape[a] for a in axes)
    if shape[0] % ways:
        raise ValueError(
            f"gradtx.flat_layout: buffer {name!r} has {shape[0]} elements, which do not split "
            f"evenly over the mesh axes {axes} ({ways} ways) its leaves are sharded over. Use "
            "flat_layout(params, stack_by_shape=True), which keeps each leaf's sharding."
        )
    spec = jax.sharding.PartitionSpec(axes if len(axes) > 1 else axes[0])
    return jax.sharding.NamedSharding(mesh, spec)


class FlatLayout:
    """Parameters held in a few buffers, with the tree view the model reads.

    Built by ``flat_layout``. Attributes and methods:
        buffers: dict name -> array, the parameters to optimize (pass these to ``tx.init``,
            ``tx.update`` and ``apply_updates`` instead of the tree).
        unflatten(buffers): the parameter tree, each leaf a static slice (flat) or row
            (stacked) of a buffer; call it inside the loss so gradients arrive as buffers.
        pack(tree): the buffers holding a tree shaped like the parameters (e.g. gradients
            computed on the tree).
    """

    def __init__(self, treedef, slots, buffers, stacked: bool):
        self.treedef = treedef
        self.slots = slots
        self.buffers = buffers
        self.stacked = stacked

    def unflatten(self, buffers) -> Any:
        """The parameter tree viewed from ``buffers`` (works under jit, grad and vmap)."""
        missing = set(self.buffers) - set(buffers)
        if missing:
            raise ValueError(
                f"FlatLayout.unflatten: buffers {sorted(missing)} are missing; pass the dict "
                f"with every buffer of this layout ({sorted(self.buffers)})."
            )
        for name, want in self.buffers.items():
            got = jnp.shape(buffers[name])
            if want is not None and got != jnp.shape(want):
                raise ValueError(
                    f"FlatLayout.unflatten: buffer {name!r} has shape {got}, but this layout's "
                    f"buffer has shape {jnp.shape(want)}; its leaves would be read from the "
                    "wrong offsets. Pass buffers made by this layout's pack (or its .buffers)."
                )
        leaves = []
        for slot in self.slots:
            buf = buffers[slot.buffer]
            if self.stacked:
                leaves.append(jax.lax.index_in_dim(buf, slot.index, keepdims=False))
            else:
                size = math.prod(slot.shape)
                piece = jax.lax.slice_in_dim(buf, slot.index, slot.index + size)
                leaves.append(piece.reshape(slot.shape))
        return jax.tree.unflatten(self.treedef, leaves)

    def pack(self, tree) -> dict:
        """The buffers of ``tree``, a tree with the parameters' structure and shapes."""
        leaves, treedef = jax.tree.flatten(tree)
        if treedef != self.treedef:
            raise ValueError(
                f"FlatLayout.pack: the tree has structure {treedef}, expected the parameters' "
                f"{self.treedef}. Pack only trees shaped like the params the layout was built from."
            )
        paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree)]
        for slot, x, path in zip(self.slots, leaves, paths):
            if tuple(jnp.shape(x)) != tuple(slot.shape):
                raise ValueError(
                    f"FlatLayout.pack: the leaf at {path or 'the root'} has shape "
                    f"{tuple(jnp.shape(x))}, but the layout holds a leaf of shape {slot.shape} "
                    "there; packing it would shift every later leaf of the buffer. Pack only "
                    "trees shaped like the params the layout was built from."
                )
        groups: dict[str, list] = {name: [] for name in self.buffers}
        for slot, x in zip(self.slots, leaves):
            groups[slot.buffer].append(jnp.asarray(x) if self.stacked else jnp.ravel(x))
        join = jnp.stack if self.stacked else jnp.concatenate
        return {name: join(parts) for name, parts in groups.items()}

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {v.dtype}{list(v.shape)}" for k, v in self.buffers.items())
        return f"FlatLayout({len(self.slots)} leaves in {{{shapes}}})"


def flat_layout(params, *, stack_by_shape: bool = False) -> FlatLayout:
    """Lay a parameter tree out in a few buffers, for a faster optimizer step.

    Leaves are grouped by (dtype, sharding): each group becomes one 1-D buffer (the leaves
    raveled end to end), or with ``stack_by_shape=True`` one array of shape (n, *shape) per
    (dtype, shape, sharding), whose sharding is the leaves' with a leading unsharded axis.
    Buffer names read like ``"float32"`` or ``"float32[64,64]"``, with ``"#1"``, ``"#2"``
    added where one dtype (and shape) comes in several shardings.

    Elementwise transforms (every optimizer of the seed, clipping by value or by the global
    norm) follow the same trajectory on the buffers as on the tree. Transforms that look at
    one leaf at a time (a mask by leaf, per-leaf norms or trust ratios, factored moments) see
    a buffer as one leaf; ``stack_by_shape=True`` keeps shapes, so a mask by shape still works.

    Example:
        >>> import jax, jax.numpy as jnp, gradtx
        >>> layout = gradtx.flat_layout({"w": jnp.ones((2, 3)), "b": jnp.zeros(3)})
        >>> layout
        FlatLayout(2 leaves in {float32: float32[9]})
        >>> layout.unflatten(layout.buffers)["w"].shape
        (2, 3)
    """
    leaves, treedef = jax.tree.flatten(params)
    leaves = [jnp.asarray(x) for x in leaves]
    keys, slots, offsets = {}, [], {}
    for x in leaves:
        group = (x.dtype, x.shape if stack_by_shape else None, _sharding(x))
        if group not in keys:
            base = str(x.dtype) + (f"[{','.join(map(str, x.shape))}]" if stack_by_shape else "")
            same = sum(1 for n in keys.values() if n.split("#")[0] == base)
            keys[group] = base + (f"#{same}" if same else "")
        name = keys[group]
        index = offsets.get(name, 0)
        slots.append(_Slot(name, index, x.shape))
        offsets[name] = index + (1 if stack_by_shape else x.size)
    layout = FlatLayout(treedef, tuple(slots), {n: None for n in keys.values()}, stack_by_shape)
    buffers = layout.pack(params)
    for group, name in keys.items():
        where = _buffer_sharding(group[2], buffers[name].shape, stack_by_shape, name)
        if where is not None:
            buffers[name] = jax.device_put(buffers[name], where)
    layout.buffers = buffers
    return layout
