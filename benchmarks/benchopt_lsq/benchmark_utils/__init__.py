"""The numerics of the least-squares comparison, shared by both sides.

benchopt imports this package as ``benchmark_utils`` (its convention for a benchmark's own
code); the SAIL modules of the same workload (``benchmarks/lsq_sail.py``) import it from the
same folder (``benchmarks/vs_benchopt.py`` puts it on ``PYTHONPATH``). So both harnesses run
exactly the same data generation, solvers and objective: whatever differs between their
results comes from the harness.

Everything is NumPy, float64, deterministic (fixed seeds; no randomness in the solvers).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: told the iterate after each iteration of an iterative solver (``benchmarks/lsq_sail.py``'s
#: checkpoints); it must not change it
Callback = Callable[[np.ndarray], None] | None

#: the datasets: a kind and a size each (n_features = n_samples // 10)
KINDS = ("gaussian", "correlated")
SIZES = ((500, 50), (2000, 200))
#: the solvers: direct ones run once, iterative ones take a number of iterations
DIRECT = ("normal-equations", "lstsq", "qr")
ITERATIVE = ("gd", "cg")


def iterations(points: int) -> list[int]:
    """The iteration counts of an iterative solver's curve: 0, 1, 2, 4, ..., 2**(points - 2).

    benchopt's ``iteration`` strategy calls ``run(0)`` first and then the solver's
    ``get_next``; with ``get_next`` doubling (``next_iterations``) and ``--max-runs
    points - 1`` it visits exactly these counts, and the SAIL models sweep the same ones.
    """
    out = [0]
    while len(out) < points:
        out.append(next_iterations(out[-1]))
    return out


def next_iterations(n: int) -> int:
    """The count after ``n`` on a curve: doubling (fixed, unlike benchopt's default, which
    widens its steps where the curve is flat and would make the two sides' points differ)."""
    return max(1, 2 * n)


def make_data(kind: str, n_samples: int, n_features: int,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A least-squares problem ``(X, y)``, ``X`` of shape ``(n_samples, n_features)``, and the
    coefficients ``w`` that generated it.

    ``gaussian``: i.i.d. standard normal entries. ``correlated``: rows drawn with a Toeplitz
    covariance ``0.9**|i - j|`` (ill-conditioned: gradient descent converges slowly).
    ``y = X w + 0.5 ε`` with ``w`` and ``ε`` standard normal.
    """
    rng = np.random.default_rng([seed, n_samples, n_features, KINDS.index(kind)])
    X = rng.standard_normal((n_samples, n_features))
    if kind == "correlated":
        idx = np.arange(n_features)
        cov = 0.9 ** np.abs(idx[:, None] - idx[None, :])
        X = X @ np.linalg.cholesky(cov).T
    w = rng.standard_normal(n_features)
    y = X @ w + 0.5 * rng.standard_normal(n_samples)
    return X, y, w


def objective(X: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    """``0.5 ‖y − Xβ‖² / n_samples``."""
    r = y - X @ beta
    return 0.5 * float(r @ r) / len(y)


def solve(method: str, X: np.ndarray, y: np.ndarray, max_iter: int = 0, callback: Callback = None) -> np.ndarray:
    """β minimising ``objective(X, y, β)`` by ``method``; iterative methods start from β = 0
    and take ``max_iter`` iterations (no other stopping rule, so both sides do the same work),
    telling ``callback`` the iterate after each one: its k-th call sees what ``max_iter=k`` returns.
    """
    if method == "normal-equations":
        return np.linalg.solve(X.T @ X, X.T @ y)
    if method == "lstsq":
        return np.linalg.lstsq(X, y, rcond=None)[0]
    if method == "qr":
        q, r = np.linalg.qr(X)
        return np.linalg.solve(r, q.T @ y)
    if method == "gd":
        return _gradient_descent(X, y, max_iter, callback)
    if method == "cg":
        return _conjugate_gradient(X, y, max_iter, callback)
    raise ValueError(f"unknown least-squares method {method!r}: use one of {DIRECT + ITERATIVE}")


def _gradient_descent(X: np.ndarray, y: np.ndarray, max_iter: int, callback: Callback = None) -> np.ndarray:
    n = len(y)
    step = n / np.linalg.norm(X, ord=2) ** 2  # 1 / L, L the gradient's Lipschitz constant
    beta = np.zeros(X.shape[1])
    for _ in range(max_iter):
        beta -= step * (X.T @ (X @ beta - y)) / n
        if callback is not None:
            callback(beta)
    return beta


def _conjugate_gradient(X: np.ndarray, y: np.ndarray, max_iter: int, callback: Callback = None) -> np.ndarray:
    """CGLS: conjugate gradients on the normal equations without forming ``XᵀX``."""
    beta = np.zeros(X.shape[1])
    r = y.astype(np.float64, copy=True)
    s = X.T @ r
    p = s.copy()
    gamma = float(s @ s)
    for _ in range(max_iter):
        if gamma == 0.0:  # converged exactly: another step would divide by zero
            break
        q = X @ p
        alpha = gamma / float(q @ q)
        beta += alpha * p
        r -= alpha * q
        s = X.T @ r
        gamma, previous = float(s @ s), gamma
        p = s + (gamma / previous) * p
        if callback is not None:
            callback(beta)
    return beta
