from benchopt import BaseSolver
from benchopt.stopping_criterion import NoCriterion

from benchmark_utils import next_iterations, solve


class Solver(BaseSolver):
    """``benchmark_utils.solve("gd", ..., max_iter)``: a curve over the number of iterations."""

    name = "gd"
    requirements = ["numpy"]
    sampling_strategy = "iteration"
    # Every point up to --max-runs: no early stop where the curve flattens (the SAIL side has none).
    stopping_criterion = NoCriterion()

    def set_objective(self, X, y):
        self.X, self.y = X, y

    def run(self, n_iter):
        self.beta = solve("gd", self.X, self.y, n_iter)

    def get_next(self, stop_val):
        return next_iterations(stop_val)

    def get_result(self):
        return dict(beta=self.beta)
