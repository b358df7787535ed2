"""The SAIL language reference (``docs/sail.md``): where it is, and a display of it for ``%sail help sail``.

A wheel ships it inside the package (``saibench_jupyter/docs/sail.md``, pyproject's
``force-include``), so users who installed from PyPI have it too; a source checkout
(an editable install) reads the repository's ``docs/sail.md``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def reference_path() -> Path:
    """The language reference: inside the installed package (a wheel), else in the source checkout.

    Raises
    ------
    FileNotFoundError
        When neither copy exists (a broken installation).
    """
    for candidate in (PACKAGE / "docs" / "sail.md", PACKAGE.parent / "docs" / "sail.md"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("the SAIL language reference is not installed: reinstall saibench-jupyter "
                            "(pip install saibench-jupyter), or read docs/sail.md in its repository")


class LanguageReference:
    """The reference as a display: Markdown in a notebook, its text in a terminal.

    Parameters
    ----------
    path : Path
        The Markdown file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _repr_markdown_(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def __repr__(self) -> str:
        return self._repr_markdown_()


def language_reference() -> LanguageReference:
    """The SAIL language reference, to display (``%sail help sail``).

    Raises
    ------
    FileNotFoundError
        When it is not installed.
    """
    return LanguageReference(reference_path())
