"""The JupyterLab extension's insert-template cells: each registers through the real magics, and together
they form a runnable scenario (labextension/src/templates.json is the one source the TypeScript imports)."""

from __future__ import annotations

import json
from pathlib import Path

from saibench_jupyter.sail import ModuleKind
from saibench_jupyter.ui import notebook

TEMPLATES = Path(__file__).resolve().parents[1] / "labextension" / "src" / "templates.json"


def templates() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads(TEMPLATES.read_text(encoding="utf-8"))
    return data


def test_there_is_one_template_per_module_kind_and_each_starts_with_its_magic():
    found = templates()
    assert sorted(found) == sorted(k.value for k in ModuleKind)
    for kind, template in found.items():
        assert template["source"].startswith(f"%%{kind}\n"), kind
        assert template["label"] == kind.capitalize()


def test_each_template_registers_one_documented_module_of_its_kind(ip, capsys):
    for kind, template in templates().items():
        _, _, body = template["source"].partition("\n")
        ip.run_cell_magic(kind, "", body)
        out, err = capsys.readouterr()
        assert out.startswith("saibench: ") and "(new)" in out, (kind, out)
        assert err == "", (kind, err)  # no warning: no unknown name, nothing pods would miss
    listed = notebook(ip).modules()
    assert sorted(r.kind.value for r in listed) == sorted(templates())
    assert all(r.doc for r in listed)  # the sidebar shows the docstring on hover


def test_the_templates_together_discover_and_run_a_scenario(ip):
    for kind, template in templates().items():
        ip.run_cell_magic(kind, "", template["source"].partition("\n")[2])
    lattice = notebook(ip).lattice()
    assert [s.label for s in lattice.scenarios] == ["Doubling × Scaler(factor=1.9) × NumPy × OneCore",
                                                    "Doubling × Scaler(factor=2.0) × NumPy × OneCore"]
    assert not lattice.rejections
    assert lattice.converter_graph.has_edge("List[T]", "Tensor")  # the converter template is an edge
    run = ip.run_line_magic("sail", "run --executor inline")
    frame = run.wait().to_dataframe()
    errors = dict(zip(frame.label, frame.value))
    assert errors["Doubling × Scaler(factor=2.0) × NumPy × OneCore"] == 0.0
    assert errors["Doubling × Scaler(factor=1.9) × NumPy × OneCore"] > 0.0
