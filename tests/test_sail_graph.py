"""The graph checker (shape inference, parameter counts, errors) and the pretty-printer."""

from __future__ import annotations

import pytest

from saibench_jupyter.sail._check import CheckedGraph, check
from saibench_jupyter.sail._errors import GraphError, Location
from saibench_jupyter.sail._graph import (
    Array,
    Conv2d,
    ConvertNode,
    Dropout,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    Node,
    Pipeline,
    Relu,
    Softmax,
    Solver,
    SubModel,
    Sum,
    Tanh,
    TorchModule,
    walk,
)
from saibench_jupyter.sail._layers import WIDTH_INFERRED
from saibench_jupyter.sail._pretty import node_label, pretty
from saibench_jupyter.sail._symbolic import Param, Value
from saibench_jupyter.sail._types import (
    Any,
    Atom,
    Image,
    List,
    SailType,
    Scalar,
    Set,
    T,
    Tensor,
    as_type,
    is_flat_tensor,
    unify,
)


def fake_convert(source: SailType, target: SailType) -> tuple[SailType, str]:
    """A planner stand-in: flatten to a flat tensor, Tensor(1) -> Scalar, else identity."""
    if is_flat_tensor(target) and isinstance(source, Tensor | Image) and target.Size is None:
        if isinstance(source, Tensor) and is_flat_tensor(source):
            return source, "identity"
        return Tensor(source.Size), "flatten"
    if isinstance(target, Scalar) and isinstance(source, Tensor) and source.Size == 1:
        return Scalar("float32"), "squeeze"
    if unify(source, target) is not None:
        return source, "identity"
    raise GraphError(f"no conversion from {source!r} to {target!r}")


def run(graph: Node, source: object, target: object) -> CheckedGraph:
    # SAIL code writes bare classes (Tensor, Scalar) for types; check() accepts them too.
    return check(graph, as_type(source), as_type(target), convert=fake_convert)


class Unbound:
    """Looks like a dry run's unbound module parameter."""

    def __repr__(self) -> str:
        return "hidden (unbound parameter)"


def paper_mlp() -> Pipeline:
    return Pipeline(
        [
            ConvertNode(Tensor(28, 28), Tensor),
            Linear(128),
            Relu(),
            Linear((10,)),
            Softmax((10,)),
            ConvertNode(Tensor, Tensor(10)),
        ]
    )


def deep_sets() -> Pipeline:
    # The permutation-invariant pattern: embed every element, sum, then read out.
    element = Pipeline(SubModel("enc", "Embed", Tensor(4), Tensor(8)), Linear(16), Relu())
    return Pipeline(Sum(Array(element)), Linear(), Identity())


# -- the paper's MLP ------------------------------------------------------------------


def test_paper_mlp_types_and_parameters() -> None:
    checked = run(paper_mlp(), Tensor(28, 28), Tensor(10))
    assert checked.parameters == 784 * 128 + 128 + 128 * 10 + 10
    assert checked.output == Tensor(10)
    assert checked.input == Tensor(28, 28)
    assert [s.path for s in checked.steps] == ["0", "1", "2", "3", "4", "5"]
    assert {s.depth for s in checked.steps} == {0}
    assert [s.output for s in checked.steps] == [
        Tensor(784),
        Tensor(128),
        Tensor(128),
        Tensor(10),
        Tensor(10),
        Tensor(10),
    ]
    assert [s.parameters for s in checked.steps] == [0, 100480, 0, 1290, 0, 0]
    assert checked.steps[0].note == "flatten"
    assert checked.steps[-1].note == "identity"


def test_steps_follow_walk_order() -> None:
    graph = deep_sets()
    checked = run(graph, Set(Tensor(4)), Tensor(3))
    assert [s.node for s in checked.steps] == list(walk(graph))[1:]
    assert [(s.path, s.depth) for s in checked.steps] == [
        ("0", 0),
        ("0.0", 1),
        ("0.0.0", 2),
        ("0.0.0.0", 3),
        ("0.0.0.1", 3),
        ("0.0.0.2", 3),
        ("1", 0),
        ("2", 0),
    ]


def test_convert_gets_the_actual_type_and_the_substituted_target() -> None:
    seen: list[tuple[SailType, SailType]] = []

    def spy(source: SailType, target: SailType) -> tuple[SailType, str]:
        seen.append((source, target))
        return target, "spy"

    run_ = check(Pipeline(ConvertNode(List(T), Set(T))), List(Atom), Set(Atom), convert=spy)
    assert seen == [(List(Atom), Set(Atom))]
    assert run_.output == Set(Atom)


