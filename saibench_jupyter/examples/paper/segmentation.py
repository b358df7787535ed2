# Paper Fig. 8 (electron-microscopy segmentation with pretraining) as SAIL.
# Edits forced by invalid Python: `0..i` -> `0:i+1`; the misspelt `labeld_data` (a NameError)
# -> `labeled_data`; a stray `,` after the labeled-data list removed.
from saibench_jupyter.sail import *


@ModelDefinition
def PretrainSegmentModel(task, inputType, outputType, embsize):
    embType = Tensor(embsize)
    # base model
    m_base = Require(Model, Embedding, inputType, embType)
    if task == Pretrain:
        # pretrain decoder
        m_pretrain = Require(Model, Segment, embType, inputType)
        return Pipeline([ m_base, m_pretrain ])
    elif task == Segment:
        # task decoder
        m_task = Require(Model, task, embType, outputType)
        return Pipeline( m_base, m_task )
    else:
        Fail("don't know how to solve.")


@ProblemDefinition
def ElectronMicroscopySegmentation():
    pretrain_data = Input("CEM500K").Image()
    labeled_data = [
        Input("cell0_slice1.img").Image(),
        Input("cell0_slice1.msk").Image()]
    for unlabled in pretrain_data:
        Train.Pretrain(unlabled)
    train_data, test_data = RandomSplit(labeled_data, 0.9)
    train_stages = Chunks(train_data, 10)
    for i in range(10):
        train_current = sum(train_stages[0:i+1])
        for x,y in train_current:
            Train.Segment(x,y)
        for x,y in test_data:
            Test.Segment(x,y)


@ModelDefinition
def ConvEncoder(task, inputType, outputType, channels=8):
    """A small convolutional encoder from an image to an embedding."""
    if task != Embedding: Fail("only embeds images")
    return Pipeline([Conv2d(channels, 3), Relu(), MaxPool2d(2), Flatten(), Linear(outputType.dims)])


@ModelDefinition
def DenseDecoder(task, inputType, outputType, hidden=64):
    """Decodes an embedding into a per-pixel mask."""
    if task != Segment: Fail("only decodes embeddings into masks")
    return Pipeline([Convert(inputType, Tensor), Linear(hidden), Relu(), Linear(outputType.Size),
                     Sigmoid(), Convert(Tensor, outputType)])
