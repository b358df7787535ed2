"""Least squares, min_β 0.5 ‖y − Xβ‖² / n: the benchopt side of ``benchmarks/vs_benchopt.py``."""

import numpy as np
from benchopt import BaseObjective

from benchmark_utils import objective


class Objective(BaseObjective):
    name = "Least Squares"
    min_benchopt_version = "1.5"
    requirements = ["numpy"]
    parameters = {}

    def set_data(self, X, y):
        self.X, self.y = X, y

    def get_objective(self):
        return dict(X=self.X, y=self.y)

    def evaluate_result(self, beta):
        return dict(value=objective(self.X, self.y, beta))

    def get_one_result(self):
        return dict(beta=np.zeros(self.X.shape[1]))
