"""``Input(source, type)`` at execution time: lazy, re-iterable streams of typed records.

A :class:`DataStream` reads its source each time it is iterated, one record at a time
(IDX through ``np.memmap``, ``.npy`` with ``mmap_mode="r"``), and converts every record to
the element type: the declared one, else the one discovery gives (:func:`~saibench_jupyter.sail._dryrun.input_type`), so
the data agree with what the planner planned for. Nothing is ever downloaded.
"""

from __future__ import annotations

import glob
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..backends import pad_fields
from ..sail import (
    IMAGE_EXTENSIONS,
    AtomSet,
    DatasetProvider,
    SailError,
    SailType,
    Scalar,
    Tensor,
    TupleType,
    as_type,
    dataset_provider,
    input_type,
    unify,
)
from ..sail import Image as ImageType
from ._files import Records, csv_rows, first_frame, frames, idx, npy, read_image

#: Read with Pillow; ``.img`` and ``.msk`` (images to discovery) in whatever format Pillow sniffs.
SUPPORTED = ("MNIST IDX (.idx1-ubyte, .idx3-ubyte, also spelt -idx3-ubyte, optionally .gz), .npy, .csv, "
             "extended XYZ (.xyz, .atoms), images (" + ", ".join(IMAGE_EXTENSIONS) + ")")
UNKNOWN_FIX = f"use a supported format: {SUPPORTED}; or register a dataset provider"
NOT_FOUND_FIX = "put the file next to the SAIL source, pass an absolute path, or register a dataset provider"
_IDX = re.compile(r"[.-]idx\d-ubyte(\.gz)?$", re.IGNORECASE)
#: Loaded columns per dataset name: a provider's loader runs once per process.
_LOADED: dict[str, tuple[DatasetProvider, Any]] = {}


class DataStream:
    """A lazy, re-iterable stream of records: what ``Input(...)`` is when a problem runs.

    Parameters
    ----------
    source : str
        What the stream reads (errors name it).
    element : SailType
        The SAIL type of one record.
    records : callable
        Returns a fresh iterable of the records on every call.
    length : callable, optional
        The number of records without reading them; without it, ``len`` counts once.
    reopen : callable, optional
        The same source read as another element type (how ``.Image()`` re-reads files).
    xyz : callable, optional
        The source's first atomic configuration (what ``.XYZ()`` returns).
    """

    #: a list of streams is read as records of parallel columns (``RandomSplit([a, b], f)``)
    __sail_stream__ = True

    def __init__(self, source: str, element: SailType, records: Records, length: Callable[[], int] | None = None,
                 reopen: Callable[[SailType], DataStream] | None = None,
                 xyz: Callable[[], AtomSet] | None = None) -> None:
        self.source, self.element = source, element
        self._records, self._length, self._reopen, self._xyz = records, length, reopen, xyz
        self._count: int | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter(self._records())

    def __len__(self) -> int:
        if self._count is None:
            self._count = self._length() if self._length else sum(1 for _ in self._records())
        return self._count

    def __repr__(self) -> str:
        return f"<stream {self.source!r} of {self.element!r}>"

    def _map(self, element: SailType, f: Callable[[Any], Any]) -> DataStream:
        return DataStream(self.source, element, lambda: map(f, self._records()), lambda: len(self))

    def OneHot(self, t: Any) -> DataStream:
        """Integer labels as float32 one-hot vectors of type ``t``; on tuple records, the last column."""
        target = as_type(t)
        n = target.Size
        if not n:
            raise SailError(f"{self.source}: OneHot({target!r}) needs a known number of classes",
                            fix="give the size: .OneHot(Tensor(10))")
        el = self.element
        element = TupleType(*el.items[:-1], target) if isinstance(el, TupleType) else target

        def encode(label: Any) -> Any:
            import numpy as np

            value = np.asarray(label)
            x = float(value.reshape(-1)[0]) if value.size == 1 and value.dtype.kind in "biuf" else math.nan
            if not (x.is_integer() and 0 <= x < n):
                raise SailError(f"label {label} of {self.source} is outside the {n} classes of OneHot({target!r})",
                                fix=f"labels must be integers 0..{n - 1}: one-hot into more classes, or fix the data")
            out = np.zeros(n, np.float32)
            out[int(x)] = 1.0
            return out.reshape(target.dims if isinstance(target, Tensor) else (n,))

        return self._map(element, lambda r: (*r[:-1], encode(r[-1])) if isinstance(r, tuple) else encode(r))

    def XYZ(self) -> AtomSet:
        """The source read as one atomic configuration: the first frame of an (extended) XYZ file."""
        if self._xyz is None:
            raise SailError(f"{self.source} is not an XYZ source: .XYZ() reads atoms from .xyz files",
                            fix="write Input('molecule.xyz').XYZ()")
        return self._xyz()

    def Image(self) -> DataStream:
        """The records as float32 images (h, w, c): 2-D records get one channel."""
        if isinstance(self.element, TupleType):
            raise SailError(f"the records of {self.source} are tuples; .Image() reads one column",
                            fix="read one column, e.g. Input('dataset:NAME/images').Image()")
        if isinstance(self.element, ImageType):
            return self
        # Discovery's ``.Image()`` is ``Image()``, one channel: files are re-read as that.
        if self._reopen is not None:
            return self._reopen(ImageType())
        return self._map(ImageType(), lambda r: _convert(r, ImageType(), self.source))

    def batches(self, n: int) -> Iterator[Any]:
        """Batches of ``n`` records stacked on a new first axis: arrays, tuples of arrays per column,
        or for atoms a mapping of arrays per field (the backends' layout)."""
        if int(n) < 1:
            raise ValueError(f"batches({n}): a batch holds at least one record")
        it = iter(self)
        while chunk := list(itertools.islice(it, int(n))):
            yield stack_records(chunk)

    def __add__(self, other: Any) -> DataStream:
        if isinstance(other, int) and other == 0:
            return self
        if not isinstance(other, DataStream | list):
            return NotImplemented
        if isinstance(other, DataStream) and unify(self.element, other.element) is None:
            raise SailError(f"cannot concatenate {self!r} and {other!r}: their records differ in type",
                            fix="concatenate streams of one element type")
        return _concat(self, other, self.element)

    def __radd__(self, other: Any) -> DataStream:
        if isinstance(other, int) and other == 0:  # ``sum(streams)`` starts from 0
            return self
        return _concat(other, self, self.element) if isinstance(other, list) else NotImplemented


