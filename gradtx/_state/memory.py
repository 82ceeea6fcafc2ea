"""Memory accounting: the bytes of an optimizer's state, by slot and by parameter, unallocated."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

_NONE_LEAF = lambda x: x is None  # noqa: E731


def _key_name(key) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _nbytes(x) -> int:
    return int(np.prod(x.shape, dtype=np.int64)) * int(x.dtype.itemsize)


@dataclasses.dataclass(frozen=True)
class StateBytes:
    """What ``state_bytes`` reports (every count in bytes, for the whole unsharded state).

    total: the whole state.
    params: the parameters themselves, for comparison.
    by_slot: slot name (the innermost state field above a leaf, e.g. ``mu``) -> bytes.
    by_param: parameter path (``"layers/0/w"``) -> bytes of the slots that mirror it; state
        leaves that mirror no parameter (counts, scalars, flat buffers) are under ``""``.
    by_dtype: dtype name -> bytes.
    """

    total: int
    params: int
    by_slot: dict
    by_param: dict
    by_dtype: dict

    def table(self, unit: str = "MB") -> str:
        """The report as a small Markdown table of slots (``unit``: B, KB, MB or GB)."""
        div = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
        rows = [f"| slot | {unit} |", "|---|---:|"]
        rows += [f"| {k or '(other)'} | {v / div:,.2f} |" for k, v in self.by_slot.items()]
        rows.append(f"| **total** | **{self.total / div:,.2f}** |")
        return "\n".join(rows)


def state_bytes(tx, params) -> StateBytes:
    """The bytes of ``tx.init(params)``, by slot, by parameter and by dtype, via ``eval_shape``.

    Nothing is allocated: ``params`` may be ``jax.ShapeDtypeStruct``s, so a 1B-parameter model's
    optimizer memory under a dtype policy is known before running it.

    Example:
        >>> import jax, jax.numpy as jnp, gradtx
        >>> params = {"w": jax.ShapeDtypeStruct((1000, 1000), jnp.bfloat16)}
        >>> report = gradtx.state_bytes(gradtx.adam(1e-3), params)
        >>> report.by_slot["mu"], report.by_slot["nu"], report.params
        (2000000, 2000000, 2000000)
    """
    abstract = jax.eval_shape(tx.init, params)
    param_paths = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        param_paths[tuple(_key_name(k) for k in path)] = tuple(leaf.shape)
    by_slot: dict = {}
    by_param: dict = {}
    by_dtype: dict = {}
    total = 0
    for path, leaf in jax.tree_util.tree_leaves_with_path(abstract):
        n = _nbytes(leaf)
        total += n
        attrs = [i for i, k in enumerate(path) if isinstance(k, jax.tree_util.GetAttrKey)]
        slot, owner = (path[attrs[-1]].name if attrs else ""), ""
        for i in reversed(attrs):  # the field right above a parameter-shaped subtree
            rest = tuple(_key_name(k) for k in path[i + 1 :])
            if param_paths.get(rest) == tuple(leaf.shape):
                slot, owner = path[i].name, "/".join(rest) or "(params)"
                break
        by_slot[slot] = by_slot.get(slot, 0) + n
        by_param[owner] = by_param.get(owner, 0) + n
        name = str(leaf.dtype)
        by_dtype[name] = by_dtype.get(name, 0) + n
    params_total = sum(_nbytes(x) for x in jax.tree.leaves(params))
    return StateBytes(total, params_total, by_slot, by_param, by_dtype)
