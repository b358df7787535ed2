# Software (Fig. 4 as pip/conda requirements chosen from the hardware) and hardware.
from saibench_jupyter.sail import *


@HardwareDefinition
def CPU(threads):
    Suggest(threads, 1)
    return Resources(cpus=threads, device="cpu")


@HardwareDefinition
def GPU():
    return Resources(cpus=1, device="cuda")


@SoftwareDefinition
def PyTorch(hardware):
    if hardware.device == "cuda":
        return Environment(backend="torch", pip=["torch==2.13.0"], conda=["pytorch-cuda=12.4"])
    return Environment(backend="torch", pip=["torch==2.13.0"])


@SoftwareDefinition
def JAX(hardware):
    if hardware.device == "cuda":
        return Environment(backend="jax", pip=["jax[cuda12]"])
    return Environment(backend="jax", pip=["jax", "jaxlib"])


@SoftwareDefinition
def TensorFlow(hardware):
    Fail("no TensorFlow backend: the graph IR lowers to PyTorch and JAX")
