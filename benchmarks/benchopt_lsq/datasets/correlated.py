from benchopt import BaseDataset

from benchmark_utils import make_data


class Dataset(BaseDataset):
    """The `correlated` least-squares problems of ``benchmark_utils.make_data``, at two sizes."""

    name = "correlated"
    requirements = ["numpy"]
    # Literal, as benchopt likes them; n_features = n_samples // 10, as in benchmark_utils.SIZES.
    parameters = {"n_samples": [500, 2000]}

    def get_data(self):
        X, y, _ = make_data("correlated", self.n_samples, self.n_samples // 10)
        return dict(X=X, y=y)
