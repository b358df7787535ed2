from benchopt import BaseSolver

from benchmark_utils import solve


class Solver(BaseSolver):
    """``benchmark_utils.solve("lstsq", ...)``: a direct method, one point."""

    name = "lstsq"
    requirements = ["numpy"]
    sampling_strategy = "run_once"

    def set_objective(self, X, y):
        self.X, self.y = X, y

    def run(self, _):
        self.beta = solve("lstsq", self.X, self.y)

    def get_result(self):
        return dict(beta=self.beta)
