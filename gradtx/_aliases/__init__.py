"""Optimizers (aliases): each a ``def`` whose body is a ``chain(...)`` of public transforms."""
