"""The element type of ``Input``: declared, from a dataset, or from a file (``.npy`` headers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from saibench_jupyter.sail._errors import SailError
from saibench_jupyter.sail._inputs import input_type
from saibench_jupyter.sail._types import Scalar, Tensor


def save(folder: Path, name: str, array: np.ndarray, **kwargs) -> str:
    np.save(folder / name, array, **kwargs)
    return name


@pytest.mark.parametrize(("array", "expected"), [
    (np.zeros((5, 3)), Tensor(3)),
    (np.zeros((5, 2, 3), np.uint8), Tensor(2, 3)),
    (np.zeros(5), Tensor(1)),
    (np.zeros(5, np.float32), Tensor(1)),
    (np.arange(5), Scalar("int64")),
    (np.zeros(5, bool), Scalar("int64")),
])
def test_an_undeclared_npy_input_has_the_type_its_header_gives(tmp_path: Path, array, expected) -> None:
    assert input_type(save(tmp_path, "a.npy", array), search=[tmp_path]) == expected


def test_a_declared_type_wins_over_the_header(tmp_path: Path) -> None:
    assert input_type(save(tmp_path, "a.npy", np.zeros((5, 3))), Tensor(3, dtype="float64"),
                      [tmp_path]) == Tensor(3, dtype="float64")


def test_only_the_header_is_read(tmp_path: Path) -> None:
    # A file cut right after its header still has a type: the data are never loaded.
    path = tmp_path / save(tmp_path, "big.npy", np.zeros((1000, 7)))
    with path.open("rb") as f:
        head = f.read(128)
    path.write_bytes(head)
    assert input_type(str(path)) == Tensor(7)


def test_a_missing_npy_file_makes_the_type_unknown_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SailError, match=r"^the type of Input\('y\.npy'\) is unknown: no file 'y\.npy' "
                                        r"\(looked in .*\)") as info:
        input_type("y.npy", search=[tmp_path])
    assert 'Input("y.npy", Tensor(1))' in info.value.fix


@pytest.mark.parametrize(("array", "kwargs", "why"), [
    (np.array([{"a": 1}, None], dtype=object), {"allow_pickle": True}, "holds Python objects, which are never unpickled"),
    (np.array(["a", "b"]), {}, "holds <U1 values, not numbers"),
    (np.array(3.0), {}, "holds one value, not records"),
])
def test_npy_files_without_numeric_records_have_an_unknown_type(tmp_path: Path, array, kwargs, why) -> None:
    save(tmp_path, "odd.npy", array, **kwargs)
    with pytest.raises(SailError, match=r"^the type of Input\('odd\.npy'\) is unknown: .*" + why):
        input_type("odd.npy", search=[tmp_path])


def test_a_file_that_is_not_npy_has_an_unknown_type(tmp_path: Path) -> None:
    (tmp_path / "fake.npy").write_text("x,y\n1,2\n")
    with pytest.raises(SailError, match=r"is not a readable \.npy file"):
        input_type("fake.npy", search=[tmp_path])
