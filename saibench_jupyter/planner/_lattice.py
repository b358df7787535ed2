"""The outcome of discovery: scenarios, rejections with reasons, and the search tree."""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..sail import Environment, FileStamp, Resources, files_changed
from ._converters import Chain, ConverterGraph
from ._instances import (
    HardwareInstance,
    MetricInfo,
    ModelChoice,
    ProblemInstance,
    RankingInfo,
    Rejection,
    SoftwareInstance,
    scenario_id,
)
from ._params import Place, flat_params
from ._plan import ScenarioPlan
from ._rejections import RejectionRow, headline, rejection_rows, unserved

if TYPE_CHECKING:
    import networkx

    from ..repository import Repository


class Scenario:
    """One benchmark to run: problem, hardware, software, model (with sub-models), metrics.

    ``id`` is stable: it hashes the content of every module involved and its
    parameters, so it survives restarts and changes when any of them changes.
    """

    __slots__ = ("_id", "_repository", "hardware_instance", "metrics", "model_choice", "problem_instance",
                 "rankings", "software_instance")

    def __init__(self, problem_instance: ProblemInstance, hardware_instance: HardwareInstance,
                 software_instance: SoftwareInstance, model_choice: ModelChoice,
                 metrics: tuple[MetricInfo, ...], rankings: tuple[RankingInfo, ...],
                 repository: weakref.ref[Repository] | None = None) -> None:
        # Discovery builds ~10^5 of these: plain slots, and an id computed on first use.
        self.problem_instance = problem_instance
        self.hardware_instance = hardware_instance
        self.software_instance = software_instance
        self.model_choice = model_choice
        self.metrics = metrics
        self.rankings = rankings
        # Weak: the planner's caches hold scenarios, and the planner lives as long as its
        # repository; a strong reference would keep every repository alive for ever.
        self._repository = repository
        self._id: str | None = None

    @property
    def repository(self) -> Repository:
        """The repository this scenario was discovered from (its support code and converters).

        Raises
        ------
        RuntimeError
            When that repository no longer exists.
        """
        repo = self._repository() if self._repository is not None else None
        if repo is None:
            raise RuntimeError(f"the repository scenario {self.id} was discovered from no longer exists; "
                               "discover again from a live repository")
        return repo

    @property
    def id(self) -> str:
        """The stable identity of this scenario (16 hex digits)."""
        if self._id is None:
            self._id = scenario_id(self.problem_instance.digest, self.hardware_instance.digest,
                                   self.software_instance.digest, self.model_choice.digest)
        return self._id

    @property
    def problem(self) -> str:
        """The problem's name."""
        return self.problem_instance.name

    @property
    def model(self) -> str:
        """The model's name."""
        return self.model_choice.name

    @property
    def software(self) -> str:
        """The software module's name."""
        return self.software_instance.name

    @property
    def hardware(self) -> str:
        """The hardware module's name."""
        return self.hardware_instance.name

    @property
    def submodels(self) -> dict[str, str]:
        """Sub-model choices by role path (``model/5:8`` -> ``MLP``)."""
        return {role: m.name for role, m in self.model_choice.walk()[1:]}

    @property
    def places(self) -> list[Place]:
        """(role, module name) of every module the scenario binds: problem, hardware, software, model, sub-models."""
        return [("problem", self.problem), ("hardware", self.hardware), ("software", self.software),
                *((role, m.name) for role, m in self.model_choice.walk())]

    @property
    def params(self) -> dict[str, Any]:
        """The bound parameters, ``{"Module.param": value}`` (see :func:`~saibench_jupyter.planner.flat_params`).

        The same mapping a pod spec, the results store and the charts hold.
        """
        bound = [self.problem_instance.params, self.hardware_instance.params, self.software_instance.params,
                 *(m.params for _, m in self.model_choice.walk())]
        return flat_params(self.places, bound)

    def plan(self) -> ScenarioPlan:
        """What this scenario is made of, bound to its modules: what execution needs, and its JSON form.

        Raises
        ------
        RuntimeError
            When the repository the scenario was discovered from no longer exists.
        KeyError
            When a metric or converter it uses is no longer in that repository.
        """
        return ScenarioPlan.of(self)

    @property
    def converters(self) -> tuple[Chain, ...]:
        """The conversion chains the model (and its sub-models) use."""
        return self.model_choice.all_chains()

    @property
    def environment(self) -> Environment:
        """The software environment to run in."""
        return self.software_instance.meta.environment

    @property
    def resources(self) -> Resources:
        """The hardware resources to run with."""
        return self.hardware_instance.meta.resources

    @property
    def label(self) -> str:
        """``MNIST × MLP(hiddenSize=128) × PyTorch × CPU``."""
        return " × ".join((self.problem_instance.label, self.model_choice.label,
                           self.software_instance.label, self.hardware_instance.label))

    def names(self) -> dict[str, set[str]]:
        """Module names by role, for selection (sub-models count as models)."""
        return {
            "problem": {self.problem}, "hardware": {self.hardware}, "software": {self.software},
            "model": {m.name for _, m in self.model_choice.walk()},
            "metric": {m.name for m in self.metrics}, "ranking": {r.name for r in self.rankings},
        }

    def __repr__(self) -> str:
        return f"Scenario({self.id}: {self.label})"


