"""The input preprocessing that fits the weights, and ImageNet class names.

Each set of weights was trained on images normalized one way; the modes are
keras.applications' (`keras.applications.imagenet_utils.preprocess_input`,
which does the work here), on RGB images with values in [0, 255]:

- "torch" (torchvision, timm): scale to [0, 1], then subtract ImageNet's mean
  (0.485, 0.456, 0.406) and divide by its std (0.229, 0.224, 0.225);
- "caffe" (keras.applications' ResNet50/101/152): RGB -> BGR, subtract the
  BGR mean (103.939, 116.779, 123.68), no scaling;
- "tf" (keras.applications' ResNet50V2/101V2/152V2, timm's resnetv2_*.a1h):
  scale to [-1, 1].

The class names (`imagenet_classes.txt`, shipped with the package): the 1000
WordNet ids of ImageNet-1k in index order (sorted; as TensorFlow Datasets'
`imagenet2012/labels.txt`) with torchvision's names
(`torchvision.models._meta._IMAGENET_CATEGORIES`, torchvision 0.29), which
are the synsets' first WordNet lemma except three disambiguated ones
("crane bird", "crane", "maillot tank suit"). keras.applications' own
`decode_predictions` downloads its class index at run time instead.
"""

import functools
import os

import numpy as np

from keras_resnets.utils.validation import UsageError
from keras_resnets.weights import pretrained

MODES = ("torch", "caffe", "tf")
_CLASSES_FILE = os.path.join(os.path.dirname(__file__), "imagenet_classes.txt")


def preprocessing_mode(weights, model=None):
    """"torch", "caffe" or "tf": how images are normalized for `weights`."""
    if isinstance(weights, pretrained.WeightSource):
        return weights.preprocessing
    if weights in MODES:
        return weights
    if isinstance(weights, str) and weights.startswith(("torchvision:", "timm:")):
        modes = {s.preprocessing for (m, n), s in pretrained.SOURCES.items() if n == weights}
        if len(modes) == 1:
            return modes.pop()
    if isinstance(weights, str) and model is not None:
        return pretrained.get_source(weights, getattr(model, "name", model)).preprocessing
    raise UsageError(
        f"preprocess_input: received weights={weights!r}"
        + ("" if model is None else f", model={model!r}")
        + f". Allowed: a mode {list(MODES)}, a WeightSource, a source name such as "
        "'torchvision:IMAGENET1K_V2' or 'timm:resnet50.a1_in1k', or 'imagenet' / "
        "'keras:imagenet' together with model= (their mode depends on the model: "
        "'caffe' for the v1 keras.applications weights, 'tf' for the v2)."
    )


def preprocess_input(x, weights="torch", model=None, data_format=None):
    """Normalizes RGB images in [0, 255] the way `weights` were trained.

    Args:
        x: images, a numpy array or tensor `(..., h, w, 3)` (or channels
            first with `data_format="channels_first"`), RGB, values 0..255.
        weights: a mode ("torch", "caffe", "tf"), a source name
            ("torchvision:IMAGENET1K_V2", "timm:resnet50.a1_in1k",
            "keras:imagenet", "imagenet") or a `WeightSource`.
        model: the registry name (or the model) the weights are for; needed
            with "imagenet" and "keras:imagenet".
        data_format: "channels_last" (default) or "channels_first".

    Returns:
        The preprocessed float images (a new array; the input is not changed).

    Example:

    >>> x = np.full((1, 224, 224, 3), 255.0)
    >>> preprocess_input(x, "torchvision:IMAGENET1K_V1")[0, 0, 0]  # doctest: +SKIP
    array([2.2489083, 2.4285715, 2.64     ], dtype=float32)
    """
    from keras.applications import imagenet_utils

    mode = preprocessing_mode(weights, model)
    if isinstance(x, np.ndarray):
        x = x.astype("float32")  # keras.applications scales numpy arrays in place
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode=mode)


@functools.lru_cache(maxsize=1)
def imagenet_classes():
    """[(wordnet_id, name)] of the 1000 ImageNet-1k classes, in index order."""
    with open(_CLASSES_FILE) as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f]


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each prediction, best first.

    Args:
        preds: `(batch, 1000)` probabilities or logits (a numpy array or
            tensor).
        top: int, how many classes per image. Defaults to `5`.

    Returns:
        One list per image of `(wordnet_id, class_name, score)` tuples, as
        `keras.applications.imagenet_utils.decode_predictions` returns.

    Example:

    >>> decode_predictions(np.eye(1000)[[1]], top=1)
    [[('n01443537', 'goldfish', 1.0)]]
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise UsageError(
            "`preds` must be ImageNet predictions of shape (batch, 1000); received "
            f"an array of shape {preds.shape}."
        )
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or not 1 <= top <= 1000:
        raise UsageError(f"`top` must be an integer in [1, 1000]; received top={top!r}.")
    classes = imagenet_classes()
    results = []
    for row in preds:
        best = np.argsort(-row, kind="stable")[:top]
        results.append([(*classes[i], float(row[i])) for i in best])
    return results
