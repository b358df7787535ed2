# Paper Fig. 2, 3 and 5 as SAIL source. Edits forced by invalid Python only:
# `task = Classify` -> `==`, `→` -> `->`; `Relu().` (a PDF artefact) -> `Relu(),`.
from saibench_jupyter.sail import *

atom_embeddings = {"H": [1.0, 0.0], "C": [0.0, 1.0]}


@ProblemDefinition
def MNIST(epochs):
    data_type = Tensor(28, 28)
    label_type = Tensor(10)
    train_data = Input("train-images.idx3-ubyte", data_type)
    train_label = Input("train-labels.idx1-ubyte", Scalar).OneHot(label_type)
    test_data = Input("t10k-images.idx3-ubyte", data_type)
    test_label = Input("t10k-labels.idx1-ubyte", Scalar).OneHot(label_type)
    for x,y in zip(train_data, train_label):
        Train.Classify(x,y)
    for x,y in zip(test_data, test_label):
        Test.Classify(x,y)


@MetricDefinition
def CriticalLoss():
    loss = []
    sz = len(Test.Classify)
    for (_, y0, y) in Test.Classify:
        loss.append(L2Error(y0, y))
    # critical 99% loss
    return loss.TopK(sz * 0.01)


@MetricDefinition
def WallTime():
    return ElapsedMilliseconds()


@ConverterDefinition
def AtomEmbedding(a: Atom) -> Tensor:
   return atom_embeddings[a.name]


@ConverterDefinition
def Concat(a: list[T]) -> Tensor:
   return Concat(a.map(Convert(T,Tensor)))


@ModelDefinition
def MLP(task, inputType, outputType, hiddenSize):
  Suggest(hiddenSize, 128, 256, 512, 1024)
  if task == Classify:
   f = Softmax(outputType.dims)
  elif task == Enhance:
   f = id
  else: Fail("don't know how to solve")
  return Pipeline([
   Convert(inputType, Tensor),
   Linear(hiddenSize), Relu(),
   Linear(outputType.dims), f,
   Convert(Tensor, outputType)
  ])
