"""`keras_resnets.predict`: the top classes of images, with their probabilities.

The model is a trained `.keras` file (what `keras-resnets train` or `tune`
saves: it takes raw `uint8` images and knows its class names and how its
images are resized, `ResNetModel.set_labels`), a file `keras-resnets export`
wrote from one (a `.tflite` file, run by LiteRT, or a SavedModel folder; its
class names and image transform from the `summary.json` of the run beside
it), or a registered model name with pretrained weights (the ImageNet
classifier, its images normalized as the weights expect, inside the model).
Images are read with `keras.utils.load_img` (any format Pillow reads), made
RGB, and brought to the model's size as its evaluation data was: resized to
the square ("resize"), or the shorter side resized to size / 0.875 and the
centre cropped ("center_crop", ImageNet's evaluation and the default of
named weights); the same TensorFlow ops as `keras_resnets.data`'s evaluation
pipeline, so that a PNG scores what `model.evaluate` scores on it.
"""

import dataclasses
import json
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_resnets.data import augment as augment_lib
from keras_resnets.layers.preprocessing import ImagePreprocessing
from keras_resnets.models.builder import build_model, weights_build_arguments
from keras_resnets.models.registry import get_spec
from keras_resnets.models.saving import load_model
from keras_resnets.utils.file_kinds import image_files, is_exported_model
from keras_resnets.weights.pretrained import load_weights
from keras_resnets.weights.preprocessing import imagenet_classes
from keras_resnets.utils.validation import UsageError

DEFAULT_TOP = 5
DEFAULT_BATCH_SIZE = 32


class NoRunSummaryWarning(UserWarning):
    """An exported file read without the `summary.json` of its run: its
    class names and image transform are guessed."""


@dataclasses.dataclass
class Classifier:
    """A model ready to classify images.

    Attributes:
        model: a `keras.Model` taking images of `image_size` (uint8, or
            0..255 floats for a model with a float input), or the path of
            an exported file.
        class_names: the name of each output.
        wordnet_ids: ImageNet's WordNet ids of the outputs, or None.
        image_size: the side the images are brought to.
        image_transform: "resize" or "center_crop".
        softmax: whether the outputs are logits, to go through a softmax.
        probabilities: whether the outputs are known to be probabilities
            (an int8 file's, dequantized, sum to 1 only roughly); if
            neither, outputs that do not sum to 1 go through a softmax.
        run: the model as a function of a uint8 batch `[n, size, size, 3]`
            (a NumPy array) to its outputs; by default `model`'s
            `predict_on_batch`.
    """

    model: object
    class_names: list
    wordnet_ids: list
    image_size: int
    image_transform: str
    softmax: bool
    run: object = None
    probabilities: bool = False

    def __post_init__(self):
        if self.run is None:
            model, dtype = self.model, self.model.inputs[0].dtype
            self.run = lambda batch: model.predict_on_batch(batch.astype(dtype))


def _fixed_side(model):
    h, w = tuple(model.inputs[0].shape[1:3])
    return int(h) if h is not None and h == w else None


def _is_probability(model):
    try:
        activation = model.get_layer("predictions").activation
    except ValueError:  # no layer of that name: tell by the outputs later
        return None
    return getattr(activation, "__name__", str(activation)) == "softmax"


def _neighbour_summary(path):
    """The `summary.json` of the run beside `path` (a file or a SavedModel
    folder), or {}."""
    summary = os.path.join(os.path.dirname(os.path.abspath(path)), "summary.json")
    if not os.path.isfile(summary):
        return {}
    try:
        with open(summary) as f:
            found = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"{summary}, beside {path!r}, is not a readable training summary ({e}).") from None
    return found if isinstance(found, dict) else {}


def _names(count, class_names=None):
    """(class names, WordNet ids): the given names, ImageNet's for 1000
    outputs, else the indices."""
    if class_names is not None:
        if len(class_names) != count:
            raise UsageError(f"The model has {count} outputs but {len(class_names)} class names.")
        return list(class_names), None
    if count == 1000:
        classes = imagenet_classes()
        return [name for _, name in classes], [wnid for wnid, _ in classes]
    return [str(i) for i in range(count)], None


