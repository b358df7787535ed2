"""Execution-time inputs: real small files read lazily into typed, re-iterable streams."""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from saibench_jupyter.runtime._data import DataStream, input_type, open_input
from saibench_jupyter.sail import Atoms, Image, SailError, SailList, Scalar, Tensor
from saibench_jupyter.sail._atoms import AtomSet
from saibench_jupyter.sail._datasets import register_dataset
from saibench_jupyter.sail._symbolic import TupleType


def write_idx(path: Path, data: np.ndarray, code: int = 0x08) -> Path:
    """``data`` in MNIST's IDX format (big-endian), gzipped when the name ends in .gz."""
    dtype = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
    raw = struct.pack(">BBBB", 0, 0, code, data.ndim) + struct.pack(f">{data.ndim}I", *data.shape)
    raw += data.astype(dtype).tobytes()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


@pytest.fixture
def mnist(tmp_path: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 0, 9, 1, 3], dtype=np.uint8)
    write_idx(tmp_path / "train-images.idx3-ubyte", images)
    write_idx(tmp_path / "train-labels.idx1-ubyte", labels)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    return images, labels


XYZ = """3
Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc="F F F"
O 0.0 0.0 0.1 0.5 0.0 0.0
H 0.0 0.8 -0.5 0.0 0.1 0.0
H 0.0 -0.8 -0.5 0.0 -0.1 0.0
2
second frame, plain XYZ
C 1.0 2.0 3.0
H 1.0 2.0 4.1
"""


