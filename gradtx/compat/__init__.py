"""Dialects: gradtx with another library's defaults, names and module paths.

``gradtx.compat.optax`` is gradtx with optax 0.2.8's defaults and submodule paths, so that
``import gradtx.compat.optax as optax`` leaves an optax program's behaviour unchanged.
"""
