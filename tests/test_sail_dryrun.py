"""Dry runs: what each module kind declares when run on typed placeholders."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

import saibench_jupyter.examples
from saibench_jupyter.sail._concepts import Train
from saibench_jupyter.sail._dryrun import (
    ConverterRun,
    HardwareRun,
    MetricRun,
    ModelRun,
    ProblemRun,
    SoftwareRun,
    dry_run,
)
from saibench_jupyter.sail._errors import DryRunError, DryRunTimeout, NoContextError, SailNameError
from saibench_jupyter.sail._meta import TaskSignature
from saibench_jupyter.sail._parser import ParsedModule, ParsedSource, parse
from saibench_jupyter.sail._primitives import Input, Resources
from saibench_jupyter.sail._symbolic import Value
from saibench_jupyter.sail._types import Any, Atom, List, Scalar, Set, T, Tensor, as_type

MNIST_FILE = Path(saibench_jupyter.examples.__file__).parent / "paper" / "mnist.py"
DIGIT_TESTS = {"Classify": (Tensor(8, 8), Tensor(10))}


def parse_one(src: str, origin: str = "cell") -> ParsedModule:
    (module,) = parse(textwrap.dedent(src), origin).modules
    return module


@pytest.fixture(scope="module")
def mnist() -> ParsedSource:
    return parse(MNIST_FILE.read_text(), str(MNIST_FILE))


def module_of(source: ParsedSource, name: str) -> ParsedModule:
    return next(m for m in source.modules if m.name == name)


# -- problems ------------------------------------------------------------------------------
def test_mnist_declares_one_classify_task_with_its_types(mnist: ParsedSource) -> None:
    problem = module_of(mnist, "MNIST")
    trace = dry_run(problem, ProblemRun(problem), support=mnist.support_names)
    assert trace.meta.model_tasks == (TaskSignature("Classify", Tensor(28, 28), Tensor(10)),)


def test_mnist_records_train_and_test_phases_with_lines(mnist: ParsedSource) -> None:
    problem = module_of(mnist, "MNIST")
    trace = dry_run(problem, ProblemRun(problem), support=mnist.support_names)
    assert [(r.phase, r.kind, r.line) for r in trace.meta.records] == [
        ("Train", "Classify", 17),
        ("Test", "Classify", 19),
    ]
    assert dict(trace.meta.test_records) == {"Classify": (Tensor(28, 28), Tensor(10))}


def test_mnist_unused_parameter_is_reported_unbound(mnist: ParsedSource) -> None:
    problem = module_of(mnist, "MNIST")
    trace = dry_run(problem, ProblemRun(problem), support=mnist.support_names)
    assert trace.unbound == ("epochs",)


def test_mnist_records_its_inputs(mnist: ParsedSource) -> None:
    problem = module_of(mnist, "MNIST")
    trace = dry_run(problem, ProblemRun(problem), support=mnist.support_names)
    assert trace.meta.inputs == ("train-images.idx3-ubyte", "train-labels.idx1-ubyte",
                                 "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte")


def test_dataset_column_input_has_the_providers_type() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def Digits():
            for x in Input("dataset:digits/images"):
                Train.Pretrain(x)
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert trace.meta.records[0].types == (Tensor(8, 8),)


def test_whole_dataset_input_yields_records_of_all_columns() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def Digits():
            for x, y in Input("dataset:digits"):
                Train.Classify(x, y)
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert trace.meta.model_tasks == (TaskSignature("Classify", Tensor(8, 8), Scalar("int64")),)


def test_one_hot_turns_a_scalar_stream_into_a_tensor_stream() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def Digits():
            labels = Input("dataset:digits/labels").OneHot(Tensor(10))
            for y in labels:
                Train.Pretrain(y)
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert trace.meta.records[0].types == (Tensor(10),)


def test_unknown_dataset_error_lists_registered_providers() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            Input("dataset:nope")
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert trace.error.what.startswith("no dataset provider 'nope' (registered: ")
    assert "digits" in trace.error.what
    assert trace.error.location.line == 4


def test_unknown_dataset_column_lists_the_columns() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            Input("dataset:digits/colour")
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert trace.error.what == "dataset 'digits' has no column 'colour' (columns: images, labels)"


def test_model_predict_output_is_inferred_from_train_predict() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def Digits():
            images = Input("dataset:digits/images")
            labels = Input("dataset:digits/labels", Scalar).OneHot(Tensor(10))
            for x, y in zip(images, labels):
                Train.Predict(x, y)
                predicted = Model.Predict(x)
                Test.Compare(y, predicted)
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert dict(trace.meta.test_records) == {"Compare": (Tensor(10), Tensor(10))}
    assert trace.meta.model_tasks == (TaskSignature("Predict", Tensor(8, 8), Tensor(10)),)


def test_model_call_without_training_records_has_any_output() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            predicted = Model.Predict(Tensor(3))
            Test.Compare(Tensor(2), predicted)
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert dict(trace.meta.test_records) == {"Compare": (Tensor(2), Any)}


def test_incompatible_records_of_one_kind_name_both_lines() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            Train.Classify(Tensor(8, 8), Tensor(10))
            Train.Classify(Tensor(28, 28), Tensor(10))
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert trace.error.what == (
        "Train.Classify takes Tensor(28, 28) -> Tensor(10), "
        "but Train.Classify (line 4) takes Tensor(8, 8) -> Tensor(10)"
    )
    assert trace.error.location.line == 5


def test_records_whose_types_unify_do_not_conflict() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            Train.Classify(Tensor(None, 8), Tensor(10))
            Test.Classify(Tensor(8, 8), Tensor(10))
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert trace.error is None
    assert [t.kind for t in trace.meta.model_tasks] == ["Classify"]


def test_loop_over_a_stream_runs_once() -> None:
    # Each iteration would record a different label type; one record means one iteration.
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            for i, x in enumerate(Input("dataset:digits/images")):
                Train.Classify(x, Tensor(i + 1))
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert [r.types for r in trace.meta.records] == [(Tensor(8, 8), Tensor(1))]


def test_loop_over_zipped_streams_runs_once() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            images = Input("dataset:digits/images")
            for i, (x, y) in enumerate(zip(images, images)):
                Train.Classify(x, Tensor(i + 1))
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert len(trace.meta.records) == 1


def test_require_capability_in_a_problem_is_recorded() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def MD():
            md = Require(MolecularDynamicsSoftware)
            atoms = Input("h2o.atoms").XYZ()
            Train.Predict(atoms, md.PredictEnergy(atoms))
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert trace.meta.capabilities == ("MolecularDynamicsSoftware",)
    assert trace.meta.model_tasks == (TaskSignature("Predict", Set[Atom], Scalar("float32")),)


def test_require_model_in_a_problem_is_an_error_with_a_fix() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            Require(Model, Classify, Tensor(3), Tensor(3))
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert trace.error.what == "Require(Model, ...) is not allowed in a problem module"
    assert "Model.Kind(x)" in trace.error.fix


def test_require_model_in_a_problem_error_points_at_its_line() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            x = 1
            Require(Model, Classify, Tensor(3), Tensor(3))
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert trace.error.location.line == 5


# -- parameters and Suggest ----------------------------------------------------------------
SIZED = """
@ProblemDefinition
def P(size):
    Suggest(size, 8, 16)
    Train.Classify(Tensor(size), Tensor(10))
