"""The model a run trained, kept on request: a predictor in the problem's own types.

``run_scenario(..., keep_model=True)`` keeps the run's trainer, holding the weights of
the final checkpoint of the last stage (those the metrics saw last), and wraps it in a
:class:`TrainedModel`. Predictions go through the same path as the run's tests
(records stacked as the backend batches them, then the backend's ``predict``), so
they are the numbers the metrics saw. Nothing is kept unless asked: a kept model holds
its weights, its native objects and the backend's cached inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..backends import Trainer
from ..sail import SailType, TaskSignature
from ._execution import collate


class TrainedModel:
    """A trained model as its problem's tasks see it: records of a task's input type in, predictions out.

    Made by :func:`~saibench_jupyter.runtime.run_scenario` with ``keep_model=True`` (as
    ``ScenarioResult.model``), or by an in-process ``run(..., executor="inline", keep_models=True)``.

    Parameters
    ----------
    trainer : Trainer
        The run's trainer, holding the trained weights.
    tasks : sequence of TaskSignature
        The model's tasks, in the order the problem declared them; the last is the default.
    label : str
        The scenario's label.

    Examples
    --------
    >>> result = run_scenario(scenario, keep_model=True)  # doctest: +SKIP
    >>> masks = result.model.predict(images)               # a batch of records  # doctest: +SKIP
    >>> mask = result.model(image)                         # one record  # doctest: +SKIP
    >>> result.model.native                                # the torch module, JAX params, estimator  # doctest: +SKIP
    """

    def __init__(self, trainer: Trainer, tasks: Sequence[TaskSignature], label: str) -> None:
        self._trainer = trainer
        self._tasks = {t.kind: t for t in tasks}
        self.label = label

    @property
    def tasks(self) -> dict[str, tuple[SailType, SailType]]:
        """Each task kind with its input and output types."""
        return {kind: (t.input, t.output) for kind, t in self._tasks.items()}

    @property
    def task(self) -> str:
        """The default task: the last the problem declared (the one trained last, whose epochs are the checkpoints)."""
        return list(self._tasks)[-1]

    @property
    def backend(self) -> str:
        """``torch``, ``jax`` or ``numpy``."""
        return self._trainer.backend

    @property
    def native(self) -> Any:
        """The trained model as its library holds it, or None where there is none.

        PyTorch: a ``TorchModule``'s own ``torch.nn.Module`` when it is the whole model, else
        a module holding every parameter (``.params``) and native module (``.natives``).
        JAX: the parameters (a dict of arrays by path). NumPy: the fitted estimator (a dict
        of them by path when there are several); None for a ``Solver``, which learns nothing.
        """
        return self._trainer.native()

    def predict(self, records: Iterable[Any], task: str | None = None) -> Any:
        """The predictions for a batch of records, as one NumPy array (a record per row).

        Parameters
        ----------
        records : iterable
            Records of the task's input type: a list of them, or an array whose first
            axis runs over records (``(n, 32, 32, 1)`` for ``Image(32, 32, 1)``).
        task : str, optional
            The task kind (see :attr:`tasks`); :attr:`task` by default.

        Raises
        ------
        KeyError
            For a task the model does not solve (the message lists those it does).
        ValueError
            For no records.
        """
        kind = self._kind(task)
        items = list(records)
        if not items:
            raise ValueError("predict() needs at least one record")
        return self._trainer.predict(kind, collate(items, self._trainer))

    def __call__(self, record: Any, task: str | None = None) -> Any:
        """The prediction for one record of the task's input type."""
        return self.predict([record], task)[0]

    def __getitem__(self, task: str) -> _TaskModel:
        """The predictor of one task: ``model["Segment"](image)``."""
        return _TaskModel(self, self._kind(task))

    def _kind(self, task: str | None) -> str:
        kind = self.task if task is None else task
        if kind not in self._tasks:
            raise KeyError(f"{self.label} solves no task {kind!r}; its tasks: {', '.join(self._tasks)}")
        return kind

    def __repr__(self) -> str:
        tasks = ", ".join(f"{k}: {t.input!r} → {t.output!r}" for k, t in self._tasks.items())
        return f"TrainedModel({self.label}; {tasks})"


class _TaskModel:
    """One task of a :class:`TrainedModel`: ``predict(records)`` and ``(record)``."""

    def __init__(self, model: TrainedModel, task: str) -> None:
        self.model = model
        self.task = task

    def predict(self, records: Iterable[Any]) -> Any:
        """The predictions for a batch of records (see :meth:`TrainedModel.predict`)."""
        return self.model.predict(records, self.task)

    def __call__(self, record: Any) -> Any:
        """The prediction for one record."""
        return self.model(record, self.task)

    def __repr__(self) -> str:
        return f"{self.model.label}[{self.task}]"

