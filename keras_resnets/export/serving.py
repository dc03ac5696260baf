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
from keras_resnets.utils.validation import check_bool

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


def _images_spec(model):
    """The signature's input: `uint8` images of any batch, of the model's
    image shape."""
    import tensorflow as tf

    shape, _ = model_input(model)
    return tf.TensorSpec((None, *shape[1:]), tf.uint8, name=INPUT_NAME)


def frozen_function(model, mean=None, std=None):
    """`serving_function(model, mean, std)` as a concrete TensorFlow function
    of `uint8` images (any batch) with the model's weights as constants:
    what a frozen `saved_model` serves.

    Traced without gradient functions (`plain_convolutions`) and with every
    batch norm folded into its convolution
    (`fold_every_batch_norm`); TensorFlow's graph optimizer then computes
    each folded kernel once, and oneDNN keeps each constant kernel in its
    own layout instead of reordering it on every call. Measured (bfloat16
    ResNet-50, 128 px, AMX Xeon, 2 cores): 36.5 -> 10.4 ms at batch 1 and
    68.7 -> 39.7 ms at batch 16 against `predict_on_batch`.

    Returns:
        `(function, output_name)`: the function returns a list of one tensor.
    """
    check_backend()
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from keras_resnets.layers.common import fold_every_batch_norm
    from keras_resnets.layers.conv import plain_convolutions

    serve = serving_function(model, mean=mean, std=std)
    with fold_every_batch_norm(), plain_convolutions():
        concrete = tf.function(serve).get_concrete_function(_images_spec(model))
    return convert_variables_to_constants_v2(concrete), output_name(model)


def saved_model(model, directory, mean=None, std=None, overwrite=False, frozen=True,
                keep_precision=False):
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
    signature. The SavedModel is written to a temporary folder beside
    `directory` and renamed into place: `directory` is never half-written.

    By default (`frozen=True`) the weights are constants of the graph
    (`frozen_function`): every batch norm folded into its convolution, and
    oneDNN keeps the kernels in its own layout. ResNet-50 at 128 px, loaded
    in a new process on a 2-core AMX Xeon: float32 18.8 ms at batch 1 and
    158 ms at batch 16 against 31.5 and 194 ms with variables; bfloat16
    (`keep_precision`) 9.0 and 36.9 ms against 36.4 and 114 ms. The folder
    holds the weights once (98 MiB), where Keras' `ExportArchive` writes
    every variable twice (198 MiB, keras-team/keras#23553). The first call
    after loading takes 2-3 s more (TensorFlow optimizes the graph with its
    constants). `frozen=False` keeps the weights as variables, for a
    program that reads or changes them after loading.

    A mixed-precision model computes in float32, the type every CPU runs
    fast, unless `keep_precision=True`: then in its own compute type (a
    `mixed_bfloat16` model in bfloat16, fast on CPUs with AMX or
    AVX512-BF16 and on GPUs, slow elsewhere).

    Args:
        model: a built `keras.Model` with one image input.
        directory: str or path, the SavedModel folder to write.
        mean: None, a number or one per channel (0..255 scale), float models only.
        std: None, a number or one per channel, float models only.
        overwrite: bool, replace an existing `directory`. Defaults to False:
            a `FileExistsError`.
        frozen: bool, the weights as constants (default) or as variables.
        keep_precision: bool, compute in the model's own precision rather
            than float32. Defaults to False.

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

    check_bool("frozen", frozen)
    check_bool("keep_precision", keep_precision)
    if not keep_precision:
        model = float32_model(model)
    spec = _images_spec(model)
    check_normalization(model, mean, std)  # before anything is written
    directory = check_destination(directory, overwrite, "SavedModel")
    if frozen:
        function, key = frozen_function(model, mean=mean, std=std)
        module = tf.Module()
        module.serve = tf.function(lambda images: {key: function(images)[0]}, input_signature=[spec])
        with atomic_directory(directory) as tmp:
            tf.saved_model.save(module, tmp, signatures={SIGNATURE: module.serve})
        return directory
    serve = serving_function(model, mean=mean, std=std)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, serve, input_signature=[spec])
    with atomic_directory(directory) as tmp:
        archive.write_out(tmp, verbose=False)
    return directory