# -- Linear ---------------------------------------------------------------------------


def test_linear_width_inferred_through_shape_preserving_steps() -> None:
    graph = Pipeline(Linear(32), Tanh(), Linear(), Relu(), Dropout(0.2), Softmax())
    checked = run(graph, Tensor(5), Tensor(3))
    inferred = checked.steps[2]
    assert inferred.output == Tensor(3)
    assert inferred.note == WIDTH_INFERRED
    assert inferred.parameters == 32 * 3 + 3
    assert checked.parameters == 5 * 32 + 32 + 32 * 3 + 3


def test_linear_width_inferred_through_a_conversion_to_scalar() -> None:
    checked = run(Pipeline(Linear(), ConvertNode(Tensor, Scalar)), Tensor(6), Scalar)
    assert checked.steps[0].output == Tensor(1)
    assert checked.output == Scalar("float32")


def test_linear_width_inferred_inside_array_and_sum() -> None:
    checked = run(deep_sets(), Set(Tensor(4)), Tensor(3))
    readout = checked.steps[-2]
    assert readout.output == Tensor(3) and readout.note == WIDTH_INFERRED
    element_graph = Pipeline(Array(Pipeline(Linear(8), Relu(), Linear())))
    checked = run(element_graph, List(Tensor(4), 7), List(Tensor(2), 7))
    assert checked.output == List(Tensor(2), 7)
    assert checked.parameters == 4 * 8 + 8 + 8 * 2 + 2


def test_linear_width_not_inferable() -> None:
    with pytest.raises(GraphError, match=r"cannot infer the width of Linear") as info:
        run(Pipeline(Linear(), Linear(4)), Tensor(3), Tensor(4))
    assert info.value.fix == "give the width: Linear(n)"
    with pytest.raises(GraphError, match=r"give the width: Linear\(n\)"):
        run(Pipeline(Linear()), Tensor(3), Tensor)


def test_linear_on_a_non_flat_tensor() -> None:
    with pytest.raises(
        GraphError, match=r"Linear needs a flat tensor, got Tensor\(28, 28\)"
    ) as info:
        run(Pipeline(Linear(10)), Tensor(28, 28), Tensor(10))
    assert info.value.fix == "add Convert(Tensor(28, 28), Tensor) or Flatten() before it"


def test_linear_unbound_width() -> None:
    with pytest.raises(
        GraphError, match=r"the width of Linear is hidden \(unbound parameter\), not a number"
    ) as info:
        run(Pipeline(Linear(Unbound())), Tensor(3), Tensor(4))
    assert info.value.fix == "give the parameter a default or Suggest(...) values"
    with pytest.raises(GraphError, match="not a number"):
        run(Pipeline(Linear((2, Unbound()))), Tensor(3), Tensor(4))


def test_linear_width_from_a_dry_run_placeholder() -> None:
    # Value answers __index__ with a dummy 1 during a dry run; it must not become a width.
    with pytest.raises(GraphError, match=r"hidden \(unbound parameter\), not a number"):
        run(Pipeline(Linear(Param("hidden"))), Tensor(3), Tensor)
    with pytest.raises(GraphError, match=r"the width of Linear is <.*>, not a number"):
        run(Pipeline(Linear(Value(Scalar))), Tensor(3), Tensor)


@pytest.mark.parametrize("width", [0, -3, 2.5, True])
def test_linear_bad_width(width: object) -> None:
    with pytest.raises(GraphError, match="the width of Linear is"):
        run(Pipeline(Linear(width)), Tensor(3), Tensor)


def test_linear_dims_tuple_and_unknown_input_size() -> None:
    checked = run(Pipeline(Linear((2, 3))), Tensor(), Tensor(6))
    assert checked.output == Tensor(6)
    assert checked.parameters is None
    assert run(Pipeline(Linear(())), Tensor(4), Tensor(1)).parameters == 5


# -- other layers -----------------------------------------------------------------------


def test_output_mismatch() -> None:
    with pytest.raises(
        GraphError, match=r"the model produces Tensor\(5\), but the task needs Tensor\(10\)"
    ) as info:
        run(Pipeline(Linear(5)), Tensor(3), Tensor(10))
    assert "Convert(Tensor, outputType)" in (info.value.fix or "")


def test_empty_pipeline_is_identity() -> None:
    checked = run(Pipeline(), Tensor(3), Tensor(3))
    assert checked.steps == () and checked.parameters == 0 and checked.output == Tensor(3)


