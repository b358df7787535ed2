"""Whether this interpreter meets a software module's pip, conda and Python requirements."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from saibench_jupyter.pods import unmet

RUNNING = platform.python_version()
MAJOR_MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"


def np_major_minor() -> str:
    import numpy

    return ".".join(numpy.__version__.split(".")[:2])


def test_unmet_is_empty_for_met_requirements():
    assert unmet(["numpy", "numpy>=1.0", 'numpy; python_version < "3"', "saibench-no-such-pkg; sys_platform == 'x'"]) == []
    assert unmet(conda=["numpy", "numpy>=1.2", "conda-forge::numpy", f"numpy={np_major_minor()}"]) == []
    assert unmet(python=MAJOR_MINOR) == []
    assert unmet(python=RUNNING) == []
    assert unmet(python=str(sys.version_info.major)) == []
    assert unmet(python=">=3.10") == []


def test_unmet_names_each_requirement_and_the_installed_version():
    import numpy

    reasons = unmet(["numpy<1.0", "saibench-no-such-pkg"], ["numpy=0.1"], "2.7")
    assert reasons == [f"numpy<1.0: numpy {numpy.__version__} is installed",
                       "saibench-no-such-pkg: not installed",
                       f"conda numpy=0.1: numpy {numpy.__version__} is installed",
                       f"python 2.7: running Python {RUNNING}"]


def test_python_is_a_version_prefix_not_a_string_prefix():
    assert unmet(python="3.1") == [f"python 3.1: running Python {RUNNING}"]  # 3.1 is not 3.11
    assert unmet(python=f"{MAJOR_MINOR}.999") != []


def test_malformed_requirements_raise_with_a_fix():
    with pytest.raises(ValueError, match=r"pip requirement 'numpy>>1' does not parse .*fix: write a PEP 508"):
        unmet(["numpy>>1"])
    with pytest.raises(ValueError, match=r"conda requirement 'numpy=' does not parse; fix: write name, name=1.26"):
        unmet(conda=["numpy="])
    with pytest.raises(ValueError, match=r"python requirement '3.x' does not parse; fix: write python='3.11'"):
        unmet(python="3.x")


def test_bare_names_are_checked_without_importing_packaging():
    # packaging's parser takes ~20 ms to import: every `saibench run` checks its software's requirements.
    code = ("import sys; from saibench_jupyter.pods import unmet; "
            "print(unmet(['numpy', 'saibench-no-such-pkg']), sorted(m for m in sys.modules if m.startswith('packaging')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "['saibench-no-such-pkg: not installed'] []", done.stderr[-2000:]
