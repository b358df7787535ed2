"""A scenario's bound parameters in their one shape: ``{"Module.param": value}``.

The planner's scenarios, the pod spec, the results store and the charts all hold a
scenario's parameters this way, so a key read anywhere (``MLP.hiddenSize``) is the key
``discover(params=...)`` takes. A module that fills more than one place of a scenario (a
model that is also its own sub-model, or one model in two ``Require`` slots) has its keys
qualified by each place's role path: ``model/5:8/MLP.hiddenSize`` and
``model/9:4/MLP.hiddenSize``, so no value hides another.

Nothing here imports anything: the results store and the pods read these keys too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

#: (role path, module name): one place of a scenario. Roles are ``problem``, ``hardware``,
#: ``software``, ``model`` and the sub-model paths below it (``model/5:8``).
Place = tuple[str, str]


def _prefixes(places: Sequence[Place]) -> list[str]:
    counts = Counter(name for _, name in places)
    return [name if counts[name] == 1 else f"{role}/{name}" for role, name in places]


def flat_params(places: Sequence[Place], params: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"Module.param": value}`` of each place's parameters (``params[i]`` belongs to ``places[i]``).

    Examples
    --------
    >>> flat_params([("problem", "MNIST"), ("model", "MLP")], [{"epochs": 4}, {"hiddenSize": 128}])
    {'MNIST.epochs': 4, 'MLP.hiddenSize': 128}
    >>> flat_params([("model", "Seg"), ("model/5:8", "MLP"), ("model/9:4", "MLP")], [{}, {"width": 8}, {"width": 16}])
    {'model/5:8/MLP.width': 8, 'model/9:4/MLP.width': 16}
    """
    out: dict[str, Any] = {}
    for prefix, values in zip(_prefixes(places), params):
        out.update((f"{prefix}.{key}", value) for key, value in values.items())
    return out


def params_by_place(places: Sequence[Place], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The inverse of :func:`flat_params`: each place's own parameters, in the order of ``places``.

    Raises
    ------
    ValueError
        For a key that belongs to none of the places (naming it and the places).
    """
    prefixes = [f"{p}." for p in _prefixes(places)]
    out: list[dict[str, Any]] = [{} for _ in places]
    for key, value in params.items():
        index = next((i for i, p in enumerate(prefixes) if key.startswith(p) and "." not in key[len(p):]), None)
        if index is None:
            raise ValueError(f"parameter {key!r} belongs to none of the scenario's modules "
                             f"({', '.join(p[:-1] for p in prefixes)})")
        out[index][key[len(prefixes[index]):]] = value
    return out


def roles_to_flat(params: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any] | None:
    """Parameters stored by role (``{"model": {"hiddenSize": 128}}``, before one shape) in the one shape.

    ``names`` maps each role to its module (``problem``, ``model`` ... and sub-model paths).
    None when ``params`` is not in the by-role shape or names a role ``names`` lacks.
    """
    if not all(isinstance(v, Mapping) for v in params.values()) or not set(params) <= set(names):
        return None
    return flat_params(list(names.items()), [params.get(role, {}) for role in names])
