"""Whether an interpreter meets a software module's requirements: pip (PEP 508), conda match specs, a Python version.

Requirements are checked against the installed distributions' metadata; nothing is
imported or run. A bare distribution name (the common case) is checked without
``packaging``, whose parser takes ~20 ms to import.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

#: A requirement that is a distribution name alone (PEP 508), met by any installed version.
_BARE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_CONDA = re.compile(r"^(?:[^:\s]+::)?(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*(?P<spec>.*)$")


def unmet(pip: Sequence[str] = (), conda: Sequence[str] = (), python: str | None = None) -> list[str]:
    """Why the current interpreter does not satisfy these requirements.

    Parameters
    ----------
    pip : sequence of str
        PEP 508 requirements (``"scipy>=1.11"``, ``"tomli; python_version < '3.11'"``).
    conda : sequence of str
        Conda match specs (``"numpy"``, ``"numpy=1.26"``, ``"conda-forge::ase"``), checked as
        the Python distributions of the same name.
    python : str, optional
        A version prefix (``"3.11"`` is met by 3.11.7, not by 3.1) or a specifier (``">=3.10"``).

    Returns
    -------
    list of str
        One line per unmet requirement; ``[]`` when the interpreter satisfies them all.

    Raises
    ------
    ValueError
        A requirement does not parse.
    """
    reasons = []
    for text in pip:
        if _BARE.fullmatch(text.strip()):  # "numpy": no need of packaging's parser (20 ms to import)
            reasons.append((text, _installed_reason(text.strip(), None)))
            continue
        req = pip_requirement(text)
        # Extras are not checked: the packages they add are requirements of their own.
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            reasons.append((text, _installed_reason(req.name, req.specifier)))
    for text in conda:
        name, spec = conda_requirement(text)
        why = python_reason(str(spec)) if name == "python" else _installed_reason(name, spec)
        reasons.append((f"conda {text}", why))
    reasons.append((f"python {python}", python_reason(python)))
    return [f"{what}: {why}" for what, why in reasons if why]


def pip_requirement(text: str) -> Any:
    """``text`` as a ``packaging`` requirement.

    Raises
    ------
    ValueError
        When it does not parse, with the fix.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(text)
    except InvalidRequirement as e:
        why = str(e).splitlines()[0]
        raise ValueError(f"pip requirement {text!r} does not parse ({why}); fix: write a PEP 508 requirement such as "
                         "'scipy>=1.11' or 'tomli; python_version < \"3.11\"'") from None


def conda_requirement(text: str) -> tuple[str, Any]:
    """``(name, SpecifierSet)`` of a conda match spec; a single ``=`` is a prefix match, as in conda."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    match = _CONDA.match(text.strip())
    spec = match["spec"].strip() if match else ""
    if spec[:1].isdigit() or (spec.startswith("=") and not spec.startswith("==")):
        version = (spec.lstrip("=").split("=")[0].split() or [""])[0].rstrip("*").rstrip(".")
        spec = f"=={version}.*"  # "=" alone leaves "==.*", which does not parse: an error below
    try:
        if match is None:
            raise InvalidSpecifier(text)
        return match["name"].lower(), SpecifierSet(spec.replace(" ", ""))
    except InvalidSpecifier:
        raise ValueError(f"conda requirement {text!r} does not parse; fix: write name, name=1.26, name>=1.2 or "
                         "channel::name") from None


def _installed_reason(name: str, specifier: Any) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version(name)
    except PackageNotFoundError:
        return "not installed"
    if specifier is None or specifier.contains(installed, prereleases=True):
        return ""
    return f"{name} {installed} is installed"


def python_reason(python: str | None) -> str:
    """Why the running Python is not ``python``: a version prefix (3.11 is 3.11.7, not 3.110) or a specifier."""
    import platform

    running, text = platform.python_version(), (python or "").strip()
    if not text:
        return ""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet  # 20 ms: not for "any Python"

    if text[:1] in "<>!~" or text.startswith("=="):
        try:
            return "" if SpecifierSet(text).contains(running, prereleases=True) else f"running Python {running}"
        except InvalidSpecifier:
            pass
    else:
        parts = text.lstrip("=").rstrip(".*").split(".")
        if all(p.isdigit() for p in parts):
            ok = [int(p) for p in parts] == list(sys.version_info[: len(parts)])
            return "" if ok else f"running Python {running}"
    raise ValueError(f"python requirement {python!r} does not parse; fix: write python='3.11' or python='>=3.10'")