"""


def test_suggest_on_an_unbound_parameter_records_the_grid() -> None:
    problem = parse_one(SIZED)
    trace = dry_run(problem, ProblemRun(problem))
    assert dict(trace.suggestions) == {"size": (8, 16)}
    assert trace.unbound == ()


def test_suggest_on_a_bound_parameter_does_nothing() -> None:
    problem = parse_one(SIZED)
    trace = dry_run(problem, ProblemRun(problem), (), {"size": 4})
    assert dict(trace.suggestions) == {}
    assert trace.meta.model_tasks == (TaskSignature("Classify", Tensor(4), Tensor(10)),)


def test_unbound_parameter_gives_an_unknown_size() -> None:
    problem = parse_one(SIZED)
    trace = dry_run(problem, ProblemRun(problem))
    assert trace.meta.model_tasks[0].input == Tensor(None)


# -- failures and errors ---------------------------------------------------------------------
def test_fail_gives_the_reason_and_its_site() -> None:
    model = parse_one(
        """
        @ModelDefinition
        def M(task, inputType, outputType):
            if task != Classify:
                Fail("only classifies")
            return Linear(10)
        """
    )
    trace = dry_run(model, ModelRun(model), ("Segment", Tensor(3), Tensor(3)))
    assert (trace.ok, trace.failure, trace.failure_site.line) == (False, "only classifies", 5)
    assert trace.error is None


def test_paper_mlp_fails_for_tasks_it_cannot_solve(mnist: ParsedSource) -> None:
    mlp = module_of(mnist, "MLP")
    trace = dry_run(mlp, ModelRun(mlp), ("Segment", Tensor(28, 28), Tensor(10)), {"hiddenSize": 64})
    assert trace.failure == "don't know how to solve"


def test_paper_mlp_suggests_its_hidden_sizes(mnist: ParsedSource) -> None:
    mlp = module_of(mnist, "MLP")
    trace = dry_run(mlp, ModelRun(mlp), ("Classify", Tensor(28, 28), Tensor(10)))
    assert trace.ok
    assert dict(trace.suggestions) == {"hiddenSize": (128, 256, 512, 1024)}


def test_module_that_raises_gives_a_dry_run_error_at_its_line() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            x = 1
            return x / 0
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert isinstance(trace.error, DryRunError)
    assert trace.error.what == "ZeroDivisionError during the dry run: division by zero"
    assert (trace.error.module, trace.error.location.line) == ("P", 5)


def test_unknown_name_gives_a_name_error_with_a_sail_fix() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            Train.Classify(mystery, Tensor(10))
        """
    )
    trace = dry_run(problem, ProblemRun(problem))
    assert isinstance(trace.error, SailNameError)
    assert trace.error.what == "unknown name 'mystery'"
    assert trace.error.location.line == 4
    assert "%%sail" in trace.error.fix


