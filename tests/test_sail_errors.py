"""Where SAIL code raised: the frames of a traceback, and which source and line they run."""

from __future__ import annotations

from saibench_jupyter.sail import Location, deepest_line, source_origin, traceback_frames, traceback_line
from saibench_jupyter.sail._errors import source_filename
from saibench_jupyter.sail._primitives import caller_location


def _raised(code: str, origin: str) -> BaseException:
    namespace: dict[str, object] = {"caller_location": caller_location}
    try:
        exec(compile(code, source_filename(origin), "exec"), namespace)
    except Exception as exc:
        return exc
    raise AssertionError("the code did not raise")


CODE = "def inner():\n    raise ValueError('x')\n\ndef outer():\n    inner()\n\nouter()\n"


def test_traceback_frames_are_outermost_first() -> None:
    exc = _raised(CODE, "cell 1")
    assert [line for name, line in traceback_frames(exc) if name == "<sail cell 1>"] == [7, 5, 2]
    assert traceback_frames(exc)[0][0] == __file__


def test_deepest_line_is_the_innermost_frame_of_the_file_and_zero_when_absent() -> None:
    exc = _raised(CODE, "cell 1")
    assert deepest_line(exc, "<sail cell 1>") == 2
    assert traceback_line(exc, "cell 1") == 2
    assert traceback_line(exc, "cell 2") == 0
    assert traceback_line(ValueError("never raised"), "cell 1") == 0


def test_source_origin_inverts_source_filename() -> None:
    assert source_origin(source_filename("models.py")) == "models.py"
    assert source_origin(__file__) is None


def test_caller_location_is_the_sail_line_that_called() -> None:
    namespace: dict[str, object] = {"caller_location": caller_location}
    exec(compile("def f():\n    return caller_location(1)\n\nwhere = f()\n", source_filename("cell 3"), "exec"),
         namespace)
    assert namespace["where"] == Location("cell 3", 2)
