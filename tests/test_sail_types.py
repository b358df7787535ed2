"""SAIL types: structural equality, the type protocol, unification, substitution, repr."""

from __future__ import annotations

import pytest

from saibench_jupyter.sail._types import (
    Any,
    Atom,
    Atoms,
    Image,
    List,
    SailType,
    Scalar,
    Set,
    T,
    Tensor,
    TypeVariable,
    as_type,
    substitute,
    unify,
)


class Molecule(SailType):
    pass


class Crystal(SailType):
    pass


class Lattice(SailType):
    def __init__(self, spacing: int) -> None:
        self.spacing = spacing


# -- structural equality and hashing ------------------------------------------------
def test_equal_tensors_are_equal_and_hash_alike() -> None:
    assert Tensor(28, 28) == Tensor(28, 28)
    assert hash(Tensor(28, 28)) == hash(Tensor(28, 28))


def test_tensors_with_different_dims_differ() -> None:
    assert Tensor(28, 28) != Tensor(28, 27)
    assert Tensor(28, 28) != Tensor(784)


def test_types_work_as_dict_keys() -> None:
    table = {Tensor(28, 28): "image", Set[Atom]: "molecule"}
    assert table[Tensor(28, 28)] == "image"
    assert table[Set[Atom]] == "molecule"


def test_dims_given_as_a_tuple_equal_dims_given_as_arguments() -> None:
    assert Tensor((2, 3)) == Tensor(2, 3)


def test_bare_tensor_class_means_a_flat_tensor_of_any_size() -> None:
    flat = as_type(Tensor)
    assert flat == Tensor()
    assert flat.dims == (None,)
    assert flat.Size is None


def test_bare_tensor_matches_flat_tensors_of_every_size_and_dtype() -> None:
    assert unify(Tensor, Tensor(None)) == {}
    assert unify(Tensor, Tensor(784)) == {}
    assert unify(Tensor, Tensor(3, dtype="int64")) == {}


def test_bare_tensor_does_not_match_a_higher_rank_tensor() -> None:
    assert unify(Tensor, Tensor(28, 28)) is None


def test_empty_tuple_gives_a_rank_zero_tensor() -> None:
    assert Tensor(()).dims == ()
    assert Tensor(()) != as_type(Tensor)


def test_types_are_immutable() -> None:
    with pytest.raises(AttributeError, match="SAIL types are immutable: cannot set 'shape'"):
        Tensor(3).shape = (4,)  # type: ignore[misc]


# -- the protocol SAIL code uses ----------------------------------------------------
def test_dims_of_each_type() -> None:
    assert Tensor(28, 28).dims == (28, 28)
    assert Scalar().dims == ()
    assert Image(28, 28, channels=3).dims == (28, 28, 3)
    assert Set(Tensor(3), 5).dims == (5, 3)


def test_collection_of_atoms_has_no_dims() -> None:
    assert Set[Atom].dims is None


def test_size_is_the_number_of_elements() -> None:
    assert Tensor(28, 28).Size == 784
    assert Image(8, 8, channels=3).Size == 192


def test_size_is_none_when_a_dim_is_unknown() -> None:
    assert Tensor(None, 3).Size is None
    assert Image().Size is None


def test_size_of_a_collection_is_its_length() -> None:
    assert Set(Atom(), 5).Size == 5
    assert Set[Atom].Size is None


def test_set_answers_is_set_and_its_element_type() -> None:
    atoms = Set[Atom]
    assert (atoms.IsSet, atoms.IsList, atoms.ElementType) == (True, False, Atom())


def test_list_answers_is_list_and_its_element_type() -> None:
    ls = List[Tensor(3)]
    assert (ls.IsSet, ls.IsList, ls.ElementType) == (False, True, Tensor(3))


def test_non_collections_have_no_element_type() -> None:
    assert Tensor(3).ElementType is None
    assert not Tensor(3).IsSet
    assert not Tensor(3).IsList


def test_atoms_is_a_set_of_atom() -> None:
    assert Atoms == Set[Atom]


# -- unification --------------------------------------------------------------------
def test_set_never_unifies_with_list() -> None:
    assert unify(Set[Atom], List[Atom]) is None
    assert unify(List[T], Set[Atom]) is None


def test_list_of_variable_binds_the_variable() -> None:
    assert unify(List[T], List[Atom]) == {T: Atom()}


