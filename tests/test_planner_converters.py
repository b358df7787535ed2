"""The converter graph: breadth-first resolution, composition of generic converters, reasons."""

from __future__ import annotations

import textwrap

import pytest

from saibench_jupyter import Machine, Repository, discover
from saibench_jupyter.planner import NoConversion
from saibench_jupyter.sail import Atom, Image, List, Scalar, Set, Tensor

CONVERTERS = textwrap.dedent('''
    @ConverterDefinition
    def AtomEmbedding(a: Atom) -> Tensor(16):
        return table[a.name]

    @ConverterDefinition
    def Concat(a: list[T]) -> Tensor:
        return Concat(a.map(Convert(T, Tensor)))

    @ConverterDefinition
    def Long(a: Atom) -> Scalar:
        return a.number

    @ConverterDefinition
    def Nested(a: list[T]) -> Scalar:
        return Convert(a, Scalar)

    table = {}
''')


def graph_of(*sources: str):
    repo = Repository()
    for i, text in enumerate(sources):
        repo.add_source(text, origin=f"converters-{i}")
    return discover(repo, machine=Machine(cpus=1))._converters


def test_identity_when_the_types_already_fit():
    chain = graph_of(CONVERTERS).resolve(Tensor(10), Tensor)
    assert (chain.label, chain.steps, chain.output) == ("identity", (), Tensor(10))


def test_builtin_reshapes():
    g = graph_of(CONVERTERS)
    assert (g.resolve(Tensor(28, 28), Tensor).label, g.resolve(Tensor(28, 28), Tensor).output) == (
        "flatten", Tensor(784))
    assert g.resolve(Image(8, 8, channels=3), Tensor).output == Tensor(192)
    assert g.resolve(Tensor(1), Scalar).label == "squeeze"
    assert g.resolve(Scalar(), Tensor(1)).label == "unsqueeze"
    assert g.resolve(Tensor(784), Tensor(28, 28)).label == "reshape"


def test_the_shortest_chain_wins():
    # one step (Long) rather than AtomEmbedding then a reshape; to a tensor, AtomEmbedding
    g = graph_of(CONVERTERS)
    assert g.resolve(Atom(), Scalar).label == "Long"
    chain = g.resolve(Atom(), Tensor)
    assert (chain.label, chain.output) == ("AtomEmbedding", Tensor(16))


def test_generic_converters_compose_with_element_converters():
    chain = graph_of(CONVERTERS).resolve(List(Atom()), Tensor)
    assert chain.label == "Concat∘AtomEmbedding"
    (step,) = chain.steps
    assert step.bindings == (("T", Atom()),)
    assert chain.converters == ("Concat", "AtomEmbedding")


def test_a_set_never_takes_a_list_converter():
    with pytest.raises(NoConversion, match=r"no chain of converters turns Set\[Atom\] into Tensor \(.*"
                                           r"Concat takes List\[T\], and a Set never matches a List"):
        graph_of(CONVERTERS).resolve(Set(Atom()), Tensor)


def test_a_generic_converter_that_needs_itself_is_refused_with_the_reason():
    with pytest.raises(NoConversion, match=r"Nested applies to List\[Atom\] but needs converting "
                                           r"List\[Atom\] to Scalar needs itself"):
        graph_of(CONVERTERS).resolve(List(Atom()), Scalar("int64"))


def test_converters_with_annotations_that_are_not_types_are_rejected():
    repo = Repository()
    repo.add_source("@ConverterDefinition\ndef Bad(a: helper) -> Tensor:\n    return a\n\nhelper = 3\n", origin="bad")
    (r,) = discover(repo, machine=Machine(cpus=1)).rejections
    assert (r.kind, r.module) == ("converter", "Bad")
    assert r.reason.startswith("its annotations are not SAIL types")


def test_the_graph_for_display_has_declared_and_resolved_edges():
    g = graph_of(CONVERTERS)
    chain = g.resolve(List(Atom()), Tensor)
    nx_graph = g.to_networkx([chain])
    assert nx_graph.edges["List[T]", "Tensor"] == {"converter": "Concat", "kind": "declared"}
    assert nx_graph.edges["List[Atom]", "Tensor"] == {"converter": "Concat", "kind": "resolved"}
    assert nx_graph.edges["Atom", "Tensor(16)"]["converter"] == "AtomEmbedding"
