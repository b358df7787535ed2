"""Which scenarios a work–precision line joins, and in what order: parameters read, compared and sorted.

A family whose scenarios give one point each is joined along the parameter it sweeps
(``rtol=1e-8, 1e-5, 1e-3``); a family whose scenarios have several checkpoints is one
curve per scenario. Parameters are compared as numbers where they are numbers, so
``1e-06`` sorts before ``0.0001`` and ``32`` before ``128``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas


def flat_params(params: Any) -> dict[str, Any]:
    """A scenario's stored parameters (JSON text or a mapping) as ``{"MLP.hiddenSize": 128}``.

    The store holds them in that shape (a store written before is migrated when opened);
    a mapping by role (``{"model": {"hiddenSize": 128}}``) still reads as ``model.hiddenSize``.
    """
    if isinstance(params, str):
        params = json.loads(params)
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if isinstance(value, Mapping) and "." not in str(key):
            out.update({f"{key}.{k}": v for k, v in flat_params(value).items()})
        else:
            out[str(key)] = value
    return out


_NUMBER = re.compile(r"(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


def natural(text: str) -> list[Any]:
    """A sort key that puts hiddenSize=32 before 128 and rtol=1e-06 before 0.0001 (numbers compare as numbers)."""
    return [(0, float(part), "") if k % 2 else (1, 0.0, part) for k, part in enumerate(_NUMBER.split(text))]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def param_text(params: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``hiddenSize=128, tolerance=0.001``: short names, unless two keys would read the same."""
    short = [k.rsplit(".", 1)[-1] for k in keys]
    return ", ".join(f"{s if short.count(s) == 1 else k}={_fmt(params.get(k))}" for k, s in zip(keys, short))


def _sort_value(value: Any) -> list[Any]:
    """A sort key for a parameter's value: numbers as numbers (1e-06 before 0.0001), anything else by its text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [(0, float(value), "")]
    return natural(value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str))


def differing_params(params: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """The parameters whose values differ between these scenarios: how many values each takes."""
    keys = sorted({k for p in params.values() for k in p})
    counts = {k: len({json.dumps(p.get(k), sort_keys=True, default=str) for p in params.values()}) for k in keys}
    return {k: n for k, n in counts.items() if n > 1}


def _variant(scenario: Mapping[str, Any], params: Mapping[str, Any], roles: Sequence[str],
             keys: Sequence[str]) -> str:
    """What tells a scenario from the others of its group: the modules and parameters that differ."""
    return ", ".join(t for t in (*(str(scenario.get(r)) for r in roles), param_text(params, keys)) if t)


def curves(family: str, rows: pandas.DataFrame, scenarios: Mapping[str, Mapping[str, Any]],
           params: Mapping[str, Mapping[str, Any]], differing: Mapping[str, int],
           connect: str) -> list[tuple[str, pandas.DataFrame]]:
    """The curves of one family: ``(legend name, its points in the order the line joins them)``.

    Parameters
    ----------
    family : str
        The group's name (the name of its only curve).
    rows : pandas.DataFrame
        The group's points: ``identity``, ``stage``, ``checkpoint`` and ``_order`` (the
        scenarios' order by label) among the columns.
    scenarios : mapping
        Each identity's first tidy row (``label``, ``problem``, ``model`` ...).
    params : mapping
        Each identity's parameters, flat (:func:`flat_params`).
    differing : mapping
        The parameters that differ within the group (:func:`differing_params`).
    connect : {"param", "checkpoint"}
        What a line joins.

    Notes
    -----
    ``checkpoint``: one curve per scenario. ``param``: each scenario's last point, joined
    along the parameter the family sweeps (of those that differ, the one with the most
    values; the last by name on a tie); scenarios that differ in anything else too (another
    parameter, or a module when the group is not a family) make one curve per combination.
    A family of one curve is named after itself, a curve otherwise after what differs.
    """
    rows = rows.sort_values(["_order", "stage", "checkpoint"])
    ids = list(dict.fromkeys(rows["identity"].tolist()))
    roles = [r for r in ("problem", "model", "software", "hardware")
             if len({str(scenarios[i].get(r)) for i in ids}) > 1]
    out: list[tuple[str, pandas.DataFrame]]
    if connect == "checkpoint":
        of = dict(tuple(rows.groupby("identity", sort=False)))  # one pass, not a scan of the rows per scenario
        out = [(_variant(scenarios[i], params[i], roles, list(differing)) or str(scenarios[i]["label"]), of[i])
               for i in ids]
    else:
        last = rows.groupby("identity", sort=False).tail(1)  # rows are in checkpoint order: the final point
        swept = max(reversed(list(differing)), key=lambda k: differing[k]) if differing else ""
        others = [k for k in differing if k != swept]
        members: dict[str, list[int]] = {}
        lasts = last["identity"].tolist()
        for k, identity in enumerate(lasts):
            members.setdefault(_variant(scenarios[identity], params[identity], roles, others), []).append(k)
        out = []
        for name in sorted(members, key=natural):
            ks = sorted(members[name], key=lambda k: _sort_value(params[lasts[k]].get(swept)))
            out.append((name, last.iloc[ks]))
    return [(family, out[0][1])] if len(out) == 1 else out
