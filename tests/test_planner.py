"""Discovery as a user drives it: incremental re-planning, bad modules, filters, views."""

from __future__ import annotations

import textwrap

import pytest
from conftest import MLP_PREDICTS, load, paper_source

from saibench_jupyter import discover
from saibench_jupyter.sail import SailSyntaxError

WIDER = paper_source("mnist").replace("Suggest(hiddenSize, 128, 256, 512, 1024)", "Suggest(hiddenSize, 64, 128)")


def test_editing_one_model_reruns_only_its_dry_runs(repo, cpu_machine):
    load(repo, "mnist", "stacks", "md", "segmentation")
    first = discover(repo, machine=cpu_machine)
    again = discover(repo, machine=cpu_machine)
    assert again.stats.dry_runs == 0
    assert [s.id for s in again.scenarios] == [s.id for s in first.scenarios]

    repo.add_source(WIDER, origin="mnist.py")
    edited = discover(repo, machine=cpu_machine)
    # MLP re-runs once unbound and once per width, for each of the three problems; the
    # composite models that may pick MLP are re-resolved too; nothing else runs again.
    assert 0 < edited.stats.dry_runs <= 3 * 3 + 3 * 4
    widths = sorted({s.params["MLP.hiddenSize"] for s in edited.select(model="MLP", problem="MNIST")})
    assert widths == [64, 128]