@dataclass
class DiscoveryStats:
    """Counts and timings of one discovery."""

    #: candidate (partial) tuples tried at each level of the search
    candidates: dict[str, int] = field(default_factory=dict)
    #: dry runs executed, and answered from the memo
    dry_runs: int = 0
    dry_run_hits: int = 0
    #: model resolutions computed (not answered from earlier discoveries)
    resolutions: int = 0
    #: join blocks (problem × model) rebuilt rather than reused
    blocks_built: int = 0
    seconds: float = 0.0
    #: True when nothing had changed since the previous discovery and its result was reused
    reused: bool = False

    @property
    def tuples_considered(self) -> int:
        """Candidate tuples the search looked at, over all levels."""
        return sum(self.candidates.values())


@dataclass
class TreeNode:
    """A node of the search tree: a module tried at one level under its parent's partial tuple."""

    kind: str
    label: str
    accepted: bool = True
    reason: str = ""
    children: list[TreeNode] = field(default_factory=list)
    scenario_ids: list[str] = field(default_factory=list)

    def walk(self, depth: int = 0) -> Iterator[tuple[int, TreeNode]]:
        """Every node with its depth, parents first."""
        yield depth, self
        for c in self.children:
            yield from c.walk(depth + 1)

    def records(self) -> list[dict[str, Any]]:
        """The tree flattened for charts (Plotly sunburst/icicle): ``id``, ``parent``, ``label`` ...

        Ids are paths (``"0/1/2"``), so equal labels under different parents stay apart.
        """
        out: list[dict[str, Any]] = []

        def visit(node: TreeNode, node_id: str, parent: str) -> None:
            out.append({"id": node_id, "parent": parent, "kind": node.kind, "label": node.label,
                        "accepted": node.accepted, "reason": node.reason,
                        "scenarios": list(node.scenario_ids)})
            for i, child in enumerate(node.children):
                visit(child, f"{node_id}/{i}", node_id)

        visit(self, "0", "")
        return out

    def render(self) -> str:
        """An indented text view (rejected branches marked with ✗ and their reason)."""
        lines = []
        for depth, node in self.walk():
            if depth == 0:
                continue
            mark = "✓" if node.accepted else "✗"
            extra = f"  — {node.reason}" if node.reason else ""
            lines.append(f"{'  ' * (depth - 1)}{mark} {node.kind} {node.label}{extra}")
        return "\n".join(lines)


_ROLES = ("problem", "hardware", "software", "model", "metric", "ranking")