def test_pythons_list_generic_is_accepted_as_a_list_type() -> None:
    assert as_type(list[Atom]) == List[Atom]
    assert unify(list[T], List[Atom]) == {T: Atom()}


def test_pythons_set_generic_is_a_set_type() -> None:
    assert as_type(set[Atom]) == Set[Atom]


def test_existing_binding_is_respected() -> None:
    assert unify(List[T], List[Atom], {T: Tensor(3)}) is None
    assert unify(List[T], List[Atom], {T: Atom()}) == {T: Atom()}


def test_collections_of_different_lengths_do_not_unify() -> None:
    assert unify(Set(Atom(), 4), Set(Atom(), 5)) is None
    assert unify(Set[Atom], Set(Atom(), 5)) == {}


def test_unknown_dims_unify_with_known_dims() -> None:
    assert unify(Tensor(None, 28), Tensor(28, 28)) == {}
    assert unify(Tensor(28, 28), Tensor(28, None)) == {}


def test_different_known_dims_or_ranks_do_not_unify() -> None:
    assert unify(Tensor(3), Tensor(4)) is None
    assert unify(Tensor(3), Tensor(3, 1)) is None


def test_tensor_dtypes_must_agree() -> None:
    assert unify(Tensor(3), Tensor(3, dtype="int64")) is None
    assert unify(Tensor(3, dtype="int64"), Tensor(3, dtype="int64")) == {}


def test_scalar_without_dtype_matches_every_scalar_dtype() -> None:
    assert unify(Scalar, Scalar("int64")) == {}
    assert unify(Scalar("int64"), Scalar("float32")) is None


def test_any_matches_every_type() -> None:
    assert unify(Any, Tensor(3)) == {}
    assert unify(Set[Atom], Any) == {}


def test_different_type_kinds_do_not_unify() -> None:
    assert unify(Tensor(3), Scalar()) is None
    assert unify(Atom, Tensor(3)) is None


# -- substitution -------------------------------------------------------------------
def test_substitute_replaces_a_bound_variable_inside_a_collection() -> None:
    assert substitute(List[T], {T: Atom()}) == List[Atom]


def test_substitute_keeps_the_collection_size() -> None:
    assert substitute(Set(T, 5), {T: Tensor(3)}) == Set(Tensor(3), 5)


def test_substitute_leaves_unbound_variables() -> None:
    assert substitute(List[T], {TypeVariable("U"): Atom()}) == List[T]


# -- user types -----------------------------------------------------------------------
def test_user_subclass_compares_structurally() -> None:
    assert Molecule() == Molecule()
    assert hash(Molecule()) == hash(Molecule())
    assert as_type(Molecule) == Molecule()


def test_user_subclasses_of_different_classes_differ() -> None:
    assert Molecule() != Crystal()
    assert unify(Molecule, Crystal) is None


def test_user_subclass_compares_by_its_attributes() -> None:
    assert Lattice(3) == Lattice(3)
    assert Lattice(3) != Lattice(4)


def test_user_type_can_be_a_collection_element() -> None:
    assert unify(List[T], List[Molecule]) == {T: Molecule()}


def test_as_type_rejects_non_types() -> None:
    with pytest.raises(TypeError, match=r"3 is not a SAIL type \(use Tensor\(\.\.\.\)"):
        as_type(3)


# -- repr -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("t", "text"),
    [
        (Tensor(28, 28), "Tensor(28, 28)"),
        (Tensor(None, 3), "Tensor(?, 3)"),
        (Tensor(3, dtype="int64"), "Tensor(3, dtype='int64')"),
        (Tensor(()), "Tensor(())"),
        (as_type(Tensor), "Tensor"),
        (Set[Atom], "Set[Atom]"),
        (List[T], "List[T]"),
        (Set(Atom(), 5), "Set[Atom, size=5]"),
        (Scalar(), "Scalar"),
        (Scalar("int64"), "Scalar('int64')"),
        (Image(28, 28), "Image(28, 28, channels=1)"),
        (Any, "Any"),
        (Molecule(), "Molecule"),
    ],
)
def test_repr(t: SailType, text: str) -> None:
    assert repr(t) == text


def test_hash_is_computed_once_per_type_object():
    t = Tensor(28, 28)
    first = hash(t)
    assert t._hash == first == hash(Tensor(28, 28))
    assert Tensor(28, 28) == t and Tensor(28, 27) != t
