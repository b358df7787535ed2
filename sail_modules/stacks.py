"""Software stacks and hardware: what every case study runs on.

Software modules choose requirements from the hardware they are given (paper Fig. 4) and
decline hardware they cannot use; hardware modules ask for resources, and the planner
rejects those this machine does not have (a CUDA module where no GPU is visible).
"""

from saibench_jupyter.sail import *


@SoftwareDefinition
def PyTorch(hardware):
    """PyTorch (the CPU build on CPUs): trains and runs SAIL graph models, ``TorchModule`` models and gradients."""
    if hardware.device == "cuda":
        return Environment(backend="torch", pip=["torch==2.13.0"], conda=["pytorch-cuda=12.4"])
    return Environment(backend="torch", pip=["torch==2.13.0"])


@SoftwareDefinition
def JAX(hardware):
    """JAX with jaxlib: trains and runs SAIL graph models and ``JaxModel`` models (XLA-compiled)."""
    if hardware.device == "cuda":
        return Environment(backend="jax", pip=["jax[cuda12]"])
    return Environment(backend="jax", pip=["jax", "jaxlib"])


@SoftwareDefinition
def SciPy(hardware):
    """The scientific Python stack on CPUs: NumPy, SciPy, scikit-learn, scikit-image and pysindy.

    Runs every NumPy-backend model: ``Solver`` models (integrators, classical solvers, the Otsu
    baseline) and ``Estimator`` models (scikit-learn classifiers, SINDy). One stack rather than
    one per library: a pod's environment holds only its software's packages, and two NumPy
    stacks would pair every such model twice.
    """
    if hardware.device != "cpu":
        Fail("NumPy, SciPy and scikit-learn run on CPUs only")
    return Environment(backend="numpy", pip=["numpy", "scipy", "scikit-learn", "scikit-image", "pysindy"])


@HardwareDefinition
def CPU(threads):
    """CPU cores for one pod. ``threads`` defaults to 1: small models on shared cores run fastest alone.

    Parameters
    ----------
    threads : int
        Threads for BLAS, PyTorch and XLA (suggested: 1; ``Suggest`` more to sweep it).
    """
    Suggest(threads, 1)
    return Resources(cpus=threads, device="cpu")


@HardwareDefinition
def CUDA():
    """One CUDA GPU and one CPU core; the planner rejects it on machines where no GPU is visible."""
    return Resources(cpus=1, device="cuda")
