"""`saved_model`: a TensorFlow SavedModel that serves raw uint8 images."""

import keras

from keras_resnets.export.common import (
    atomic_directory,
    check_backend,
    check_destination,
    check_normalization,
    float32_model,
    model_input,
)

SIGNATURE = "serving_default"
INPUT_NAME = "images"


def output_name(model):
    """`"probabilities"` for a classifier (a final `Dense` with a softmax or
    no activation: the signature adds the softmax), `"outputs"` otherwise
    (a feature extractor, `include_top=False`)."""
    return "probabilities" if _adds_softmax(model) is not None else "outputs"


def _adds_softmax(model):
    """True for a logits classifier, False for a softmax one, None otherwise."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Dense):
        if last.activation is keras.activations.softmax:
            return False
        if last.activation is keras.activations.linear:
            return True
    return None


def serving_function(model, mean=None, std=None):
    """The computation that `saved_model` exports, as a Python function.

    It takes `uint8` images `[batch, height, width, channels]` and returns
    `{"probabilities": ...}` (or `{"outputs": ...}` for a model without a
    classifier): the images are cast to the model's input type, normalized
    as `(images - mean) / std` for a float model, run through the model in
    inference mode, and a softmax is added after a logits classifier.

    Args:
        model: a built `keras.Model` taking one image input. One taking
            `uint8` images (as `keras_resnets.train` makes them) normalizes
            inside itself; `mean` and `std` are then not allowed.
        mean: None, a number or one number per channel, on the 0..255
            scale, subtracted from the images of a float model.
        std: None, a number or one number per channel, dividing them.

    Returns:
        A function of a `uint8` tensor, returning a dict of one tensor.
    """
    check_backend()
    import tensorflow as tf

    _, dtype = model_input(model)
    mean, std = check_normalization(model, mean, std)
    add_softmax = _adds_softmax(model)
    key = output_name(model)

    def serve(images):
        x = images
        if dtype != "uint8":
            x = tf.cast(images, dtype)
            if mean is not None:
                x = x - mean
            if std is not None:
                x = x / std
        y = model(x, training=False)
        if add_softmax:
            y = tf.nn.softmax(y, axis=-1)
        return {key: y}

    return serve


def saved_model(model, directory, mean=None, std=None, overwrite=False):
    """Exports `model` as a TensorFlow SavedModel serving raw `uint8` images.

    The `serving_default` signature takes `images`: `uint8`
    `[batch, height, width, channels]`, any batch size (and any image size
    if the model allows it), and returns `{"probabilities": [batch, classes]}`
    (`{"outputs": ...}` for a model without a classifier). Preprocessing is
    inside:

    - a model trained by `keras_resnets.train` takes `uint8` images and
      normalizes them itself: the signature passes the images through;
    - a float model (a builder's model) gets the images cast to float32,
      that is 0..255 pixel values, then `(images - mean) / std` if `mean`
      and `std` are given (e.g. ImageNet's `mean=(123.675, 116.28, 103.53)`,
      `std=(58.395, 57.12, 57.375)`).

    A logits model (`classifier_activation=None`) gets a softmax in the
    signature. A mixed-precision model is exported computing in float32.
    The SavedModel is written to a temporary folder beside `directory` and
    renamed into place: `directory` is never half-written.

    Args:
        model: a built `keras.Model` with one image input.
        directory: str or path, the SavedModel folder to write.
        mean: None, a number or one per channel (0..255 scale), float models only.
        std: None, a number or one per channel, float models only.
        overwrite: bool, replace an existing `directory`. Defaults to False:
            a `FileExistsError`.

    Returns:
        The `directory` path, as a str.

    Example:

    >>> model = keras_resnets.ResNet20(input_shape=(32, 32, 3), classes=10)
    >>> path = saved_model(model, "/tmp/resnet20_saved_model", mean=127.5, std=64.0)
    >>> served = tf.saved_model.load(path).signatures["serving_default"]
    >>> served(images=tf.zeros((2, 32, 32, 3), tf.uint8))["probabilities"].shape
    TensorShape([2, 10])
    """
    check_backend()
    import tensorflow as tf

    model = float32_model(model)
    shape, _ = model_input(model)
    serve = serving_function(model, mean=mean, std=std)
    directory = check_destination(directory, overwrite, "SavedModel")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SIGNATURE,
        serve,
        input_signature=[tf.TensorSpec((None, *shape[1:]), tf.uint8, name=INPUT_NAME)],
    )
    with atomic_directory(directory) as tmp:
        archive.write_out(tmp, verbose=False)
    return directory
