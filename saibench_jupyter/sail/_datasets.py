"""Dataset providers for ``Input("dataset:NAME")`` and ``Input("dataset:NAME/column")``.

A provider declares its columns' SAIL types (what discovery needs) and a loader (what
execution needs). Nothing is downloaded: providers read data that ships in a package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import SailError
from ._types import SailType, Scalar, Tensor, as_type


@dataclass(frozen=True)
class DatasetProvider:
    """A named dataset: ordered columns with their element types, and a loader.

    ``loader()`` returns a mapping from column name to a sequence (all of one length).
    """

    name: str
    columns: Mapping[str, SailType]
    loader: Callable[[], Mapping[str, Any]]
    description: str = ""


_PROVIDERS: dict[str, DatasetProvider] = {}


def register_dataset(name: str, columns: Mapping[str, Any], loader: Callable[[], Mapping[str, Any]],
                     description: str = "") -> DatasetProvider:
    """Register (or replace) the provider ``name``."""
    provider = DatasetProvider(name, {k: as_type(v) for k, v in columns.items()}, loader, description)
    _PROVIDERS[name] = provider
    return provider


def dataset_provider(name: str) -> DatasetProvider:
    """The provider called ``name``.

    Raises
    ------
    SailError
        When no provider has that name.
    """
    _register_builtins()
    if name not in _PROVIDERS:
        known = ", ".join(sorted(_PROVIDERS)) or "none"
        raise SailError(f"no dataset provider {name!r} (registered: {known})",
                        fix="use a registered name, or register_dataset(...) in support code")
    return _PROVIDERS[name]


def registered_datasets() -> dict[str, DatasetProvider]:
    """A copy of the providers registered now, by name (for :func:`restore_datasets`)."""
    _register_builtins()
    return dict(_PROVIDERS)


def restore_datasets(providers: Mapping[str, DatasetProvider]) -> None:
    """Make the registered providers ``providers`` again (what :func:`registered_datasets` returned)."""
    _PROVIDERS.clear()
    _PROVIDERS.update(providers)


def dataset_type(spec: str) -> SailType:
    """The element type of ``dataset:spec``: one column's type, or a tuple of all columns."""
    from ._symbolic import TupleType

    name, _, column = spec.partition("/")
    provider = dataset_provider(name)
    if column:
        if column not in provider.columns:
            raise SailError(f"dataset {name!r} has no column {column!r} "
                            f"(columns: {', '.join(provider.columns)})",
                            fix=f"use one of dataset:{name}/{'|'.join(provider.columns)}")
        return provider.columns[column]
    return TupleType(*provider.columns.values())


def _load_digits() -> Mapping[str, Any]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return {"images": d.images.astype("float32") / 16.0, "labels": d.target.astype("int64")}


def _register_builtins() -> None:
    if "digits" not in _PROVIDERS:
        register_dataset("digits", {"images": Tensor(8, 8), "labels": Scalar("int64")}, _load_digits,
                         "scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes)")
