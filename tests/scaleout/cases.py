"""The transforms and functions that reduce over the whole tree, each with an ``axis_name``.

Add an entry here for every new whole-tree reducer; ``test_scaleout.py`` then checks that it is
wrong without ``axis_name`` and right with it inside ``shard_map``.
"""

from __future__ import annotations

import inspect

import gradtx

# (factory or function, keyword arguments other than axis_name)
REDUCERS = [
    (gradtx.clip_by_global_norm, {"max_norm": 0.5}),
    (gradtx.global_norm, {}),
    (gradtx.normalize_by_update_norm, {"scale_factor": 1.0}),
]


def reducer_id(case) -> str:
    return case[0].__name__


def apply_reducer(fn, kwargs, tree, axis_name):
    """Run one reducer on ``tree``: a transform's updates, or a function's value.

    A function whose first parameter has no default and is not in ``kwargs`` takes the tree
    (``global_norm(tree, axis_name=...)``); anything else is a transform factory.
    """
    first = next(iter(inspect.signature(fn).parameters.values()))
    if first.default is inspect.Parameter.empty and first.name not in kwargs:
        return fn(tree, **kwargs, axis_name=axis_name)
    tx = fn(**kwargs, axis_name=axis_name)
    return tx.update(tree, tx.init(tree), tree)[0]
