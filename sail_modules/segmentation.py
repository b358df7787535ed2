"""Segmentation with pretraining and sample-efficiency stages (paper Fig. 8), and an Otsu baseline.

The images are generated, with exact masks: cell-like blobs (one to three ellipses whose
intensity peaks at the centre, blurred slightly) under uneven illumination (a linear ramp
in a random direction) with Gaussian noise, 32 x 32 pixels. The ramp makes a dim cell on
the dark side about as bright as the background on the bright side, so one global
threshold (Otsu's) cannot be right everywhere, while a convolutional model that compares
a pixel with its neighbourhood can. Nothing downloads: the images come from fixed seeds.
For a qualitative look at real photographs, apply :func:`otsu_mask`, and a trained model
through :func:`tiled_mask`, to scikit-image's bundled ``coins`` or ``cell`` (they have no
masks, so they stay out of the metrics).
"""

import numpy as np
from scipy.ndimage import gaussian_filter

from saibench_jupyter.sail import *
from saibench_jupyter.sail import register_dataset

SEGMENT_SIZE = 32
#: images for pretraining (no masks), and labelled ones (a fifth of them kept for testing)
SEGMENT_UNLABELLED, SEGMENT_LABELLED = 100, 240


def segment_blob_images(n, seed, size=SEGMENT_SIZE):
    """``n`` generated cell-like images and their exact masks, as float32 ``(size, size, 1)`` arrays.

    Every image holds one to three ellipses (semi-axes 3 to 8 pixels, any orientation;
    they may overlap), about 15 % of the pixels. A cell's intensity peaks at its centre
    and is blurred (sigma 0.8 pixels), so edges are soft while the mask stays the exact
    ellipse. Illumination varies linearly in a random direction, from about 0.4 to 1.6 across
    the image (further in the corners); the noise is Gaussian (0.04); values are clipped to 0..1.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images, masks = [], []
    for _ in range(n):
        mask = np.zeros((size, size), bool)
        body = np.zeros((size, size))
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(5, size - 5, 2)
            a, b, angle = rng.uniform(4, 8), rng.uniform(3, 6), rng.uniform(0, np.pi)
            u = ((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)) / a
            v = (-(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)) / b
            r2 = u * u + v * v
            mask |= r2 <= 1
            body = np.maximum(body, np.where(r2 <= 1, rng.uniform(0.7, 1.0) * (0.75 + 0.25 * (1 - r2)), 0.0))
        direction = rng.uniform(0, 2 * np.pi)
        ramp = ((xx - size / 2) * np.cos(direction) + (yy - size / 2) * np.sin(direction)) / size
        image = (1.0 + 1.2 * ramp) * (0.2 + 0.45 * gaussian_filter(body, 0.8))
        image += rng.normal(scale=0.04, size=image.shape)
        images.append(np.clip(image, 0, 1).astype(np.float32)[..., None])
        masks.append(mask.astype(np.float32)[..., None])
    return images, masks


def _unlabelled():
    return {"images": segment_blob_images(SEGMENT_UNLABELLED, seed=11)[0]}


def _labelled():
    images, masks = segment_blob_images(SEGMENT_LABELLED, seed=12)
    return {"images": images, "masks": masks}


register_dataset("segment_blobs_unlabelled", {"images": Image(SEGMENT_SIZE, SEGMENT_SIZE, 1)}, _unlabelled,
                 "generated cell-like blob images without masks, for pretraining")
register_dataset("segment_blobs", {"images": Image(SEGMENT_SIZE, SEGMENT_SIZE, 1),
                                   "masks": Image(SEGMENT_SIZE, SEGMENT_SIZE, 1)}, _labelled,
                 "generated cell-like blob images with their exact masks")


def otsu_mask(image):
    """The foreground where ``image`` exceeds Otsu's global threshold (``skimage.filters.threshold_otsu``).

    Takes an ``(h, w)`` or ``(h, w, 1)`` array; gives a float32 mask of the same shape.
    A constant image has no threshold: its mask is empty.
    """
    from skimage.filters import threshold_otsu

    image = np.asarray(image, dtype=np.float32)
    if float(image.max()) == float(image.min()):
        return np.zeros_like(image)
    return (image > threshold_otsu(image)).astype(np.float32)


def tiled_mask(predict, image, size=SEGMENT_SIZE, peak=0.6):
    """The mask of an image of any size from a model of ``size`` x ``size`` images, window by window.

    ``predict`` maps a batch of ``(size, size, 1)`` images to masks of that shape (a kept
    model's ``predict``). The image is scaled to 0..``peak``, the range of the generated
    images (their brightest cells reach about 0.65: a model sees what it was trained on),
    and cut into windows that overlap by half, with the edges mirrored; each window gives
    its central half, away from the zero padding its convolutions see at its border, so no
    seams show. Returns a float32 ``(h, w)`` mask of values in 0..1.
    """
    image = np.asarray(image, dtype=np.float32).squeeze()
    low, high = float(image.min()), float(image.max())
    image = peak * (image - low) / (high - low) if high > low else np.zeros_like(image)
    step, margin = size // 2, size // 4
    h, w = image.shape
    rows, cols = -(-h // step), -(-w // step)
    padded = np.pad(image, ((margin, rows * step - h + margin), (margin, cols * step - w + margin)), mode="reflect")
    windows = [padded[i * step:i * step + size, j * step:j * step + size, None]
               for i in range(rows) for j in range(cols)]
    centres = slice(margin, margin + step)
    masks = np.asarray(predict(windows)).reshape(rows, cols, size, size)[:, :, centres, centres]
    return masks.transpose(0, 2, 1, 3).reshape(rows * step, cols * step)[:h, :w].astype(np.float32)


def segment_iou(truth, predicted):
    """Intersection over union of two masks cut at 0.5 (1 when both are empty)."""
    t, p = np.asarray(truth) > 0.5, np.asarray(predicted) > 0.5
    union = float((t | p).sum())
    return 1.0 if union == 0 else float((t & p).sum()) / union


def segment_dice(truth, predicted):
    """The Dice coefficient of two masks cut at 0.5 (1 when both are empty)."""
    t, p = np.asarray(truth) > 0.5, np.asarray(predicted) > 0.5
    total = float(t.sum() + p.sum())
    return 1.0 if total == 0 else 2.0 * float((t & p).sum()) / total


@ProblemDefinition
def SegmentBlobs(stages, epochs=8, learning_rate=1e-2, batch_size=8):
    """Paper Fig. 8 on generated cell images: pretrain on unlabelled images, then segment in stages.

    Every stage trains from scratch: first on the 100 unlabelled images (``Train.Pretrain``,
    reconstruction), then on a growing share of the 192 labelled training images
    (``Train.Segment``); the same 48 held-out images test every stage (``Test.Segment``),
    so precision against work traces the model's sample efficiency.

    Parameters
    ----------
    stages : int
        Chunks the labelled training images are cut into, one more per stage (suggested: 10
        as in the paper, 3 for a quick look).
    epochs : int
        Training epochs per task and stage.
    learning_rate : float
        Adam's step size (small models on few images learn faster with a large one).
    batch_size : int
        Images per optimiser step (small: the first stages hold few images).
    """
    Suggest(stages, 3, 10)
    image = Image(32, 32, 1)  # literal: discovery sees support constants only as placeholders
    pretrain_data = Input("dataset:segment_blobs_unlabelled/images", image).Image()
    labeled_data = [Input("dataset:segment_blobs/images", image).Image(),
                    Input("dataset:segment_blobs/masks", image).Image()]
    for unlabeled in pretrain_data:
        Train.Pretrain(unlabeled)
    train_data, test_data = RandomSplit(labeled_data, 0.8)
    train_stages = Chunks(train_data, stages)
    for i in range(stages):
        train_current = sum(train_stages[0:i+1])
        for x, y in train_current:
            Train.Segment(x, y)
        for x, y in test_data:
            Test.Segment(x, y)


@ModelDefinition
def PretrainSegmentModel(task, inputType, outputType, embsize):
    """The paper's model (Fig. 8): one encoder, pretrained by reconstruction, reused for segmentation.

    Pretraining trains the encoder with a reconstruction decoder; segmentation goes on
    from the same encoder (both tasks share its weights) with a mask decoder. The paper's
    body, plus a first check that declines inputs that are not images.

    Parameters
    ----------
    embsize : int
        The embedding's width (suggested: 8 * 32 * 32, eight feature maps of a 32 x 32
        image for the convolutional encoder).

    Accepts ``Pretrain`` and ``Segment`` on images; the encoder and both decoders are
    sub-models the planner finds (``Require``): an ``Embedding`` model and two ``Segment``
    models from the embedding.
    """
    Suggest(embsize, 8 * 32 * 32)
    if not isinstance(inputType, Image):
        Fail("encodes images only")
    embType = Tensor(embsize)
    # base model
    m_base = Require(Model, Embedding, inputType, embType)
    if task == Pretrain:
        # pretrain decoder
        m_pretrain = Require(Model, Segment, embType, inputType)
        return Pipeline([m_base, m_pretrain])
    elif task == Segment:
        # task decoder
        m_task = Require(Model, task, embType, outputType)
        return Pipeline(m_base, m_task)
    else:
        Fail("don't know how to solve.")


@ModelDefinition
def SegmentConvEncoder(task, inputType, outputType, kernel=3):
    """A fully convolutional encoder: an image becomes feature maps of its own size, flattened.

    The embedding's width fixes how many feature maps there are (``Tensor(8 * 32 * 32)`` is
    eight maps of a 32 x 32 image); keeping the pixel grid lets a decoder draw masks.

    Parameters
    ----------
    kernel : int
        Side of its two convolutions (odd; zero padding keeps the image size).

    Accepts ``Embedding`` from an ``Image`` to a flat ``Tensor`` holding whole feature maps.
    """
    if task != Embedding:
        Fail("only embeds images")
    if not isinstance(inputType, Image) or not isinstance(outputType, Tensor):
        Fail("embeds images into flat tensors only")
    pixels = inputType.height * inputType.width
    if outputType.Size is None or outputType.Size % pixels != 0:
        Fail("the embedding must hold whole feature maps of the image")
    maps = outputType.Size // pixels
    return Pipeline([Conv2d(maps, kernel, padding=kernel // 2), Relu(),
                     Conv2d(maps, kernel, padding=kernel // 2), Relu(), Flatten()])


@ModelDefinition
def SegmentConvDecoder(task, inputType, outputType, kernel=3):
    """Decodes flattened feature maps into an image or a per-pixel mask (values in 0..1, by a sigmoid).

    Parameters
    ----------
    kernel : int
        Side of its two convolutions (odd; zero padding keeps the image size).

    Accepts ``Segment`` from a flat ``Tensor`` of whole feature maps to a one-channel ``Image``.
    """
    if task != Segment:
        Fail("only decodes embeddings into masks")
    if not isinstance(inputType, Tensor) or not isinstance(outputType, Image) or outputType.channels != 1:
        Fail("decodes flat feature maps into one-channel images only")
    pixels = outputType.height * outputType.width
    if inputType.Size is None or inputType.Size % pixels != 0:
        Fail("the embedding does not hold whole feature maps of the image")
    maps = inputType.Size // pixels
    return Pipeline([Convert(inputType, Tensor(maps, outputType.height, outputType.width)),
                     Conv2d(maps, kernel, padding=kernel // 2), Relu(),
                     Conv2d(1, kernel, padding=kernel // 2), Sigmoid(),
                     Convert(Tensor(1, outputType.height, outputType.width), outputType)])


@ModelDefinition
def OtsuSegment(task, inputType, outputType):
    """The classical baseline: Otsu's global threshold per image (scikit-image), no training.

    Accepts ``Segment`` of an image into a mask of the same shape, and ``Pretrain`` (nothing
    to learn: it passes images through, so a problem that pretrains can still compare it).
    """
    if not isinstance(inputType, Image) or not isinstance(outputType, Image):
        Fail("thresholds images into masks only")
    if task == Pretrain:
        return Solver(lambda x: x)
    if task != Segment:
        Fail("segments images only")
    return Solver(otsu_mask)


@MetricDefinition(better="higher")
def SegmentIoU():
    """Mean intersection over union of true and predicted masks (cut at 0.5) over ``Test.Segment``.

    An image whose masks are both empty counts as 1.
    """
    return sum(segment_iou(truth, predicted) for (_, truth, predicted) in Test.Segment) / len(Test.Segment)


@MetricDefinition(better="higher")
def SegmentDice():
    """Mean Dice coefficient, 2 |A ∩ B| / (|A| + |B|), of true and predicted masks over ``Test.Segment``.

    Masks are cut at 0.5; an image whose masks are both empty counts as 1.
    """
    return sum(segment_dice(truth, predicted) for (_, truth, predicted) in Test.Segment) / len(Test.Segment)
