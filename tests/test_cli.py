"""The ``saibench`` command in-process: what ``saibench discover`` prints, and why."""

from __future__ import annotations

import pytest
from pods_helpers import DOUBLING, write_data

from saibench_jupyter.cli import main


def discover(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    # --hardware CPU: the paper's GPU module is refused or not depending on the machine.
    assert main(["discover", "--hardware", "CPU", *args]) == 0
    return capsys.readouterr().out


def test_discover_hides_expected_non_pairings_and_says_why_md_and_segmentation_have_no_scenario(capsys):
    out = discover(capsys)
    lines = out.splitlines()
    assert lines[0].startswith("8 scenarios, 2 rejected, 21 expected non-pairings (hidden; --all shows them) (")
    assert [line.split(" (")[0] for line in lines if line.startswith("  ✗")] == [
        "  ✗ model PermutationInvariantModel for problem MDSimulation: no model solves Require(Model, Predict, Atom, "
        "Scalar('float32'))",
        "  ✗ model PretrainSegmentModel for problem ElectronMicroscopySegmentation: no model solves "
        "Require(Model, Embedding, Image(?, ?, channels=1), Tensor(?))"]
    # The modules made for other problems are named as such in one line per problem, not listed as failures.
    notes = out.split("no scenario for 2 problems:\n")[1].splitlines()
    assert notes[0].startswith("  MDSimulation: model PermutationInvariantModel: no model solves Require(Model, "
                               "Predict, Atom, Scalar('float32')) — the others are expected non-pairings (software "
                               "PyTorch, JAX; model MLP, PretrainSegmentModel, ConvEncoder, DenseDecoder; metric "
                               "CriticalLoss; ranking Dominates)")
    assert notes[1].startswith("  ElectronMicroscopySegmentation: model PretrainSegmentModel: no model solves")


def test_discover_all_lists_the_expected_non_pairings_once_each(capsys):
    out = discover(capsys, "--all")
    assert out.splitlines()[0].startswith("8 scenarios, 2 rejected, 21 expected non-pairings (")
    expected = [line for line in out.splitlines() if line.startswith("  · ")]
    assert len(expected) == len(set(expected)) == 21
    assert ("  · model MLP for problem MDSimulation: don't know how to solve (" in out
            and "  · metric CriticalLoss for problem MDSimulation: reads Test.Classify, but the problem has "
                "Test.Compare (" in out)
    assert "  · software TensorFlow for every problem, hardware CPU(threads=1): no TensorFlow backend" in out


def test_discover_json_marks_expected_non_pairings(capsys):
    import json

    data = json.loads(discover(capsys, "--json"))
    flags = {(r["kind"], r["module"], r["context"].get("problem")): r["expected"] for r in data["rejections"]}
    assert flags[("model", "MLP", "MDSimulation")] is True
    assert flags[("model", "PermutationInvariantModel", "MDSimulation")] is False


def test_run_forks_warm_pods_unless_told_otherwise(tmp_path, monkeypatch, capsys):
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(DOUBLING), "--param", "Doubler.mode=['ok']", "--store", "cli.db", "--jobs", "1"]) == 0
    captured = capsys.readouterr()
    assert "saibench: 1 pods to run (warm, 1 at a time)" in captured.err
    assert "Results(1 scenario, 1 pod: 1 ok; cli.db)" in captured.out


def test_run_reports_failures_without_importing_pandas(tmp_path):
    # pandas takes about a third of a second to import: a run that only prints how it went must not pay it.
    import re
    import subprocess
    import sys

    write_data(tmp_path)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "saibench_jupyter.cli", "run", str(DOUBLING),
                           "--param", "Doubler.mode=['ok','raise']", "--store", "cli.db"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]  # one pod failed
    assert done.stdout.splitlines() == [
        "Results(2 scenarios, 2 pods: 1 ok, 1 failed; cli.db)",
        "  ✗ Doubling × Doubler(mode='raise') × NumPy × OneCore r0 (error): RuntimeError: the solver blew up"]
    imported = re.findall(r"^import time:\s+\d+ \|\s+\d+ \| *(\S+)$", done.stderr, re.MULTILINE)
    assert {"saibench_jupyter.pods", "sqlite3"} <= set(imported)  # -X importtime listed the imports
    assert not [name for name in imported if name == "pandas" or name.startswith("pandas.")]


