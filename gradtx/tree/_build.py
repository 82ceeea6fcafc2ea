"""Trees built like other trees, casts and random trees, with optax's ``optax.tree`` names."""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp

from gradtx._core.trees import tree_map_none


def zeros_like(tree, dtype=None):
    """Zeros shaped like each leaf (in ``dtype`` if given)."""
    return tree_map_none(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def ones_like(tree, dtype=None):
    """Ones shaped like each leaf (in ``dtype`` if given)."""
    return tree_map_none(lambda x: jnp.ones_like(x, dtype=dtype), tree)


def full_like(tree, fill_value, dtype=None):
    """``fill_value`` shaped like each leaf (in ``dtype`` if given)."""
    return tree_map_none(lambda x: jnp.full_like(x, fill_value, dtype=dtype), tree)


def cast(tree, dtype):
    """Every leaf cast to ``dtype``; ``dtype=None`` returns the tree unchanged."""
    return tree if dtype is None else tree_map_none(lambda x: jnp.asarray(x).astype(dtype), tree)


def cast_like(tree, other_tree):
    """Every leaf cast to the dtype of the matching leaf of ``other_tree`` (if it has one)."""
    return tree_map_none(
        lambda x, o: x.astype(o.dtype) if hasattr(o, "dtype") else x, tree, other_tree
    )


def _promote(a, b):
    with jax.numpy_dtype_promotion("standard"):  # asked for explicitly: JAX's lattice
        return jnp.promote_types(a, b)


def _lower(a, b):
    promoted = _promote(a, b)
    if promoted not in (a, b):
        raise ValueError(
            f"gradtx.tree.dtype: {a} and {b} cannot be ordered (neither promotes to the other)."
        )
    return b if promoted == a else a


def _higher(a, b):
    return b if _lower(a, b) == a else a


def dtype(tree, mixed_dtype_handler: str | None = None):
    """The dtype of the tree's leaves.

    With ``mixed_dtype_handler=None`` every leaf must have one dtype (a ValueError lists the
    others); ``"promote"`` promotes them, ``"highest"`` / ``"lowest"`` pick the widest or the
    narrowest in promotion order. An empty tree gives JAX's default float dtype.
    """
    dtypes = [jnp.asarray(x).dtype for x in jax.tree.leaves(tree)]
    if not dtypes:
        return jnp.dtype(jnp.result_type(float))
    if mixed_dtype_handler is None:
        paths = jax.tree_util.tree_leaves_with_path(tree)
        bad = [
            f"{jax.tree_util.keystr(p)}: {jnp.asarray(x).dtype}"
            for p, x in paths
            if jnp.asarray(x).dtype != dtypes[0]
        ]
        if bad:
            raise ValueError(
                f"gradtx.tree.dtype: the leaves have several dtypes (first: {dtypes[0]}; also "
                f"{', '.join(bad)}). Pass mixed_dtype_handler='promote', 'highest' or 'lowest'."
            )
        return dtypes[0]
    reducers = {"promote": _promote, "highest": _higher, "lowest": _lower}
    if mixed_dtype_handler not in reducers:
        raise ValueError(
            f"gradtx.tree.dtype: mixed_dtype_handler={mixed_dtype_handler!r}; expected None, "
            "'promote', 'highest' or 'lowest'."
        )
    return jnp.dtype(functools.reduce(reducers[mixed_dtype_handler], dtypes))


def split_key_like(rng_key, target_tree):
    """One PRNG key per leaf of ``target_tree``, split from ``rng_key``, in its structure."""
    treedef = jax.tree.structure(target_tree)
    return jax.tree.unflatten(treedef, list(jax.random.split(rng_key, treedef.num_leaves)))


def random_like(rng_key, target_tree, sampler=jax.random.normal, dtype=None):
    """A random tree shaped like ``target_tree``: ``sampler(key, shape, dtype)`` per leaf.

    Each leaf gets its own key (``split_key_like``); ``dtype`` defaults to each leaf's. A
    sampler that takes ``out_sharding`` is given the leaf's sharding.
    """
    keys = split_key_like(rng_key, target_tree)
    takes_sharding = "out_sharding" in inspect.signature(sampler).parameters

    def leaf(key, x):
        dt = dtype or x.dtype
        if takes_sharding and isinstance(getattr(x, "sharding", None), jax.sharding.NamedSharding):
            return sampler(key, x.shape, dt, out_sharding=x.sharding)
        return sampler(key, x.shape, dt)

    return jax.tree.map(leaf, keys, target_tree)


def unwrap_random_key_data(input_tree):
    """Typed PRNG keys (``jax.random.key``) replaced by their raw data, for comparisons."""

    def leaf(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.key_data(x)
        return x

    return jax.tree.map(leaf, input_tree)