# -- IDX ------------------------------------------------------------------------------
def test_idx_images_and_labels(tmp_path: Path, mnist: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = mnist
    xs = open_input("train-images.idx3-ubyte", Tensor(28, 28), search=[tmp_path])
    ys = open_input("train-labels.idx1-ubyte", Scalar("int64"), search=[tmp_path])
    assert len(xs) == 5 and len(ys) == 5
    pairs = list(zip(xs, ys))
    x0, y0 = pairs[0]
    assert x0.shape == (28, 28) and x0.dtype == np.float32
    # Raw pixel values are kept (0..255), only cast to float32.
    np.testing.assert_array_equal(x0, images[0].astype(np.float32))
    assert isinstance(y0, np.int64) and y0 == 3
    assert [int(y) for _, y in pairs] == labels.tolist()
    assert xs.element == Tensor(28, 28) and ys.element == Scalar("int64")


def test_idx_gzipped_and_dash_spelling(tmp_path: Path, mnist: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = mnist
    xs = open_input("t10k-images-idx3-ubyte.gz", search=[tmp_path])
    ys = open_input("t10k-labels-idx1-ubyte.gz", search=[tmp_path])
    # Without a declared type, the format's type (what discovery gives .idx3-ubyte / .idx1-ubyte).
    assert xs.element == Tensor(None, None) and ys.element == Scalar("int64")
    assert len(xs) == 5
    np.testing.assert_array_equal(np.stack(list(xs)), images.astype(np.float32))
    assert [y.item() for y in ys] == labels.tolist()
    assert all(isinstance(y, np.int64) for y in ys)


def test_idx_is_lazy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A 60000-image file (47 MB, sparse on disk) opens at once: only the header is read ...
    path = tmp_path / "big.idx3-ubyte"
    with path.open("wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, 60000, 28, 28))
        f.truncate(16 + 60000 * 28 * 28)
    start = time.perf_counter()
    big = open_input(str(path), Tensor(28, 28))
    assert len(big) == 60000
    first = next(iter(big))
    assert time.perf_counter() - start < 0.5 and first.shape == (28, 28)
    # ... the file is mapped only when iterated ...
    maps = []
    real_memmap = np.memmap

    def spy(*args: object, **kwargs: object) -> np.memmap:
        maps.append(args[0])
        return real_memmap(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(np, "memmap", spy)
    lazy = open_input(str(path), Tensor(28, 28))
    assert maps == [] and len(lazy) == 60000 and maps == []
    next(iter(lazy))
    assert maps == [path]
    # ... and records come from the file when iterated, not when the stream was opened.
    small = write_idx(tmp_path / "small.idx1-ubyte", np.array([1, 2, 3], np.uint8))
    stream = open_input(str(small))
    small.write_bytes(small.read_bytes()[:-3] + bytes([7, 8, 9]))
    assert [int(v) for v in stream] == [7, 8, 9]


def test_idx_bad_header(tmp_path: Path) -> None:
    bad = tmp_path / "x.idx3-ubyte"
    bad.write_bytes(b"PK\x03\x04junk")
    with pytest.raises(SailError, match="not an IDX file"):
        open_input(str(bad))
    truncated = tmp_path / "y.idx3-ubyte"
    truncated.write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, 10, 28, 28) + bytes(100))
    with pytest.raises(SailError, match="truncated"):
        open_input(str(truncated))


def test_reiteration_gives_equal_records(tmp_path: Path, mnist: tuple[np.ndarray, np.ndarray]) -> None:
    for name in ("train-images.idx3-ubyte", "t10k-images-idx3-ubyte.gz"):
        xs = open_input(name, Tensor(784), search=[tmp_path])
        first, second = list(xs), list(xs)
        assert len(first) == 5 and first[0].shape == (784,)
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b)


# -- npy, csv ---------------------------------------------------------------------------
def test_npy(tmp_path: Path) -> None:
    data = np.arange(24, dtype=np.int16).reshape(4, 2, 3)
    np.save(tmp_path / "a.npy", data)
    typed = open_input(str(tmp_path / "a.npy"), Tensor(2, 3, dtype="float64"))
    assert len(typed) == 4
    recs = list(typed)
    assert recs[1].shape == (2, 3) and recs[1].dtype == np.float64
    np.testing.assert_array_equal(recs[1], data[1])
    # Undeclared: the header gives the record type, as discovery saw it (float32 tensors).
    undeclared = open_input(str(tmp_path / "a.npy"))
    assert undeclared.element == Tensor(2, 3)
    assert next(iter(undeclared)).shape == (2, 3) and next(iter(undeclared)).dtype == np.float32
    np.save(tmp_path / "s.npy", np.array([1.5, 2.5]))
    assert [float(v) for v in open_input(str(tmp_path / "s.npy"), Scalar("float32"))] == [1.5, 2.5]


def test_csv_with_and_without_header(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("x,y,z\n1,2,3\n4,5,6\n\n")
    (tmp_path / "n.csv").write_text("1,2,3\n4,5,6\n")
    for name in ("h.csv", "n.csv"):
        s = open_input(name, search=[tmp_path])
        recs = list(s)
        assert len(s) == 2 and recs[1].dtype == np.float32
        np.testing.assert_array_equal(recs[1], [4, 5, 6])
    (tmp_path / "one.csv").write_text("energy\n-1.5\n2\n")
    assert [float(v) for v in open_input(str(tmp_path / "one.csv"), Scalar("float32"))] == [-1.5, 2.0]
    (tmp_path / "bad.csv").write_text("1,2\n3,oops\n")
    with pytest.raises(SailError, match="line 2"):
        list(open_input(str(tmp_path / "bad.csv")))


# -- xyz --------------------------------------------------------------------------------
def test_xyz_frames_and_XYZ(tmp_path: Path) -> None:
    (tmp_path / "water.xyz").write_text(XYZ)
    s = open_input("water.xyz", search=[tmp_path])
    assert s.element == Atoms
    frames = list(s)
    assert len(s) == 2 and all(isinstance(f, AtomSet) for f in frames)
    assert frames[1].symbols == ["C", "H"]
    np.testing.assert_allclose(frames[1].positions, [[1, 2, 3], [1, 2, 4.1]], rtol=1e-6)
    atoms = s.XYZ()
    assert isinstance(atoms, AtomSet) and atoms.symbols == ["O", "H", "H"]
    np.testing.assert_allclose(atoms.positions[1], [0.0, 0.8, -0.5], rtol=1e-6)
    np.testing.assert_allclose(atoms.fields["forces"][0], [0.5, 0.0, 0.0])
    assert [a.name for a in atoms] == ["O", "H", "H"]
    batch = next(open_input("water.xyz", search=[tmp_path]).batches(1))
    assert batch["positions"].shape == (1, 3, 3)


def test_xyz_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.xyz").write_text("three\ncomment\n")
    with pytest.raises(SailError, match="number of atoms"):
        open_input(str(tmp_path / "bad.xyz")).XYZ()
    (tmp_path / "short.xyz").write_text("2\ncomment\nH 0 0 0\n")
    with pytest.raises(SailError, match="ends early"):
        list(open_input(str(tmp_path / "short.xyz")))
    np.save(tmp_path / "a.npy", np.zeros((2, 3)))
    with pytest.raises(SailError, match="not an XYZ source"):
        open_input(str(tmp_path / "a.npy")).XYZ()


# -- images -----------------------------------------------------------------------------
@pytest.fixture
def cells(tmp_path: Path) -> Path:
    from PIL import Image as PILImage

    folder = tmp_path / "cells"
    folder.mkdir()
    for i in (2, 0, 1):
        grey = np.full((4, 6), 51 * i, dtype=np.uint8)
        PILImage.fromarray(grey).save(folder / f"c{i}.png")
    PILImage.fromarray(np.tile(np.array([255, 0, 0], np.uint8), (4, 6, 1))).save(tmp_path / "red.png")
    (folder / "notes.txt").write_text("not an image")
    return tmp_path


def test_images_folder_and_glob(cells: Path) -> None:
    for source in ("cells", "cells/*.png"):
        s = open_input(source, search=[cells])
        recs = list(s)
        assert len(s) == 3 and recs[0].shape == (4, 6, 1) and recs[0].dtype == np.float32
        # Sorted by name, scaled to [0, 1].
        assert [float(r.max()) for r in recs] == pytest.approx([0.0, 0.2, 0.4])


def test_image_channels_follow_the_type(cells: Path) -> None:
    grey = open_input("red.png", search=[cells])  # discovery's Image() has one channel
    assert grey.element == Image() and next(iter(grey)).shape == (4, 6, 1)
    rgb = next(iter(open_input("red.png", Image(4, 6, channels=3), search=[cells])))
    assert rgb.shape == (4, 6, 3)
    np.testing.assert_allclose(rgb[0, 0], [1.0, 0.0, 0.0])
    with pytest.raises(SailError, match=r"shape \(4, 6, 1\), which does not fit Image\(8, 8"):
        list(open_input("red.png", Image(8, 8), search=[cells]))


def test_Image_reader(cells: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.ones((3, 5, 7), np.uint8))
    imgs = open_input(str(tmp_path / "m.npy"), Tensor(5, 7)).Image()
    assert imgs.element == Image() and len(imgs) == 3
    assert next(iter(imgs)).shape == (5, 7, 1) and next(iter(imgs)).dtype == np.float32
    folder = open_input("cells", search=[cells]).Image()
    assert folder.element == Image() and next(iter(folder)).shape == (4, 6, 1)
    digits = open_input("dataset:digits/images").Image()
    assert next(iter(digits)).shape == (8, 8, 1)
    with pytest.raises(SailError, match="tuples"):
        open_input("dataset:digits").Image()


# -- datasets ---------------------------------------------------------------------------
def test_dataset_digits() -> None:
    s = open_input("dataset:digits")
    assert len(s) == 1797 and s.element == TupleType(Tensor(8, 8), Scalar("int64"))
    x, y = next(iter(s))
    assert x.shape == (8, 8) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert isinstance(y, np.int64)
    labels = open_input("dataset:digits/labels")
    assert len(labels) == 1797 and labels.element == Scalar("int64")
    assert {int(v) for v in labels} == set(range(10))
    xs, ys = next(s.batches(32))
    assert xs.shape == (32, 8, 8) and ys.shape == (32,) and ys.dtype == np.int64


def test_dataset_loader_runs_once() -> None:
    calls = []

    def loader() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"v": np.arange(4.0), "k": np.array([0, 1, 1, 0])}

    register_dataset("tiny_once", {"v": Scalar("float32"), "k": Scalar("int64")}, loader)
    s = open_input("dataset:tiny_once")
    assert calls == []  # nothing is loaded until the stream is read
    assert len(s) == 4 and list(s) == list(open_input("dataset:tiny_once")) and len(calls) == 1
    assert [float(v) for v in open_input("dataset:tiny_once/v")] == [0, 1, 2, 3] and len(calls) == 1
    with pytest.raises(SailError, match="no dataset provider"):
        open_input("dataset:nope")


# -- OneHot, concatenation, batches -----------------------------------------------------
def test_onehot(tmp_path: Path, mnist: tuple[np.ndarray, np.ndarray]) -> None:
    ys = open_input("train-labels.idx1-ubyte", Scalar, search=[tmp_path]).OneHot(Tensor(10))
    assert ys.element == Tensor(10) and len(ys) == 5
    first = next(iter(ys))
    assert first.dtype == np.float32 and first.shape == (10,) and first.argmax() == 3 and first.sum() == 1
    pairs = open_input("dataset:digits").OneHot(Tensor(10))
    assert pairs.element == TupleType(Tensor(8, 8), Tensor(10))
    x, y = next(iter(pairs))
    assert x.shape == (8, 8) and y.shape == (10,) and y[0] == 1.0  # the first digit is a 0
    xs, ys_ = next(pairs.batches(4))
    assert xs.shape == (4, 8, 8) and ys_.shape == (4, 10)


def test_onehot_label_out_of_range(tmp_path: Path, mnist: tuple[np.ndarray, np.ndarray]) -> None:
    ys = open_input("train-labels.idx1-ubyte", search=[tmp_path]).OneHot(Tensor(5))
    with pytest.raises(SailError, match=r"label 9 .* outside the 5 classes"):
        list(ys)
    with pytest.raises(SailError, match="known number of classes"):
        ys.OneHot(Tensor(None))


def test_concatenation(tmp_path: Path, mnist: tuple[np.ndarray, np.ndarray]) -> None:
    a = open_input("train-labels.idx1-ubyte", search=[tmp_path])
    b = open_input("t10k-labels-idx1-ubyte.gz", search=[tmp_path])
    both = a + b
    assert isinstance(both, DataStream) and len(both) == 10 and both.element == a.element
    assert [int(v) for v in both] == [3, 0, 9, 1, 3] * 2
    assert [int(v) for v in sum([a, b])] == [int(v) for v in both]
    assert (0 + a) is a
    with_list = a + SailList([np.int64(7)])
    assert len(with_list) == 6 and int(list(with_list)[-1]) == 7
    assert len([np.int64(7)] + a) == 6  # noqa: RUF005 (list + stream is what SAIL code writes)
    with pytest.raises(SailError, match="differ in type"):
        a + open_input("dataset:digits/images")


def test_batches(tmp_path: Path, mnist: tuple[np.ndarray, np.ndarray]) -> None:
    xs = open_input("train-images.idx3-ubyte", Tensor(28, 28), search=[tmp_path])
    shapes = [b.shape for b in xs.batches(2)]
    assert shapes == [(2, 28, 28), (2, 28, 28), (1, 28, 28)]


# -- resolution and errors --------------------------------------------------------------
def test_search_path_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second, cwd = tmp_path / "src1", tmp_path / "src2", tmp_path / "cwd"
    for d in (first, second, cwd):
        d.mkdir()
    np.save(second / "v.npy", np.full((2, 1), 2.0))
    np.save(cwd / "v.npy", np.full((3, 1), 3.0))
    np.save(cwd / "only_here.npy", np.full((1, 1), 4.0))
    monkeypatch.chdir(cwd)
    assert len(open_input("v.npy", search=[first, second])) == 2  # the SAIL sources' folders first
    assert len(open_input("v.npy")) == 3
    assert len(open_input("only_here.npy", search=[first])) == 1
    assert len(open_input(str(second / "v.npy"), search=[first])) == 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SailError, match=r"no file 'missing\.npy' \(looked in .*src") as info:
        open_input("missing.npy", search=[tmp_path / "src"])
    assert "next to the SAIL source" in str(info.value) and "register a dataset provider" in str(info.value)
    with pytest.raises(SailError, match="no file"):
        open_input("nothing/*.png", search=[tmp_path])