def load_classifier(model, weights=None, image_size=None):
    """A `Classifier` from a `.keras` path, a `keras.Model` or a model name.

    Args:
        model: the path of a `.keras` file, of a `.tflite` file or
            SavedModel folder that `keras-resnets export` wrote (taking raw
            uint8 images), a `keras.Model`, or a registered model name.
        weights: with a model name: what the builders' `weights=` takes
            (default "imagenet"): a source or a checkpoint file with a
            classifier. Not with a `.keras` file or a model.
        image_size: the side images are brought to; defaults to the model's
            input side, else (a model taking any size) its architecture's
            reference size (224, or 32 for the CIFAR nets).
    """
    exported = isinstance(model, (str, os.PathLike)) and is_exported_model(model)
    if (isinstance(model, str) and not exported and not model.lower().endswith(".keras")
            and not os.path.isfile(model)):
        return _named_classifier(model, "imagenet" if weights is None else weights, image_size)
    if weights is not None:
        raise UsageError(
            f"`weights` are for a model name; received weights={weights!r} with model={model!r}, which has "
            "its own. Allowed: weights=None."
        )
    if exported:
        return _exported_classifier(os.fspath(model), image_size)
    path = None
    if not isinstance(model, keras.Model):
        path = os.fspath(model)
        model = load_model(path, compile=False)
    class_names = getattr(model, "class_names", None) or (_neighbour_summary(path).get("class_names")
                                                           if path else None)
    names, ids = _names(int(model.outputs[0].shape[-1]), class_names)
    side = _fixed_side(model)
    if image_size is not None and side is not None and image_size != side:
        raise UsageError(f"`image_size` must be the model's input side, {side}; received image_size={image_size}.")
    spec_size = 224
    try:
        spec_size = get_spec(model.name).default_size
    except ValueError:
        pass
    return Classifier(model, names, ids, side or image_size or spec_size,
                      getattr(model, "image_transform", None) or "center_crop",
                      _is_probability(model) is False, probabilities=_is_probability(model) is True)


def _exported_classifier(path, image_size):
    """A `Classifier` running an exported file: a `.tflite` file in LiteRT
    (XNNPACK) or a SavedModel's serving signature. It must take raw uint8
    images (as the files of a model trained by `keras-resnets train` do, or
    those exported with `mean` and `std`)."""
    summary = _neighbour_summary(path)
    if path.lower().endswith(".tflite"):
        from keras_resnets.export.runtime import _run_interpreter, load_interpreter, tflite_ops
        from keras_resnets.utils.validation import check_existing_file

        check_existing_file("model", path, ("tflite",))
        interpreter = load_interpreter(path)
        last = [op["op"] for op in tflite_ops(path) if op["op"] not in ("QUANTIZE", "DEQUANTIZE")][-1:]
        probabilities = last == ["SOFTMAX"]
        detail = interpreter.get_input_details()[0]
        shape = [int(d) for d in detail.get("shape_signature", detail["shape"])]
        dtype, scaled = np.dtype(detail["dtype"]).name, bool(detail["quantization"][0])
        classes = int(interpreter.get_output_details()[0]["shape"][-1])

        def run(batch):
            return _run_interpreter(interpreter, batch)
    else:
        from keras_resnets.export.serving import INPUT_NAME, SIGNATURE

        try:
            served = tf.saved_model.load(path).signatures[SIGNATURE]
        except (OSError, ValueError, KeyError) as e:
            raise UsageError(f"{path!r} is not a SavedModel with a {SIGNATURE!r} signature ({e}).") from None
        spec = served.structured_input_signature[1].get(INPUT_NAME)
        if spec is None:
            raise UsageError(f"{path!r}'s {SIGNATURE!r} signature takes no {INPUT_NAME!r}: not a file "
                             "keras-resnets export wrote.")
        shape, dtype, scaled = [-1 if d is None else int(d) for d in spec.shape], spec.dtype.name, False
        key = next(iter(served.structured_outputs))
        probabilities = key == "probabilities"  # a classifier's signature ends with its softmax
        classes = int(served.structured_outputs[key].shape[-1])

        def run(batch):
            return served(**{INPUT_NAME: tf.constant(batch)})[key].numpy()
    if dtype != "uint8" or scaled:
        raise UsageError(
            f"{path!r} takes {dtype} inputs{' (quantized)' if scaled else ''}, a float model's; predict reads "
            "raw uint8 images: export a model that takes them (one trained by keras-resnets train), or "
            "a float model with --mean and --std."
        )
    side = shape[1] if len(shape) == 4 and shape[1] == shape[2] and shape[1] > 0 else None
    if image_size is not None and side is not None and image_size != side:
        raise UsageError(f"`image_size` must be the model's input side, {side}; received image_size={image_size}.")
    size = side or image_size or summary.get("image_size")
    if not size:
        raise UsageError(f"{path!r} takes images of any size and no summary.json beside it says which: "
                         "pass image_size (--image-size).")
    if not summary:
        warnings.warn(f"No summary.json beside {path!r}: its {classes} classes are named by their index and "
                      "images are brought to size by a centre crop. Keep an exported file in its run folder "
                      "(export's default) for the run's class names and image transform.",
                      NoRunSummaryWarning, stacklevel=3)
    names, ids = _names(classes, summary.get("class_names"))
    return Classifier(path, names, ids, int(size), summary.get("image_transform") or "center_crop", False,
                      run=run, probabilities=probabilities)


def _named_classifier(name, weights, image_size):
    """The registered model `name` with `weights` and their classifier,
    taking uint8 images normalized as the weights expect."""
    spec = get_spec(name)
    source, chosen = weights_build_arguments(spec.name, weights, include_top=True)
    classes = source.classes if source is not None else None
    mode = getattr(source, "preprocessing", None)
    if source is None or classes is None or mode is None:
        raise UsageError(
            f"`weights` must hold a classifier to predict with (ImageNet weights, or a checkpoint with "
            f"its head); received weights={weights!r}."
        )
    inputs = keras.Input((None, None, 3), dtype="uint8", name="image")
    x = ImagePreprocessing(mode, name="normalize")(inputs)
    net = build_model(spec.name, input_tensor=x, classes=classes, **chosen)
    load_weights(net, source, include_top=True)
    names, ids = _names(classes)
    return Classifier(net, names, ids, image_size or spec.default_size, "center_crop", False)


