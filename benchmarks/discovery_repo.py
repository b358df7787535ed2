"""The generated SAIL repository the discovery benchmark plans over.

20 problems × 50 models × 4 software × 4 hardware × 10 metrics, as SAIL source text:
``Suggest`` grids on problems, models and hardware; models that refuse some tasks or
input types; torch-only native models; composite models that ``Require`` sub-models; a
CUDA hardware module that a 2-CPU, no-GPU machine rejects. It is meant to look like a
real repository, not to be fast. :func:`generate` is deterministic for a seed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from saibench_jupyter import Repository


@dataclass
class Source:
    origin: str
    text: str
    kind: str
    names: tuple[str, ...]


def _ind(lines: list[str]) -> str:
    return "\n".join("    " + line if line else "" for line in lines)


# -- problems ----------------------------------------------------------------------------
# (name, kind, details); kinds: "image" (Classify Tensor(k,k) -> Tensor(c)), "vector"
# (Classify Tensor(n) -> Tensor(c)), "regress" (Predict Tensor(n) -> Scalar, data-style
# test), "procedural" (Model.Predict + Test.Compare), "staged" (sample-efficiency loop),
# "enhance" (Enhance Tensor(n..) -> same), "set" (a set of points), "multitask".
PROBLEMS: list[tuple[str, str, dict]] = [
    ("Digits", "image", dict(k=8, c=10)),
    ("MNIST", "image", dict(k=28, c=10, grid=("epochs", 5, 20))),
    ("FashionMNIST", "image", dict(k=28, c=10)),
    ("CIFAR10Gray", "image", dict(k=32, c=10, grid=("epochs", 10, 50))),
    ("CIFAR100Gray", "image", dict(k=32, c=100)),
    ("GalaxyZoo", "image", dict(k="size", c=4, grid=("size", 16, 32))),
    ("SteelDefects", "image", dict(k=64, c=2)),
    ("IsingPhases", "image", dict(k="L", c=2, grid=("L", 16, 32))),
    ("Iris", "vector", dict(n=4, c=3)),
    ("HiggsBoson", "vector", dict(n=28, c=2, grid=("fraction", 0.1, 1.0))),
    ("QM9Energy", "procedural", dict(n=64)),
    ("Housing", "regress", dict(n=13)),
    ("Superconductors", "regress", dict(n=81, grid=("epochs", 10, 100))),
    ("SolarFlux", "staged", dict(n=24, stages=5)),
    ("Denoise1D", "enhance", dict(shape=(128,))),
    ("SuperResField", "enhance", dict(shape=(16, 16))),
    ("SpectrumDenoise", "enhance", dict(shape=(512,), grid=("noise", 0.1, 0.5))),
    ("PointCloudEnergy", "set", dict(elem=3, out="Scalar", task="Predict")),
    ("JetTagging", "set", dict(elem=4, out="Tensor(5)", task="Classify")),
    ("CellMorphology", "multitask", dict(k=32, c=6)),
]
QUICK_PROBLEMS = ("MNIST", "QM9Energy", "Denoise1D", "PointCloudEnergy")


def problem_source(name: str, kind: str, d: dict) -> str:
    slug = name.lower()
    params, body = [], []
    if "grid" in d:
        p, *values = d["grid"]
        params.append(p)
        body.append(f"Suggest({p}, {', '.join(map(repr, values))})")
    if kind in ("image", "multitask"):
        k = d["k"]
        body += [f"data_type = Tensor({k}, {k})", f"label_type = Tensor({d['c']})"]
    if kind == "image":
        body += [
            f'train_x = Input("{slug}/train-images.npy", data_type)',
            f'train_y = Input("{slug}/train-labels.npy", Scalar).OneHot(label_type)',
            f'test_x = Input("{slug}/test-images.npy", data_type)',
            f'test_y = Input("{slug}/test-labels.npy", Scalar).OneHot(label_type)',
            "for x, y in zip(train_x, train_y):", "    Train.Classify(x, y)",
            "for x, y in zip(test_x, test_y):", "    Test.Classify(x, y)",
        ]
    elif kind == "vector":
        body += [
            f'features = Input("{slug}/features.csv", Tensor({d["n"]}))',
            f'labels = Input("{slug}/labels.csv", Scalar).OneHot(Tensor({d["c"]}))',
            "train, test = RandomSplit([features, labels], 0.8)",
            "for x, y in train:", "    Train.Classify(x, y)",
            "for x, y in test:", "    Test.Classify(x, y)",
        ]
    elif kind == "regress":
        body += [
            f'train_x = Input("{slug}/train-x.npy", Tensor({d["n"]}))',
            f'train_y = Input("{slug}/train-y.npy", Scalar)',
            f'test_x = Input("{slug}/test-x.npy", Tensor({d["n"]}))',
            f'test_y = Input("{slug}/test-y.npy", Scalar)',
            "for x, y in zip(train_x, train_y):", "    Train.Predict(x, y)",
            "for x, y in zip(test_x, test_y):", "    Test.Predict(x, y)",
        ]
    elif kind == "procedural":
        body += [
            f'train_x = Input("{slug}/train-descriptors.npy", Tensor({d["n"]}))',
            f'train_e = Input("{slug}/train-energies.npy", Scalar)',
            f'test_x = Input("{slug}/test-descriptors.npy", Tensor({d["n"]}))',
            f'test_e = Input("{slug}/test-energies.npy", Scalar)',
            "for x, e in zip(train_x, train_e):", "    Train.Predict(x, e)",
            "for x, e in zip(test_x, test_e):",
            "    e_pred = Model.Predict(x)", "    Test.Compare(e, e_pred)",
        ]
    elif kind == "staged":
        body += [
            f'data = [Input("{slug}/x.npy", Tensor({d["n"]})), Input("{slug}/y.npy", Scalar)]',
            "train, test = RandomSplit(data, 0.8)",
            f"stages = Chunks(train, {d['stages']})",
            f"for i in range({d['stages']}):",
            "    for x, y in sum(stages[0:i+1]):", "        Train.Predict(x, y)",
            "    for x, y in test:", "        y_pred = Model.Predict(x)", "        Test.Compare(y, y_pred)",
        ]
    elif kind == "enhance":
        shape = ", ".join(map(str, d["shape"]))
        body += [
            f'noisy = Input("{slug}/noisy.npy", Tensor({shape}))',
            f'clean = Input("{slug}/clean.npy", Tensor({shape}))',
            "train, test = RandomSplit([noisy, clean], 0.9)",
            "for x, y in train:", "    Train.Enhance(x, y)",
            "for x, y in test:", "    Test.Enhance(x, y)",
        ]
    elif kind == "set":
        body += [
            f'clouds = Input("{slug}/points.npy", Set[Tensor({d["elem"]})])',
            f'targets = Input("{slug}/targets.npy", Scalar)'
            + (f".OneHot({d['out']})" if d["out"] != "Scalar" else ""),
            "for x, y in zip(clouds, targets):", f"    Train.{d['task']}(x, y)",
            f"    Test.{d['task']}(x, y)",
        ]
    elif kind == "multitask":
        body += [
            f'images = Input("{slug}/images.npy", data_type)',
            f'kinds = Input("{slug}/kinds.npy", Scalar).OneHot(label_type)',
            f'areas = Input("{slug}/areas.npy", Scalar)',
            "for x, k, a in zip(images, kinds, areas):",
            "    Train.Classify(x, k)", "    Train.Predict(x, a)",
            "    Test.Classify(x, k)", "    Test.Predict(x, a)",
        ]
    else:  # pragma: no cover - a typo in the table above
        raise ValueError(kind)
    return f"@ProblemDefinition\ndef {name}({', '.join(params)}):\n" + _ind(body) + "\n"


# -- models --------------------------------------------------------------------------
# Families, with how many of each. "general" solves Classify/Predict/Enhance; the others
# refuse tasks or input types, so discovery has rejections to report.
FAMILIES: list[tuple[str, int]] = [
    ("general", 12), ("classifier", 10), ("regressor", 8), ("denoiser", 6),
    ("image", 4), ("small", 3), ("encoder", 3), ("native", 2),
]
COMPOSITES = ("PermutationInvariantModel", "DeepSets")
ACTIVATIONS = ("Relu", "Tanh", "Sigmoid")
WIDTHS = (16, 32, 64, 128, 256, 512, 1024)
FAMILY_NAMES = {
    "general": "MLP", "classifier": "Classifier", "regressor": "Regressor", "denoiser": "Denoiser",
    "image": "ImageMLP", "small": "TinyMLP", "encoder": "Encoder", "native": "TorchResNet",
}
#: The model the edit benchmark changes (a general MLP: a candidate sub-model of the
#: composites too), and a second one that no composite can use.
EDITED = "MLP03"
EDITED_LEAF = "Denoiser02"
QUICK_MODELS = ("MLP01", "MLP02", "MLP03", "Classifier01", "Regressor01", "Denoiser02",
                "ImageMLP01", "TinyMLP01", "TorchResNet01", "PermutationInvariantModel")


@dataclass
class ModelSpec:
    name: str
    family: str
    widths: tuple[int, ...]
    activation: str
    depth_grid: bool
    dropout: float | None


def model_specs(rng: random.Random) -> list[ModelSpec]:
    specs = []
    for family, count in FAMILIES:
        for i in range(1, count + 1):
            n = rng.choice((3, 3, 4, 5))  # typical width grids: 3 to 5 values
            start = rng.randrange(0, len(WIDTHS) - n + 1)
            specs.append(ModelSpec(
                f"{FAMILY_NAMES[family]}{i:02d}", family, WIDTHS[start:start + n],
                rng.choice(ACTIVATIONS),
                depth_grid=family in ("general", "regressor") and rng.random() < 0.25,
                dropout=rng.choice((None, None, 0.1, 0.2)),
            ))
    return specs


def model_source(spec: ModelSpec, extra_layer: bool = False) -> str:
    if spec.family == "native":
        return _native_source(spec)
    params = ["task", "inputType", "outputType", "width"] + (["depth"] if spec.depth_grid else [])
    act = spec.activation
    body = [f'"""A {spec.family} MLP ({act}), generated for the discovery benchmark."""',
            f"Suggest(width, {', '.join(map(str, spec.widths))})"]
    if spec.depth_grid:
        body.append("Suggest(depth, 1, 2)")
    f = spec.family
    if f == "general":
        body += ["if task == Classify:", "    head = Softmax(outputType.dims)",
                 "elif task == Predict or task == Enhance:", "    head = Identity()",
                 "else:", f'    Fail("{spec.name} does not know how to solve {{task}}")']
    elif f == "classifier":
        body += ["if task != Classify:", f'    Fail("{spec.name} only classifies")',
                 "head = Softmax(outputType.dims)"]
    elif f == "regressor":
        body += ["if task != Predict:", f'    Fail("{spec.name} only predicts scalars")',
                 "if outputType.Size != 1:", '    Fail(f"predicts one value, not {outputType!r}")',
                 "head = Identity()"]
    elif f == "denoiser":
        body += ["if task != Enhance:", f'    Fail("{spec.name} only enhances signals")',
                 "if inputType != outputType:", '    Fail("input and output types differ")',
                 "head = Identity()"]
    elif f == "image":
        body += ["if task != Classify and task != Enhance:", '    Fail("classifies or enhances images only")',
                 "if inputType.IsSet or len(inputType.dims) != 2:",
                 '    Fail(f"needs a 2-D input, not {inputType!r}")',
                 "head = Softmax(outputType.dims) if task == Classify else Identity()"]
    elif f == "small":
        body += ["if task == Classify:", "    head = Softmax(outputType.dims)",
                 "elif task == Predict:", "    head = Identity()",
                 "else:", '    Fail("classifies or predicts only")',
                 "if inputType.IsSet or inputType.Size is None or inputType.Size > 256:",
                 '    Fail(f"takes at most 256 input values, not {inputType!r}")']
    elif f == "encoder":
        body += ["if task != Embedding:", f'    Fail("{spec.name} only embeds")',
                 "head = Identity()"]
    else:  # pragma: no cover
        raise ValueError(f)
    body += ["layers = [Convert(inputType, Tensor), Linear(width), " + act + "()]"]
    if spec.depth_grid:
        body += ["if depth == 2:", "    layers.append(Linear(width))", f"    layers.append({act}())"]
    if extra_layer:
        body += ["layers.append(Linear(width // 2))", f"layers.append({act}())"]
    if spec.dropout is not None:
        body += [f"layers.append(Dropout({spec.dropout}))"]
    body += ["layers.append(Linear(outputType.dims))", "layers.append(head)",
             "layers.append(Convert(Tensor, outputType))", "return Pipeline(layers)"]
    return f"@ModelDefinition\ndef {spec.name}({', '.join(params)}):\n" + _ind(body) + "\n"


def _native_source(spec: ModelSpec) -> str:
    arch = {1: "resnet18", 2: "resnet34"}[int(spec.name[-2:])]
    return f'''from torchvision.models import {arch}


@ModelDefinition
def {spec.name}(task, inputType, outputType, width):
    """A torchvision {arch} (torch only), width = first-stage channels."""
    Suggest(width, {", ".join(map(str, spec.widths[:2]))})
    if task != Classify:
        Fail("{spec.name} only classifies")
    if inputType.IsSet or len(inputType.dims) != 2:
        Fail(f"needs a 2-D image, not {{inputType!r}}")
    return TorchModule({arch}(num_classes=outputType.Size, width_per_group=width))
'''


COMPOSITE_SOURCES = {
    "PermutationInvariantModel": '''@ModelDefinition
def PermutationInvariantModel(task, inputType, outputType):
    """Paper Fig. 7: one shared sub-model on every element, summed."""
    if not inputType.IsSet:
        Fail("Don't know how to solve")
    ety = inputType.ElementType
    m = Require(Model, task, ety, outputType)
    return Sum(Array(m, inputType.Size))
''',
    "DeepSets": '''@ModelDefinition
def DeepSets(task, inputType, outputType, emb=16):
    """phi embeds each element, the sum is pooled, rho solves the task."""
    if not inputType.IsSet:
        Fail("needs a set input")
    phi = Require(Model, Embedding, inputType.ElementType, Tensor(emb))
    rho = Require(Model, task, Tensor(emb), outputType)
    return Pipeline([Array(phi, inputType.Size), Sum(), rho])
''',
}


# -- metrics, software, hardware -------------------------------------------------------
METRICS = '''@MetricDefinition(axis="precision", better="lower")
def CriticalLoss():
    loss = []
    sz = len(Test.Classify)
    for (_, y0, y) in Test.Classify:
        loss.append(L2Error(y0, y))
    return loss.TopK(sz * 0.01)


@MetricDefinition(axis="precision", better="lower")
def MeanClassifyL2():
    total = 0.0
    for (_, y0, y) in Test.Classify:
        total = total + L2Error(y0, y)
    return total / len(Test.Classify)


@MetricDefinition(axis="precision", better="lower")
def WorstClassError():
    errors = []
    for (_, y0, y) in Test.Classify:
        errors.append(L2Error(y0, y))
    return errors.TopK(1)


@MetricDefinition(axis="precision", better="lower")
def RMSE():
    total = 0.0
    for (_, y0, y) in Test.Predict:
        total = total + L2Error(y0, y) ** 2
    return (total / len(Test.Predict)) ** 0.5


@MetricDefinition(axis="precision", better="lower")
def MaxDeviation():
    errors = []
    for (golden, predicted) in Test.Compare:
        errors.append(L2Error(golden, predicted))
    return errors.TopK(1)


@MetricDefinition(axis="precision", better="lower")
def ReconstructionError():
    total = 0.0
    for (_, y0, y) in Test.Enhance:
        total = total + L2Error(y0, y)
    return total / len(Test.Enhance)


@MetricDefinition
def WallTime():
    return ElapsedMilliseconds()


@MetricDefinition(axis="work", unit="ms")
def TrainingTime():
    return TrainingMilliseconds()


@MetricDefinition(axis="work", better="lower", unit="samples")
def SamplesToTrain():
    return SamplesSeen()


@MetricDefinition(axis="work", unit="bytes")
def PeakMemory():
    return PeakMemoryBytes()
'''

SOFTWARE = '''@SoftwareDefinition
def PyTorch(hardware):
    if hardware.device == "cuda":
        return Environment(backend="torch", pip=["torch==2.13.0"], conda=["pytorch-cuda=12.4"])
    return Environment(backend="torch", pip=["torch==2.13.0"])


@SoftwareDefinition
def PyTorchLTS(hardware):
    return Environment(backend="torch", pip=["torch==2.4.1"], python="3.11")


@SoftwareDefinition
def JAX(hardware):
    if hardware.device == "cuda":
        Fail("this environment pins the CPU-only jaxlib wheel")
    return Environment(backend="jax", pip=["jax[cpu]==0.6.2"])


@SoftwareDefinition
def Flax(hardware):
    if hardware.cpus < 2:
        Fail("XLA's thread pool wants at least 2 CPUs")
    return Environment(backend="jax", pip=["jax[cpu]==0.6.2", "flax==0.10.6", "optax"])
'''

HARDWARE = '''@HardwareDefinition
def CPU(threads):
    Suggest(threads, 1, 2)
    return Resources(cpus=threads, device="cpu")


@HardwareDefinition
def CPUSmallMemory(threads):
    Suggest(threads, 1, 2)
    return Resources(cpus=threads, device="cpu", memory="2GB")


@HardwareDefinition
def CPUWide(threads):
    Suggest(threads, 2, 4)
    return Resources(cpus=threads, device="cpu", memory="16GB")


@HardwareDefinition
def GPU():
    return Resources(cpus=1, device="cuda")
'''


def generate(quick: bool, seed: int = 20250101) -> tuple[list[Source], dict[str, ModelSpec]]:
    """The generated repository, as sources (one per problem and per model)."""
    rng = random.Random(seed)
    specs = {s.name: s for s in model_specs(rng)}
    sources: list[Source] = []
    for name, kind, d in PROBLEMS:
        if quick and name not in QUICK_PROBLEMS:
            continue
        sources.append(Source(f"problems/{name}.py", problem_source(name, kind, d), "problem", (name,)))
    for name, spec in specs.items():
        if quick and name not in QUICK_MODELS:
            continue
        sources.append(Source(f"models/{name}.py", model_source(spec), "model", (name,)))
    for name, text in COMPOSITE_SOURCES.items():
        if quick and name not in QUICK_MODELS:
            continue
        sources.append(Source(f"models/{name}.py", text, "model", (name,)))
    for origin, text, kind in (("metrics.py", METRICS, "metric"), ("software.py", SOFTWARE, "software"),
                               ("hardware.py", HARDWARE, "hardware")):
        names = tuple(re.findall(r"^def (\w+)", text, re.M))
        sources.append(Source(origin, text, kind, names))
    return sources, specs


def build(sources: list[Source]) -> Repository:
    """A fresh repository holding ``sources``."""
    repo = Repository()
    for s in sources:
        repo.add_source(s.text, origin=s.origin)
    return repo
