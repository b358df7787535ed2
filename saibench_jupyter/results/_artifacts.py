"""What pods left behind besides their records: an executed notebook (``executor="papermill"``), by location.

An ``artifact`` event (``{"event": "artifact", "kind": "notebook", "location": ...}``)
says where a pod's document is: an absolute path, or a URL (``http://...``,
``s3://bucket/...``). The store keeps one location per pod and kind (a rerun replaces
it); it may come before the pod's ``started`` (the notebook is written before its kernel
starts) or after its final event. This module writes that row and reads them back for
:class:`~saibench_jupyter.results.Results`: a frame of them, and one pod's notebook found
by its key or by a prefix of its identity.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from sqlite3 import Connection
from typing import TYPE_CHECKING, Any

from ._values import _need, _real, _text

if TYPE_CHECKING:
    import pandas

    from ._results import Results

#: The kind of artifact an executed notebook is.
NOTEBOOK = "notebook"
#: How to list the pods that have a notebook, said at the end of every "not found".
_LISTED = "Results.artifacts() lists the pods' notebooks"


def record_artifact(db: Connection, run_id: int, identity: str, repeat: int, event: Mapping[str, Any]) -> None:
    """In ``db``'s open transaction: pod ``(identity, repeat)``'s artifact of ``event['kind']`` is at ``location``.

    Raises
    ------
    ValueError
        For an event without ``location`` (or an empty one).
    """
    location = _need(event, "location")
    if not isinstance(location, str) or not location.strip():
        raise ValueError(f"'artifact' event with location {location!r}: give the path or URL of the pod's "
                         f"{event.get('kind') or 'artifact'}")
    db.execute("INSERT INTO artifacts (identity, repeat, run_id, kind, location, t) VALUES (?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (identity, repeat, kind) DO UPDATE SET run_id = excluded.run_id, "
               "location = excluded.location, t = excluded.t",
               (identity, repeat, run_id, _text(event.get("kind")) or NOTEBOOK, location,
                _real(event.get("t")) or time.time()))


def _of_kind(results: Results, kind: str | None) -> tuple[str, list[Any]]:
    """A WHERE clause on ``a`` (artifacts): the pods in view, and ``kind`` when given."""
    where, params = results._where("a")
    if kind is None:
        return where, params
    return (f"{where} AND a.kind = ?" if where else "WHERE a.kind = ?"), [*params, kind]


def artifacts_frame(results: Results, kind: str | None = None) -> pandas.DataFrame:
    """The artifacts of the pods in view (of ``kind`` only, when given), as :meth:`Results.artifacts` lists them."""
    where, params = _of_kind(results, kind)
    return results._frame("SELECT a.identity, a.repeat, a.identity || '-r' || a.repeat AS pod, s.label, a.kind, "
                          "a.location, a.run_id, a.t FROM artifacts a LEFT JOIN scenarios s ON s.identity = a.identity "
                          f"{where} ORDER BY a.identity, a.repeat, a.kind", params)


def notebook_lines(results: Results) -> list[str]:
    """``3 executed notebooks in /runs/ (.notebook(POD) gives one's location ...)`` for a summary, or nothing."""
    where, params = _of_kind(results, NOTEBOOK)
    _, rows = results.store._query(f"SELECT a.location FROM artifacts a {where}", params)
    if not rows:
        return []
    places = [str(location) for (location,) in rows]
    folder = os.path.commonprefix(places)  # noqa: RUF071  (URLs too: commonpath would fold s3:// into s3:/)
    folder = folder[:folder.rfind("/") + 1]  # a whole folder, never half a name
    n = len(places)
    return [f"{n} executed notebook{'s' * (n != 1)}{' in ' + folder if folder else ''} "
            "(.notebook(POD) gives one's location, .artifacts() lists them)"]


@dataclass(frozen=True)
class PodArtifact:
    """One pod's artifact: the pod's key (``{identity}-r{repeat}``), its scenario label, kind and location."""

    pod: str
    label: str | None
    kind: str
    location: str


def find_artifact(results: Results, pod: str, kind: str = NOTEBOOK) -> PodArtifact:
    """The artifact of ``kind`` of the pod ``pod`` names: a pod key, or a unique prefix of an identity.

    ``3f2a9c...-r1`` is repeat 1 of that scenario (the identity may be a prefix too);
    ``3f2a9c`` alone is the one scenario whose identity starts so, and of its pods the one
    of repeat 0, else the only one with an artifact of ``kind``.

    Raises
    ------
    KeyError
        When no pod in view matches, or the pod has no artifact of ``kind``.
    ValueError
        When the prefix matches several scenarios, or several repeats and none is 0.
    """
    text = pod.strip()
    keyed = re.fullmatch(r"(.+)-r(\d+)", text)
    prefix, repeat = (keyed.group(1), int(keyed.group(2))) if keyed else (text, None)
    where, params = results._where("p")
    # Identities of pods, and of artifacts whose pod row is not there yet (written before the pod started).
    _, rows = results.store._query(
        f"SELECT DISTINCT p.identity FROM (SELECT identity FROM pods UNION SELECT identity FROM artifacts) p {where}",
        params)
    matches = sorted(str(i) for (i,) in rows if str(i).startswith(prefix)) if prefix else []
    unknown = KeyError(f"there is no pod {text!r} in {results.store.path.name}: give a pod key "
                       f"(identity-rREPEAT) or the start of a scenario identity; {_LISTED}, "
                       "Results.scenarios() the identities")
    if not matches:
        raise unknown
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (f" and {len(matches) - 5} more" if len(matches) > 5 else "")
        raise ValueError(f"{prefix!r} starts {len(matches)} scenario identities ({shown}): give more of the "
                         "identity, or the pod key (identity-rREPEAT)")
    identity = matches[0]
    _, found = results.store._query("SELECT a.repeat, s.label, a.location FROM artifacts a LEFT JOIN scenarios s "
                                    "ON s.identity = a.identity WHERE a.identity = ? AND a.kind = ? "
                                    "ORDER BY a.repeat", (identity, kind))
    by_repeat = {int(r): (label, str(location)) for r, label, location in found}
    keep = f"only pods run with executor='papermill' keep their executed {kind}; run it again so to get one"
    if repeat is None:
        if len(by_repeat) > 1 and 0 not in by_repeat:
            raise ValueError(f"{text!r} has {kind}s for repeats {', '.join(map(str, by_repeat))}: give the pod "
                             f"key, such as {identity}-r{next(iter(by_repeat))}")
        if not by_repeat:
            raise KeyError(f"no pod of scenario {identity} has a {kind}: {keep}; {_LISTED}")
        repeat = 0 if 0 in by_repeat else next(iter(by_repeat))
    if repeat not in by_repeat:
        _, pods = results.store._query("SELECT 1 FROM pods WHERE identity = ? AND repeat = ?", (identity, repeat))
        if not pods:
            raise unknown
        raise KeyError(f"pod {identity}-r{repeat} has no {kind}: {keep}; {_LISTED}")
    label, location = by_repeat[repeat]
    return PodArtifact(f"{identity}-r{repeat}", label, kind, location)
