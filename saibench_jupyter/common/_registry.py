"""Named plug-ins: built-ins first, then installed packages' entry points (backends, executors)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def available(group: str, builtin: Mapping[str, str]) -> dict[str, str]:
    """Every name with where its class lives (``module:Class``): built-ins, then the entry points of ``group``."""
    from importlib.metadata import entry_points

    out = dict(builtin)
    for ep in entry_points(group=group):
        out.setdefault(ep.name, ep.value)
    return out


def load(group: str, builtin: Mapping[str, str], name: str, what: str) -> Any:
    """The class registered as ``name``.

    Raises
    ------
    KeyError
        For an unknown name (the message lists the known ones).
    ImportError
        When its module cannot be imported.
    """
    # Entry points are scanned only for names that are not built in: the scan reads every
    # installed package's metadata (~30 ms), which each pod would pay.
    known = builtin if name in builtin else available(group, builtin)
    if name not in known:
        raise KeyError(f"no {what} {name!r} (known: {', '.join(sorted(known))})")
    module, _, attr = known[name].partition(":")
    return getattr(importlib.import_module(module), attr)
