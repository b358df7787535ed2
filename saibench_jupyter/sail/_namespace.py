"""The names predefined inside SAIL functions (what ``from saibench_jupyter.sail import *`` gives)."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def sail_names() -> frozenset[str]:
    """Every name a SAIL function sees without defining it (builtins not included)."""
    return frozenset(_namespace())


def namespace() -> dict[str, Any]:
    """A fresh globals dict for compiling one SAIL module."""
    return dict(_namespace())


@functools.cache
def _namespace() -> dict[str, Any]:
    import saibench_jupyter.sail as package

    from ._graph import Identity
    from ._lists import SailList

    ns = {name: getattr(package, name) for name in package.__all__}
    # List displays are rewritten to __sail_list__(...); ``id`` is SAIL's identity layer.
    ns["__sail_list__"] = SailList
    ns["id"] = Identity
    ns["__builtins__"] = __builtins__
    return ns
