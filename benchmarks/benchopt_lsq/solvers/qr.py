from benchopt import BaseSolver

from benchmark_utils import solve


class Solver(BaseSolver):
    """``benchmark_utils.solve("qr", ...)``: a direct method, one point."""

    name = "qr"
    requirements = ["numpy"]
    sampling_strategy = "run_once"

    def set_objective(self, X, y):
        self.X, self.y = X, y

    def run(self, _):
        self.beta = solve("qr", self.X, self.y)

    def get_result(self):
        return dict(beta=self.beta)