def test_support_names_are_placeholders_during_the_dry_run() -> None:
    source = parse(
        textwrap.dedent(
            """
            import mylib
            @ProblemDefinition
            def P():
                mylib.prepare()
                Train.Classify(Tensor(3), Tensor(10))
            """
        ),
        "cell",
    )
    problem = source.modules[0]
    trace = dry_run(problem, ProblemRun(problem), support=source.support_names)
    assert trace.error is None


def test_endless_loop_stops_with_a_timeout() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            while True:
                pass
        """
    )
    start = time.monotonic()
    trace = dry_run(problem, ProblemRun(problem), time_limit=0.3)
    assert time.monotonic() - start < 3
    assert isinstance(trace.error, DryRunTimeout)
    assert trace.error.what == "the dry run did not finish within 0.3 s"
    assert trace.error.location.line in (4, 5)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: warm pods are POSIX-only")
def test_time_limit_works_in_a_forked_child_even_if_forked_mid_check() -> None:
    # A warm pod is forked from a worker whose watchdog thread may hold its lock at that moment.
    from saibench_jupyter.sail._deadline import _WATCHDOG

    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            while True:
                pass
        """
    )
    dry_run(problem, ProblemRun(problem), time_limit=0.05)  # the watchdog thread is running
    with _WATCHDOG._lock:
        pid = os.fork()
        if pid == 0:  # the child: exit 0 only if its own endless loop is stopped in time
            trace = dry_run(problem, ProblemRun(problem), time_limit=0.2)
            os._exit(0 if isinstance(trace.error, DryRunTimeout) else 1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the watchdog's lock")
    assert os.waitstatus_to_exitcode(status) == 0


def test_time_limit_leaves_no_trace_function_installed() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            while True:
                pass
        """
    )
    before = sys.gettrace()
    dry_run(problem, ProblemRun(problem), time_limit=0.3)
    assert sys.gettrace() is before


def test_timed_out_run_leaves_nothing_pending_for_the_caller() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            while True:
                pass
        """
    )
    dry_run(problem, ProblemRun(problem), time_limit=0.05)
    # Keep running Python code for several watchdog periods: nothing may interrupt it.
    end = time.monotonic() + 0.2
    spins = 0
    while time.monotonic() < end:
        spins += 1
    assert spins > 0


