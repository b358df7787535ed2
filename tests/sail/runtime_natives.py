# Native models through their wrappers: scikit-learn (Estimator), PyTorch (TorchModule), JAX (JaxModel).
import numpy as np
import torch
import jax
import jax.numpy as jnp
from sklearn.linear_model import LogisticRegression
from saibench_jupyter.sail import *


def init_linear(rng, x):
    k1, _ = jax.random.split(rng)
    n_in = int(np.prod(x.shape[1:]))
    return {"w": jax.random.normal(k1, (n_in, 10)) * 0.01, "b": jnp.zeros(10)}


def apply_linear(params, x):
    return x.reshape(x.shape[0], -1) @ params["w"] + params["b"]


@ModelDefinition
def Logistic(task, inputType, outputType, C=1.0):
    if task != Classify: Fail("classifies only")
    return Pipeline([Convert(inputType, Tensor), Estimator(LogisticRegression(C=C, max_iter=300))])


@ModelDefinition
def TorchNet(task, inputType, outputType):
    if task != Classify: Fail("classifies only")
    return TorchModule(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                           torch.nn.Linear(64, 10)))


@ModelDefinition
def JaxLinear(task, inputType, outputType):
    if task != Classify: Fail("classifies only")
    return JaxModel(init_linear, apply_linear)


@SoftwareDefinition
def ScikitLearn(hardware):
    return Environment(backend="numpy", pip=["scikit-learn"])
