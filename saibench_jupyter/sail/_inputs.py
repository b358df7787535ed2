"""The element type of ``Input(source, type)``, as discovery and execution both see it.

A declared type wins. Otherwise a dataset provider declares its columns, and a file's
format tells the rest: IDX labels are ``Scalar("int64")``, XYZ files are atoms, images
are images. A ``.npy`` file says its record shape and dtype in its header, read here
without loading the data (and never unpickling anything): ``(n, k)`` records are
``Tensor(k)``, ``(n,)`` one number each (``Tensor(1)``, or ``Scalar("int64")`` for labels). When the header can't be
read, the type is unknown, and the error says which type to declare.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._datasets import dataset_type
from ._errors import SailError
from ._types import AnyType, Atoms, Image, SailType, Scalar, Tensor, as_type

#: Image file extensions (``Input`` reads each file as one image).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".img", ".msk")
_EXTENSION_TYPES: tuple[tuple[str, SailType], ...] = (
    (".idx1-ubyte", Scalar("int64")),
    (".idx3-ubyte", Tensor(None, None)),
    (".xyz", Atoms),
    (".atoms", Atoms),
    (".csv", Tensor(None)),
    *((ext, Image()) for ext in IMAGE_EXTENSIONS),
)
#: A .npy header is a few hundred bytes; numpy's own reader refuses more than this.
_MAX_HEADER = 10_000
#: The (mtime in ns, size) of a file a dry run read, or None when there was no file.
FileStamp = tuple[int, int] | None


def input_type(source: str, type: Any = None, search: Sequence[Path] = ()) -> SailType:
    """The element type of ``Input(source, type)``: the declared type, a dataset's, or the file's.

    Parameters
    ----------
    source : str
        What ``Input`` reads: ``dataset:NAME[/column]``, a file or a pattern. IDX names spelt
        ``-idx3-ubyte`` or gzipped (``.gz``) count as IDX; a folder or an unknown extension is ``Any``.
    type : SailType, optional
        The declared element type.
    search : sequence of Path
        Folders a relative ``.npy`` path is looked up in, before the current directory
        (the SAIL sources' folders, as at execution).

    Raises
    ------
    SailError
        For an undeclared ``.npy`` input whose type can't be known (no such file, no
        numeric records), or an unknown dataset.
    """
    if type is not None:
        return as_type(type)
    if source.startswith("dataset:"):
        return dataset_type(source[len("dataset:"):])
    if source.lower().endswith(".npy"):
        return npy_type(source, search)
    name = re.sub(r"-(idx\d-ubyte)", r".\1", source.lower()).removesuffix(".gz")
    return next((t for ext, t in _EXTENSION_TYPES if name.endswith(ext)), AnyType())


def lookup_paths(source: str, search: Sequence[Path] = ()) -> list[Path]:
    """Where the file ``source`` is looked for, in order: itself if absolute, else in each folder of
    ``search``, then in the current directory (as execution looks)."""
    raw = Path(source).expanduser()
    return [raw] if raw.is_absolute() else [base / raw for base in (*search, Path.cwd())]


def find_file(source: str, search: Sequence[Path] = ()) -> Path | None:
    """The first of :func:`lookup_paths` that is a file, or None."""
    return next((p for p in lookup_paths(source, search) if p.is_file()), None)


def file_stamp(path: str | Path) -> FileStamp:
    """What tells a changed file from the one a dry run read: (mtime in ns, size), or None if missing."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def files_changed(files: Iterable[tuple[str, FileStamp]]) -> bool:
    """True when a file a dry run read (``Trace.files``) is not the same any more."""
    return any(file_stamp(path) != stamp for path, stamp in files)


def npy_type(source: str, search: Sequence[Path] = ()) -> SailType:
    """The record type of the ``.npy`` file ``source`` from its header (the first axis counts records).

    One whole number (or boolean) per record is ``Scalar("int64")``, a label as in IDX
    files (``.OneHot(...)`` applies); one float per record is ``Tensor(1)``; records of
    shape ``(k, ...)`` are ``Tensor(k, ...)``, read as float32 like any undeclared tensor.

    Raises
    ------
    SailError
        When the file is missing, unreadable, holds objects or non-numbers, or one value.
    """
    path = find_file(source, search)
    looked = ", ".join(str(p) for p in (*search, Path.cwd()))
    if path is None:
        _unknown(source, f"no file {source!r} (looked in {looked})")
    try:
        shape, dtype, _ = npy_header(path)
    except (OSError, ValueError, SyntaxError) as exc:
        _unknown(source, f"{path} is not a readable .npy file ({exc})")
    if dtype.hasobject:
        _unknown(source, f"{path} holds Python objects, which are never unpickled")
    if dtype.kind == "c":
        shown = ", ".join(map(str, shape[1:])) or "1"
        raise SailError(f"the type of Input({source!r}) is unknown: {path} holds {dtype} values, and reading "
                        "them as a real type would drop the imaginary parts",
                        fix=f'declare a complex type: Input("{source}", Tensor({shown}, dtype="{dtype}")), or save '
                        "the real and imaginary parts as a real array (np.stack([a.real, a.imag], axis=-1))")
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "biuf":
        _unknown(source, f"{path} holds {dtype} values, not numbers")
    if not shape:
        _unknown(source, f"{path} holds one value, not records along its first axis")
    records = shape[1:]
    if not records and dtype.kind in "biu":
        return Scalar("int64")  # one whole number per record: labels, as IDX labels are
    return Tensor(*records) if records else Tensor(1)  # one float: a target a Linear() can produce


def npy_header(path: Path) -> tuple[tuple[int, ...], Any, int]:
    """(shape, dtype, offset of the data) from a ``.npy`` header; reads a few hundred bytes, never the data."""
    from numpy.lib import format as npy

    with path.open("rb") as f:
        version = npy.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(f, max_header_size=_MAX_HEADER)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(f, max_header_size=_MAX_HEADER)
        else:  # 3.0 only differs for structured dtypes with non-Latin-1 names: not records anyway
            raise ValueError(f"format version {version[0]}.{version[1]} is not read here")
        return tuple(shape), dtype, f.tell()


def _unknown(source: str, why: str) -> NoReturn:
    raise SailError(f"the type of Input({source!r}) is unknown: {why}",
                    fix=f'declare it: Input("{source}", Tensor(1)) for one number per record, '
                    "Tensor(k) for k numbers, Scalar for labels")