def test_loop_that_catches_exceptions_still_times_out() -> None:
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            while True:
                try:
                    x = 1
                except Exception:
                    pass
        """
    )
    trace = dry_run(problem, ProblemRun(problem), time_limit=0.3)
    assert isinstance(trace.error, DryRunTimeout)


def test_successful_run_leaves_no_trace_function_installed() -> None:
    problem = parse_one(SIZED)
    before = sys.gettrace()
    dry_run(problem, ProblemRun(problem))
    assert sys.gettrace() is before


# -- metrics ------------------------------------------------------------------------------
def test_metric_reading_a_missing_collection_fails_naming_it() -> None:
    metric = parse_one(
        """
        @MetricDefinition
        def SegLoss():
            return len(Test.Segment)
        """
    )
    trace = dry_run(metric, MetricRun(metric, DIGIT_TESTS))
    assert trace.failure == "reads Test.Segment, but the problem has Test.Classify"
    assert trace.failure_site.line == 4


def test_metric_reading_test_records_is_on_the_precision_axis(mnist: ParsedSource) -> None:
    metric = module_of(mnist, "CriticalLoss")
    trace = dry_run(metric, MetricRun(metric, DIGIT_TESTS))
    assert (trace.meta.axis, trace.meta.reads) == ("precision", frozenset({"Classify"}))


def test_metric_reading_a_counter_is_on_the_work_axis(mnist: ParsedSource) -> None:
    metric = module_of(mnist, "WallTime")
    trace = dry_run(metric, MetricRun(metric, DIGIT_TESTS))
    assert (trace.meta.axis, trace.meta.counters) == ("work", frozenset({"ElapsedMilliseconds"}))


def test_metric_axis_option_overrides_the_inferred_axis() -> None:
    metric = parse_one(
        """
        @MetricDefinition(axis="work", better="higher", unit="samples")
        def Count():
            n = 0
            for x, expected, predicted in Test.Classify:
                n = n + 1
            return n
        """
    )
    trace = dry_run(metric, MetricRun(metric, DIGIT_TESTS))
    assert (trace.meta.axis, trace.meta.better, trace.meta.unit) == ("work", "higher", "samples")


def test_metric_reading_nothing_is_an_error() -> None:
    metric = parse_one(
        """
        @MetricDefinition
        def Constant():
            return 1
        """
    )
    trace = dry_run(metric, MetricRun(metric, DIGIT_TESTS))
    assert trace.error.what == "metric Constant reads no Test collection and no work counter"


# -- software and hardware -------------------------------------------------------------------
SOFTWARE = """
@SoftwareDefinition
def Torch(hardware):
    Provides(FastMD, "fastmd:Engine")
    if hardware.device == "cuda":
        return Environment(backend="torch", pip=["torch"], conda=["pytorch-cuda"])
    return Environment(backend="torch", pip=["torch"])
