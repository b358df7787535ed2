"""Readers of input files: MNIST IDX, ``.npy``, CSV, (extended) XYZ and images.

Every failure to read a file, whatever raised it underneath (``EOFError`` from an empty
``.npy``, ``UnicodeDecodeError`` from a Latin-1 CSV, ``BadGzipFile``, a truncated
memory map...), becomes a :class:`SailError` that names the file, says what is wrong
with it and how to fix it: :func:`reading` is the one place that translates them.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import itertools
import math
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..sail import AtomSet, SailError, atomic_number, npy_header

Records = Callable[[], Iterable[Any]]
#: What a reader of an array format gives: the records, their count, one record's shape, the dtype.
ArrayFile = tuple[Records, int, tuple[int, ...], Any]

IDX_FIX = "use MNIST's IDX files as published, or save the array with np.save as a .npy file"
NPY_FIX = "save the array again with np.save(path, array) (numbers, not objects)"
CSV_FIX = "CSV inputs hold numbers, one record per row, with an optional header row"
XYZ_FIX = "write extended XYZ: the atom count, a comment (Properties=species:S:1:pos:R:3:...), one line per atom"
IMAGE_FIX = "save it as PNG or TIFF"
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_XYZ_NAMES = {"pos": "positions", "velo": "velocities", "vel": "velocities", "species": "symbols"}
_NPY_MAGIC = b"\x93NUMPY"


def fail(error: Exception) -> Any:
    """Raise ``error`` (for lambdas and conditional expressions)."""
    raise error


@contextlib.contextmanager
def reading(path: Path, fix: str) -> Iterator[None]:
    """Turn any error of reading ``path`` into a :class:`SailError` naming it, with ``fix``."""
    try:
        yield
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start:exc.start + 1].hex()
        raise SailError(f"cannot read {path}: it is not UTF-8 text (byte 0x{bad}: {exc.reason})",
                        fix="save the file as UTF-8 (e.g. open it in an editor and save it with UTF-8 encoding)"
                        ) from None
    except EOFError as exc:
        raise SailError(f"cannot read {path}: it ends early ({exc or 'empty or truncated'})", fix=fix) from None
    except (OSError, ValueError, zlib.error, csv.Error, struct.error) as exc:
        # str(OSError) repeats the path; what is wrong is the strerror.
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise SailError(f"cannot read {path}: {why}", fix=fix) from None


def idx(path: Path) -> ArrayFile:
    """MNIST's IDX format: two zero bytes, a dtype code, the rank, big-endian uint32 sizes, the data."""
    import numpy as np

    zipped = path.name.lower().endswith(".gz")
    with reading(path, IDX_FIX), (gzip.open(path, "rb") if zipped else path.open("rb")) as f:
        head = f.read(4)
        rank = head[3] if len(head) == 4 and head[:2] == b"\0\0" and head[2] in _IDX_DTYPES else 0
        sizes = f.read(4 * rank)
    if not rank or len(sizes) < 4 * rank:
        raise SailError(f"{path} is not an IDX file (bad header)", fix=IDX_FIX)
    dims = struct.unpack(f">{rank}I", sizes)
    dtype, offset, count = np.dtype(_IDX_DTYPES[head[2]]), 4 + 4 * rank, dims[0]
    nbytes = math.prod(dims[1:]) * dtype.itemsize
    truncated = SailError(f"{path} is truncated: its header promises {dims} values", fix="copy the file again")
    if not zipped and path.stat().st_size < offset + count * nbytes:
        raise truncated

    def unzipped() -> Iterator[Any]:
        # A gzip stream cannot be mapped: it is decompressed record by record.
        with reading(path, "copy the file again: the gzip stream is damaged"), gzip.open(path, "rb") as f:
            f.read(offset)
            for _ in range(count):
                buf = f.read(nbytes)
                yield np.frombuffer(buf, dtype).reshape(dims[1:]) if len(buf) == nbytes else fail(truncated)

    def mapped() -> Any:
        # A memmap reads pages as records are used: nothing is loaded before iteration.
        with reading(path, IDX_FIX):
            return np.memmap(path, dtype, "r", offset, dims) if count else ()

    return (unzipped if zipped else mapped), count, dims[1:], dtype


def npy(path: Path) -> ArrayFile:
    """A ``.npy`` file, memory-mapped: its first axis is the records."""
    import numpy as np

    def load() -> Any:
        with reading(path, NPY_FIX), path.open("rb") as f:
            magic = f.read(len(_NPY_MAGIC))
            if magic != _NPY_MAGIC:
                raise SailError(f"cannot read {path}: it is not a .npy file (it does not start with the "
                                f"NumPy header{', it is empty' if not magic else ''})", fix=NPY_FIX)
        with reading(path, NPY_FIX):
            shape, dtype, offset = npy_header(path)
            size, need = path.stat().st_size, offset + math.prod(shape) * dtype.itemsize
        if size < need:
            # Else np.load fails with "mmap length is greater than file size".
            raise SailError(f"cannot read {path}: it is truncated (its header promises {shape} values of "
                            f"{dtype}: {need:,} bytes; the file has {size:,})", fix="copy or save the file again")
        with reading(path, NPY_FIX):
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        if not arr.ndim:
            raise SailError(f"{path} holds one value, not records", fix="save an array whose first axis is records")
        return arr

    arr = load()  # mapping reads the header only
    return load, arr.shape[0], arr.shape[1:], arr.dtype