class Lattice:
    """Every scenario discovery found, every rejection with its reason, and the search tree.

    Attributes
    ----------
    scenarios : list of Scenario
        Grouped by problem, then model (with its variants together), then hardware and
        software. The search itself, :meth:`tree` and the rejections follow the paper's
        join order (problem, hardware, software, model).
    rejections : list of Rejection
        Each rejected module with the partial tuple it was tried in.
    stats : DiscoveryStats
        What the search considered and how long it took.
    """

    def __init__(self, scenarios: list[Scenario], rejections: list[Rejection], stats: DiscoveryStats,
                 converter_graph: ConverterGraph | None, problems: Sequence[ProblemInstance],
                 hardware: Sequence[HardwareInstance],
                 software: Mapping[str, Sequence[SoftwareInstance]],
                 files: tuple[tuple[str, FileStamp], ...] = ()) -> None:
        self.scenarios = scenarios
        self.rejections = rejections
        self.stats = stats
        self.problems = list(problems)
        self.hardware = list(hardware)
        #: accepted software instances by hardware instance digest
        self.software = dict(software)
        self._converters = converter_graph
        self._files = files  # data files whose headers gave types, with their stamps
        self._by_id: dict[str, Scenario] | None = None
        self._rows: list[RejectionRow] | None = None

    def again(self, seconds: float) -> Lattice:
        """This result for a new call that changed nothing (fresh lists, stats marked reused)."""
        stats = DiscoveryStats(dict(self.stats.candidates), seconds=seconds, reused=True)
        return Lattice(list(self.scenarios), list(self.rejections), stats, self._converters, self.problems,
                       self.hardware, self.software, self._files)

    def stale(self) -> bool:
        """True when a data file discovery read a type from (an undeclared ``.npy`` input) has changed since."""
        return files_changed(self._files)

    def __len__(self) -> int:
        return len(self.scenarios)

    def __iter__(self) -> Iterator[Scenario]:
        return iter(self.scenarios)

    def __repr__(self) -> str:
        return (f"Lattice({len(self.scenarios)} scenarios, {len(self.rejections)} rejections, "
                f"{self.stats.tuples_considered} candidates in {self.stats.seconds * 1000:.0f} ms)")

    def __getitem__(self, scenario_id: str) -> Scenario:
        if self._by_id is None:
            self._by_id = {s.id: s for s in self.scenarios}
        try:
            return self._by_id[scenario_id]
        except KeyError:
            raise KeyError(f"no scenario {scenario_id!r} in this lattice") from None

    # -- rejections as rows ----------------------------------------------------------------
    def rejection_rows(self, expected: bool | None = None) -> list[RejectionRow]:
        """The rejections folded into rows, each naming its problem, no two alike.

        Parameters
        ----------
        expected : bool, optional
            False: the real rejections only; True: the expected non-pairings only (a
            module made for other contexts); None: both.
        """
        if self._rows is None:
            self._rows = rejection_rows(self.rejections)
        return [r for r in self._rows if expected is None or r.expected is expected]

    def headline(self, hint: str = "") -> str:
        """``12 scenarios, 3 rejected, 40 expected non-pairings (hidden; HINT)``: counts of rows.

        ``hint`` says how to show the expected non-pairings, where a view hides them.
        """
        return headline(len(self.scenarios), self.rejection_rows(), hint)

    def unserved(self) -> list[str]:
        """For each problem without a scenario, why: its real rejections, and which modules are not for it."""
        served = {s.problem_instance.label for s in self.scenarios}
        return unserved([p.label for p in self.problems], served, self.rejection_rows())

    # -- selection and explanation ------------------------------------------------------
    def select(self, **names: str | Sequence[str]) -> list[Scenario]:
        """Scenarios whose modules match: ``select(problem="MNIST", model=["MLP", "CNN"])``."""
        want = _wanted(names)
        return [s for s in self.scenarios if _matches(s.names(), want)]

    def rejected(self, **names: str | Sequence[str]) -> list[Rejection]:
        """Rejections that involve the named modules (as the rejected module or its context)."""
        want = _wanted(names)
        return [r for r in self.rejections if not want or _rejection_matches(r, want)]

    def explain(self, **names: str | Sequence[str]) -> str:
        """Why the named modules do, or do not, form scenarios — in words.

        ``lattice.explain(problem="MNIST", model="MLP")`` lists the scenarios they form
        and every rejection involving them, with reasons and source locations.
        """
        want = _wanted(names)
        what = ", ".join(f"{k}={'|'.join(sorted(v))}" for k, v in want.items()) or "everything"
        chosen = self.select(**names)
        lines = [f"{what}: {len(chosen)} scenario{'s' if len(chosen) != 1 else ''}"]
        for s in chosen[:20]:
            metrics = ", ".join(m.name for m in s.metrics) or "no metrics"
            lines.append(f"  ✓ {s.label}  [{metrics}]  id {s.id}")
        if len(chosen) > 20:
            lines.append(f"  … and {len(chosen) - 20} more")
        rejected = self.rejected(**names)
        if rejected:
            lines.append(f"rejected ({len(rejected)}):")
            lines.extend("  ✗ " + str(r).replace("\n", "\n  ") for r in rejected)
        if not chosen and not rejected:
            known = {k: sorted({n for s in self.scenarios for n in s.names()[k]} |
                               {r.name for r in self.rejections if r.kind == k}) for k in want}
            lines.append("nothing matches; known " + "; ".join(f"{k}s: {', '.join(v) or 'none'}"
                                                               for k, v in known.items()))
        return "\n".join(lines)

    # -- views -----------------------------------------------------------------------
    @property
    def converters(self) -> ConverterGraph | None:
        """The converter graph discovery resolved conversions with (``.resolve(source, target)``)."""
        return self._converters

    @property
    def converter_graph(self) -> networkx.DiGraph:
        """Types and converters as a ``networkx.DiGraph``, with the chains scenarios use."""
        import networkx as nx

        if self._converters is None:
            return nx.DiGraph()
        chains = {id(c): c for s in self.scenarios for c in s.converters}
        return self._converters.to_networkx(list(chains.values()))

    def tree(self) -> TreeNode:
        """The search tree, problem → hardware → software → model, with rejected branches."""
        return _build_tree(self)


