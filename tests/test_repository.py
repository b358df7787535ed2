"""The module repository: adding sources, replacing and removing modules, events, loading."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import saibench_jupyter.examples
from saibench_jupyter.repository import Repository, RepositoryEvent
from saibench_jupyter.sail._decorators import ModuleKind
from saibench_jupyter.sail._dryrun import ProblemRun, dry_run
from saibench_jupyter.sail._errors import SailError, SailNameError, SailSyntaxError

PAPER = Path(saibench_jupyter.examples.__file__).parent / "paper"

TWO = textwrap.dedent(
    """
    @MetricDefinition
    def WallTime():
        return ElapsedMilliseconds()

    @HardwareDefinition
    def CPU():
        return Resources(cpus=1)
    """
)
WALLTIME_V2 = textwrap.dedent(
    """
    @MetricDefinition
    def WallTime():
        return TrainingMilliseconds()
    """
)
BROKEN = "@MetricDefinition\ndef WallTime(:\n    return 1\n"


def hardware(name: str) -> str:
    return f"@HardwareDefinition\ndef {name}():\n    return Resources(cpus=1)\n"


def recorded(repo: Repository) -> list[RepositoryEvent]:
    events: list[RepositoryEvent] = []
    repo.subscribe(events.append)
    return events


# -- adding sources ---------------------------------------------------------------------
def test_add_source_returns_records_with_kind_origin_and_line() -> None:
    records = Repository().add_source(TWO, origin="cell-1")
    assert [(r.name, r.kind, r.origin, r.line) for r in records] == [
        ("WallTime", ModuleKind.METRIC, "cell-1", 3),
        ("CPU", ModuleKind.HARDWARE, "cell-1", 7),
    ]


def test_add_source_records_carry_distinct_digests() -> None:
    wall, cpu = Repository().add_source(TWO, origin="cell-1")
    assert wall.digest and cpu.digest and wall.digest != cpu.digest


def test_added_modules_can_be_got_by_name() -> None:
    repo = Repository()
    (record,) = repo.add_source(WALLTIME_V2, origin="cell-1")
    assert repo.get("WallTime") is record
    assert "WallTime" in repo


def test_adding_emits_added_events() -> None:
    repo = Repository()
    events = recorded(repo)
    repo.add_source(TWO, origin="cell-1")
    assert [(e.action, e.name) for e in events] == [("added", "WallTime"), ("added", "CPU")]


def test_same_name_from_another_origin_replaces_the_module() -> None:
    repo = Repository()
    repo.add_source(TWO, origin="cell-1")
    events = recorded(repo)
    (new,) = repo.add_source(WALLTIME_V2, origin="cell-2")
    assert [(e.action, e.name) for e in events] == [("replaced", "WallTime")]
    assert events[0].record is new
    assert events[0].previous.origin == "cell-1"
    assert repo.get("WallTime").origin == "cell-2"


def test_replacing_keeps_one_module_per_name() -> None:
    repo = Repository()
    repo.add_source(TWO, origin="cell-1")
    repo.add_source(WALLTIME_V2, origin="cell-2")
    assert sorted(m.name for m in repo.modules()) == ["CPU", "WallTime"]


def test_re_adding_an_origin_removes_modules_it_no_longer_defines() -> None:
    repo = Repository()
    repo.add_source(TWO, origin="cell-1")
    events = recorded(repo)
    repo.add_source(WALLTIME_V2, origin="cell-1")
    assert [(e.action, e.name) for e in events] == [("removed", "CPU"), ("replaced", "WallTime")]
    assert "CPU" not in repo


def test_re_adding_an_origin_keeps_modules_another_origin_took_over() -> None:
    repo = Repository()
    repo.add_source(TWO, origin="cell-1")
    repo.add_source(hardware("CPU"), origin="cell-2")
    repo.add_source(WALLTIME_V2, origin="cell-1")
    assert repo.get("CPU").origin == "cell-2"


def test_identical_re_add_emits_no_event() -> None:
    repo = Repository()
    repo.add_source(TWO, origin="cell-1")
    events = recorded(repo)
    version = repo.version
    repo.add_source(TWO, origin="cell-1")
    assert events == []
    assert repo.version == version


def test_whitespace_only_edit_emits_no_event() -> None:
    repo = Repository()
    repo.add_source(TWO, origin="cell-1")
    events = recorded(repo)
    repo.add_source(TWO.replace("return Resources(cpus=1)", "return Resources( cpus=1 )  # one"),
                    origin="cell-1")
    assert events == []


def test_a_support_code_change_emits_one_support_event_naming_its_source() -> None:
    repo = Repository()
    events = recorded(repo)
    repo.add_source("SCALE = 2\n", origin="helpers")
    repo.add_source("SCALE = 2\n", origin="helpers")
    repo.add_source("SCALE = 3\n", origin="helpers")
    assert [(e.action, e.name, e.record, e.previous) for e in events] == [("support", "helpers", None, None)] * 2
    assert repo.version == 2 and "SCALE" in repo.support_names


def test_source_without_origin_gets_its_own_origin() -> None:
    repo = Repository()
    (a,) = repo.add_source(hardware("A"))
    (b,) = repo.add_source(hardware("B"))
    assert a.origin != b.origin
    assert sorted(m.name for m in repo.modules()) == ["A", "B"]


# -- failed parses --------------------------------------------------------------------
def test_failed_parse_keeps_the_previous_good_version() -> None:
    repo = Repository()
    (good,) = repo.add_source(WALLTIME_V2, origin="cell-1")
    with pytest.raises(SailSyntaxError, match=r"; the previous version of WallTime stays in use\n"):
        repo.add_source(BROKEN, origin="cell-1")
    assert repo.get("WallTime") is good


def test_failed_parse_emits_no_event() -> None:
    repo = Repository()
    repo.add_source(WALLTIME_V2, origin="cell-1")
    events = recorded(repo)
    with pytest.raises(SailSyntaxError):
        repo.add_source(BROKEN, origin="cell-1")
    assert events == []


def test_failed_parse_of_a_new_origin_says_nothing_was_registered() -> None:
    repo = Repository()
    with pytest.raises(SailSyntaxError, match=r"; nothing from this source was registered") as info:
        repo.add_source(BROKEN, origin="cell-9")
    assert info.value.location.line == 2
    assert len(repo) == 0


def test_errors_of_the_kept_version_quote_the_kept_code() -> None:
    repo = Repository()
    repo.add_source("@ProblemDefinition\ndef P():\n    return 1 / 0\n", origin="cell-1")
    with pytest.raises(SailSyntaxError):
        repo.add_source("@ProblemDefinition\ndef P():\n    return 1 / 0 +\n", origin="cell-1")
    module = repo.get("P")
    trace = dry_run(module, ProblemRun(module))
    assert "3 | return 1 / 0\n" in str(trace.error)


NET = textwrap.dedent(
    """
    import math

    def widen(n):
        return 2 * n

    @ModelDefinition
    def Net(task, inputType, outputType):
        return Pipeline([Linear(widen(4)), Tanh(), Linear(int(math.sqrt(4)))])
    """
)


def test_a_misspelt_name_is_refused_with_did_you_mean_and_the_previous_version_stays() -> None:
    repo = Repository()
    (good,) = repo.add_source(NET, origin="net.py")
    with pytest.raises(SailNameError, match=r"^unknown name 'Tanhh' \(did you mean 'Tanh'\?\); the previous "
                       r"version of Net stays in use\n  in module Net \(net.py, line 9\)\n"
                       r"    9 \| return Pipeline\(\[Linear\(widen\(4\)\), Tanhh\(\), .*\n.*\^\n  fix: write Tanh,") as info:
        repo.add_source(NET.replace("Tanh()", "Tanhh()"), origin="net.py")
    assert (info.value.location.line, info.value.location.col) == (9, 39)  # the caret is under Tanhh
    with pytest.raises(SailNameError, match=r"unknown name 'widn' \(did you mean 'widen'\?\)"):
        repo.add_source(NET.replace("Linear(widen(4))", "Linear(widn(4))"), origin="net.py")
    assert repo.get("Net") is good


def test_an_unknown_name_like_no_known_one_is_left_to_discovery() -> None:
    # helper_width may be support code of a source added later; discovery reports it if not.
    repo = Repository()
    (net,) = repo.add_source(NET.replace("widen(4)", "helper_width"), origin="net.py")
    assert "helper_width" in net.free_names
    # Names known elsewhere (a notebook's variables) are no misspellings of known ones.
    repo.add_source("def widen_all(n):\n    return n\n", origin="support.py")
    with pytest.raises(SailNameError, match=r"did you mean 'widen_all'"):
        repo.add_source(NET.replace("widen(4)", "widen_al(4)"), origin="net.py")
    repo.add_source(NET.replace("widen(4)", "widen_al(4)"), origin="net.py", known={"widen_al"})


def test_loading_a_folder_sees_the_helpers_of_every_file(tmp_path: Path) -> None:
    # a.py uses a helper b.py defines (loaded after it): not a typo of the other helper.
    (tmp_path / "a.py").write_text(NET.replace("widen(4)", "helper_depth"))
    (tmp_path / "b.py").write_text("helper_depth = 3\nhelper_width = 4\n")
    assert [m.name for m in Repository().load(tmp_path)] == ["Net"]
    (tmp_path / "b.py").write_text("helper_width = 4\n")
    with pytest.raises(SailError, match=r"(?s)1 of 2 files did not load.*unknown name 'helper_depth' \(did you "
                       r"mean 'helper_width'\?\); nothing from this source was registered"):
        Repository().load(tmp_path)


# -- reading and removing ---------------------------------------------------------------
def test_modules_filters_by_kind_name_or_enum() -> None:
    repo = Repository()
    repo.add_source(TWO, origin="cell-1")
    assert [m.name for m in repo.modules("hardware")] == ["CPU"]
    assert [m.name for m in repo.modules(ModuleKind.METRIC)] == ["WallTime"]
    assert repo.modules("model") == []


def test_modules_without_kind_lists_all_in_registration_order() -> None:
    repo = Repository()
    repo.add_source(TWO, origin="cell-1")
    repo.add_source(hardware("GPU"), origin="cell-2")
    assert [m.name for m in repo.modules()] == ["WallTime", "CPU", "GPU"]


def test_get_unknown_name_lists_the_known_names() -> None:
    repo = Repository()
    repo.add_source(TWO, origin="cell-1")
    with pytest.raises(KeyError, match=r"no module 'MLP' in the repository \(modules: WallTime, CPU\)"):
        repo.get("MLP")


def test_remove_returns_the_record_and_emits_removed() -> None:
    repo = Repository()
    repo.add_source(TWO, origin="cell-1")
    events = recorded(repo)
    record = repo.remove("CPU")
    assert record.name == "CPU"
    assert "CPU" not in repo
    assert [(e.action, e.name, e.previous) for e in events] == [("removed", "CPU", record)]


def test_remove_unknown_name_raises_key_error() -> None:
    with pytest.raises(KeyError, match=r"no module 'CPU' in the repository \(modules: none\)"):
        Repository().remove("CPU")


# -- listeners ------------------------------------------------------------------------------
def test_unsubscribed_listener_hears_nothing_more() -> None:
    repo = Repository()
    events: list[RepositoryEvent] = []
    unsubscribe = repo.subscribe(events.append)
    repo.add_source(hardware("A"), origin="a")
    unsubscribe()
    repo.add_source(hardware("B"), origin="b")
    assert [e.name for e in events] == ["A"]


def test_every_listener_hears_every_event() -> None:
    repo = Repository()
    first, second = recorded(repo), recorded(repo)
    repo.add_source(hardware("A"), origin="a")
    assert [e.name for e in first] == [e.name for e in second] == ["A"]


# -- loading -----------------------------------------------------------------------------
def test_load_a_file_uses_its_path_as_origin(tmp_path: Path) -> None:
    file = tmp_path / "hw.py"
    file.write_text(hardware("CPU"))
    (record,) = Repository().load(file)
    assert (record.name, record.origin, record.line) == ("CPU", str(file), 2)


def test_load_a_folder_recursively_skipping_hidden_and_pycache(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "a.py").write_text(hardware("A"))
    (tmp_path / "sub" / "b.py").write_text(hardware("B"))
    (tmp_path / ".hidden" / "h.py").write_text(hardware("Hidden"))
    (tmp_path / "__pycache__" / "c.py").write_text(hardware("Cached"))
    (tmp_path / "notes.txt").write_text(hardware("Text"))
    repo = Repository()
    records = repo.load(tmp_path)
    assert sorted(r.name for r in records) == ["A", "B"]


def test_load_the_paper_examples_by_package_name() -> None:
    repo = Repository()
    repo.load("saibench_jupyter.examples.paper")
    assert {"MNIST", "MLP", "CriticalLoss", "WallTime", "Concat", "PyTorch", "CPU"} <= {
        m.name for m in repo.modules()
    }
    assert repo.get("MNIST").origin == str(PAPER / "mnist.py")


def test_load_folder_with_a_bad_file_registers_the_good_ones_then_raises(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(hardware("A"))
    (tmp_path / "b_bad.py").write_text(BROKEN)
    (tmp_path / "c.py").write_text(hardware("C"))
    repo = Repository()
    with pytest.raises(SailError, match=r"^1 of 3 files did not load \(2 modules from the others are registered\)") as info:
        repo.load(tmp_path)
    assert f"in {tmp_path / 'b_bad.py'}, line 2" in str(info.value)
    assert sorted(m.name for m in repo.modules()) == ["A", "C"]


def test_load_of_something_that_is_nothing_raises_sail_error() -> None:
    with pytest.raises(SailError, match=r"^no_such_thing is not a file, a folder or an importable package"):
        Repository().load("no_such_thing")


def test_load_of_a_missing_file_raises_sail_error(tmp_path: Path) -> None:
    with pytest.raises(SailError, match=r"is not a file, a folder or an importable package"):
        Repository().load(tmp_path / "missing.py")


def test_a_replaced_module_keeps_its_place():
    repo = Repository()
    for name in ("A", "B", "C"):
        repo.add_source(f"@HardwareDefinition\ndef {name}():\n    return Resources()\n", origin=name)
    repo.add_source("@HardwareDefinition\ndef B():\n    return Resources(cpus=2)\n", origin="B")
    assert [m.name for m in repo.modules()] == ["A", "B", "C"]


@pytest.mark.parametrize("text, line, col", [
    ("x = 1\n# caf\ud800\n", 2, 5),
    ("@ModelDefinition\ndef M(task, i, o):\n    name = 'a\udcffb'\n    return Linear(3)\n", 3, 13),
])
def test_a_lone_surrogate_in_a_source_is_refused_at_its_line(text, line, col):
    with pytest.raises(SailSyntaxError, match=rf"a lone surrogate character \(\\u[0-9a-f]{{4}}\) at line {line}"
                                              r": a source must be valid Unicode text") as caught:
        Repository().add_source(text, origin="odd")
    assert (caught.value.location.line, caught.value.location.col) == (line, col)
    str(caught.value).encode("utf-8")  # it prints


def test_a_source_file_with_an_encoded_surrogate_is_refused_at_its_line(tmp_path):
    (tmp_path / "good.py").write_text("@HardwareDefinition\ndef One():\n    return Resources(cpus=1)\n")
    (tmp_path / "bad.py").write_bytes(b"x = 1\ny = '\xed\xa0\x80'\n")
    repo = Repository()
    with pytest.raises(SailError, match=r"bad.py is not UTF-8 text: invalid continuation byte \(byte 0xed\) "
                                        r"at line 2") as caught:
        repo.load(tmp_path)
    assert "1 of 2 files did not load" in str(caught.value)
    assert [m.name for m in repo] == ["One"]
