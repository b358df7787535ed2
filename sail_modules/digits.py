"""Digits classification, a problem defined by cases (paper section 2, Fig. 2 and Fig. 5).

The paper's MNIST problem on data that ships with scikit-learn (1797 handwritten 8x8
digits, 10 classes), so nothing is downloaded. ``Digits`` reads them from the built-in
``dataset:digits`` provider; ``DigitsIdx`` writes the same digits once as real MNIST IDX
files and reads them back through ``Input("...idx3-ubyte")`` exactly as Fig. 2 reads
MNIST, which proves the paper's reader on real files. Both split the digits the same way
(80 % train, seed 0), so a model scores alike on both.

Models: the paper's MLP (Fig. 5), a small CNN, and two scikit-learn classifiers as
``Estimator`` models (the SciPy software runs them).
"""

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from saibench_jupyter.sail import *

#: Digits' split (RandomSplit([images, labels], 0.8, seed=0)), which DigitsIdx's files repeat.
DIGITS_TRAIN_FRACTION, DIGITS_SPLIT_SEED = 0.8, 0
#: MNIST's four file names (Fig. 2); t10k- is MNIST's name for its test set.
DIGITS_IDX_NAMES = {"train_images": "train-images.idx3-ubyte", "train_labels": "train-labels.idx1-ubyte",
                    "test_images": "t10k-images.idx3-ubyte", "test_labels": "t10k-labels.idx1-ubyte"}


def digits_idx_bytes(array):
    """``array`` (uint8) in MNIST's IDX format: two zero bytes, type 0x08 (unsigned byte), the
    rank, each size as a big-endian uint32, then the values in C order."""
    data = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, data.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in data.shape)
    return header + data.tobytes()


def digits_idx_arrays():
    """The four MNIST arrays of scikit-learn's digits: raw 0..16 intensities and labels, uint8,
    train and test split as ``RandomSplit(..., 0.8, seed=0)`` splits them."""
    from sklearn.datasets import load_digits

    d = load_digits()
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(d.target))
    cut = round(DIGITS_TRAIN_FRACTION * len(order))
    # load_digits' pixels are integer counts 0..16: uint8 holds them exactly.
    images, labels = d.images.astype(np.uint8), d.target.astype(np.uint8)
    return {"train_images": images[order[:cut]], "train_labels": labels[order[:cut]],
            "test_images": images[order[cut:]], "test_labels": labels[order[cut:]]}


def digits_cache_root():
    """Where generated data go: ``$SAIBENCH_CACHE/data`` or ``~/.cache/saibench/data`` (where pod
    environments also live), else the temp folder when that is not writable."""
    cache = os.environ.get("SAIBENCH_CACHE")
    try:
        home = Path(cache) if cache else Path.home() / ".cache" / "saibench"
    except RuntimeError:  # no home folder (a bare pod): the temp folder will do
        home = Path(tempfile.gettempdir()) / "saibench"
    for root in (home, Path(tempfile.gettempdir()) / "saibench"):
        try:
            (root / "data").mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(root / "data", os.W_OK):
            return root / "data"
    raise OSError(f"no writable folder for the digits IDX files (tried {home} and {tempfile.gettempdir()})")


def digits_idx_folder():
    """A folder holding the digits as MNIST's four IDX files, written once.

    The folder is named by a hash of the files' contents, so it is written the first time
    and reused after (also by later pods); it is filled under a temporary name and renamed
    into place, so pods that race write it once and never see half a file.
    """
    files = {DIGITS_IDX_NAMES[k]: digits_idx_bytes(v) for k, v in digits_idx_arrays().items()}
    digest = hashlib.sha256(b"".join(n.encode() + b"\0" + files[n] for n in sorted(files))).hexdigest()[:16]
    root = digits_cache_root()
    folder = root / f"digits-idx-{digest}"
    if all((folder / n).is_file() for n in files):
        return folder
    staging = Path(tempfile.mkdtemp(prefix=".digits-idx-", dir=root))
    for name, data in files.items():
        (staging / name).write_bytes(data)
    try:
        staging.rename(folder)
    except OSError:
        # Another pod renamed its copy first (same name, same bytes), or a file of the folder
        # was deleted: ours fills whatever is missing, atomically per file.
        for name in files:
            if (folder / name).is_file():
                (staging / name).unlink()
            else:
                os.replace(staging / name, folder / name)
        staging.rmdir()
    return folder


@ProblemDefinition
def Digits(epochs):
    """Handwritten digits (scikit-learn's 8x8, 1797 images), classified into 10 classes.

    The paper's MNIST problem (Fig. 2) on data that ships with scikit-learn. Images are
    ``Tensor(8, 8)`` scaled to [0, 1], labels one-hot ``Tensor(10)``; 1438 train and 359 test
    records (``RandomSplit``, 80 %, seed 0). The test collection is evaluated at every epoch.

    Parameters
    ----------
    epochs : int
        Training epochs, one checkpoint each (suggested: 10).
    """
    Suggest(epochs, 10)
    images = Input("dataset:digits/images")
    labels = Input("dataset:digits/labels", Scalar).OneHot(Tensor(10))
    train, test = RandomSplit([images, labels], 0.8, seed=0)
    for x, y in train:
        Train.Classify(x, y)
    for x, y in test:
        Test.Classify(x, y)