def _concat(a: Any, b: Any, element: SailType) -> DataStream:
    name = " + ".join(getattr(x, "source", f"[{len(x)} records]") for x in (a, b))
    return DataStream(name, element, lambda: itertools.chain(a, b), lambda: len(a) + len(b))


def stack_records(items: list[Any], float32: bool = False) -> Any:
    """Records as one batch on a new first axis: an array, a tuple of arrays per column, or for
    atoms a mapping of arrays per field (the backends' layout); ``float32`` casts floating arrays.

    Configurations of different sizes are padded to the largest, with a ``mask`` field
    (``backends.pad_fields``).
    """
    import numpy as np

    def cast(arr: Any) -> Any:
        return arr.astype(np.float32) if float32 and arr.dtype.kind == "f" and arr.dtype != np.float32 else arr

    first = items[0]
    if isinstance(first, tuple):
        return tuple(stack_records(list(col), float32) for col in zip(*items))
    if isinstance(first, AtomSet):
        keys = [k for k in first.fields if all(k in a.fields for a in items)]
        sizes = [len(a) for a in items]
        if len(set(sizes)) > 1:  # a ragged set: padded to the largest, with a mask
            padded = pad_fields(sizes, {k: [a.fields[k] for a in items] for k in keys})
            return {k: cast(v) for k, v in padded.items()}
        return {k: cast(np.stack([a.fields[k] for a in items])) for k in keys}
    return cast(np.stack([np.asarray(x) for x in items]))


