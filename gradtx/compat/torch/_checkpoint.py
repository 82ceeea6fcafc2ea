"""torch optimizer checkpoints brought into gradtx state (and written as a pickle-free .npz).

torch keeps the state of ``optimizer.state_dict()`` per parameter *index* (its position in
the optimizer's groups, group after group); gradtx keeps it per parameter *path*. The user
gives the paths in torch's index order (``names``); every per-parameter tensor of torch's
state is then checked against the gradtx slot it fills and placed there, and every step
count of the gradtx state is set from torch's ``step``. All mismatches (shapes, unknown names,
missing entries) are collected and reported in one error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.transforms._combine import path_str

# torch's per-parameter state key -> the gradtx state field it fills (first-order optimizers).
# Keys torch has and gradtx derives from ``step`` (ASGD's eta and mu) map to None.
_FIELDS = {
    "momentum_buffer": ("trace", "mu"),  # SGD, RMSprop: trace; Muon: its momentum mu
    "exp_avg": ("mu",),
    "exp_avg_sq": ("nu",),
    "max_exp_avg_sq": ("nu_max",),
    "sum": ("sum_of_squares",),
    "square_avg": ("nu", "e_g"),  # RMSprop: nu; Adadelta: e_g
    "grad_avg": ("mu",),  # centered RMSprop
    "acc_delta": ("e_x",),
    "exp_inf": ("nu",),
    "prev": ("prev_updates",),
    "step_size": ("step_sizes",),
    "ax": ("ax",),
    "row_var": ("v_row",),
    "col_var": ("v_col",),
    "variance": ("v",),
    "eta": None,
    "mu": None,
    "step": None,
    "mu_product": None,
}
_LBFGS_KEYS = {"d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss"}


def _array(x):
    """A NumPy array from a NumPy value, a Python number or a torch tensor (duck-typed)."""
    if hasattr(x, "detach"):
        x = x.detach()
    if hasattr(x, "cpu"):
        x = x.cpu()
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray | np.generic):
        try:
            return np.asarray(x.numpy())
        except TypeError:  # e.g. bfloat16, which NumPy lacks
            return np.asarray(x.double().numpy())
    return np.asarray(x)


def _plain(value):
    """torch's state entry as NumPy: arrays, lists of arrays, numbers; None stays None."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        if any(v is None for v in value):  # LBFGS's scratch list "al"
            return None
        return [_array(v) for v in value]
    return _array(value)


def export_torch_optimizer_state(optimizer, path) -> None:
    """Write ``optimizer.state_dict()`` of a torch optimizer to ``path`` as a pickle-free .npz.

    Runs where torch is installed (torch itself is not imported here: tensors are read through
    ``.numpy()``). Keys: ``"param_groups"`` (JSON text of torch's param_groups: indices and
    hyperparameters) and ``"state/<index>/<key>"`` (a list entry, as LBFGS's ``old_dirs``, as
    ``"state/<index>/<key>/<j>"``). ``load_optimizer_state(path, params, tx, names=...)``
    reads it back with ``np.load(..., allow_pickle=False)``.
    """
    sd = optimizer.state_dict()
    out = {"param_groups": np.asarray(json.dumps(sd["param_groups"], default=_json_default))}
    for index, entries in sd["state"].items():
        for key, value in entries.items():
            value = _plain(value)
            if value is None:
                continue
            if isinstance(value, list):
                out[f"state/{index}/{key}/__len__"] = np.asarray(len(value))
                for j, v in enumerate(value):
                    out[f"state/{index}/{key}/{j}"] = v
            else:
                out[f"state/{index}/{key}"] = value
    np.savez(path, **out)


def _json_default(x):
    try:
        return _array(x).tolist()
    except Exception:  # noqa: BLE001 - a hyperparameter JSON cannot hold (a function)
        return repr(x)


