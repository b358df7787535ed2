# ruff: noqa: F403, F405  (SAIL sources take the language's names from the star import, as sail_modules do)
"""Least squares as SAIL modules: the SAIBench side of ``benchmarks/vs_benchopt.py``.

The same workload as the benchopt benchmark in ``benchmarks/benchopt_lsq/``, through the
same numerics (its ``benchmark_utils`` package, which must be importable: run with
``PYTHONPATH=benchmarks/benchopt_lsq``, as the comparison script does):

* ``LeastSquares(kind, n_samples)``: one problem instance ``make_data(kind, n, n // 10)``,
  kinds ``gaussian`` and ``correlated``, 500 × 50 and 2000 × 200 (benchopt's datasets). Its
  test record is the system ``[X | y]`` (a ``Tensor(n, p + 1)``, float64) with the
  coefficients that generated it as the expected answer;
* one ``Solver`` model per solver, returning β from ``benchmark_utils.solve``:
  ``NormalEquations``, ``Lstsq``, ``QR`` (one point each), and ``GradientDescent``,
  ``ConjugateGradient``: one run of ``max_iter`` = 128 iterations that reports the iterate
  after each one through its ``checkpoint`` (benchopt's "callback" sampling); with the
  models' default ``checkpoint_spacing="geometric"`` the curve's points are iterations
  1, 2, 4, ..., 128 (``--set checkpoint_spacing=1`` for every iteration, up to the
  ``checkpoints`` cap of 50 per run);
* ``GradientDescentPerBudget``, ``ConjugateGradientPerBudget``: the same solvers restarted
  for each ``max_iter`` = 0, 1, 2, 4, ..., 128 (the counts benchopt's ``--max-runs 8``
  visits with the solvers' doubling ``get_next``), one scenario per point: what
  ``benchmarks/vs_benchopt.py`` compares with benchopt's own per-budget runs;
* ``LSQObjective``: 0.5 ‖y − Xβ‖² / n (benchopt's ``objective_value``), ``LSQCoefficientError``
  ‖β − w‖ / ‖w‖, and the solver's time as the work axis.

Both modes give the same values at the same iteration counts (the k-th checkpoint is what
``max_iter=k`` returns); the callback mode runs each solver once per curve, and its time
axis is the solver's time up to each iteration within that one run.

In per-budget mode one benchopt (dataset, solver) combination is a family of scenarios
here, and each point of its curve one scenario, run as its own isolated pod.
"""

import benchmark_utils as lsq
import numpy as np

from saibench_jupyter.sail import *
from saibench_jupyter.sail import register_dataset


def lsq_split(system):
    """``[X | y]`` back into ``X`` and ``y``, contiguous, as ``make_data`` gave them (same arithmetic in BLAS)."""
    system = np.asarray(system, np.float64)
    return np.ascontiguousarray(system[:, :-1]), np.ascontiguousarray(system[:, -1])


def lsq_solve(method, system, max_iter=0, checkpoint=None):
    """``benchmark_utils.solve`` on ``[X | y]``; ``checkpoint`` (SAIBench's) is told each iterate."""
    return lsq.solve(method, *lsq_split(system), max_iter, checkpoint)


def _lsq_rows(kind, n, p):
    def rows():
        X, y, w = lsq.make_data(kind, n, p)
        return {"system": [np.hstack([X, y[:, None]])], "w": [w]}
    return rows


for _kind in lsq.KINDS:
    for _n, _p in lsq.SIZES:
        register_dataset(f"lsq_{_kind}_{_n}",
                         {"system": Tensor(_n, _p + 1, dtype="float64"), "w": Tensor(_p, dtype="float64")},
                         _lsq_rows(_kind, _n, _p), f"one least-squares system [X | y], {_kind} design, {_n} × {_p}")