def open_input(source: str, type: SailType | type[SailType] | None = None, search: Sequence[Path] = ()) -> DataStream:
    """The stream ``Input(source, type)`` gives at execution time.

    Parameters
    ----------
    source : str
        ``dataset:NAME`` (records are tuples of all columns), ``dataset:NAME/column``, a
        file, or a folder or glob pattern of images (``cells/*.png``: sorted by name).
    type : SailType, optional
        The declared element type: records are reshaped and cast to it (float32 for tensors
        without a dtype). IDX pixels keep their raw values (0..255, as float32); image files
        are scaled to [0, 1] and get the channel count of an ``Image`` type.
    search : sequence of Path
        Folders a relative path is looked up in (the SAIL sources'), before the current directory.

    Raises
    ------
    SailError
        For a missing file, an unknown format, records that do not fit the type (their shape,
        or complex or text data for a real type), or a file that cannot be read; each names
        the file and the fix.
    """
    src = str(source)
    if src.startswith("dataset:"):
        return _dataset(src, input_type(src, type))
    found = _resolve(src, search)  # first: a missing file is "no file", not "type unknown"
    return _file(src, found, input_type(src, type, search))


def _resolve(source: str, search: Sequence[Path]) -> Path | list[Path]:
    raw = Path(source).expanduser()
    bases: list[Path | None] = [] if raw.is_absolute() else [*map(Path, search), Path.cwd()]
    for base in [*bases] or [None]:
        path = raw if base is None else base / raw
        if any(c in source for c in "*?["):
            # root_dir: glob characters in the base folder's own name stay literal.
            matches = sorted(Path(p) if base is None else base / p for p in glob.glob(str(raw), root_dir=base))
            if matches:
                return matches
        elif path.is_dir():
            images = sorted(p for p in path.iterdir() if p.name.lower().endswith(IMAGE_EXTENSIONS))
            if not images:
                raise SailError(f"Input({source!r}): the folder {path} holds no images", fix=UNKNOWN_FIX)
            return images
        elif path.exists():
            return path
    raise SailError(f"Input({source!r}): no file {source!r} (looked in {', '.join(map(str, bases)) or raw.parent})",
                    fix=NOT_FOUND_FIX)


def _file(source: str, found: Path | list[Path], element: SailType) -> DataStream:
    import numpy as np

    paths = found if isinstance(found, list) else [found]
    name, shape, dtype, xyz = paths[0].name.lower(), None, None, None
    if isinstance(found, list) or name.endswith(IMAGE_EXTENSIONS):
        for p in paths:  # a glob may match other files
            if not p.name.lower().endswith(IMAGE_EXTENSIONS):
                raise SailError(f"cannot read {p}: unknown format {p.suffix!r}", fix=UNKNOWN_FIX)
        channels = element.channels if isinstance(element, ImageType) else None
        raw: Records = lambda: (read_image(p, channels) for p in paths)  # noqa: E731
        length: Callable[[], int] | None = paths.__len__
    elif _IDX.search(name) or name.endswith(".npy"):
        raw, count, shape, dtype = (idx if _IDX.search(name) else npy)(paths[0])
        length = lambda: count  # noqa: E731
    elif name.endswith(".csv"):
        raw, length = (lambda: csv_rows(paths[0])), None
    elif name.endswith((".xyz", ".atoms")):
        raw, length, xyz = (lambda: frames(paths[0])), None, (lambda: first_frame(paths[0]))
    else:
        raise SailError(f"cannot read {paths[0]}: unknown format {paths[0].suffix!r}", fix=UNKNOWN_FIX)
    if shape is not None:
        # The header tells the record shape and dtype: a type that does not fit them (a
        # shape, complex numbers for a real type, text for numbers) fails at Input(...).
        _convert(np.zeros(shape, dtype), element, source)
    return DataStream(source, element, lambda: (_convert(r, element, source) for r in raw()), length,
                      lambda t: _file(source, found, t), xyz)