"""


def test_software_receives_the_hardware() -> None:
    software = parse_one(SOFTWARE)
    gpu = dry_run(software, SoftwareRun(software), (Resources(device="cuda"),))
    cpu = dry_run(software, SoftwareRun(software), (Resources(),))
    assert gpu.meta.environment.conda == ("pytorch-cuda",)
    assert cpu.meta.environment.conda == ()


def test_provides_lands_in_the_environment() -> None:
    software = parse_one(SOFTWARE)
    trace = dry_run(software, SoftwareRun(software), (Resources(),))
    assert dict(trace.meta.environment.provides) == {"FastMD": "fastmd:Engine"}


def test_software_returning_no_environment_is_an_error() -> None:
    software = parse_one(
        """
        @SoftwareDefinition
        def Torch(hardware):
            return "torch"
        """
    )
    trace = dry_run(software, SoftwareRun(software), (Resources(),))
    assert trace.error.what == "software Torch returned 'torch', not an Environment"


def test_hardware_returns_its_resources() -> None:
    hardware = parse_one(
        """
        @HardwareDefinition
        def CPU(threads):
            Suggest(threads, 1, 2)
            return Resources(cpus=threads)
        """
    )
    trace = dry_run(hardware, HardwareRun(hardware), (), {"threads": 4})
    assert trace.meta.resources == Resources(cpus=4)


def test_hardware_returning_something_else_is_an_error_with_a_fix() -> None:
    hardware = parse_one(
        """
        @HardwareDefinition
        def CPU():
            return {"cpus": 4}
        """
    )
    trace = dry_run(hardware, HardwareRun(hardware))
    assert trace.error.what == "hardware CPU returned {'cpus': 4}, not Resources"
    assert trace.error.location.line == 3
    assert trace.error.fix == 'return Resources(cpus=..., device="cpu" or "cuda")'


# -- models and converters ------------------------------------------------------------------
def test_model_returning_a_list_is_read_as_a_pipeline() -> None:
    model = parse_one(
        """
        @ModelDefinition
        def M(task, inputType, outputType):
            return [Linear(4), Relu()]
        """
    )
    trace = dry_run(model, ModelRun(model), ("Classify", Tensor(3), Tensor(4)))
    assert type(trace.meta.graph).__name__ == "Pipeline"


def test_model_returning_no_graph_is_an_error() -> None:
    model = parse_one(
        """
        @ModelDefinition
        def M(task, inputType, outputType):
            return 42
        """
    )
    trace = dry_run(model, ModelRun(model), ("Classify", Tensor(3), Tensor(4)))
    assert trace.error.what == "model M returned 42, not a model graph"


def test_generic_converter_records_the_element_conversion_it_needs() -> None:
    converter = parse_one(
        """
        @ConverterDefinition
        def Concat(a: list[T]) -> Tensor:
            return Concat(a.map(Convert(T, Tensor)))
        """
    )
    trace = dry_run(converter, ConverterRun(converter), (Value(List[Atom]),), type_bindings={T: Atom()})
    assert trace.error is None
    assert trace.meta.needs == ((Atom(), as_type(Tensor)),)


def test_converter_without_conversions_needs_nothing(mnist: ParsedSource) -> None:
    converter = module_of(mnist, "AtomEmbedding")
    trace = dry_run(converter, ConverterRun(converter), (Value(Atom()),), support=mnist.support_names)
    assert trace.meta.needs == ()


def test_input_in_a_model_is_an_error() -> None:
    model = parse_one(
        """
        @ModelDefinition
        def M(task, inputType, outputType):
            Input("x.npy")
        """
    )
    trace = dry_run(model, ModelRun(model), ("Classify", Tensor(3), Tensor(4)))
    assert trace.error.what == "Input(...) is not allowed in a model module"


# -- outside any module --------------------------------------------------------------------
def test_primitive_outside_any_module_raises_no_context_error() -> None:
    with pytest.raises(NoContextError, match=r"^Input\(\.\.\.\) can only be used inside a SAIL module"):
        Input("x")


def test_task_outside_any_module_raises_no_context_error() -> None:
    with pytest.raises(NoContextError, match=r"^Train\.Classify\(\.\.\.\) can only be used inside"):
        Train.Classify(1, 2)


def test_splitting_zipped_streams_keeps_records_on_both_sides():
    (problem,) = parse(textwrap.dedent("""
        @ProblemDefinition
        def Split():
            images = Input("dataset:digits/images")
            labels = Input("dataset:digits/labels", Scalar).OneHot(Tensor(10))
            train, test = RandomSplit(zip(images, labels), 0.8)
            for stage in Chunks(train, 4):
                for x, y in stage:
                    Train.Classify(x, y)
            for x, y in test:
                Test.Classify(x, y)
    """), "split").modules
    meta = dry_run(problem, ProblemRun(problem)).meta
    assert [str(r) for r in meta.records] == [
        "Train.Classify(Tensor(8, 8), Tensor(10))", "Test.Classify(Tensor(8, 8), Tensor(10))"]


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write packages (name -> ``__init__`` source) on a temporary sys.path entry; forget them after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(**inits: str) -> None:
        for name, body in inits.items():
            (tmp_path / name).mkdir()
            (tmp_path / name / "__init__.py").write_text(textwrap.dedent(body))
            written.append(name)

    yield write
    for name in written:
        sys.modules.pop(name, None)


def test_a_slow_import_neither_counts_against_the_time_limit_nor_is_cut(packages) -> None:
    # Importing torch on a loaded machine takes seconds: the model must still be accepted,
    # and the import must not be interrupted half-way.
    packages(saib_slow_import="import time\ntime.sleep(1.5)\nREADY = True\n")
    model = parse_one(
        """
        @ModelDefinition
        def M(task, x, y):
            import saib_slow_import
            return Linear(8)
        """
    )
    trace = dry_run(model, ModelRun(model), ("Classify", Tensor(4), Tensor(8)), time_limit=0.5)
    assert trace.error is None
    assert sys.modules["saib_slow_import"].READY is True


def test_a_timed_out_dry_run_leaves_no_half_initialised_module(packages) -> None:
    # What an import cut by the deadline leaves when its cleanup is cut too (seen with torch):
    # the module in sys.modules, still marked as initialising, with half its names.
    import importlib.machinery

    packages(saib_half_done="READY = True\n")
    half = types.ModuleType("saib_half_done")
    half.__spec__ = importlib.machinery.ModuleSpec("saib_half_done", None)
    half.__spec__._initializing = True
    sys.modules["saib_half_done"] = half
    problem = parse_one(
        """
        @ProblemDefinition
        def P():
            while True:
                pass
        """
    )
    trace = dry_run(problem, ProblemRun(problem), time_limit=0.1)
    assert isinstance(trace.error, DryRunTimeout)
    assert "imports don't count" in trace.error.fix
    assert "saib_half_done" not in sys.modules
    import saib_half_done  # type: ignore[import-not-found]

    assert saib_half_done.READY is True


def test_the_in_process_dry_run_turns_system_exit_into_an_error():
    # Where the probe process is not available, the dry run here still keeps SystemExit in.
    (module,) = parse("@ModelDefinition\ndef M(task, i, o, n=exit(7)):\n    return Linear(3)\n", "m").modules
    trace = dry_run(module, ModelRun(module), ("Classify", Tensor(4), Tensor(2)))
    assert isinstance(trace.error, DryRunError) and not isinstance(trace.error, DryRunTimeout)
    assert (trace.error.what, trace.error.location.line) == ("SystemExit: 7 raised during the dry run", 2)
