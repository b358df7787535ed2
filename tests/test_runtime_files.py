"""Input files that cannot be read as declared: every error names the file, what is wrong and the fix."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from saibench_jupyter.runtime._data import open_input
from saibench_jupyter.sail import SailError, Scalar, Tensor


def read(path: Path, type: Any = None) -> list[Any]:
    """Everything ``Input(path.name, type)`` yields, read the way a running problem reads it."""
    return list(open_input(path.name, type, search=[path.parent]))


def failure(path: Path, type: Any = None) -> SailError:
    with pytest.raises(SailError) as info:
        read(path, type)
    err = info.value
    assert path.name in err.what, f"the error does not name the file: {err}"
    assert err.fix, f"the error has no fix: {err}"
    return err


def saved(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


# -- complex data ---------------------------------------------------------------------
def test_complex_npy_read_as_a_real_tensor_is_refused_at_input(tmp_path: Path) -> None:
    path = saved(tmp_path / "field.npy", np.arange(6).reshape(3, 2) * (1 + 2j))
    with pytest.raises(SailError, match=r"field\.npy holds complex numbers \(complex128\), and Tensor\(2\) is real"):
        open_input("field.npy", Tensor(2), search=[tmp_path])  # the header alone tells: no record is read
    assert 'Tensor(..., dtype="complex64")' in (failure(path, Tensor(2)).fix or "")


def test_complex_npy_without_a_declared_type_is_refused_too(tmp_path: Path) -> None:
    err = failure(saved(tmp_path / "field.npy", np.ones((3, 2), np.complex64)))
    assert "drop the imaginary parts" in err.what


def test_complex_npy_read_as_a_complex_tensor_keeps_its_imaginary_parts(tmp_path: Path) -> None:
    data = np.arange(6).reshape(3, 2) * (1 + 2j)
    records = read(saved(tmp_path / "field.npy", data), Tensor(2, dtype="complex64"))
    assert all(r.dtype == np.complex64 for r in records)
    np.testing.assert_allclose(np.stack(records), data)


def test_complex_scalars_read_as_a_real_scalar_are_refused(tmp_path: Path) -> None:
    err = failure(saved(tmp_path / "z.npy", np.array([1 + 1j, 2 - 1j])), Scalar("float64"))
    assert "complex" in err.what


# -- files that are damaged or of another encoding -------------------------------------
def test_empty_npy(tmp_path: Path) -> None:  # np.load: EOFError "No data left in file"
    (tmp_path / "x.npy").write_bytes(b"")
    err = failure(tmp_path / "x.npy", Tensor(3))
    assert "is not a .npy file" in err.what and "it is empty" in err.what


def test_truncated_npy(tmp_path: Path) -> None:  # np.load: ValueError "mmap length is greater than file size"
    raw = saved(tmp_path / "full.npy", np.zeros((4, 3), np.float32)).read_bytes()
    (tmp_path / "x.npy").write_bytes(raw[:-10])
    err = failure(tmp_path / "x.npy", Tensor(3))
    assert "is truncated" in err.what and "(4, 3)" in err.what
    assert err.fix == "copy or save the file again"


def test_npy_cut_inside_its_header(tmp_path: Path) -> None:
    raw = saved(tmp_path / "full.npy", np.zeros((4, 3), np.float32)).read_bytes()
    (tmp_path / "x.npy").write_bytes(raw[:40])
    assert "reading array header" in failure(tmp_path / "x.npy", Tensor(3)).what


def test_a_file_that_is_not_npy(tmp_path: Path) -> None:  # np.load: a misleading "pickled data" ValueError
    (tmp_path / "x.npy").write_text("1,2,3\n")
    assert "is not a .npy file" in failure(tmp_path / "x.npy", Tensor(3)).what


def test_text_npy_read_as_numbers(tmp_path: Path) -> None:  # np.array: ValueError "could not convert string"
    err = failure(saved(tmp_path / "x.npy", np.array([["a"], ["b"]])), Tensor(1))
    assert "<U1" in err.what and "cannot be read as Tensor(1)" in err.what


def test_structured_npy_read_as_numbers(tmp_path: Path) -> None:  # np.array: TypeError "Cannot cast"
    err = failure(saved(tmp_path / "x.npy", np.zeros(3, [("a", "f4"), ("b", "i4")])), Scalar("float32"))
    assert "cannot be read as Scalar('float32')" in err.what


@pytest.mark.parametrize("name, text", [
    ("x.csv", "x,y\n1,2\n3,caf\xe9\n"),
    ("x.xyz", "1\ncaf\xe9\nO 0 0 0\n"),
], ids=["csv", "xyz"])
def test_latin1_text_file(tmp_path: Path, name: str, text: str) -> None:  # UnicodeDecodeError
    (tmp_path / name).write_bytes(text.encode("latin-1"))
    err = failure(tmp_path / name, Tensor(2) if name.endswith(".csv") else None)
    assert "is not UTF-8 text (byte 0xe9" in err.what
    assert (err.fix or "").startswith("save the file as UTF-8")


def test_malformed_number_in_a_csv_names_the_value_and_line(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("1,2\n3,4.0.1\n")
    assert "x.csv, line 2: '4.0.1' is not a number" in failure(tmp_path / "x.csv", Tensor(2)).what


def test_malformed_number_in_an_xyz_file(tmp_path: Path) -> None:
    (tmp_path / "x.xyz").write_text("1\nc\nO 0 zero 0\n")
    assert "could not convert string to float: 'zero'" in failure(tmp_path / "x.xyz").what


def _idx_bytes(count: int, values: bytes) -> bytes:
    return struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">I", count) + values


def test_a_gz_idx_file_that_is_not_gzip(tmp_path: Path) -> None:  # gzip: BadGzipFile (an OSError)
    (tmp_path / "labels-idx1-ubyte.gz").write_bytes(_idx_bytes(3, b"\1\2\3"))
    assert "Not a gzipped file" in failure(tmp_path / "labels-idx1-ubyte.gz", Scalar).what


def test_a_cut_gzip_stream(tmp_path: Path) -> None:  # gzip: EOFError "Compressed file ended before..."
    (tmp_path / "labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(10, b"\1\2" * 5))[:-12])
    err = failure(tmp_path / "labels-idx1-ubyte.gz", Scalar)
    assert "it ends early" in err.what and "gzip stream is damaged" in (err.fix or "")
