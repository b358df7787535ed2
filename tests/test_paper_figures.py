"""The paper's figures (SAIL.md §5) as SAIL sources, with exact expected scenarios and rejections."""

from __future__ import annotations

import textwrap

from conftest import MLP_PREDICTS, load, paper_source

from saibench_jupyter import Machine, discover

WIDTHS = [128, 256, 512, 1024]


def test_mnist_mlp_gives_four_widths_on_two_software_stacks(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    lat = discover(repo, machine=cpu_machine)

    got = sorted((s.software, s.params["MLP.hiddenSize"]) for s in lat.scenarios)
    assert got == sorted((sw, w) for sw in ("PyTorch", "JAX") for w in WIDTHS)
    for s in lat.scenarios:
        assert (s.problem, s.model, s.hardware) == ("MNIST", "MLP", "CPU")
        assert s.params["CPU.threads"] == 1
        assert [m.name for m in s.metrics] == ["CriticalLoss", "WallTime"]
        assert [c.label for c in s.converters] == ["flatten", "identity"]
        assert s.environment.backend == s.software.lower().replace("pytorch", "torch")
        assert s.resources.cpus == 1
    # search order: hardware, then software, then model widths in Suggest order
    assert [s.params["MLP.hiddenSize"] for s in lat.scenarios[:4]] == WIDTHS


def test_mnist_metrics_axes_follow_what_they_read(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    s = discover(repo, machine=cpu_machine).scenarios[0]
    axes = {m.name: (m.axis, m.reads, m.counters) for m in s.metrics}
    assert axes["CriticalLoss"] == ("precision", frozenset({"Classify"}), frozenset())
    assert axes["WallTime"] == ("work", frozenset(), frozenset({"ElapsedMilliseconds"}))


def test_scenario_ids_are_stable_across_repositories(cpu_machine):
    from saibench_jupyter import Repository

    ids = [
        [s.id for s in discover(load(Repository(), "mnist", "stacks"), machine=cpu_machine).scenarios]
        for _ in range(2)
    ]
    assert ids[0] == ids[1]
    assert len(set(ids[0])) == 8


def test_failing_software_and_missing_gpu_are_rejected_with_reasons(repo, cpu_machine):
    load(repo, "mnist", "stacks")
    lat = discover(repo, machine=cpu_machine)
    by_module = {r.module: r for r in lat.rejections}
    assert by_module["TensorFlow"].kind == "software"
    assert by_module["TensorFlow"].reason == "no TensorFlow backend: the graph IR lowers to PyTorch and JAX"
    assert by_module["TensorFlow"].location.line == 32
    assert by_module["TensorFlow"].context == (("hardware", "CPU(threads=1)"),)
    assert by_module["GPU"].kind == "hardware"
    assert by_module["GPU"].reason == "asks for 1 CUDA device(s), but none is visible on this machine"


def test_software_chooses_requirements_from_the_hardware(repo):
    """Fig. 4: the software module picks its requirements from the hardware it is given."""
    load(repo, "mnist", "stacks")
    lat = discover(repo, machine=Machine(cpus=2, gpus=1), software="JAX")
    pips = {s.hardware: s.environment.pip for s in lat.scenarios}
    assert pips == {"CPU": ("jax", "jaxlib"), "GPU": ("jax[cuda12]",)}
    assert all(r.module != "GPU" for r in lat.rejections)


def test_mlp_is_rejected_for_tasks_it_does_not_solve(repo, cpu_machine):
    load(repo, "mnist", "stacks", "segmentation")
    lat = discover(repo, machine=cpu_machine, problem="ElectronMicroscopySegmentation", model="MLP")
    assert lat.scenarios == []
    (r,) = [r for r in lat.rejections if r.module == "MLP"]
    assert r.kind == "model"
    assert r.reason.startswith("don't know how to solve (task Pretrain: Image(")
    assert r.context == (("problem", "ElectronMicroscopySegmentation"),)
    assert (r.location.origin, r.location.line) == ("mnist.py", 54)


def test_permutation_invariant_model_composes_mlp_through_atom_embedding(repo, cpu_machine):
    load(repo, "stacks", "md")
    repo.add_source(MLP_PREDICTS, origin="mnist.py")
    lat = discover(repo, machine=cpu_machine, problem="MDSimulation")

    assert sorted(s.label for s in lat.scenarios) == sorted(
        f"MDSimulation × PermutationInvariantModel[MLP(hiddenSize={w})] × ASE × CPU(threads=1)"
        for w in WIDTHS
    )
    s = lat.scenarios[0]
    assert list(s.submodels.values()) == ["MLP"]
    (role,) = s.submodels
    assert role.startswith("model/")
    assert s.params["MLP.hiddenSize"] == 128  # the sub-model's, under its module's name
    graph = s.model_choice.submodels[0][1].graphs["Predict"]
    assert repr(graph.input) == "Atom" and repr(graph.output) == "Scalar('float32')"
    assert [(repr(c.source), c.label) for c in s.converters] == [
        ("Atom", "AtomEmbedding"), ("Tensor(1)", "squeeze")]
    # the problem needs a capability only ASE provides, and a metric it can read
    assert [m.name for m in s.metrics] == ["WallTime"]
    reasons = {(r.kind, r.module): r.reason for r in lat.rejections}
    assert reasons[("software", "PyTorch")] == "does not provide MolecularDynamicsSoftware, which the problem requires"
    assert reasons[("metric", "CriticalLoss")] == "reads Test.Classify, but the problem has Test.Compare"
    assert reasons[("model", "MLP")].startswith("no chain of converters turns Set[Atom] into Tensor")
    assert "Concat takes List[T], and a Set never matches a List" in reasons[("model", "MLP")]


def test_with_the_paper_mlp_the_permutation_invariant_model_says_why_it_has_no_submodel(repo, cpu_machine):
    load(repo, "stacks", "md", "mnist")
    lat = discover(repo, machine=cpu_machine, problem="MDSimulation")
    assert lat.scenarios == []
    (r,) = [r for r in lat.rejections if r.module == "PermutationInvariantModel"]
    assert r.reason == "no model solves Require(Model, Predict, Atom, Scalar('float32'))"
    assert r.location.line == 43
    assert "MLP: don't know how to solve" in r.details
    assert "PermutationInvariantModel: Don't know how to solve" in r.details


def test_list_of_atoms_converts_through_concat_of_atom_embeddings(repo, cpu_machine):
    load(repo, "stacks")
    repo.add_source(MLP_PREDICTS, origin="mnist.py")
    repo.add_source(textwrap.dedent("""
        @ProblemDefinition
        def AtomSequence():
            for seq, e in zip(Input("chain.xyz", List[Atom]), Input("energies.npy", Scalar)):
                Train.Predict(seq, e)
                Test.Predict(seq, e)
    """), origin="sequence")
    lat = discover(repo, machine=cpu_machine, problem="AtomSequence", software="PyTorch")
    assert len(lat.scenarios) == 4
    chains = lat.scenarios[0].converters
    assert chains[0].label == "Concat∘AtomEmbedding"
    (step,) = chains[0].steps
    assert (step.converter, step.bindings) == ("Concat", (("T", repr_type("Atom")),))
    assert step.inner[0].label == "AtomEmbedding"
    assert ("List[Atom]", "Tensor") in lat.converter_graph.edges


def repr_type(name: str):
    from saibench_jupyter.sail import Atom

    return {"Atom": Atom()}[name]


def test_rankings_attach_where_their_metrics_are(repo, cpu_machine):
    load(repo, "mnist", "stacks", "md", "rankings")
    lat = discover(repo, machine=cpu_machine)
    mnist = lat.select(problem="MNIST")
    assert mnist and all([r.name for r in s.rankings] == ["Fastest", "Dominates"] for s in mnist)
    assert [(r.comparison, sorted(r.metrics)) for r in mnist[0].rankings] == [
        (False, ["WallTime"]), (True, ["CriticalLoss", "WallTime"])]
    (r,) = [r for r in lat.rejections if r.module == "Dominates"]
    assert r.context == (("problem", "MDSimulation"),)
    assert r.reason == ("needs metric CriticalLoss, which the problem's scenarios do not have "
                        "(they have WallTime)")


SIZED = paper_source("segmentation").replace('Input("CEM500K")', 'Input("CEM500K", Image(64, 64))').replace(
    'Input("cell0_slice1.img")', 'Input("cell0_slice1.img", Image(64, 64))').replace(
    'Input("cell0_slice1.msk")', 'Input("cell0_slice1.msk", Image(64, 64))')


def test_pretrain_segment_model_shares_its_base_model_across_tasks(repo, cpu_machine):
    load(repo, "stacks")
    repo.add_source(SIZED, origin="segmentation.py")
    lat = discover(repo, machine=cpu_machine, software="PyTorch", params={"embsize": 32})
    assert [s.model_choice.label for s in lat.scenarios] == [
        "PretrainSegmentModel(embsize=32)[ConvEncoder, DenseDecoder, DenseDecoder]"]
    choice = lat.scenarios[0].model_choice
    assert set(choice.graphs) == {"Pretrain", "Segment"}
    # three Require sites: the base (shared by both tasks), the pretrain decoder, the task decoder
    slots = [slot for slot, _ in choice.submodels]
    assert len(slots) == 3 and slots[0].startswith("11:")
    assert lat.scenarios[0].problem_instance.meta.model_tasks[0].kind == "Pretrain"


def test_pretrain_segment_model_without_sizes_explains_what_is_missing(repo, cpu_machine):
    load(repo, "stacks", "segmentation")
    lat = discover(repo, machine=cpu_machine, software="PyTorch")
    assert lat.scenarios == []
    (r,) = [r for r in lat.rejections if r.module == "PretrainSegmentModel"]
    assert r.reason == "no model solves Require(Model, Embedding, Image(?, ?, channels=1), Tensor(?))"
    assert any(d.startswith("ConvEncoder: the width of Linear") for d in r.details)
