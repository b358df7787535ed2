# Paper Fig. 8 on generated images: pretrain an encoder on unlabeled images, then segment with
# ten growing shares of the labeled data (sample efficiency). Sizes are concrete so it lowers.
from saibench_jupyter.sail import *


@ModelDefinition
def PretrainSegmentModel(task, inputType, outputType, embsize=16):
    embType = Tensor(embsize)
    m_base = Require(Model, Embedding, inputType, embType)
    if task == Pretrain:
        m_pretrain = Require(Model, Segment, embType, inputType)
        return Pipeline([m_base, m_pretrain])
    elif task == Segment:
        m_task = Require(Model, task, embType, outputType)
        return Pipeline(m_base, m_task)
    else:
        Fail("don't know how to solve.")


@ProblemDefinition
def BlobSegmentation(epochs=2):
    pretrain_data = Input("dataset:blobs/images").Image()
    labeled_data = [Input("dataset:blobs/images").Image(), Input("dataset:blobs/masks").Image()]
    for unlabeled in pretrain_data:
        Train.Pretrain(unlabeled)
    train_data, test_data = RandomSplit(labeled_data, 0.8)
    train_stages = Chunks(train_data, 10)
    for i in range(10):
        train_current = sum(train_stages[0:i+1])
        for x, y in train_current:
            Train.Segment(x, y)
        for x, y in test_data:
            Test.Segment(x, y)


@ModelDefinition
def ConvEncoder(task, inputType, outputType, channels=4):
    if task != Embedding: Fail("only embeds images")
    return Pipeline([Conv2d(channels, 3), Relu(), MaxPool2d(2), Flatten(), Linear(outputType.dims)])


@ModelDefinition
def DenseDecoder(task, inputType, outputType, hidden=32):
    if task != Segment: Fail("only decodes embeddings into masks")
    return Pipeline([Convert(inputType, Tensor), Linear(hidden), Relu(), Linear(outputType.Size),
                     Sigmoid(), Convert(Tensor, outputType)])


@MetricDefinition
def MaskError():
    return sum(L2Error(y0, y) for (_, y0, y) in Test.Segment) / len(Test.Segment)
