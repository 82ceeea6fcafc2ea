"""torch's parameter groups, as rules on parameter paths for ``gradtx.param_groups``.

torch: ``Adam([{"params": model.body.parameters()}, {"params": model.head.parameters(),
"lr": 1e-2}], lr=1e-3)``. gradtx has no parameter objects when the optimizer is built, so a
group's ``"params"`` names its leaves by path instead: a glob on ``"a/b/c"``, a list of such
globs (any may match), a compiled regex or a predicate ``(path, leaf) -> bool``
(``gradtx.ParamGroup``'s ``match``). A group without
``"params"`` (or with None) takes every leaf no other group matches (at most one such group).
Each other key (``"lr"``, ``"weight_decay"``, ``"betas"``, ...) overrides the optimizer's
keyword argument for that group, as in torch; ``"name"`` names the group in the state (the
default is its position, ``"0"``, ``"1"``, ...). Every leaf must belong to exactly one group.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from gradtx.transforms._groups import ParamGroup, param_groups


def _group_name(i, group, where):
    name = group.get("name", str(i))
    if not isinstance(name, str) or not name:
        raise TypeError(f"{where}: group {i} has name={name!r}; expected a non-empty string.")
    return name


def _any_of(globs, where, name):
    """A predicate matching a path (or the path without a final "/value") by any glob."""
    if not all(isinstance(g, str) for g in globs) or not globs:
        raise TypeError(
            f"{where}: group {name!r} has params={globs!r}; a list must hold path globs "
            "(strings), e.g. ['encoder/*', 'head/w']."
        )
    globs = tuple(globs)

    def match(path, leaf):
        del leaf
        paths = [path] + ([path[: -len("/value")]] if path.endswith("/value") else [])
        return any(fnmatch.fnmatchcase(p, g) for p in paths for g in globs)

    return match


def torch_param_groups(where, params):
    """``(groups, default)`` for ``gradtx.param_groups`` from torch-style group dicts."""
    if isinstance(params, Mapping) or not isinstance(params, list | tuple):
        raise TypeError(
            f"{where}: params={type(params).__name__}; expected None (one group of every "
            "parameter) or a list of group dicts [{'params': '<glob on the path>', 'lr': ...}]. "
            "A gradtx optimizer receives the parameters at init, not here."
        )
    groups, default = [], None
    for i, g in enumerate(params):
        if not isinstance(g, Mapping):
            raise TypeError(
                f"{where}: params[{i}]={g!r}; expected a dict {{'params': '<glob>', ...}}."
            )
        name = _group_name(i, g, where)
        hyper = {k: v for k, v in g.items() if k not in ("params", "name")}
        match = g.get("params")
        if match is None:
            if default is not None:
                raise ValueError(
                    f"{where}: groups {default.name!r} and {name!r} both lack 'params'; only one "
                    "group may take the remaining parameters."
                )
            default = ParamGroup(name, None, hyperparams=hyper)
        else:
            if isinstance(match, list | tuple):
                match = _any_of(match, where, name)
            groups.append(ParamGroup(name, match, hyperparams=hyper))
    return groups, default


def group_order(params) -> list[str]:
    """The group names in torch's order (the order of the list)."""
    if params is None:
        return []
    return [str(g.get("name", str(i))) for i, g in enumerate(params)]


def with_param_groups(where, build, params):
    """``build(**{})`` for params=None, else ``param_groups(build, {}, groups, default=...)``.

    ``build`` takes the optimizer's keyword arguments with the top-level values as defaults,
    so a group's keys override exactly those (an unknown key is a TypeError naming it).
    """
    if params is None:
        return build()
    groups, default = torch_param_groups(where, params)
    return param_groups(build, {}, groups, default=default)