def test_unknown_extension(tmp_path: Path) -> None:
    (tmp_path / "data.parquet").write_bytes(b"PAR1")
    with pytest.raises(SailError, match=r"unknown format '\.parquet'") as info:
        open_input("data.parquet", search=[tmp_path])
    assert ".idx3-ubyte" in str(info.value) and ".npy" in str(info.value) and ".png" in str(info.value)


def test_bad_record_size(tmp_path: Path, mnist: tuple[np.ndarray, np.ndarray]) -> None:
    # The IDX header knows the record shape: the mismatch is reported at Input(...).
    with pytest.raises(SailError, match=r"train-images\.idx3-ubyte has shape \(28, 28\), which does not fit Tensor\(10, 10\)"):
        open_input("train-images.idx3-ubyte", Tensor(10, 10), search=[tmp_path])
    (tmp_path / "r.csv").write_text("1,2,3\n")
    with pytest.raises(SailError, match=r"shape \(3,\), which does not fit Scalar"):
        list(open_input("r.csv", Scalar, search=[tmp_path]))


def test_input_type_matches_discovery() -> None:
    assert input_type("train-images.idx3-ubyte") == Tensor(None, None)
    assert input_type("train-images-idx3-ubyte.gz") == Tensor(None, None)
    assert input_type("x.idx1-ubyte") == Scalar("int64")
    assert input_type("m.xyz") == Atoms and input_type("m.atoms") == Atoms
    assert input_type("a.jpeg") == Image() and input_type("a.csv") == Tensor(None)
    assert input_type("dataset:digits/images") == Tensor(8, 8)
    assert input_type("a.npy", Scalar) == Scalar()
