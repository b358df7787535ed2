"""A hypothesis task (paper Table 1, physics-law discovery): Lotka–Volterra's equations from noisy data.

The problem gives a model noisy samples of a predator–prey trajectory and asks for the
equations that generated it. "The equations" are a coefficient matrix ``Ξ`` (a float64
``Tensor(2, 6)``) over a fixed library of terms, so that u' = Ξ[0] · θ(u, v) and
v' = Ξ[1] · θ(u, v), with the library in this order::

    θ(u, v) = (1, u, v, u², u·v, v²)

(pysindy's ``PolynomialLibrary(degree=2)`` order). Lotka–Volterra, u' = αu − βuv,
v' = δuv − γv, is ``Ξ = [[0, α, 0, 0, −β, 0], [0, 0, −γ, 0, δ, 0]]``: four true terms.
Metrics score the recovered support (exact match, F1) and the coefficients (relative
error). The trajectories are generated from fixed seeds in support code (no download).
"""

import numpy as np

from saibench_jupyter.sail import *
from saibench_jupyter.sail import register_dataset

HYPOTHESIS_TERMS = ("1", "u", "v", "u^2", "u v", "v^2")
#: Registered noise levels (Gaussian noise, std = level × each state's standard deviation).
HYPOTHESIS_NOISE_LEVELS = (0.001, 0.01, 0.05, 0.1, 0.2, 0.4)
_HYPOTHESIS_TRAJECTORIES = 8
_HYPOTHESIS_TIMES = np.linspace(0.0, 20.0, 801)


def _hypothesis_rhs(t, y, a, b, g, d):
    return [a * y[0] - b * y[0] * y[1], d * y[0] * y[1] - g * y[1]]


def _hypothesis_clean():
    """Eight noise-free trajectories and their true coefficient matrices (the same for every noise level)."""
    from scipy.integrate import solve_ivp

    rng = np.random.default_rng(7)
    xs, ys = [], []
    for _ in range(_HYPOTHESIS_TRAJECTORIES):
        a, b, g, d = np.array([1.0, 0.5, 1.0, 0.5]) * rng.uniform(0.8, 1.2, 4)
        # Start well away from the equilibrium (γ/δ, α/β): small orbits make the library nearly collinear.
        y0 = np.array([g / d, a / b]) * rng.uniform(0.2, 0.5, 2)
        sol = solve_ivp(_hypothesis_rhs, (0.0, _HYPOTHESIS_TIMES[-1]), y0, method="DOP853", rtol=1e-11,
                        atol=1e-13, t_eval=_HYPOTHESIS_TIMES, args=(a, b, g, d))
        truth = np.zeros((2, len(HYPOTHESIS_TERMS)))
        truth[0, 1], truth[0, 4], truth[1, 2], truth[1, 4] = a, -b, -g, d
        xs.append(sol.y.T)
        ys.append(truth)
    return xs, ys


def _hypothesis_records(level, index):
    clean, truths = _hypothesis_clean()
    rng = np.random.default_rng(100 + index)
    xs = []
    for states in clean:
        noisy = states + level * states.std(axis=0) * rng.standard_normal(states.shape)
        xs.append(np.column_stack([_HYPOTHESIS_TIMES, noisy]))
    return {"x": xs, "y": truths}


for _hyp_index, _hyp_level in enumerate(HYPOTHESIS_NOISE_LEVELS):
    register_dataset(f"hypothesis_lv_{_hyp_level}",
                     {"x": Tensor(len(_HYPOTHESIS_TIMES), 3), "y": Tensor(2, len(HYPOTHESIS_TERMS), dtype="float64")},
                     lambda level=_hyp_level, index=_hyp_index: _hypothesis_records(level, index),
                     f"noisy Lotka–Volterra trajectories (noise {_hyp_level}) and their coefficient matrices")


def _hypothesis_library(states):
    u, v = states[:, 0], states[:, 1]
    return np.column_stack([np.ones_like(u), u, v, u * u, u * v, v * v])


def hypothesis_sindy(x, threshold):
    """pysindy: smoothed finite differences, the degree-2 polynomial library, STLSQ."""
    import warnings

    import pysindy as ps

    x = np.asarray(x, np.float64)
    model = ps.SINDy(optimizer=ps.STLSQ(threshold=threshold), feature_library=ps.PolynomialLibrary(degree=2),
                     differentiation_method=ps.SmoothedFiniteDifference())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # STLSQ warns when a threshold removes every term: the score shows it
        model.fit(x[:, 1:], t=x[:, 0])
    # Read the columns by name, so that the answer follows HYPOTHESIS_TERMS whatever pysindy's order.
    names = [n.replace("x0", "u").replace("x1", "v") for n in model.get_feature_names()]
    coef = model.coefficients()
    return np.stack([coef[:, names.index(term)] for term in HYPOTHESIS_TERMS], axis=1)


