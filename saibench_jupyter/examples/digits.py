# The paper's MNIST problem (Fig. 2) on data that ships with scikit-learn: 8x8 digits, no download.
import numpy as np

from saibench_jupyter.sail import *


@ProblemDefinition
def Digits(epochs=4):
    images = Input("dataset:digits/images")
    labels = Input("dataset:digits/labels").OneHot(Tensor(10))
    train, test = RandomSplit([images, labels], 0.8, seed=0)
    for x, y in train:
        Train.Classify(x, y)
    for x, y in test:
        Test.Classify(x, y)


@MetricDefinition(better="higher")
def Accuracy():
    hits = [float(np.argmax(y0) == np.argmax(y)) for (_, y0, y) in Test.Classify]
    return sum(hits) / len(hits)
