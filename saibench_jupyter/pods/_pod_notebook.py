"""The pod notebook: a BenchPod written as a small notebook a scientist can read, share and run again.

:func:`pod_notebook` writes it from a pod spec: a title, a ``parameters`` cell (the spec
without its sources, so Papermill can set any field), a setup cell, one cell per source the
plan needs, written as the user wrote it (``%%model`` ...; ``%%sail`` for support code and
files that hold several kinds), the run, the pod's work–precision chart and its metrics.
``papermill pod.ipynb out.ipynb`` runs it again anywhere SAIBench is installed; the
``papermill`` executor runs it with ``events=True``, so its events also reach the controller.
"""

from __future__ import annotations

import json
import os
import pprint
import re
from collections.abc import Mapping
from typing import Any

from ._spec import PodSpec

#: The setup cell: the extension, and the pod made from the parameters (its limits set, ``started`` reported).
SETUP = """%load_ext saibench_jupyter
from saibench_jupyter.pods import KernelPod
from saibench_jupyter.ui import notebook, plot_work_precision

bench = KernelPod(identity, repeat, plan, settings=settings, seed=seed, limits=limits, workdir=workdir,
                  folders=folders, environment=environment, events=events)"""
#: The cell magics, by module kind (a source holding modules of several kinds is a ``%%sail`` cell).
MAGICS = ("problem", "model", "metric", "converter", "software", "hardware", "ranking")


def pod_notebook(spec: PodSpec) -> Any:
    """The notebook of ``spec`` (an ``nbformat`` v4 notebook, not written anywhere).

    Every source that has support code or holds a module the plan names becomes one code
    cell, in the order of the spec's sources (the order their support code runs in).
    """
    import nbformat.v4 as v4

    cells = [v4.new_markdown_cell(_title(spec)),
             v4.new_code_cell(_parameters(spec), metadata={"tags": ["parameters"]}),
             v4.new_code_cell(SETUP),
             v4.new_markdown_cell("## The modules\n\nThe sources the scenario uses, as they were when the pod was "
                                  "planned. Edit a cell and run the notebook again to try a change: the run below "
                                  "refuses modules that are not the ones the plan was made with.")]
    for origin, digest in spec.sources:
        cell = _source_cell(origin, spec.texts[digest], spec.plan["modules"])
        if cell is not None:
            cells.append(v4.new_code_cell(cell, metadata={"saibench": {"origin": origin}}))
    cells += [
        v4.new_markdown_cell("## The run\n\nThe plan bound to the modules above, run with the pod's settings, seed "
                             "and limits. Its results go to this notebook's own store (`result`)."),
        v4.new_code_cell("result = bench.run(notebook().repository)\nresult"),
        v4.new_markdown_cell("## Work–precision\n\nEach checkpoint of this pod; `%sail plot` in the benchmark's "
                             "notebook draws it beside the other scenarios."),
        v4.new_code_cell("plot_work_precision(result)"),
        v4.new_markdown_cell("## Metrics"),
        v4.new_code_cell("bench.metrics_table()"),
    ]
    nb = v4.new_notebook(cells=cells)
    # Papermill needs the language; `papermill pod.ipynb out.ipynb` elsewhere starts the usual Python kernel.
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["saibench"] = {"pod": spec.pod, "identity": spec.identity, "repeat": spec.repeat,
                               "scenario": spec.scenario}
    return nb


def _title(spec: PodSpec) -> str:
    m = spec.modules
    params = "".join(f"\n| `{k}` | `{v!r:.80}` |" for k, v in sorted(spec.params.items()))
    sub = "".join(f", {role}: **{name}**" for role, name in sorted(m["submodels"].items()))
    return (f"# {spec.label}\n\nBenchPod `{spec.pod}` (repeat {spec.repeat}, seed {spec.seed}): problem "
            f"**{m['problem']}**, model **{m['model']}**{sub}, software **{m['software']}**, hardware "
            f"**{m['hardware']}**; metrics {', '.join(m['metrics']) or 'none'}.\n\n"
            + (f"| parameter | value |\n|---|---|{params}\n\n" if params else "")
            + "SAIBench wrote this notebook from the pod's spec. Run it again with "
              "`papermill pod.ipynb out.ipynb` wherever `saibench-jupyter` is installed.")


def _parameters(spec: PodSpec) -> str:
    """The ``parameters`` cell: the spec's fields as Python literals (its sources are the cells below)."""
    data = json.loads(spec.to_json())  # plain JSON values: their repr is Python that reads them back
    fields = {name: data[name] for name in ("identity", "repeat", "seed", "settings", "limits", "workdir",
                                            "environment", "plan")}
    # Relative inputs are found next to the source files too, as they were where the pod was planned.
    fields["folders"] = list(dict.fromkeys(os.path.dirname(os.path.abspath(o)) for o, _ in spec.sources
                                           if os.path.isfile(o)))
    lines = ["# The pod's spec (its sources are the cells below). Papermill may set any of these."]
    lines += [f"{name} = {pprint.pformat(value, width=110, sort_dicts=False)}" for name, value in fields.items()]
    if re.search(r"\b(nan|inf)\b", "\n".join(lines[1:])):
        lines.insert(1, "from math import inf, nan")
    lines.append("events = False  # True: also send the pod's events to the SAIBench run executing this notebook")
    return "\n".join(lines)


def _source_cell(origin: str, text: str, planned: Mapping[str, str]) -> str | None:
    """The cell of one source: ``%%kind`` and its text; None when the plan needs nothing of it."""
    from ..sail import parse

    parsed = parse(text, origin)
    if not parsed.support.strip() and not any(m.name in planned for m in parsed.modules):
        return None
    # A notebook cell's source as registered: blank lines and a "# %%kind" comment stand in for what
    # was above its body. The cell shows the body again under the magic it had.
    cell = re.match(r"\A\n*# %%(\w+)\n", text)
    if cell is not None and cell.group(1) in (*MAGICS, "sail"):
        return f"%%{cell.group(1)}\n{text[cell.end():].rstrip()}\n"
    kinds = {m.kind.value for m in parsed.modules}
    magic = kinds.pop() if len(kinds) == 1 and not parsed.support.strip() else "sail"
    return f"%%{magic}\n# from {origin}\n{text.rstrip()}\n"