def hypothesis_least_squares(x, threshold):
    """The baseline: plain finite differences, least squares, drop small terms, refit the rest once."""
    x = np.asarray(x, np.float64)
    theta = _hypothesis_library(x[:, 1:])
    rates = np.gradient(x[:, 1:], x[:, 0], axis=0)
    coef = np.linalg.lstsq(theta, rates, rcond=None)[0].T
    out = np.zeros_like(coef)
    for i, row in enumerate(coef):
        keep = np.abs(row) >= threshold
        if keep.any():
            out[i, keep] = np.linalg.lstsq(theta[:, keep], rates[:, i], rcond=None)[0]
    return out


def hypothesis_f1(truth, found):
    """F1 of the recovered terms (nonzero entries) against the true ones."""
    t, f = np.asarray(truth) != 0, np.asarray(found) != 0
    hits = float(np.sum(t & f))
    return 0.0 if hits == 0 else 2 * hits / (np.sum(t) + np.sum(f))


def hypothesis_exact(truth, found):
    """1 when exactly the true terms were recovered, else 0."""
    return float(np.array_equal(np.asarray(truth) != 0, np.asarray(found) != 0))


def hypothesis_coefficient_error(truth, found):
    """‖Ξ − Ξ_true‖ / ‖Ξ_true‖ (Frobenius)."""
    truth = np.asarray(truth, np.float64)
    return float(np.linalg.norm(np.asarray(found, np.float64) - truth) / np.linalg.norm(truth))


@ProblemDefinition
def HypothesisLotkaVolterra(noise):
    """Recover Lotka–Volterra's equations from 8 noisy trajectories (α, β, γ, δ vary ±20 % around 1, 0.5, 1, 0.5).

    Each record maps a trajectory, ``Tensor(801, 3)`` with columns (t, u, v) sampled every
    0.025 on [0, 20], to its coefficient matrix ``Tensor(2, 6)`` over the library
    (1, u, v, u², u·v, v²) (task ``DiscoverEquations``). The clean trajectories are the same
    at every noise level.

    Parameters
    ----------
    noise : float
        Gaussian noise, as a fraction of each state's standard deviation (suggested:
        0.001, 0.01, 0.05, 0.1, 0.2, 0.4; these are the registered levels).
    """
    Suggest(noise, 0.001, 0.01, 0.05, 0.1, 0.2, 0.4)
    data = "dataset:hypothesis_lv_" + str(noise)
    for x, y in zip(Input(data + "/x", Tensor(801, 3)), Input(data + "/y", Tensor(2, 6, dtype="float64"))):
        Test.DiscoverEquations(x, y)


@ModelDefinition
def SINDySTLSQ(task, inputType, outputType, threshold=0.1):
    """SINDy (pysindy): smoothed finite-difference derivatives, degree-2 polynomial library, STLSQ sparse regression.

    Parameters
    ----------
    threshold : float
        STLSQ's sparsity threshold: coefficients below it are dropped, iteratively.

    Accepts the ``DiscoverEquations`` task (a (t, u, v) trajectory → ``Tensor(2, 6)``) only.
    """
    if task != "DiscoverEquations" or outputType.dims != (2, 6):
        Fail("discovers two-state equations only")
    return Solver(lambda x: hypothesis_sindy(x, threshold))


@ModelDefinition
def SINDyLeastSquares(task, inputType, outputType, threshold=0.1):
    """A plain baseline: finite differences, least squares on the library, one threshold and refit (NumPy only).

    Parameters
    ----------
    threshold : float
        Coefficients below it (in magnitude) are dropped before the single refit.

    Accepts the ``DiscoverEquations`` task (a (t, u, v) trajectory → ``Tensor(2, 6)``) only.
    """
    if task != "DiscoverEquations" or outputType.dims != (2, 6):
        Fail("discovers two-state equations only")
    return Solver(lambda x: hypothesis_least_squares(x, threshold))


@MetricDefinition(better="higher")
def HypothesisExactRecovery():
    """Fraction of trajectories whose recovered terms are exactly the true ones (support exact match)."""
    return [hypothesis_exact(truth, found) for (_, truth, found) in Test.DiscoverEquations]


@MetricDefinition(better="higher")
def HypothesisTermF1():
    """F1 of recovered terms against the true ones (nonzero entries of Ξ), averaged over trajectories."""
    return [hypothesis_f1(truth, found) for (_, truth, found) in Test.DiscoverEquations]


@MetricDefinition
def HypothesisCoefficientError():
    """Relative coefficient error ‖Ξ − Ξ_true‖ / ‖Ξ_true‖, averaged over trajectories."""
    return [hypothesis_coefficient_error(truth, found) for (_, truth, found) in Test.DiscoverEquations]