def test_softmax_size_must_match() -> None:
    with pytest.raises(GraphError, match=r"Softmax\(10\) gets Tensor\(5\)"):
        run(Pipeline(Softmax(10)), Tensor(5), Tensor(5))
    with pytest.raises(GraphError, match="Softmax needs a flat tensor"):
        run(Pipeline(Softmax()), Tensor(2, 2), Tensor(2, 2))


@pytest.mark.parametrize("p", [1.0, -0.1, "0.5", None])
def test_dropout_probability(p: object) -> None:
    with pytest.raises(GraphError, match=r"dropout probability .* not a number in \[0, 1\)"):
        run(Pipeline(Dropout(p)), Tensor(3), Tensor(3))


def test_conv_pool_flatten_on_an_image() -> None:
    graph = Pipeline(
        Conv2d(8, kernel=3),
        Relu(),
        MaxPool2d(2),
        Conv2d(16, kernel=3, padding=1),
        MaxPool2d(2),
        Flatten(),
        Linear(),
    )
    checked = run(graph, Image(28, 28, channels=1), Tensor(10))
    assert [s.output for s in checked.steps] == [
        Tensor(8, 26, 26),
        Tensor(8, 26, 26),
        Tensor(8, 13, 13),
        Tensor(16, 13, 13),
        Tensor(16, 6, 6),
        Tensor(576),
        Tensor(10),
    ]
    assert [s.parameters for s in checked.steps] == [
        8 * 1 * 9 + 8,
        0,
        0,
        16 * 8 * 9 + 16,
        0,
        0,
        576 * 10 + 10,
    ]


def test_conv_stride_and_unknown_sizes() -> None:
    checked = run(Pipeline(Conv2d(4, kernel=3, stride=2, padding=1)), Image(None, 9, 3), Any)
    assert checked.steps[0].output == Tensor(4, None, 5)
    assert checked.steps[0].parameters == 4 * 3 * 9 + 4
    assert run(Pipeline(Flatten()), Image(None, 9), Tensor).output == Tensor(None)


def test_conv_errors() -> None:
    with pytest.raises(GraphError, match=r"Conv2d\(kernel=5\) does not fit"):
        run(Pipeline(Conv2d(4, kernel=5)), Image(3, 3), Tensor)
    with pytest.raises(GraphError, match="Conv2d needs an Image or a Tensor"):
        run(Pipeline(Conv2d(4)), Tensor(10), Tensor)
    with pytest.raises(GraphError, match=r"the channel count of Conv2d is .*not a number"):
        run(Pipeline(Conv2d(Unbound())), Image(8, 8), Tensor)
    with pytest.raises(GraphError, match="Flatten needs a Tensor or an Image, got Scalar"):
        run(Pipeline(Flatten()), Scalar, Tensor)


# -- collections and sub-models ---------------------------------------------------------


def test_array_sum_over_a_set_with_a_submodel() -> None:
    checked = run(deep_sets(), Set(Tensor(4), 5), Tensor(3))
    array = checked.steps[1]
    assert array.input == Set(Tensor(4), 5)
    assert array.output == Set(Tensor(16), 5)
    assert checked.steps[0].output == Tensor(16)
    assert checked.steps[3].output == Tensor(8)
    # The sub-model's weights depend on what the planner picks.
    assert checked.steps[3].parameters is None and checked.parameters is None
    assert checked.output == Tensor(3)


def test_array_needs_a_collection() -> None:
    with pytest.raises(GraphError, match=r"Array needs a Set or List input, got Tensor\(4\)"):
        run(Pipeline(Array(Relu())), Tensor(4), Tensor(4))


def test_array_size_must_match() -> None:
    with pytest.raises(GraphError, match=r"Array\(size=3\) gets"):
        run(Pipeline(Array(Relu(), size=3)), List(Tensor(2), 4), List(Tensor(2)))
    assert run(Pipeline(Array(Relu(), 3)), List(Tensor(2)), List).output == List(Tensor(2), 3)


def test_sum_needs_a_collection() -> None:
    with pytest.raises(GraphError, match=r"Sum needs a collection .*got Tensor\(4\)") as info:
        run(Pipeline(Sum()), Tensor(4), Tensor(4))
    assert info.value.fix == "wrap the element model in Array(m) first"


