"""The live model of a run: model functions run for real, their graphs checked and lowered.

Discovery's graphs hold placeholders where a model wraps native code (``TorchModule(m)``
over support code); execution runs each model function again, with real support code,
for every task it solves, and checks the result with the conversions discovery
resolved. A sub-model slot is filled with the model discovery chose for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..backends import LoweredModel, ModelGraphs, lower
from ..sail import CheckedGraph, GraphError, ModelMeta, ModelRun, ModuleFailed, SailError, SailType, check, using
from ._convert import ChainBook
from ._execution_namespace import ExecutionNamespace, module_site

if TYPE_CHECKING:
    from ..planner import ModelChoice


class ModelBuildError(SailError):
    """A model function failed, or built a graph that does not check, at execution."""


def build_graphs(choice: ModelChoice, ns: ExecutionNamespace, chains: ChainBook, role: str = "model") -> ModelGraphs:
    """Run ``choice``'s model function for each of its tasks and check what it returns.

    Raises
    ------
    ModelBuildError
        Naming the model, its line and the task.
    """
    module = choice.module
    fn = ns.function(module)

    def convert(source: SailType, target: SailType) -> tuple[SailType, str]:
        chain = chains.resolve(source, target)
        return chain.output, chain.label

    graphs: dict[str, CheckedGraph] = {}
    for task in choice.tasks:
        ctx = ModelRun(module)
        try:
            with using(ctx):
                result = fn(task.kind, task.input, task.output, **dict(choice.params))
            meta = ctx.finish(result)
        except ModuleFailed as exc:
            raise ModelBuildError(f"model {module.name} declined task {task} at execution: {exc.reason}",
                                  module=module.name, location=module_site(exc, module),
                                  fix="a model must accept at execution what it accepted during discovery") from exc
        except SailError:
            raise
        except Exception as exc:
            raise ModelBuildError(f"model {module.name} raised {type(exc).__name__}: {exc} (task {task})",
                                  module=module.name, location=module_site(exc, module)) from exc
        graph = meta.graph if isinstance(meta, ModelMeta) else None
        try:
            graphs[task.kind] = check(graph, task.input, task.output, convert=convert)  # type: ignore[arg-type]
        except SailError as exc:
            raise ModelBuildError(f"model {module.name} built a graph that does not check for task {task}: "
                                  f"{exc.what}", module=module.name, location=exc.location or module.location,
                                  fix=exc.fix) from exc
    subs = {slot: build_graphs(sub, ns, chains, f"{role}/{slot}") for slot, sub in choice.submodels}
    return ModelGraphs(role, module.name, graphs, subs)


def build_model(choice: ModelChoice, ns: ExecutionNamespace, chains: ChainBook) -> LoweredModel:
    """The lowered model of a scenario's model choice."""
    graphs = build_graphs(choice, ns, chains)
    try:
        return lower(graphs, chains.resolve)
    except (ValueError, GraphError) as exc:
        raise ModelBuildError(f"model {choice.name} cannot be lowered: {exc}", module=choice.name,
                              location=choice.module.location,
                              fix="give every layer a known size (types with sizes, widths)") from exc


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and whichever of PyTorch is loaded (native models build with it)."""
    import random
    import sys

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch: Any = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