def _read_npz(path):
    """The state dict ``{"state": {index: {key: array}}, "param_groups": [...]}`` of an export."""
    with np.load(os.fspath(path), allow_pickle=False) as z:
        groups = json.loads(str(z["param_groups"]))
        state: dict[int, dict] = {}
        lists: dict[tuple[int, str], int] = {}
        for name in z.files:
            if not name.startswith("state/"):
                continue
            _, index, rest = name.split("/", 2)
            key, _, item = rest.partition("/")
            if item == "__len__":
                lists[(int(index), key)] = int(z[name])
            elif item:
                state.setdefault(int(index), {}).setdefault(key, {})[int(item)] = z[name]
            else:
                state.setdefault(int(index), {})[key] = z[name]
        for (index, key), n in lists.items():
            got = state.get(index, {}).get(key, {})
            state.setdefault(index, {})[key] = [got[j] for j in range(n)]
    return {"state": state, "param_groups": groups}


def _leaf_paths(tree):
    """``{param path: (tree path, leaf)}`` of a params-shaped subtree of the state."""
    flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)[0]
    return {path_str(p): (p, x) for p, x in flat if x is not None}


def _set_leaf(tree, key_path, value):
    """``tree`` with the leaf at ``key_path`` (a jax key path) replaced."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)
    return treedef.unflatten([value if p == key_path else x for p, x in flat])


def load_optimizer_state(torch_state_dict, params, tx, *, names, step=None):
    """The gradtx state of ``tx`` holding a torch optimizer's ``state_dict()``.

    ``tx`` is the matching optimizer of ``gradtx.compat.torch`` (built with the same arguments
    and groups as the torch optimizer), ``params`` the parameters the run continues from,
    ``names`` their paths (``"a/b/c"``) in torch's parameter-index order (for groups: group
    after group, as torch numbers them). ``torch_state_dict`` is the dict of
    ``optimizer.state_dict()`` (tensors or NumPy arrays), or the path of an ``.npz`` written by
    ``export_torch_optimizer_state``.

    Each torch tensor is placed in the gradtx slot of the same parameter (exp_avg -> mu,
    exp_avg_sq -> nu, sum -> sum_of_squares, ...); every step count of the state (``count``,
    NAdam's ``mu_product``) is set from torch's ``step`` of the parameters of that group.
    LBFGS's state (flat vectors on parameter 0) fills scale_by_lbfgs's: the parameters and
    gradient before the last step and the ring of (s, y) pairs (see ``_load_lbfgs``).
    torch's SGD and Muon keep no ``step``: pass ``step=`` (the number of steps taken) when
    the gradtx state counts steps (SGD with dampening, Muon).
    Raises one ValueError listing every problem: a name that is not a parameter path,
    parameters missing from ``names``, a torch index with no name, shapes that differ, torch
    entries with no gradtx slot, a group assignment that differs from ``tx``'s.
    """
    where = "gradtx.compat.torch.load_optimizer_state"
    if isinstance(torch_state_dict, str | os.PathLike):
        torch_state_dict = _read_npz(torch_state_dict)
    if not isinstance(torch_state_dict, Mapping) or "state" not in torch_state_dict:
        raise TypeError(
            f"{where}: expected optimizer.state_dict() (a dict with 'state' and "
            f"'param_groups') or the path of its .npz export; got {type(torch_state_dict)}."
        )
    names = list(names)
    torch_state = {int(k): v for k, v in torch_state_dict["state"].items()}
    groups = torch_state_dict.get("param_groups", [])
    state = tx.init(params)
    problems: list[str] = []

    param_paths = _leaf_paths(params)
    unknown = [n for n in names if n not in param_paths]
    if unknown:
        problems.append(f"names that are not parameter paths: {unknown}")
    if len(set(names)) != len(names):
        problems.append(f"names repeated: {sorted({n for n in names if names.count(n) > 1})}")
    missing = [p for p in param_paths if p not in names]
    if missing:
        problems.append(f"parameters not in names (torch has no state for them?): {missing}")
    no_name = sorted(i for i in torch_state if i >= len(names))
    if no_name:
        problems.append(f"torch state indices with no name (names has {len(names)}): {no_name}")

    if any(k in _LBFGS_KEYS for entries in torch_state.values() for k in entries):
        return _load_lbfgs(torch_state, params, state, names, where, problems)

    index_group = {i: g for g, grp in enumerate(groups) for i in grp.get("params", [])}
    flat_state, treedef = jax.tree_util.tree_flatten_with_path(state, is_leaf=lambda x: x is None)
    new = [x for _, x in flat_state]
    # the per-parameter slots {(field, param path): [positions in flat_state]}, the step
    # counts [(position, keys)], and each parameter's gradtx group (a partition's key)
    slots: dict[tuple[str, str], list[int]] = {}
    counts: list[tuple[int, list[str]]] = []
    group_of: dict[str, str | None] = {}
    for pos, (kp, leaf) in enumerate(flat_state):
        keys = [_key(k) for k in kp]
        if leaf is None:
            continue
        for cut in range(len(keys) - 1):  # the longest tail that is a parameter path
            tail = "/".join(keys[cut + 1 :])
            if tail in param_paths:
                slots.setdefault((keys[cut], tail), []).append(pos)
                group_of[tail] = _prefix(keys)
                break
        else:
            if keys and keys[-1] in ("count", "mu_product"):
                counts.append((pos, keys))

    steps: dict[tuple[str, str | None], set] = {}  # (step or mu_product, group) -> values
    used: set[int] = set()
    for index, entries in sorted(torch_state.items()):
        if index >= len(names) or names[index] not in param_paths:
            continue
        name = names[index]
        for key, value in entries.items():
            value = _plain(value)
            if value is None:
                continue
            if key not in _FIELDS:
                problems.append(f"param {index} ({name!r}): torch state key {key!r} is unknown")
                continue
            if key in ("step", "mu_product"):
                steps.setdefault((key, group_of.get(name)), set()).add(float(value))
                continue
            if _FIELDS[key] is None:
                continue
            hits = [q for f in _FIELDS[key] for q in slots.get((f, name), []) if q not in used]
            if not hits:
                problems.append(
                    f"param {index} ({name!r}): torch's {key!r} has no slot in the gradtx state "
                    "(is tx built with the same options and groups?)"
                )
                continue
            used.add(hits[0])
            like = new[hits[0]]
            if tuple(value.shape) != tuple(jnp.shape(like)):
                problems.append(
                    f"param {index} ({name!r}): {key!r} has shape {tuple(value.shape)} in torch, "
                    f"{tuple(jnp.shape(like))} in gradtx"
                )
                continue
            new[hits[0]] = jnp.asarray(value, jnp.result_type(like))
    # torch's groups must be gradtx's: one gradtx group per torch group, distinct
    seen: dict = {}
    for i, g in sorted(index_group.items()):
        if i < len(names) and names[i] in group_of:
            seen.setdefault(g, set()).add(group_of[names[i]])
    for g, found in sorted(seen.items()):
        others = set().union(*[v for h, v in seen.items() if h != g])
        if len(found) > 1 or found & others:
            problems.append(
                f"torch's param group {g} holds parameters of the gradtx groups {sorted(found)} "
                "(the groups differ: check the order of names and the groups' 'params')"
            )
    for pos, keys in counts:
        kind = "mu_product" if keys[-1] == "mu_product" else "step"
        got = steps.get((kind, _prefix(keys)))
        if not got:  # a subtree with no torch parameters of its own (Muon's fallback)
            got = set().union(*[v for (k, _), v in steps.items() if k == kind])
        if not got and kind == "step" and step is not None:
            got = {float(step)}
        if len(got) != 1:
            what = "no step (pass step=)" if not got else f"steps {sorted(got)}"
            problems.append(f"state {'/'.join(keys)!r}: torch has {what} for it (need one)")
            continue
        new[pos] = jnp.asarray(next(iter(got)), jnp.result_type(new[pos]))
    unfilled = sorted(f"{f} of {p!r}" for (f, p), ps in slots.items() for q in ps if q not in used)
    if unfilled:
        problems.append(f"gradtx slots torch's state does not fill: {unfilled}")
    if problems:
        raise ValueError(
            f"{where}: the torch state does not fit the gradtx state ({len(problems)} "
            "problems):\n  " + "\n  ".join(problems)
        )
    return treedef.unflatten(new)


def _key(k) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _prefix(keys):
    """The parameter group (the first partition key) a state path lies in, else None."""
    return keys[1] if len(keys) > 1 and keys[0] == "inner_states" else None


def _load_lbfgs(torch_state, params, state, names, where, problems):
    """torch.optim.LBFGS's state (flat vectors on parameter 0) as scale_by_lbfgs's.

    After n_iter iterations torch holds d and t (the last step was t * d), prev_flat_grad (the
    gradient before it) and the pairs old_stps (s) and old_dirs (y), oldest first. gradtx holds
    the parameters and gradient before the last step and a ring of memory_size pairs whose
    newest slot is (count - 2) % memory_size; torch's pairs fill the slots before it.
    """
    from gradtx._state.tools import find_paths, tree_get, tree_set

    entries = {k: _plain(v) for k, v in torch_state.get(0, {}).items()}
    need = ("n_iter", "d", "t", "old_dirs", "old_stps", "prev_flat_grad")
    lacking = [k for k in need if entries.get(k) is None]
    if lacking:
        problems.append(f"torch's LBFGS state lacks {lacking} (was step() called?)")
    mem_paths = find_paths(state, "diff_params_memory")
    if len(mem_paths) != 1:
        problems.append("tx has no single scale_by_lbfgs state (build it with LBFGS(...))")
    if problems:
        raise ValueError(f"{where}: " + "\n  ".join(problems))
    prefix = "/".join(mem_paths[0][:-1])
    q = f"{prefix}/" if prefix else ""
    order = list(names)
    leaves = {path_str(p): x for p, x in jax.tree_util.tree_flatten_with_path(params)[0]}
    sizes = [int(np.prod(jnp.shape(leaves[n]))) for n in order]
    total = sum(sizes)
    memory = jax.tree.leaves(tree_get(state, q + "diff_params_memory"))[0].shape[0]

    def tree(flat, what):
        flat = np.asarray(flat).reshape(-1)
        if flat.shape[0] != total:
            problems.append(f"torch's {what} has {flat.shape[0]} entries, the params {total}")
            return None
        parts, at = {}, 0
        for n, k in zip(order, sizes, strict=True):
            parts[n] = flat[at : at + k].reshape(jnp.shape(leaves[n]))
            at += k
        return jax.tree_util.tree_map_with_path(
            lambda p, x: jnp.asarray(parts[path_str(p)], jnp.result_type(x)), params
        )

    n_iter = int(entries["n_iter"])
    current = np.concatenate([np.ravel(np.asarray(leaves[n])) for n in order])
    before = tree(current - float(entries["t"]) * np.ravel(entries["d"]), "d")
    grad = tree(entries["prev_flat_grad"], "prev_flat_grad")
    s_list, y_list = entries["old_stps"], entries["old_dirs"]
    if len(s_list) > memory:
        problems.append(f"torch keeps {len(s_list)} pairs, tx's memory_size is {memory}")
    slots_s = [np.zeros(total) for _ in range(memory)]
    slots_y = [np.zeros(total) for _ in range(memory)]
    for j, (sv, yv) in enumerate(zip(s_list, y_list, strict=True)):
        slot = (n_iter - 2 - (len(s_list) - 1 - j)) % memory
        slots_s[slot], slots_y[slot] = np.ravel(sv), np.ravel(yv)
    if problems:
        raise ValueError(f"{where}: " + "\n  ".join(problems))

    def ring(slots):
        rows = [tree(v, "a pair") for v in slots]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *rows)

    state = tree_set(
        state,
        {
            q + "params": before,
            q + "updates": grad,
            q + "diff_params_memory": ring(slots_s),
            q + "diff_updates_memory": ring(slots_y),
        },
    )
    flat, treedef = jax.tree_util.tree_flatten_with_path(state)
    return treedef.unflatten(
        [jnp.asarray(n_iter, jnp.result_type(x)) if _key(p[-1]) == "count" else x for p, x in flat]
    )