def _rejected_node(r: Rejection) -> TreeNode:
    return TreeNode(r.kind, r.module, accepted=False, reason=r.reason)


def _build_tree(lat: Lattice) -> TreeNode:
    by_kind: dict[str, list[Rejection]] = defaultdict(list)
    for r in lat.rejections:
        by_kind[r.kind].append(r)
    leaves: dict[tuple[str, str, str], dict[str, TreeNode]] = defaultdict(dict)
    for sc in lat.scenarios:
        key = (sc.problem_instance.digest, sc.hardware_instance.digest, sc.software_instance.digest)
        node = leaves[key].setdefault(sc.model_choice.label, TreeNode("model", sc.model_choice.label))
        node.scenario_ids.append(sc.id)

    def within(r: Rejection, **ctx: str) -> bool:
        have = dict(r.context)
        return all(have.get(k, v) == v for k, v in ctx.items())

    root = TreeNode("root", "discovery")
    root.children += [_rejected_node(r) for r in by_kind["problem"]]
    for p in lat.problems:
        pn = TreeNode("problem", p.label)
        root.children.append(pn)
        pn.children += [_rejected_node(r) for r in by_kind["hardware"]]
        for h in lat.hardware:
            hn = TreeNode("hardware", h.label)
            pn.children.append(hn)
            refused = [r for r in by_kind["software"] if within(r, problem=p.label, hardware=h.label)]
            hn.children += [_rejected_node(r) for r in refused]
            for sw in lat.software.get(h.digest, ()):
                if any(r.module == sw.label for r in refused):
                    continue
                sn = TreeNode("software", sw.label)
                hn.children.append(sn)
                sn.children += leaves.get((p.digest, h.digest, sw.digest), {}).values()
                sn.children += [_rejected_node(r) for r in by_kind["model"]
                                if within(r, problem=p.label, software=sw.name)]
    return root


def _rejection_matches(r: Rejection, want: Mapping[str, set[str]]) -> bool:
    roles: dict[str, set[str]] = defaultdict(set)
    roles[r.kind].add(r.name)
    for kind, label in r.context:
        roles[kind].add(label.split("(", 1)[0].split("[", 1)[0])
    present = [k for k in want if k in roles]
    return bool(present) and all(roles[k] & want[k] for k in present)


def _wanted(names: Mapping[str, str | Sequence[str]]) -> dict[str, set[str]]:
    want = {}
    for role, value in names.items():
        if role not in _ROLES:
            raise TypeError(f"unknown role {role!r}: use one of {', '.join(_ROLES)}")
        want[role] = {value} if isinstance(value, str) else set(value)
    return want


def _matches(have: Mapping[str, set[str]], want: Mapping[str, set[str]]) -> bool:
    return all(have[k] & v for k, v in want.items())