@ProblemDefinition
def DigitsIdx(epochs):
    """The digits read back from real MNIST IDX files, exactly as the paper's Fig. 2 reads MNIST.

    Support code writes scikit-learn's digits once as ``train-images.idx3-ubyte``,
    ``train-labels.idx1-ubyte``, ``t10k-images.idx3-ubyte`` and ``t10k-labels.idx1-ubyte``
    (LeCun's big-endian format, raw 0..16 intensities) into a cache folder named by their
    contents; ``Input`` reads them back. Pixels are scaled to [0, 1] as ``dataset:digits``
    scales them, and the split is ``Digits``' own: a model scores alike on both problems.

    Parameters
    ----------
    epochs : int
        Training epochs, one checkpoint each (suggested: 10).
    """
    Suggest(epochs, 10)
    folder = digits_idx_folder()
    data_type = Tensor(8, 8)
    label_type = Tensor(10)
    train_data = Input(f"{folder}/train-images.idx3-ubyte", data_type)
    train_label = Input(f"{folder}/train-labels.idx1-ubyte", Scalar).OneHot(label_type)
    test_data = Input(f"{folder}/t10k-images.idx3-ubyte", data_type)
    test_label = Input(f"{folder}/t10k-labels.idx1-ubyte", Scalar).OneHot(label_type)
    for x, y in zip(train_data, train_label):
        Train.Classify(x / 16.0, y)
    for x, y in zip(test_data, test_label):
        Test.Classify(x / 16.0, y)


@ModelDefinition
def MLP(task, inputType, outputType, hiddenSize):
    """The paper's multi-layer perceptron (Fig. 5): one hidden ReLU layer.

    Flattens any input that converts to a tensor, then ``Linear(hiddenSize)``, ``Relu``,
    ``Linear`` to the output's size; a softmax for classification, nothing for enhancement.

    Parameters
    ----------
    hiddenSize : int
        Width of the hidden layer (suggested, as in the paper: 128, 256, 512, 1024).

    Accepts
    -------
    ``Classify`` and ``Enhance`` tasks; declines the others.
    """
    Suggest(hiddenSize, 128, 256, 512, 1024)
    if task == Classify:
        f = Softmax(outputType.dims)
    elif task == Enhance:
        f = id
    else:
        Fail(f"don't know how to solve {task}: the MLP classifies and enhances")
    return Pipeline([
        Convert(inputType, Tensor),
        Linear(hiddenSize), Relu(),
        Linear(outputType.dims), f,
        Convert(Tensor, outputType),
    ])


@ModelDefinition
def CNN(task, inputType, outputType, channels):
    """A small convolutional classifier: two 3x3 convolutions with ReLU and 2x2 max pooling, then a linear layer.

    ``Conv2d(channels) - Relu - MaxPool2d(2) - Conv2d(2 * channels) - Relu - MaxPool2d(2) -
    Flatten - Linear - Softmax``; the convolutions pad by one, so each pooling halves the sides.

    Parameters
    ----------
    channels : int
        Feature maps of the first convolution; the second has twice as many (suggested: 16).

    Accepts
    -------
    ``Classify`` on image-shaped inputs at least 4x4: ``Image(h, w, c)``, ``Tensor(h, w)``
    (one channel) or ``Tensor(c, h, w)``. Declines other tasks and flat or unsized inputs.
    """
    Suggest(channels, 16)
    if task != Classify:
        Fail("the CNN classifies only")
    dims = inputType.dims
    if isinstance(inputType, Image):
        planes = inputType
    elif isinstance(inputType, Tensor) and len(dims) == 2:
        planes = Tensor(1, dims[0], dims[1])
    elif isinstance(inputType, Tensor) and len(dims) == 3:
        planes = inputType
    else:
        Fail(f"the CNN needs image-shaped input (an Image, Tensor(h, w) or Tensor(c, h, w)), not {inputType!r}")
    sides = planes.dims[:2] if isinstance(planes, Image) else planes.dims[1:]
    if any(d is None for d in planes.dims) or min(sides) < 4:
        Fail(f"the CNN pools twice: it needs known sizes and sides of at least 4 pixels, not {inputType!r}")
    return Pipeline([
        Convert(inputType, planes),
        Conv2d(channels, 3, padding=1), Relu(), MaxPool2d(2),
        Conv2d(2 * channels, 3, padding=1), Relu(), MaxPool2d(2),
        Flatten(),
        Linear(outputType.dims), Softmax(outputType.dims),
        Convert(Tensor, outputType),
    ])


def digits_estimator(kind, **options):
    """A fresh scikit-learn classifier (imported here, so pods of other models never pay for the import)."""
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression as Classifier
    else:
        from sklearn.neighbors import KNeighborsClassifier as Classifier
    return Classifier(**options)


@ModelDefinition
def LogisticRegression(task, inputType, outputType, C):
    """scikit-learn's multinomial logistic regression (L-BFGS) as an ``Estimator``, fitted once per stage.

    Parameters
    ----------
    C : float
        Inverse L2 regularisation strength (suggested: 1.0).

    Accepts
    -------
    ``Classify`` on any input that converts to a flat tensor. Runs on the SciPy software.
    """
    Suggest(C, 1.0)
    if task != Classify:
        Fail("logistic regression classifies only")
    return Pipeline([Convert(inputType, Tensor),
                     Estimator(digits_estimator("logistic", C=C, max_iter=1000))])


@ModelDefinition
def KNeighbors(task, inputType, outputType, neighbors):
    """scikit-learn's k-nearest-neighbours classifier as an ``Estimator``: no training beyond storing the data.

    Parameters
    ----------
    neighbors : int
        Neighbours that vote (suggested: 3).

    Accepts
    -------
    ``Classify`` on any input that converts to a flat tensor. Runs on the SciPy software.
    """
    Suggest(neighbors, 3)
    if task != Classify:
        Fail("k-nearest neighbours classifies only")
    return Pipeline([Convert(inputType, Tensor),
                     Estimator(digits_estimator("neighbors", n_neighbors=neighbors))])