def test_unchanged_scenarios_keep_their_ids_after_an_edit(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    before = {s.label: s.id for s in discover(repo, machine=cpu_machine).scenarios}
    repo.add_source(paper_source("stacks").replace('pip=["jax", "jaxlib"]', 'pip=["jax>=0.4", "jaxlib"]'),
                    origin="stacks.py")
    after = {s.label: s.id for s in discover(repo, machine=cpu_machine).scenarios}
    assert before.keys() == after.keys()
    changed = {label for label in before if before[label] != after[label]}
    assert changed == {label for label in before if "× JAX ×" in label}


def test_whitespace_and_comment_edits_do_not_replan(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    discover(repo, machine=cpu_machine)
    repo.add_source(paper_source("mnist").replace("    # critical 99% loss\n", "\n\n"), origin="mnist.py")
    assert discover(repo, machine=cpu_machine).stats.dry_runs == 0


def test_a_new_model_is_picked_up_by_composite_models(repo, cpu_machine):
    load(repo, "stacks", "md", "mnist")
    assert discover(repo, machine=cpu_machine, problem="MDSimulation").scenarios == []
    repo.add_source(textwrap.dedent("""
        @ModelDefinition
        def AtomEnergy(task, inputType, outputType):
            return Pipeline([Convert(inputType, Tensor), Linear(16), Tanh(), Linear(), Convert(Tensor, outputType)])
    """), origin="atom-energy")
    lat = discover(repo, machine=cpu_machine, problem="MDSimulation")
    assert [s.model_choice.label for s in lat.scenarios] == ["PermutationInvariantModel[AtomEnergy]"]


BROKEN = textwrap.dedent('''
    @ModelDefinition
    def UsesMissing(task, inputType, outputType):
        return Pipeline([Convert(inputType, Tensor), Linear(helper_width)])

    @ModelDefinition
    def Raises(task, inputType, outputType):
        width = 10 // 0
        return Linear(width)

    @ModelDefinition
    def Loops(task, inputType, outputType):
        while True:
            pass

    @ModelDefinition
    def ReturnsNothing(task, inputType, outputType):
        Linear(3)

    @ModelDefinition
    def Ouroboros(task, inputType, outputType):
        return Require(Model, "Dream", inputType, outputType)
''')


def test_bad_modules_become_rejections_and_discovery_goes_on(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    repo.add_source(BROKEN, origin="broken-cell")
    lat = discover(repo, machine=cpu_machine, problem="MNIST", time_limit=0.3)
    assert len(lat.select(model="MLP")) == 8
    reasons = {r.module: r for r in lat.rejections if r.kind == "model"}

    assert reasons["UsesMissing"].reason == "unknown name 'helper_width'"
    assert (reasons["UsesMissing"].location.origin, reasons["UsesMissing"].location.line) == ("broken-cell", 4)
    assert reasons["Raises"].reason == "ZeroDivisionError during the dry run: integer division or modulo by zero"
    assert reasons["Raises"].location.line == 8
    assert reasons["Loops"].reason == "the dry run did not finish within 0.3 s"
    assert reasons["Loops"].location.line in (13, 14)
    assert reasons["ReturnsNothing"].reason == "model ReturnsNothing returned None, not a model graph"
    assert reasons["Ouroboros"].reason.startswith("no model solves Require(Model, Dream")
    assert any("Require cycle Ouroboros → Ouroboros" in d for d in reasons["Ouroboros"].details)


def test_support_code_defines_names_for_every_module(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    repo.add_source(BROKEN, origin="broken-cell")
    repo.add_source("helper_width = 32\n", origin="support-cell")
    lat = discover(repo, machine=cpu_machine, problem="MNIST", model="UsesMissing")
    (r,) = [r for r in lat.rejections if r.module == "UsesMissing"]
    # the name now resolves (support code is opaque in a dry run), so the graph check speaks
    assert r.reason.startswith("the width of Linear is <helper_width>")


def test_sub_models_nest_no_deeper_than_max_depth(repo, cpu_machine):
    load(repo, "stacks", "mnist")
    repo.add_source(textwrap.dedent("""
        @ProblemDefinition
        def Deep():
            for x, y in zip(Input("x.npy", Tensor(4)), Input("y.npy", Tensor(4))):
                Train.Solve(x, y)

        @ModelDefinition
        def Wrap(task, inputType, outputType):
            # each level asks for a wider output, so no level repeats a signature
            inner = Require(Model, task, inputType, Tensor(outputType.Size + 1))
            return Pipeline([inner, Linear(outputType.dims)])
    """), origin="deep")
    lat = discover(repo, machine=cpu_machine, problem="Deep", model="Wrap", software="PyTorch", max_depth=2)
    assert lat.scenarios == []
    (r,) = [r for r in lat.rejections if r.module == "Wrap"]
    assert any("nest deeper than max_depth=2" in d for d in r.details)


def test_filters_and_params(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    lat = discover(repo, machine=cpu_machine, software="PyTorch", params={"MLP.hiddenSize": [32, 64], "epochs": 3})
    # The bound parameters in the shape discover(params=...) takes, with the hardware's (threads).
    assert [s.params for s in lat.scenarios] == [
        {"MNIST.epochs": 3, "CPU.threads": 1, "MLP.hiddenSize": 32},
        {"MNIST.epochs": 3, "CPU.threads": 1, "MLP.hiddenSize": 64}]
    with pytest.raises(ValueError, match=r"no model module named 'CNN' \(known: MLP\)"):
        discover(repo, model="CNN")


def test_explain_names_scenarios_and_rejections(repo, cpu_machine):
    load(repo, "mnist", "stacks", "segmentation")
    lat = discover(repo, machine=cpu_machine)
    text = lat.explain(problem="MNIST", model="MLP")
    assert text.splitlines()[0] == "problem=MNIST, model=MLP: 8 scenarios"
    assert "✓ MNIST × MLP(hiddenSize=128) × PyTorch × CPU(threads=1)  [CriticalLoss, WallTime]" in text
    text = lat.explain(problem="ElectronMicroscopySegmentation", model="MLP")
    assert "0 scenarios" in text
    assert "✗ model MLP for problem ElectronMicroscopySegmentation: don't know how to solve" in text
    assert "(mnist.py, line 54)" in text
    assert "nothing matches; known problems:" in lat.explain(problem="Nope")


def test_tree_shows_accepted_and_rejected_branches(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    root = discover(repo, machine=cpu_machine).tree()
    (mnist,) = root.children
    assert (mnist.kind, mnist.label) == ("problem", "MNIST")
    assert [(c.label, c.accepted) for c in mnist.children] == [("GPU", False), ("CPU(threads=1)", True)]
    cpu = mnist.children[1]
    assert [(c.label, c.accepted) for c in cpu.children] == [
        ("TensorFlow", False), ("PyTorch", True), ("JAX", True)]
    torch = cpu.children[1]
    assert [c.label for c in torch.children] == [f"MLP(hiddenSize={w})" for w in (128, 256, 512, 1024)]
    assert all(len(c.scenario_ids) == 1 for c in torch.children)
    assert "✗ software TensorFlow  — no TensorFlow backend" in root.render()
    records = root.records()
    assert records[0] == {"id": "0", "parent": "", "kind": "root", "label": "discovery", "accepted": True,
                          "reason": "", "scenarios": []}
    by_id = {r["id"]: r for r in records}
    leaves = [r for r in records if r["scenarios"]]
    assert len(leaves) == 8
    assert all(by_id[by_id[r["parent"]]["parent"]]["kind"] == "hardware" for r in leaves)


def test_planners_do_not_keep_repositories_alive(cpu_machine):
    import gc
    import weakref

    from saibench_jupyter import Repository

    repo = load(Repository(), "mnist", "stacks")
    discover(repo, machine=cpu_machine)
    ref = weakref.ref(repo)
    del repo
    gc.collect()
    assert ref() is None


def test_converter_graph_has_declared_and_used_conversions(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    g = discover(repo, machine=cpu_machine).converter_graph
    assert g.edges["Tensor(28, 28)", "Tensor(784)"] == {"converter": "flatten", "kind": "builtin"}
    assert g.edges["Atom", "Tensor"]["converter"] == "AtomEmbedding"
    assert g.edges["List[T]", "Tensor"]["converter"] == "Concat"


GRIDS = textwrap.dedent("""
    @ProblemDefinition
    def Solve4():
        for x in Input("x.npy", Tensor(4)):
            Train.Solve(x, x)

    @ModelDefinition
    def Blind(task, inputType, outputType, width):
        Suggest(width, 1, 2, 3)
        Fail("never solves anything")

    @ModelDefinition
    def Picky(task, inputType, outputType, width):
        Suggest(width, 1, 2, 3)
        if width > 1:
            Fail("too wide")
        return Pipeline([Linear(width), Linear(outputType.dims)])
""")


def test_a_failure_that_ignores_the_parameters_is_not_retried_at_every_grid_point(repo, cpu_machine):
    load(repo, "stacks")
    repo.add_source(GRIDS, origin="grids")
    picky = discover(repo, machine=cpu_machine, model="Picky", software="PyTorch")
    assert [s.model_choice.params for s in picky.scenarios] == [{"width": 1}]
    assert [(r.module, r.reason) for r in picky.rejections if r.kind == "model"] == [
        ("Picky(width=2)", "too wide"), ("Picky(width=3)", "too wide")]

    blind = discover(repo, machine=cpu_machine, model="Blind", software="PyTorch")
    assert blind.stats.dry_runs == 1  # once, not once per width (the rest is memoised)
    assert [(r.module, r.reason) for r in blind.rejections if r.kind == "model"] == [
        ("Blind", "never solves anything")]


def test_caches_let_go_of_replaced_problems_and_removed_models(repo, cpu_machine):
    from saibench_jupyter.planner import Planner

    load(repo, "mnist", "stacks")
    discover(repo, machine=cpu_machine)
    planner = Planner.of(repo)
    repo.add_source(paper_source("mnist").replace("Tensor(28, 28)", "Tensor(32, 32)"), origin="mnist.py")
    lat = discover(repo, machine=cpu_machine)
    assert {d for d in planner.memo.contexts} == {p.digest for p in lat.problems}
    repo.remove("MLP")
    assert discover(repo, machine=cpu_machine).scenarios == []
    assert not [k for k in planner.memo.blocks._blocks if k[1] == "MLP"]


DECLARED = textwrap.dedent('''
    class Molecule(SailType):
        """A molecule as a graph: a user-defined SAIL type."""

    class Spectrometer(Capability):
        def Measure(self, m: Molecule) -> Tensor(64): ...
''')

USES_DECLARED = textwrap.dedent('''
    @ProblemDefinition
    def Spectra():
        lab = Require(Spectrometer)
        for m in Input("molecules.sdf", Molecule):
            Train.Predict(m, lab.Measure(m))

    @ConverterDefinition
    def Fingerprint(m: Molecule) -> Tensor(128):
        return fingerprint_of(m)

    @SoftwareDefinition
    def Lab(hardware):
        Provides(Spectrometer, "lab:Spectrometer")
        return Environment(backend="torch")

    fingerprint_of = None
''')


def test_types_and_capabilities_declared_in_support_code_take_part_in_discovery(repo, cpu_machine):
    load(repo, "stacks")
    repo.add_source(MLP_PREDICTS, origin="mnist.py")
    repo.add_source(DECLARED, origin="declarations")
    repo.add_source(USES_DECLARED, origin="uses")
    lat = discover(repo, machine=cpu_machine, problem="Spectra", model="MLP")
    assert len(lat.scenarios) == 4 and {s.software for s in lat.scenarios} == {"Lab"}
    s = lat.scenarios[0]
    assert str(s.problem_instance.meta.model_tasks[0]) == "Predict: Molecule -> Tensor(64)"
    assert [c.label for c in s.converters] == ["Fingerprint", "identity"]


def test_software_with_a_capability_serves_only_problems_that_require_it(repo, cpu_machine):
    load(repo, "stacks", "md")
    repo.add_source(MLP_PREDICTS, origin="mnist.py")
    repo.add_source(paper_source("mnist").replace("def MLP(", "def PaperMLP("), origin="paper-mnist.py")
    lat = discover(repo, machine=cpu_machine)
    assert {s.software for s in lat.scenarios if s.problem == "MNIST"} == {"PyTorch", "JAX"}
    assert {s.software for s in lat.scenarios if s.problem == "MDSimulation"} == {"ASE"}
    (r,) = [r for r in lat.rejections if r.kind == "software" and r.module == "ASE"]
    assert (r.reason, dict(r.context)["problem"]) == (
        "provides MolecularDynamicsSoftware, which the problem does not require; "
        "PyTorch gives the same torch backend without it", "MNIST")
    # Without a leaner stack of its backend, the capable software runs the other problems too.
    repo.remove("PyTorch")
    alone = discover(repo, machine=cpu_machine)
    assert {s.software for s in alone.scenarios if s.problem == "MNIST"} == {"ASE", "JAX"}


def test_a_declaration_that_uses_support_names_is_refused_with_its_line(repo):
    with pytest.raises(SailSyntaxError, match=r"(?s)the declaration of Bad failed: NameError.*line 3.*"
                                              r"use only SAIL names and literals"):
        repo.add_source("size = 3\n\nclass Bad(SailType):\n    n = size\n", origin="bad")


def test_hardware_that_fails_is_rejected_at_the_grid_points_it_refuses(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    repo.add_source(textwrap.dedent("""
        @HardwareDefinition
        def Cluster(nodes):
            Suggest(nodes, 1, 4)
            if nodes > 1:
                Fail("multi-node runs need a cluster executor")
            return Resources(cpus=1)
    """), origin="cluster")
    lat = discover(repo, machine=cpu_machine, hardware="Cluster", software="PyTorch")
    assert {s.hardware_instance.label for s in lat.scenarios} == {"Cluster(nodes=1)"}
    (r,) = [r for r in lat.rejections if r.kind == "hardware"]
    assert (r.module, r.reason, r.location.line) == ("Cluster(nodes=4)", "multi-node runs need a cluster executor", 6)


def test_concurrent_discoveries_agree(repo, cpu_machine):
    from concurrent.futures import ThreadPoolExecutor

    load(repo, "mnist", "stacks", "md", "segmentation", "rankings")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: [s.id for s in discover(repo, machine=cpu_machine).scenarios], range(8)))
    assert all(r == results[0] for r in results) and len(results[0]) == 8


CLASSICAL = textwrap.dedent('''
    @ProblemDefinition
    def Decay(n):
        Suggest(n, 2, 8)
        for y0 in Input("initial.npy", Tensor(n)):
            Test.Compare(y0, Model.Solve(y0))

    @ProblemDefinition
    def DigitRecords():
        for x, y in Input("dataset:digits").OneHot(Tensor(10)):
            Train.Classify(x, y)
            Test.Classify(x, y)

    @ModelDefinition
    def RK(task, inputType, outputType, rtol):
        Suggest(rtol, 1e-3, 1e-6)
        if task != Solve:
            Fail("integrates ODEs only")
        return Solver(integrator(rtol))

    @ModelDefinition
    def Forest(task, inputType, outputType):
        if task != Classify:
            Fail("classifies only")
        return Pipeline([Convert(inputType, Tensor), Estimator(forest)])

    @SoftwareDefinition
    def SciPy(hardware):
        return Environment(backend="numpy", pip=["scipy", "scikit-learn"])

    integrator = forest = None
''')


def test_classical_solvers_and_estimators_run_on_numpy_software(repo, cpu_machine):
    load(repo, "stacks")
    repo.add_source(CLASSICAL, origin="classical")
    lat = discover(repo, machine=cpu_machine)
    got = sorted((s.problem_instance.label, s.model_choice.label, s.software) for s in lat.scenarios)
    assert got == [("Decay(n=2)", "RK(rtol=0.001)", "SciPy"), ("Decay(n=2)", "RK(rtol=1e-06)", "SciPy"),
                   ("Decay(n=8)", "RK(rtol=0.001)", "SciPy"), ("Decay(n=8)", "RK(rtol=1e-06)", "SciPy"),
                   ("DigitRecords", "Forest", "SciPy")]
    reasons = {(r.module, dict(r.context).get("software")): r.reason for r in lat.rejections if r.kind == "model"}
    assert reasons[("RK", "PyTorch")] == "runs on numpy, but PyTorch provides the torch backend"


def test_scenarios_can_be_looked_up_by_id(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    lat = discover(repo, machine=cpu_machine)
    first = lat.scenarios[0]
    assert lat[first.id] is first
    with pytest.raises(KeyError, match="no scenario 'nope' in this lattice"):
        lat["nope"]


def test_a_timed_out_module_is_retried_only_under_a_longer_time_limit(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    repo.add_source(textwrap.dedent("""
        @ModelDefinition
        def Slow(task, inputType, outputType):
            import time  # in the body: support code would be opaque during discovery

            deadline = time.monotonic() + 0.6
            while time.monotonic() < deadline:
                pass
            return Pipeline([Convert(inputType, Tensor), Linear(outputType.dims), Convert(Tensor, outputType)])
    """), origin="slow")

    def slow(limit):
        return discover(repo, machine=cpu_machine, model="Slow", software="PyTorch", time_limit=limit)

    first = slow(0.2)
    assert [r.reason for r in first.rejections if r.kind == "model"] == ["the dry run did not finish within 0.2 s"]
    assert slow(0.1).stats.dry_runs == 0  # a shorter limit: the timeout stands, nothing re-runs
    assert len(slow(5.0).scenarios) == 1  # a longer one: tried again, and it finishes


UNDECLARED_NPY = textwrap.dedent("""
    @ProblemDefinition
    def Regression():
        for x, y in zip(Input("x.npy"), Input("y.npy")):
            Train.Predict(x, y)
        for x, y in zip(Input("x.npy"), Input("y.npy")):
            Test.Predict(x, y)

    @ModelDefinition
    def Regressor(task, inputType, outputType):
        return Pipeline([Linear(8), Relu(), Linear()])
""")


def test_undeclared_npy_inputs_take_their_types_from_the_files(repo, cpu_machine, tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.chdir(tmp_path.root)  # the files are found next to the source, not in the cwd
    (tmp_path / "regression.py").write_text(UNDECLARED_NPY)
    np.save(tmp_path / "x.npy", np.zeros((20, 4)))
    np.save(tmp_path / "y.npy", np.zeros(20))
    load(repo, "stacks")
    repo.load(tmp_path / "regression.py")
    lat = discover(repo, machine=cpu_machine, problem="Regression", software="PyTorch")
    assert [s.label for s in lat.scenarios] == ["Regression × Regressor × PyTorch × CPU(threads=1)"]
    (task,) = lat.problems[0].meta.model_tasks
    assert (repr(task.input), repr(task.output)) == ("Tensor(4)", "Tensor(1)")


def test_a_missing_npy_file_says_the_inputs_type_is_unknown_until_it_appears(repo, cpu_machine, tmp_path,
                                                                            monkeypatch):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((20, 4)))
    load(repo, "stacks")
    repo.add_source(UNDECLARED_NPY, origin="regression-cell")
    lat = discover(repo, machine=cpu_machine, problem="Regression")
    (r,) = [r for r in lat.rejections if r.module == "Regression"]
    assert r.reason.startswith("the type of Input('y.npy') is unknown: no file 'y.npy'")
    assert (r.location.origin, r.location.line) == ("regression-cell", 4)
    assert 'Input("y.npy", Tensor(1))' in r.fix
    # Saving the file is enough: the next discovery reads its header.
    np.save(tmp_path / "y.npy", np.zeros((20, 2)))
    lat = discover(repo, machine=cpu_machine, problem="Regression", software="PyTorch")
    assert [s.label for s in lat.scenarios] == ["Regression × Regressor × PyTorch × CPU(threads=1)"]
    assert repr(lat.problems[0].meta.model_tasks[0].output) == "Tensor(2)"


def test_discovery_says_which_known_name_an_unknown_one_may_misspell(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    # Added before the helper exists, widn looks like no known name: discovery reports it.
    repo.add_source(textwrap.dedent("""
        @ModelDefinition
        def Wide(task, inputType, outputType):
            return Pipeline([Convert(inputType, Tensor), Linear(widn(8)), Linear()])
    """), origin="wide-cell")
    repo.add_source("def widen(n):\n    return 2 * n\n", origin="support-cell")
    lat = discover(repo, machine=cpu_machine, problem="MNIST", model="Wide")
    (r,) = [r for r in lat.rejections if r.module == "Wide"]
    assert r.reason == "unknown name 'widn' (did you mean 'widen'?)"
    assert r.fix.startswith("write widen, or define it") and r.location.line == 4


def test_every_rejection_row_names_its_problem(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    lat = discover(repo, machine=cpu_machine)
    rows = {r.module: r for r in lat.rejection_rows()}
    # Hardware is refused whatever the problem: the row says so, rather than naming none.
    assert str(rows["GPU"]).startswith("hardware GPU for every problem: asks for 1 CUDA device(s), but none is "
                                       "visible on this machine (stacks.py, line")
    assert rows["GPU"].problem == "every problem" and not rows["GPU"].expected
    assert str(rows["TensorFlow"]).startswith("software TensorFlow for every problem, hardware CPU(threads=1): ")
    assert all(r.problem for r in lat.rejection_rows())


def test_expected_non_pairings_are_counted_apart_from_real_rejections(repo, cpu_machine):
    load(repo, "stacks")
    repo.add_source(CLASSICAL, origin="classical")
    repo.add_source(BROKEN.split("@ModelDefinition\ndef Raises")[0], origin="broken-cell")  # UsesMissing
    lat = discover(repo, machine=cpu_machine)
    real = [(r.kind, r.module, r.reason) for r in lat.rejection_rows(expected=False)]
    assert real == [("model", "UsesMissing", "unknown name 'helper_width'"),
                    ("hardware", "GPU", "asks for 1 CUDA device(s), but none is visible on this machine")]
    expected = {(r.module, r.reason) for r in lat.rejection_rows(expected=True)}
    assert ("RK", "runs on numpy, but PyTorch provides the torch backend") in expected  # another backend
    assert ("Forest", "classifies only") in expected  # the model's own Fail
    assert ("TensorFlow", "no TensorFlow backend: the graph IR lowers to PyTorch and JAX") in expected
    assert lat.headline("--all shows them") == \
        "5 scenarios, 2 rejected, 7 expected non-pairings (hidden; --all shows them)"
    assert lat.headline() == "5 scenarios, 2 rejected, 7 expected non-pairings"


def test_metrics_and_software_for_other_problems_are_expected_non_pairings(repo, cpu_machine):
    load(repo, "mnist", "stacks", "md", "rankings")
    lat = discover(repo, machine=cpu_machine, problem="MDSimulation", hardware="CPU")
    kinds = {(r.kind, r.module): r.expected for r in lat.rejections}
    assert kinds[("metric", "CriticalLoss")] and kinds[("software", "PyTorch")] and kinds[("ranking", "Dominates")]
    assert not kinds[("model", "PermutationInvariantModel")]  # no sub-model: not expected


def test_rejections_that_differ_only_in_context_fold_into_one_row(repo, cpu_machine):
    load(repo, "stacks")
    repo.add_source(CLASSICAL, origin="classical")
    lat = discover(repo, machine=cpu_machine)
    texts = [str(r) for r in lat.rejection_rows()]
    assert len(texts) == len(set(texts)) == 8 < len(lat.rejections) == 11
    (rk,) = [r for r in lat.rejection_rows() if r.module == "RK" and "PyTorch" in r.reason]
    assert rk.count == 2 and rk.problem == "Decay"
    assert str(rk).startswith("model RK for problem Decay(n=2 | n=8), software PyTorch: runs on numpy, but PyTorch "
                              "provides the torch backend (classical, line 15)")


def test_a_problem_without_scenarios_says_why(repo, cpu_machine):
    load(repo, "mnist", "stacks", "md")
    lat = discover(repo, machine=cpu_machine, hardware="CPU")
    (note,) = lat.unserved()
    assert note == ("MDSimulation: model PermutationInvariantModel: no model solves Require(Model, Predict, Atom, "
                    "Scalar('float32')) — the others are expected non-pairings (software PyTorch, JAX; model MLP; "
                    "metric CriticalLoss)")
