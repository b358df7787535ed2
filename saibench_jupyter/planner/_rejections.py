"""Rejections as a reader sees them: one row per distinct rejection, real ones apart from expected ones.

Discovery tries every module in every context, so most rejections are *expected
non-pairings* (a k-NN model on PyTorch, a classification metric on an ODE problem, a model
that says ``Fail("only embeds images")``): nothing needs fixing, and listing them all
buries the few that do. :func:`rejection_rows` folds rejections that differ only in their
context (the grid points of one problem, several hardware) into one row that names its
problem, and :func:`headline` and :func:`unserved` count and explain them; the CLI and the
notebook render these the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..sail import Location
from ._instances import Rejection

#: How a row names rejections that hold whatever the problem (hardware, a module that can't run).
EVERY_PROBLEM = "every problem"


@dataclass(frozen=True)
class RejectionRow:
    """Rejections that say the same thing of one module for one problem, as one row.

    Attributes
    ----------
    kind, module, reason, location, fix, details, expected
        As in :class:`~saibench_jupyter.planner.Rejection`.
    problem : str
        The problem's name, or ``"every problem"``.
    contexts : tuple
        The partial tuples folded into this row, each as (kind, label) pairs (no two equal).
    """

    kind: str
    module: str
    problem: str
    reason: str
    location: Location | None
    fix: str | None
    details: tuple[str, ...]
    expected: bool
    contexts: tuple[tuple[tuple[str, str], ...], ...]

    @property
    def count(self) -> int:
        """How many rejections (distinct contexts) the row stands for."""
        return len(self.contexts)

    def context_text(self) -> str:
        """``problem MDCu13(frames=10 | frames=50), hardware CPU``: each role once, variants joined."""
        if self.kind == "problem":
            return ""
        labels: dict[str, dict[str, None]] = {}
        for context in self.contexts:
            for kind, label in context:
                labels.setdefault(kind, {})[label] = None
        if "problem" not in labels:
            labels = {"": {EVERY_PROBLEM: None}, **labels}
        return ", ".join(f"{kind} {_joined(list(found))}".lstrip() for kind, found in labels.items())

    def __str__(self) -> str:
        ctx = self.context_text()
        where = f" ({self.location})" if self.location else ""
        text = f"{self.kind} {self.module}{' for ' + ctx if ctx else ''}: {self.reason}{where}"
        text += "".join(f"\n    - {d}" for d in self.details)
        return text + (f"\n    fix: {self.fix}" if self.fix else "")


def _joined(labels: Sequence[str]) -> str:
    """``MDCu13(frames=10)``, ``MDCu13(frames=50)`` -> ``MDCu13(frames=10 | frames=50)``."""
    if len(labels) == 1:
        return labels[0]
    heads = {label.split("(", 1)[0] for label in labels}
    if len(heads) == 1 and all(label.endswith(")") and "(" in label for label in labels):
        inner = [label.split("(", 1)[1][:-1] for label in labels]
        return f"{heads.pop()}({' | '.join(inner)})"
    return " | ".join(labels)


def rejection_rows(rejections: Iterable[Rejection]) -> list[RejectionRow]:
    """The rejections as rows, in first-seen order: one per (module, problem name, reason, site)."""
    groups: dict[tuple[object, ...], list[Rejection]] = {}
    for r in rejections:
        problem = r.problem
        name = EVERY_PROBLEM if problem is None else problem.split("(", 1)[0]
        key = (r.expected, r.kind, r.module if r.kind != "problem" else r.name, name, r.reason, r.location,
               r.fix, r.details)
        groups.setdefault(key, []).append(r)
    rows = []
    for members in groups.values():
        first = members[0]
        module = first.module
        if first.kind == "problem":  # grid points of one problem failing alike
            module = _joined(list(dict.fromkeys(r.module for r in members)))
        problem = EVERY_PROBLEM if first.problem is None else first.problem.split("(", 1)[0]
        rows.append(RejectionRow(first.kind, module, problem, first.reason, first.location, first.fix,
                                 first.details, first.expected, tuple(dict.fromkeys(r.context for r in members))))
    return rows


def _join_order(kind: str) -> int:
    order = ("problem", "hardware", "software", "model", "metric", "ranking", "converter")
    return order.index(kind) if kind in order else len(order)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def headline(scenarios: int, rows: Sequence[RejectionRow], hint: str = "") -> str:
    """``12 scenarios, 3 rejected, 40 expected non-pairings (hidden; --all shows them)``.

    ``hint`` says how to see the expected non-pairings when a view hides them; without
    one, the view shows them.
    """
    real = sum(not r.expected for r in rows)
    expected = len(rows) - real
    text = f"{_plural(scenarios, 'scenario')}, {real} rejected"
    if expected:
        text += f", {_plural(expected, 'expected non-pairing')}" + (f" (hidden; {hint})" if hint else "")
    return text


def unserved(problems: Sequence[str], served: set[str], rows: Sequence[RejectionRow]) -> list[str]:
    """Why each problem without a scenario has none, in one line each.

    Parameters
    ----------
    problems : sequence of str
        The labels of the problems discovery accepted.
    served : set of str
        The labels of those with at least one scenario.
    rows : sequence of RejectionRow
        Every rejection row of the discovery.
    """
    out = []
    for label in problems:
        if label in served:
            continue
        mine = [r for r in rows if any(dict(c).get("problem") == label for c in r.contexts)]
        real = [f"{r.kind} {r.module}: {r.reason}" for r in mine if not r.expected]
        declined: dict[str, dict[str, None]] = {}
        for r in mine:
            if r.expected:
                declined.setdefault(r.kind, {})[r.module.split("(", 1)[0]] = None
        why = "; ".join(real) if real else (
            "no module fits it" if not declined else "every module tried was made for other problems")
        if not real and any(not r.expected and r.problem == EVERY_PROBLEM for r in rows):
            why += " (see the rejections for every problem)"
        line = f"{label}: {why}"
        if declined:
            names = "; ".join(f"{kind} {', '.join(declined[kind])}" for kind in sorted(declined, key=_join_order))
            line += f" — {'the others' if real else 'they'} are expected non-pairings ({names})"
        out.append(line)
    return out