@pytest.mark.parametrize(("argv", "message"), [
    (["--executor", "nope"], "saibench: no executor 'nope' (known: dask, inline, papermill, subprocess, warm)"),
    (["--jobs", "-1"], "saibench: jobs=-1: run at least one pod at a time"),
])
def test_run_refuses_an_executor_it_cannot_make_before_it_discovers(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(DOUBLING), "--store", "cli.db", *argv]) == 2
    assert capsys.readouterr().err.startswith(message)
    assert not (tmp_path / "cli.db").exists()


GPU_HARDWARE = '''
from saibench_jupyter.sail import *

@HardwareDefinition
def OneGPU():
    return Resources(cpus=1, device="cuda")
'''


def test_run_on_a_dask_scheduler_rejects_hardware_no_worker_offers(tmp_path, monkeypatch, capsys):
    distributed = pytest.importorskip("distributed")
    write_data(tmp_path)
    (tmp_path / "gpu.py").write_text(GPU_HARDWARE)
    monkeypatch.chdir(tmp_path)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster:
        address = cluster.scheduler_address
        assert main(["run", str(DOUBLING), str(tmp_path / "gpu.py"), "--param", "Doubler.mode=['ok']",
                     "--store", "cli.db", "--executor", "dask", "--scheduler", address]) == 0
        link = cluster.dashboard_link
    captured = capsys.readouterr()
    assert "saibench: 1 pods to run (dask, " in captured.err
    assert f"saibench: the Dask dashboard: {link}\n" in captured.err
    assert (f"saibench: ✗ hardware OneGPU for every problem: asks for 1 CUDA device(s), but none is visible on any "
            f"worker of the Dask cluster at {address}") in captured.err
    assert "Results(1 scenario, 1 pod: 1 ok; cli.db)" in captured.out


def test_run_on_an_unreachable_dask_scheduler_says_so_before_it_discovers(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed")
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(DOUBLING), "--store", "cli.db", "--executor", "dask",
                 "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    assert capsys.readouterr().err.startswith(f"saibench: the Dask scheduler at tcp://127.0.0.1:{port} did not "
                                              "answer within 5 s")
    assert not (tmp_path / "cli.db").exists()


def test_run_refuses_a_scheduler_without_the_dask_executor(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(DOUBLING), "--store", "cli.db", "--executor", "subprocess",
                 "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    assert capsys.readouterr().err.startswith("saibench: scheduler='tcp://127.0.0.1:8786' is for executor='dask' or "
                                              "'papermill', not 'subprocess'")


def test_run_passes_the_papermill_options_given_and_names_an_option_the_executor_does_not_take(tmp_path, monkeypatch,
                                                                                              capsys):
    from saibench_jupyter import pods

    made = []

    def make_executor(executor, jobs=None, *, scheduler=None, options=None):
        made.append((executor, options))
        unknown = [name for name in options or {} if executor != "papermill"]
        if unknown:  # as the executors say it; the token's value must not come back even if an error held it
            raise ValueError(f"executor {executor!r} takes no option {', '.join(unknown)} (it takes none; token "
                             f"{options['token']}); fix: drop it, or --executor papermill")
        raise KeyError("stop here")

    monkeypatch.setattr(pods, "make_executor", make_executor)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(DOUBLING), "--executor", "warm", "--gateway", "http://gpu:8888", "--token", "s3cr3t"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("saibench: executor 'warm' takes no option gateway, token (it takes none; token ***); "
                          "fix: drop it, or --executor papermill")
    assert "s3cr3t" not in err
    assert main(["run", str(DOUBLING), "--executor", "papermill", "--kernel", "py311",
                 "--output-notebooks", "s3://bucket/runs/"]) == 2
    assert made[-1] == ("papermill", {"kernel": "py311", "output": "s3://bucket/runs/"})  # only those given
    assert main(["run", str(DOUBLING), "--executor", "subprocess"]) == 2
    assert made[-1] == ("subprocess", None)
    assert not (tmp_path / "saibench.db").exists()


def test_run_help_lists_the_papermill_executor_and_its_options(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "papermill (each pod runs as a notebook, which is kept)" in out
    assert all(f"--{flag}" in out for flag in ("gateway URL", "token TOKEN", "kernel NAME", "output-notebooks LOCATION"))