def _convert(record: Any, t: SailType, source: str) -> Any:
    """One record as a value of ``t``: tensors reshaped and cast, scalars cast, images (h, w, c)."""
    import numpy as np

    if isinstance(t, TupleType) and isinstance(record, tuple) and len(record) == len(t.items):
        return tuple(_convert(r, i, source) for r, i in zip(record, t.items))
    if not isinstance(t, Tensor | Scalar | ImageType):
        return record  # atoms, collections, Any: as the reader gives them
    arr = None if isinstance(record, tuple | AtomSet) else np.asarray(record)
    dims = None if arr is None else _fit(arr.shape, t)
    if arr is None or dims is None:
        what = f"shape {arr.shape}" if arr is not None else \
            f"{len(record)} columns" if isinstance(record, tuple) else f"a {type(record).__name__}"
        raise SailError(f"a record of {source} has {what}, which does not fit {t!r}",
                        fix="declare the type the records have in Input(source, type), or fix the data")
    dtype = t.dtype if isinstance(t, Tensor | Scalar) else None
    dtype = dtype or (None if isinstance(t, Scalar) else "float32")  # a bare Scalar keeps the data's dtype
    if dtype is None:
        return arr.reshape(())[()]
    if arr.dtype.kind == "c" and np.dtype(dtype).kind != "c":
        raise SailError(
            f"{source} holds complex numbers ({arr.dtype}), and {t!r} is real ({dtype}): reading it as declared "
            "would drop the imaginary parts",
            fix=f"declare a complex type, e.g. Input({source!r}, Tensor(..., dtype=\"complex64\")), or save the "
            "real and imaginary parts as a real array (np.stack([a.real, a.imag], axis=-1))")
    try:
        if isinstance(t, Scalar):
            return np.dtype(dtype).type(arr.reshape(())[()])
        return np.array(arr.reshape(dims), dtype=dtype)  # a copy: records do not pin the memmap
    except (ValueError, TypeError) as exc:  # text that is not a number, structured records...
        raise SailError(f"a record of {source} ({arr.dtype}) cannot be read as {t!r}: {exc}",
                        fix="save numbers (e.g. np.save(path, np.asarray(values, dtype=np.float32))), "
                        "or declare the type the records have in Input(source, type)") from None


def _fit(shape: tuple[int, ...], t: SailType) -> tuple[int, ...] | None:
    """The shape a record of ``shape`` takes as ``t`` (one unknown size may absorb the rest), or None."""
    size = math.prod(shape)
    if isinstance(t, Scalar):
        return () if size == 1 else None
    if isinstance(t, ImageType):
        shape = (*shape, 1) if len(shape) == 2 else shape
        return shape if len(shape) == 3 and all(d is None or d == s for s, d in zip(shape, t.dims)) else None
    dims = t.dims or (None,)
    if len(shape) == len(dims) and all(d is None or d == s for s, d in zip(shape, dims)):
        return shape
    known, free = math.prod(d for d in dims if d is not None), sum(d is None for d in dims)
    if free > 1 or not known or size % known or (free == 0 and size != known):
        return None
    return tuple(size // known if d is None else d for d in dims)


def _loaded(name: str, provider: DatasetProvider) -> Any:
    """The columns ``provider`` loads, loaded once per process (a re-registered provider loads anew)."""
    cached = _LOADED.get(name)
    if cached is None or cached[0] is not provider:
        _LOADED[name] = cached = (provider, provider.loader())
    return cached[1]


def preload_datasets(sources: Iterable[str]) -> list[str]:
    """Load now the datasets that the ``dataset:`` sources among ``sources`` name.

    A run in this process, or in a process forked from it, then finds them loaded. A warm
    worker does this with a plan's inputs before it forks the plan's pods.

    Returns
    -------
    list of str
        The names of the datasets now loaded.

    Raises
    ------
    SailError
        When no provider has such a name; the loader's own exception when it fails.
    """
    names = dict.fromkeys(s[len("dataset:"):].partition("/")[0] for s in sources if s.startswith("dataset:"))
    for name in names:
        _loaded(name, dataset_provider(name))
    return list(names)


def _dataset(source: str, element: SailType) -> DataStream:
    name, _, column = source[len("dataset:"):].partition("/")
    provider = dataset_provider(name)
    names = [column] if column else list(provider.columns)

    def columns() -> list[Any]:
        data = _loaded(name, provider)
        if any(c not in data for c in names) or len({len(data[c]) for c in names}) > 1:
            raise SailError(f"the loader of dataset {name!r} returned columns {list(data)} of lengths "
                            f"{[len(v) for v in data.values()]}", fix=f"return the columns {names}, of one length")
        return [data[c] for c in names]

    def raw() -> Iterable[Any]:
        return columns()[0] if column else zip(*columns())

    return DataStream(source, element, lambda: (_convert(r, element, source) for r in raw()),
                      lambda: len(columns()[0]), lambda t: _dataset(source, t))