def test_submodel_type_mismatch() -> None:
    site = Location("cell-3", 7)
    slot = SubModel("enc", "Embed", Tensor(4), Tensor(8), site=site)
    with pytest.raises(
        GraphError, match=r"sub-model slot 'enc' \(Embed\) takes Tensor\(4\), but gets Tensor\(5\)"
    ) as info:
        run(Pipeline(slot), Tensor(5), Tensor(8))
    assert info.value.location == site


def test_convert_source_mismatch_and_planner_failure() -> None:
    with pytest.raises(GraphError, match=r"Convert\(Tensor\(3\), Scalar\) gets Tensor\(4\)"):
        run(Pipeline(ConvertNode(Tensor(3), Scalar)), Tensor(4), Scalar)
    site = Location("cell-1", 2)
    with pytest.raises(GraphError, match="no conversion from") as info:
        run(Pipeline(ConvertNode(Tensor, Atom, site=site)), Tensor(3), Atom)
    assert info.value.location == site


def test_native_output_is_unknown() -> None:
    checked = run(Pipeline(Linear(4), TorchModule(object())), Tensor(3), Scalar)
    assert checked.steps[1].output == Any
    assert checked.parameters is None
    assert checked.output == Scalar()


def test_solver_sweep_is_a_bool_and_needs_a_checkpoint_keyword() -> None:
    def solve(x: object, checkpoint: object) -> object:
        return x

    assert run(Pipeline(Solver(solve, sweep=True)), Tensor(3), Tensor(3)).steps[0].output == Any
    with pytest.raises(GraphError, match=r"Solver\(fn, sweep=1\): sweep is True or False"):
        run(Pipeline(Solver(solve, sweep=1)), Tensor(3), Tensor(3))
    with pytest.raises(GraphError, match=r"fn takes no keyword argument named checkpoint"):
        run(Pipeline(Solver(len, sweep=True)), Tensor(3), Tensor(3))


def test_unknown_node_type() -> None:
    class Mystery(Node):
        pass

    with pytest.raises(GraphError, match="Mystery is not a layer SAIL can check"):
        run(Pipeline(Mystery()), Tensor(3), Tensor(3))


# -- pretty-printing ------------------------------------------------------------------


def test_pretty_tree() -> None:
    assert pretty(paper_mlp()).splitlines() == [
        "Pipeline",
        "  Convert(Tensor(28, 28) -> Tensor)",
        "  Linear(128)",
        "  Relu()",
        "  Linear((10,))",
        "  Softmax((10,))",
        "  Convert(Tensor -> Tensor(10))",
    ]
    assert pretty(deep_sets()).splitlines()[:5] == [
        "Pipeline",
        "  Sum",
        "    Array",
        "      Pipeline",
        "        SubModel(enc: Embed Tensor(4) -> Tensor(8))",
    ]


def test_pretty_checked_table() -> None:
    text = pretty(run(paper_mlp(), Tensor(28, 28), Tensor(10)), title="MNIST MLP")
    lines = text.splitlines()
    assert lines[0] == "MNIST MLP"
    assert lines[1] == (
        "Convert(Tensor(28, 28) -> Tensor)  Tensor(28, 28) -> Tensor(784)           [flatten]"
    )
    assert lines[2] == "Linear(128)                        Tensor(784) -> Tensor(128)     100,480"
    assert lines[3] == "Relu()                             Tensor(128) -> Tensor(128)"
    assert lines[-1] == "total parameters: 101,770"
    unknown = pretty(run(deep_sets(), Set(Tensor(4)), Tensor(3))).splitlines()
    assert unknown[-1] == "total parameters: unknown"
    assert unknown[3].startswith("      SubModel(enc: Embed Tensor(4) -> Tensor(8))")
    assert unknown[3].endswith("?")


def test_node_labels() -> None:
    assert node_label(Linear()) == "Linear()"
    assert node_label(Conv2d(8, kernel=3, stride=2)) == "Conv2d(8, kernel=3, stride=2)"
    assert node_label(MaxPool2d(2)) == "MaxPool2d(2)"
    assert node_label(Dropout(0.1)) == "Dropout(0.1)"
    assert node_label(Sum()) == "Sum()"
    assert node_label(Array(Relu(), size=4)) == "Array(size=4)"
    assert node_label(Flatten()) == "Flatten()"

    def forward(x: object) -> object:
        return x

    assert node_label(TorchModule(forward)) == "TorchModule(forward)"
    assert node_label(Solver(forward)) == "Solver(forward)"
    assert node_label(Solver(forward, sweep=True)) == "Solver(forward, sweep=True)"
    long_label = node_label(TorchModule("m" * 80))
    assert long_label == "TorchModule('" + "m" * 38 + "…)"