def _read(path):
    """An image file as a uint8 RGB array [h, w, 3]."""
    try:
        image = keras.utils.load_img(path, color_mode="rgb")
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, ...
        raise UsageError(f"Cannot read the image {path!r}: {str(e).splitlines()[0]}") from None
    return keras.utils.img_to_array(image, dtype="uint8")


def _prepare(image, classifier):
    image = tf.convert_to_tensor(image, tf.uint8)
    size = classifier.image_size
    if classifier.image_transform == "center_crop":
        return augment_lib.imagenet_eval_transform(image, size)
    if image.shape[0] == size and image.shape[1] == size:
        return image
    return augment_lib.resize_image(image, size)


def _expand(images):
    """[(label, loader)] of `images`: paths of files or folders, or an array."""
    if isinstance(images, np.ndarray) or tf.is_tensor(images):
        array = np.asarray(images)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
            raise UsageError(f"`images` must be [n, h, w, channels] images; received an array of shape "
                             f"{array.shape}.")
        return [(i, lambda a=a: a[..., :3] if a.shape[-1] != 1 else np.repeat(a, 3, -1)) for i, a in
                enumerate(array.astype("uint8"))]
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    found = []
    for item in images:
        item = os.fspath(item)
        if os.path.isdir(item):
            files = image_files(item)
            if not files:
                raise UsageError(f"`images`: the folder {item!r} holds no image files.")
            found.extend(files)
        elif os.path.isfile(item):
            found.append(item)
        else:
            raise UsageError(f"`images`: no such file or folder: {item!r}.")
    return [(path, lambda p=path: _read(p)) for path in found]


def predict_batches(classifier, images, top=None, batch_size=DEFAULT_BATCH_SIZE):
    """Yields one result per image (see `predict`), a batch at a time."""
    count = len(classifier.class_names)
    top = min(DEFAULT_TOP, count) if top is None else top
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or not 1 <= top <= count:
        raise UsageError(f"`top` must be an integer from 1 to the model's {count} classes; received top={top!r}.")
    items = _expand(images)
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        batch = np.stack([_prepare(load(), classifier).numpy() for _, load in chunk])
        scores = np.asarray(classifier.run(batch), dtype="float64")
        summing_to_one = np.all(scores >= 0) and np.allclose(scores.sum(-1), 1, atol=1e-3)
        if classifier.softmax or not (classifier.probabilities or summing_to_one):
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
        for (label, _), row in zip(chunk, scores):
            best = np.argsort(-row, kind="stable")[:top]
            result = []
            for i in best:
                entry = {"index": int(i), "class": classifier.class_names[i], "probability": float(row[i])}
                if classifier.wordnet_ids:
                    entry["wordnet_id"] = classifier.wordnet_ids[i]
                result.append(entry)
            yield {"image": label, "top": result}


def predict(model, images, weights=None, top=None, image_size=None, batch_size=DEFAULT_BATCH_SIZE):
    """The `top` classes of each image, best first, with probabilities.

    Args:
        model: a trained `.keras` file (its class names come from the
            model, or from the `summary.json` of its run), a `.tflite` file
            or SavedModel folder exported from one (run by LiteRT or
            TensorFlow; class names from the run's `summary.json`), a
            `keras.Model`, or a registered model name (with `weights`,
            default "imagenet": ImageNet's class names).
        images: an image file or folder (searched recursively for the image
            files Pillow reads), a list of them, or a uint8 array
            `[n, h, w, 3]`; any size, brought to the model's.
        weights: with a model name: "imagenet", a source name or a
            checkpoint file with its classifier.
        top: classes per image; defaults to 5 (or all, if fewer).
        image_size: with a model taking any size, the side images are
            brought to (default: the architecture's reference size).
        batch_size: images per forward pass.

    Returns:
        A list with one dict per image: `{"image": path (or index in the
        array), "top": [{"index", "class", "probability"[, "wordnet_id"]},
        ...]}`.

    Example:

    >>> keras_resnets.predict("saved_models/resnet20-digits/model.keras", "digits/")  # doctest: +SKIP
    [{'image': 'digits/0/0000.png', 'top': [{'index': 0, 'class': '0', 'probability': 0.99}, ...]}, ...]
    >>> keras_resnets.predict("resnet50", "cat.jpg", weights="imagenet", top=1)  # doctest: +SKIP
    """
    classifier = load_classifier(model, weights, image_size)
    return list(predict_batches(classifier, images, top, batch_size))


def format_line(result, width=0):
    """One result as a line of the table: the image, then each class with
    its probability."""
    classes = ", ".join(f"{entry['class']} {entry['probability']:.4f}" for entry in result["top"])
    return f"{str(result['image']):<{width}}  {classes}"


def format_json(result):
    """One result as one line of JSON."""
    return json.dumps(result, ensure_ascii=False)