@ProblemDefinition
def LeastSquares(kind, n_samples):
    """min_β 0.5 ‖y − Xβ‖² / n on a generated design: ``kind`` gaussian or correlated, n × n/10."""
    Suggest(kind, "gaussian", "correlated")
    Suggest(n_samples, 500, 2000)
    p = n_samples // 10
    for system, w in zip(Input(f"dataset:lsq_{kind}_{n_samples}/system", Tensor(n_samples, p + 1, dtype="float64")),
                         Input(f"dataset:lsq_{kind}_{n_samples}/w", Tensor(p, dtype="float64"))):
        Test.Solve(system, w)


@ModelDefinition
def NormalEquations(task, inputType, outputType):
    """β = (XᵀX)⁻¹ Xᵀy by ``np.linalg.solve``."""
    if task != Solve:
        Fail("solves least-squares systems (task Solve) only")
    return Solver(lambda system: lsq_solve("normal-equations", system))


@ModelDefinition
def Lstsq(task, inputType, outputType):
    """``np.linalg.lstsq`` (SVD-based)."""
    if task != Solve:
        Fail("solves least-squares systems (task Solve) only")
    return Solver(lambda system: lsq_solve("lstsq", system))


@ModelDefinition
def QR(task, inputType, outputType):
    """X = QR, then R β = Qᵀy."""
    if task != Solve:
        Fail("solves least-squares systems (task Solve) only")
    return Solver(lambda system: lsq_solve("qr", system))


@ModelDefinition
def GradientDescent(task, inputType, outputType, max_iter=128, checkpoint_spacing="geometric"):
    """Gradient descent from β = 0 with step 1/L, ``max_iter`` iterations, a checkpoint per iteration."""
    if task != Solve:
        Fail("solves least-squares systems (task Solve) only")
    return Solver(lambda system, checkpoint: lsq_solve("gd", system, max_iter, checkpoint))


@ModelDefinition
def ConjugateGradient(task, inputType, outputType, max_iter=128, checkpoint_spacing="geometric"):
    """Conjugate gradients on the normal equations (CGLS) from β = 0, a checkpoint per iteration."""
    if task != Solve:
        Fail("solves least-squares systems (task Solve) only")
    return Solver(lambda system, checkpoint: lsq_solve("cg", system, max_iter, checkpoint))


@ModelDefinition
def GradientDescentPerBudget(task, inputType, outputType, max_iter):
    """Gradient descent from β = 0 with step 1/L, ``max_iter`` iterations (one run per budget)."""
    Suggest(max_iter, 0, 1, 2, 4, 8, 16, 32, 64, 128)
    if task != Solve:
        Fail("solves least-squares systems (task Solve) only")
    return Solver(lambda system: lsq_solve("gd", system, max_iter))


@ModelDefinition
def ConjugateGradientPerBudget(task, inputType, outputType, max_iter):
    """Conjugate gradients on the normal equations (CGLS) from β = 0, ``max_iter`` iterations (one run per budget)."""
    Suggest(max_iter, 0, 1, 2, 4, 8, 16, 32, 64, 128)
    if task != Solve:
        Fail("solves least-squares systems (task Solve) only")
    return Solver(lambda system: lsq_solve("cg", system, max_iter))


@MetricDefinition
def LSQObjective():
    """0.5 ‖y − Xβ‖² / n, averaged over the test systems: benchopt's objective value."""
    return sum(lsq.objective(*lsq_split(system), beta) for (system, _, beta) in Test.Solve) / len(Test.Solve)


@MetricDefinition
def LSQCoefficientError():
    """‖β − w‖ / ‖w‖ against the coefficients that generated y, averaged over the test systems."""
    return sum(L2Error(w, beta) / L2Error(w, 0 * w) for (_, w, beta) in Test.Solve) / len(Test.Solve)


@MetricDefinition(axis="work")
def LSQSolveMilliseconds():
    """Time in the solver, in ms."""
    return InferenceMilliseconds()


@SoftwareDefinition
def NumPy(hardware):
    return Environment(backend="numpy", pip=["numpy"])


@HardwareDefinition
def OneCPU():
    return Resources(cpus=1)
