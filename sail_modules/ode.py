"""A problem class: ODE initial-value problems, SciPy integrators sweeping tolerances, a neural surrogate.

Three systems share one task kind, ``IVP`` (initial condition and parameters → trajectory
on a fixed time grid, whose last row is the end state), and one set of support code:

``LotkaVolterraIVP``
    u' = αu − βuv, v' = δuv − γv on [0, 10]; record ``x = (0, u0, v0, α, β, γ, δ)``.
``VanDerPolIVP``
    y₁' = y₂, y₂' = μ(1 − y₁²)y₂ − y₁ with μ = 1000 (stiff) on [0, 2000], two relaxation
    jumps; record ``x = (1, y₁0, y₂0)``.
``RobertsonIVP``
    Robertson's chemical kinetics (k = 0.04, 3e7, 1e4, stiff) on [0, 1e5], a log-spaced
    grid from 1e-4; record ``x = (2, y₁0, y₂0, y₃0)``.

The first entry of ``x`` names the system, so one solver serves all three. Every grid has
40 times; the expected output is a float64 ``Tensor(40, n)``. Test references come from
LSODA with the analytic Jacobian at rtol 1e-13 (atol 1e-16): 10⁵× tighter than the
tightest sweep point (1e-8), and a configuration none of the models uses (they get
finite-difference Jacobians). Against Radau and DOP853 at 1e-12/1e-13 these references
agree to ≈3e-13 (Lotka–Volterra), ≈1e-12 (Robertson) and ≈4e-12 (Van der Pol). Training
data for the surrogate are cheaper (rtol 1e-6). All data are generated from fixed seeds
and cached on disk (``$SAIBENCH_CACHE``, else ``~/.cache/saibench``) under a digest of
everything that determines them, so pods after the first load them in milliseconds.

Each SciPy model is one run per system: it solves every test IVP at one relative tolerance
per decade, loosest first, as a solver sweep (``Solver(fn, sweep=True)``): each tolerance
is one point of the work–precision diagram, and its work is that solve's alone.

Work axes: ``WallTime`` and ``ODEFunctionEvaluations`` (right-hand-side calls per IVP,
finite-difference Jacobian columns included): each solve adds its calls to the work
counter ``fevals`` (``Count``), which the metric reads back (``Counted``).
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp  # with the module, not in a solve: its ~0.2 s import is no point's work

from saibench_jupyter.sail import *
from saibench_jupyter.sail import register_dataset

_ODE_VERSION = 1
#: Reference integrations: a method no model runs in this configuration, far tighter than any sweep point.
_ODE_REFERENCE = {"method": "LSODA", "rtol": 1e-13, "atol": 1e-16, "jacobian": "analytic"}
_ODE_TRAINING = {"method": "LSODA", "rtol": 1e-6, "atol": 1e-9, "jacobian": "analytic"}
_ODE_GRID = 40
_ODE_VDP_MU = 1000.0
_ODE_ROBERTSON_K = (0.04, 3e7, 1e4)


def _ode_lotka_volterra(x):
    a, b, g, d = (float(v) for v in x[3:7])

    def f(t, y):
        return np.array([a * y[0] - b * y[0] * y[1], d * y[0] * y[1] - g * y[1]])

    def jac(t, y):
        return np.array([[a - b * y[1], -b * y[0]], [d * y[1], d * y[0] - g]])

    return f, jac, np.asarray(x[1:3], np.float64)


def _ode_van_der_pol(x):
    mu = _ODE_VDP_MU

    def f(t, y):
        return np.array([y[1], mu * (1.0 - y[0] * y[0]) * y[1] - y[0]])

    def jac(t, y):
        return np.array([[0.0, 1.0], [-2.0 * mu * y[0] * y[1] - 1.0, mu * (1.0 - y[0] * y[0])]])

    return f, jac, np.asarray(x[1:3], np.float64)


def _ode_robertson(x):
    k1, k2, k3 = _ODE_ROBERTSON_K

    def f(t, y):
        return np.array([-k1 * y[0] + k3 * y[1] * y[2], k1 * y[0] - k2 * y[1] ** 2 - k3 * y[1] * y[2],
                         k2 * y[1] ** 2])

    def jac(t, y):
        return np.array([[-k1, k3 * y[2], k3 * y[1]], [k1, -2 * k2 * y[1] - k3 * y[2], -k3 * y[1]],
                         [0.0, 2 * k2 * y[1], 0.0]])

    return f, jac, np.asarray(x[1:4], np.float64)


def _ode_sample_lotka_volterra(rng):
    ab_gd = np.array([1.5, 1.0, 3.0, 1.0]) * rng.uniform(0.8, 1.2, 4)
    return np.concatenate([[0.0], rng.uniform(0.5, 1.5, 2), ab_gd])


def _ode_sample_van_der_pol(rng):
    return np.array([1.0, rng.uniform(1.5, 2.5), 0.0])


def _ode_sample_robertson(rng):
    y1 = rng.uniform(0.9, 1.0)
    return np.array([2.0, y1, 0.0, 1.0 - y1])


#: code -> (name, right-hand side builder, end time, grid, initial-value sampler, (train, test) sizes)
_ODE_SYSTEMS = {
    0: ("lotkavolterra", _ode_lotka_volterra, 10.0, np.linspace(10.0 / _ODE_GRID, 10.0, _ODE_GRID),
        _ode_sample_lotka_volterra, (256, 8)),
    1: ("vanderpol", _ode_van_der_pol, 2000.0, np.linspace(2000.0 / _ODE_GRID, 2000.0, _ODE_GRID),
        _ode_sample_van_der_pol, (64, 4)),
    2: ("robertson", _ode_robertson, 1e5, np.logspace(-4.0, 5.0, _ODE_GRID), _ode_sample_robertson, (64, 4)),
}


class ODEBudgetExceeded(RuntimeError):
    """A solve used more right-hand-side evaluations than its cap (the scenario is a DNF)."""


class ODESolveFailed(RuntimeError):
    """``solve_ivp`` gave up before the end time (step size underflow and the like)."""


def ode_integrate(x, method, rtol, atol, cap=None, jacobian=False):
    """The trajectory of record ``x`` on its system's grid, and the right-hand-side calls it took.

    Raises ``ODEBudgetExceeded`` past ``cap`` calls and ``ODESolveFailed`` when the
    integrator stops early.
    """
    x = np.asarray(x, np.float64)
    code = round(float(x[0]))
    if code not in _ODE_SYSTEMS:
        raise ValueError(f"x[0] = {x[0]} names no ODE system (0 Lotka–Volterra, 1 Van der Pol, 2 Robertson)")
    name, build, t_end, grid, _, _ = _ODE_SYSTEMS[code]
    f, jac, y0 = build(x)
    calls = [0]

    def counted(t, y):
        calls[0] += 1
        if cap is not None and calls[0] > cap:
            raise ODEBudgetExceeded(
                f"{method} at rtol={rtol:g} needed more than {cap} function evaluations on one {name} "
                f"initial-value problem (the cap): did not finish")
        return f(t, y)

    extra = {"jac": jac} if jacobian and method in ("Radau", "BDF", "LSODA") else {}
    # An explicit method on a stiff system overflows before its cap: that is a failure, not a warning.
    with np.errstate(over="ignore", invalid="ignore"):
        sol = solve_ivp(counted, (0.0, t_end), y0, method=method, rtol=rtol, atol=atol, t_eval=grid, **extra)
    if sol.status != 0 or sol.y.shape[1] != len(grid) or not np.isfinite(sol.y).all():
        raise ODESolveFailed(f"{method} at rtol={rtol:g} stopped at t={sol.t[-1] if len(sol.t) else 0:g} "
                             f"of {t_end:g} on a {name} initial-value problem: {sol.message}")
    return sol.y.T.copy(), calls[0]


def ode_solve(x, method, rtol, cap):
    """What the SciPy solver models run per record: atol = 1e-3·rtol, evaluations counted (``fevals``)."""
    y, calls = ode_integrate(x, method, rtol, 1e-3 * rtol, cap)
    Count("fevals", calls)
    return y


def ode_tolerances(loosest, tightest):
    """The relative tolerances of a sweep: one per decade from ``loosest`` down to ``tightest``, both included."""
    if not 0 < tightest <= loosest < 1:
        raise ValueError(f"the tolerance sweep runs from loosest={loosest:g} down to tightest={tightest:g}: "
                         f"give 0 < tightest <= loosest < 1, such as loosest=1e-3, tightest=1e-8")
    decades = int(np.floor(np.log10(loosest / tightest) + 1e-9))
    # Rounded to 12 digits: 1e-3·10⁻² is 1.0000000000000001e-05, and the integrators see the difference.
    rtols = [float(f"{loosest * 10.0 ** -k:.12g}") for k in range(decades + 1)]
    return rtols if np.isclose(rtols[-1], tightest, rtol=1e-9) else [*rtols, tightest]


def ode_sweep(x, method, rtols, cap, checkpoint):
    """Solve record ``x`` at each tolerance in turn: each solve is one point of the sweep (``checkpoint(y)``)."""
    for rtol in rtols:
        y = ode_solve(x, method, rtol, cap)
        checkpoint(y)
    return y


def _ode_cache_dir():
    base = os.environ.get("SAIBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "saibench")
    return Path(base) / "ode"


def _ode_generate(code, split):
    import scipy

    name, _, _, grid, sample, sizes = _ODE_SYSTEMS[code]
    how = _ODE_REFERENCE if split == "test" else _ODE_TRAINING
    count, seed = (sizes[1], 1000 + code) if split == "test" else (sizes[0], 2000 + code)
    spec = json.dumps([_ODE_VERSION, name, split, count, seed, how, grid.tolist(), _ODE_VDP_MU,
                       _ODE_ROBERTSON_K, np.__version__, scipy.__version__])
    digest = hashlib.sha256(spec.encode()).hexdigest()[:16]
    path = _ode_cache_dir() / f"{name}-{split}-{digest}.npz"
    try:
        with np.load(path) as cached:
            return {"x": list(cached["x"]), "y": list(cached["y"])}
    except (OSError, ValueError, KeyError):
        pass
    rng = np.random.default_rng(seed)
    # Inputs reach models as float32: references start from exactly those values.
    xs = [sample(rng).astype(np.float32).astype(np.float64) for _ in range(count)]
    ys = [ode_integrate(x, how["method"], how["rtol"], how["atol"], jacobian=True)[0] for x in xs]
    x_arr, y_arr = np.stack(xs).astype(np.float32), np.stack(ys)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        with os.fdopen(fd, "wb") as out:
            np.savez(out, x=x_arr, y=y_arr)
        os.replace(tmp, path)  # atomic: pods generating at once never read half a file
    except OSError:
        pass  # a read-only cache only costs the next pod the generation again
    return {"x": list(x_arr), "y": list(y_arr)}


def _ode_register():
    for code, (name, build, _, _, sample, _) in _ODE_SYSTEMS.items():
        n = len(build(sample(np.random.default_rng(0)))[2])
        k = len(sample(np.random.default_rng(0)))
        for split in ("train", "test"):
            register_dataset(f"ode_{name}_{split}", {"x": Tensor(k), "y": Tensor(_ODE_GRID, n, dtype="float64")},
                             lambda code=code, split=split: _ode_generate(code, split),
                             f"{name} initial-value problems ({split}), trajectories on a {_ODE_GRID}-point grid")


_ode_register()


@ProblemDefinition
def LotkaVolterraIVP(epochs=100):
    """Lotka–Volterra predator–prey IVPs (non-stiff): 8 test problems, 256 training ones for surrogates.

    Records map ``x = (0, u0, v0, α, β, γ, δ)`` (a ``Tensor(7)``; parameters ±20 % around
    1.5, 1, 3, 1) to the trajectory at t = 0.25, 0.5, ..., 10 (``Tensor(40, 2)``, float64).

    Parameters
    ----------
    epochs : int
        Training epochs for models that learn (a surrogate); solvers ignore it.
    """
    for x, y in zip(Input("dataset:ode_lotkavolterra_train/x", Tensor(7)),
                    Input("dataset:ode_lotkavolterra_train/y", Tensor(40, 2, dtype="float64"))):
        Train.IVP(x, y)
    for x, y in zip(Input("dataset:ode_lotkavolterra_test/x", Tensor(7)),
                    Input("dataset:ode_lotkavolterra_test/y", Tensor(40, 2, dtype="float64"))):
        Test.IVP(x, y)


@ProblemDefinition
def VanDerPolIVP(epochs=60):
    """Van der Pol at μ = 1000 (stiff), y₂' = μ(1 − y₁²)y₂ − y₁ on [0, 2000]: 4 test IVPs, 64 training ones.

    Records map ``x = (1, y₁0, y₂0)`` (y₁0 in [1.5, 2.5], y₂0 = 0) to the trajectory at
    t = 50, 100, ..., 2000 (``Tensor(40, 2)``, float64), across two relaxation jumps.
    Explicit methods exhaust their evaluation cap here.

    Parameters
    ----------
    epochs : int
        Training epochs for models that learn (a surrogate); solvers ignore it.
    """
    for x, y in zip(Input("dataset:ode_vanderpol_train/x", Tensor(3)),
                    Input("dataset:ode_vanderpol_train/y", Tensor(40, 2, dtype="float64"))):
        Train.IVP(x, y)
    for x, y in zip(Input("dataset:ode_vanderpol_test/x", Tensor(3)),
                    Input("dataset:ode_vanderpol_test/y", Tensor(40, 2, dtype="float64"))):
        Test.IVP(x, y)


@ProblemDefinition
def RobertsonIVP(epochs=60):
    """Robertson's stiff chemical kinetics on [0, 1e5]: 4 test IVPs, 64 training ones.

    Records map ``x = (2, y₁0, y₂0, y₃0)`` (y₁0 in [0.9, 1], y₂0 = 0, y₃0 = 1 − y₁0) to the
    concentrations at 40 log-spaced times from 1e-4 to 1e5 (``Tensor(40, 3)``, float64).

    Parameters
    ----------
    epochs : int
        Training epochs for models that learn (a surrogate); solvers ignore it.
    """
    for x, y in zip(Input("dataset:ode_robertson_train/x", Tensor(4)),
                    Input("dataset:ode_robertson_train/y", Tensor(40, 3, dtype="float64"))):
        Train.IVP(x, y)
    for x, y in zip(Input("dataset:ode_robertson_test/x", Tensor(4)),
                    Input("dataset:ode_robertson_test/y", Tensor(40, 3, dtype="float64"))):
        Test.IVP(x, y)


@ModelDefinition
def ODERK45(task, inputType, outputType, loosest=1e-3, tightest=1e-8, maxEvaluations=50000):
    """SciPy ``solve_ivp`` with RK45 (Dormand–Prince 5(4), explicit): the non-stiff default.

    Parameters
    ----------
    loosest, tightest : float
        The sweep's relative tolerances: one solve of the test IVPs per decade from ``loosest``
        down to ``tightest``, each one point (atol = 1e-3·rtol).
    maxEvaluations : int
        Right-hand-side evaluations allowed per IVP; past it the scenario is a DNF.

    Accepts the ``IVP`` task (ODE initial-value problems) only.
    """
    if task != "IVP":
        Fail("integrates ODE initial-value problems (task IVP) only")
    return Solver(lambda x, checkpoint: ode_sweep(x, "RK45", ode_tolerances(loosest, tightest),
                                                  maxEvaluations, checkpoint), sweep=True)


@ModelDefinition
def ODEDOP853(task, inputType, outputType, loosest=1e-3, tightest=1e-8, maxEvaluations=50000):
    """SciPy ``solve_ivp`` with DOP853 (explicit Runge–Kutta of order 8): for tight tolerances.

    Parameters
    ----------
    loosest, tightest : float
        The sweep's relative tolerances: one solve of the test IVPs per decade from ``loosest``
        down to ``tightest``, each one point (atol = 1e-3·rtol).
    maxEvaluations : int
        Right-hand-side evaluations allowed per IVP; past it the scenario is a DNF.

    Accepts the ``IVP`` task (ODE initial-value problems) only.
    """
    if task != "IVP":
        Fail("integrates ODE initial-value problems (task IVP) only")
    return Solver(lambda x, checkpoint: ode_sweep(x, "DOP853", ode_tolerances(loosest, tightest),
                                                  maxEvaluations, checkpoint), sweep=True)


@ModelDefinition
def ODERadau(task, inputType, outputType, loosest=1e-3, tightest=1e-8, maxEvaluations=50000):
    """SciPy ``solve_ivp`` with Radau IIA (implicit, order 5; finite-difference Jacobian): for stiff problems.

    Parameters
    ----------
    loosest, tightest : float
        The sweep's relative tolerances: one solve of the test IVPs per decade from ``loosest``
        down to ``tightest``, each one point (atol = 1e-3·rtol).
    maxEvaluations : int
        Right-hand-side evaluations allowed per IVP; past it the scenario is a DNF.

    Accepts the ``IVP`` task (ODE initial-value problems) only.
    """
    if task != "IVP":
        Fail("integrates ODE initial-value problems (task IVP) only")
    return Solver(lambda x, checkpoint: ode_sweep(x, "Radau", ode_tolerances(loosest, tightest),
                                                  maxEvaluations, checkpoint), sweep=True)


@ModelDefinition
def ODEBDF(task, inputType, outputType, loosest=1e-3, tightest=1e-8, maxEvaluations=50000):
    """SciPy ``solve_ivp`` with BDF (implicit multistep, orders 1–5; finite-difference Jacobian): for stiff problems.

    Parameters
    ----------
    loosest, tightest : float
        The sweep's relative tolerances: one solve of the test IVPs per decade from ``loosest``
        down to ``tightest``, each one point (atol = 1e-3·rtol).
    maxEvaluations : int
        Right-hand-side evaluations allowed per IVP; past it the scenario is a DNF.

    Accepts the ``IVP`` task (ODE initial-value problems) only.
    """
    if task != "IVP":
        Fail("integrates ODE initial-value problems (task IVP) only")
    return Solver(lambda x, checkpoint: ode_sweep(x, "BDF", ode_tolerances(loosest, tightest),
                                                  maxEvaluations, checkpoint), sweep=True)


@ModelDefinition
def ODELSODA(task, inputType, outputType, loosest=1e-3, tightest=1e-8, maxEvaluations=50000):
    """SciPy ``solve_ivp`` with LSODA (Adams/BDF, switching on detected stiffness; finite-difference Jacobian).

    Parameters
    ----------
    loosest, tightest : float
        The sweep's relative tolerances: one solve of the test IVPs per decade from ``loosest``
        down to ``tightest``, each one point (atol = 1e-3·rtol).
    maxEvaluations : int
        Right-hand-side evaluations allowed per IVP; past it the scenario is a DNF.

    Accepts the ``IVP`` task (ODE initial-value problems) only.
    """
    if task != "IVP":
        Fail("integrates ODE initial-value problems (task IVP) only")
    return Solver(lambda x, checkpoint: ode_sweep(x, "LSODA", ode_tolerances(loosest, tightest),
                                                  maxEvaluations, checkpoint), sweep=True)


@ModelDefinition
def ODESurrogate(task, inputType, outputType, hidden=128, learning_rate=1e-2):
    """A neural surrogate: an MLP (two tanh layers) from initial condition and parameters to the whole trajectory.

    Trained with MSE on the problem's training IVPs (one checkpoint per epoch), then
    evaluated once per checkpoint on the test IVPs: its work is training plus inference
    time, and it calls no right-hand side (no ``ODEFunctionEvaluations``).

    Parameters
    ----------
    hidden : int
        Width of the two hidden layers.
    learning_rate : float
        Adam's step size.

    Accepts the ``IVP`` task (ODE initial-value problems) only; runs on PyTorch or JAX.
    """
    if task != "IVP":
        Fail("approximates ODE initial-value problems (task IVP) only")
    return Pipeline([Convert(inputType, Tensor), Linear(hidden), Tanh(), Linear(hidden), Tanh(), Linear(),
                     Convert(Tensor, outputType)])


@MetricDefinition
def ODEGridError():
    """Relative L2 error of the trajectory on the fixed grid, ‖y − y_ref‖ / ‖y_ref‖, averaged over the test IVPs."""
    return [np.linalg.norm(np.asarray(y, np.float64) - y0) / np.linalg.norm(y0) for (_, y0, y) in Test.IVP]


@MetricDefinition
def ODEMaxError():
    """Relative L∞ error on the fixed grid, max |y − y_ref| / max |y_ref|, averaged over the test IVPs.

    Both maxima run over every grid time and component.
    """
    return [np.abs(np.asarray(y, np.float64) - y0).max() / np.abs(y0).max() for (_, y0, y) in Test.IVP]


@MetricDefinition
def ODEEndError():
    """Relative L2 error of the end state (the grid's last time), averaged over the test IVPs."""
    return [np.linalg.norm(np.asarray(y, np.float64)[-1] - y0[-1]) / np.linalg.norm(y0[-1])
            for (_, y0, y) in Test.IVP]


@MetricDefinition(axis="work", unit="evaluations")
def ODEFunctionEvaluations():
    """Right-hand-side evaluations per test IVP (finite-difference Jacobian columns included); none for surrogates."""
    evaluations = Counted("fevals")
    # A model that never calls the right-hand side (the surrogate) has no such work: None.
    return None if evaluations is None else evaluations / len(Test.IVP)