def csv_rows(path: Path) -> Iterator[Any]:
    """Numeric rows as float32 arrays (scalars for one column); a first row that is not numeric is a header."""
    import numpy as np

    width = None
    with reading(path, CSV_FIX), path.open(newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.reader(f), 1):
            if not any(c.strip() for c in row):
                continue
            try:
                values = np.asarray([float(c) for c in row], np.float32)
            except ValueError:
                if width is None:
                    width = len(row)
                    continue
                bad = next(c for c in row if not _is_number(c))
                raise SailError(f"{path}, line {line}: {bad!r} is not a number (row {row!r})",
                                fix=f"{CSV_FIX}: correct or remove that value") from None
            if len(values) != (width or len(values)):
                raise SailError(f"{path}, line {line}: {len(values)} columns, not {width}",
                                fix="give every row the same number of columns")
            width = len(values)
            yield values[0] if width == 1 else values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def frames(path: Path) -> Iterator[AtomSet]:
    """The frames of an (extended) XYZ file; per-atom numeric properties become AtomSet fields."""
    with reading(path, XYZ_FIX), path.open(encoding="utf-8") as f:
        lines = enumerate(f, 1)
        for line, text in lines:
            if not text.strip():
                continue
            try:
                if not text.strip().isdigit():
                    raise ValueError(f"expected the number of atoms, found {text.strip()!r}")
                block = [t for _, t in itertools.islice(lines, int(text) + 1)]
                if len(block) <= int(text):
                    raise ValueError("the frame ends early")
                atoms = _frame(block[0], [t.split() for t in block[1:]])
            except ValueError as exc:
                raise SailError(f"{path}, line {line}: {exc}", fix=XYZ_FIX) from None
            yield atoms


def first_frame(path: Path) -> AtomSet:
    """The first configuration of an XYZ file."""
    for atoms in frames(path):
        return atoms
    raise SailError(f"{path} holds no configuration", fix=XYZ_FIX)


def _frame(comment: str, rows: list[list[str]]) -> AtomSet:
    import numpy as np

    spec = re.search(r"properties=[\"']?([^\s\"']+)", comment, re.IGNORECASE)
    props = (spec.group(1) if spec else "species:S:1:pos:R:3").split(":")
    fields: dict[str, Any] = {}
    col = 0
    for name, kind, width in zip(props[::3], props[1::3], map(int, props[2::3])):
        if any(len(r) < col + width for r in rows):
            raise ValueError(f"an atom line has no column for {name!r}")
        key, values = _XYZ_NAMES.get(name, name), [r[col:col + width] for r in rows]
        col += width
        if key == "symbols" or kind.upper() in ("R", "I"):
            arr = np.asarray(values, dtype=object if key == "symbols" else float if kind.upper() == "R" else int)
            fields[key] = arr[:, 0] if width == 1 else arr
    if "symbols" not in fields or "positions" not in fields:
        raise ValueError("a frame needs species and positions")
    numbers = [int(s) if s.isdigit() else atomic_number(s) for s in fields.pop("symbols")]
    fields.pop("Z", None)
    return AtomSet(numbers, fields.pop("positions"), **fields)


def read_image(path: Path, channels: int | None) -> Any:
    """One image file as float32 (h, w, c) in [0, 1], with ``channels`` channels where given."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels or 0)
            if mode is None and img.mode in ("1", "P", "CMYK", "YCbCr", "LAB", "HSV"):
                mode = "L" if img.mode == "1" else "RGBA" if "transparency" in img.info else "RGB"
            # 16-bit and float grey images are kept: converting them to "L" would clip them.
            keep = mode is None or img.mode == mode or (mode == "L" and img.mode in ("I", "I;16", "F"))
            arr = np.asarray(img if keep else img.convert(mode))
    except (OSError, UnidentifiedImageError, ValueError, EOFError) as exc:
        raise SailError(f"cannot read image {path}: {exc}", fix=IMAGE_FIX) from None
    # 8-bit images scale by 255, wider integer ones (16-bit PNG/TIFF) by 65535, float ones not at all.
    scale = 1 if arr.dtype.kind in "fb" else 255 if arr.dtype.itemsize == 1 else 65535
    out = arr.astype(np.float32) / np.float32(scale)
    return out[..., None] if out.ndim == 2 else out
