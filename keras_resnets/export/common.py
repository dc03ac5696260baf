"""What every exporter needs: the model's input, a float32 copy, safe writes."""

import contextlib
import os
import shutil

import keras
import numpy as np

from keras_resnets.training.callbacks import partial_path
from keras_resnets.utils.validation import UsageError

_REDUCED_FLOATS = ("bfloat16", "float16")
_REDUCED_POLICIES = ("mixed_bfloat16", "mixed_float16", "bfloat16", "float16")


def model_input(model):
    """The `(shape, dtype)` of a model's single image input.

    Raises a `ValueError` for a model that is not built (a `Sequential`
    without an `Input`, a subclassed model never called) or that does not
    take exactly one `[batch, height, width, channels]` input.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a keras.Model; received model of type {type(model).__name__}."
        )
    inputs = getattr(model, "inputs", None) if model.built else None
    if not inputs:
        raise UsageError(
            f"`model` ({model.name!r}) is not built: it has no input shape to export. "
            "Build it first, e.g. `model.build((None, 32, 32, 3))` or give it a "
            "`keras.Input`, or call it once on a batch of images."
        )
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise UsageError(
            f"`model` ({model.name!r}) must take one image input [batch, height, width, "
            f"channels]; received inputs {[tuple(x.shape) for x in inputs]}."
        )
    return tuple(inputs[0].shape), keras.backend.standardize_dtype(inputs[0].dtype)


def inference_function(model, min_group_width=None):
    """The model's inference as a concrete TensorFlow function of a batch of
    any size ("images"), for the converters of files that other runtimes run
    (TFLite, ONNX): every grouped convolution traced as TensorFlow's one
    grouped op, whatever this CPU's kernels, its groups merged up to
    `min_group_width` input channels (`native_grouped_convolutions`)."""
    import tensorflow as tf

    from keras_resnets.layers.grouped_conv import native_grouped_convolutions

    shape, dtype = model_input(model)
    spec = tf.TensorSpec((None, *shape[1:]), dtype, name="images")
    call = tf.function(lambda images: model(images, training=False))
    with native_grouped_convolutions(min_group_width):
        return call.get_concrete_function(spec)


def check_backend():
    """Refuses to export where Keras does not run on TensorFlow: the
    SavedModel, LiteRT and ONNX files are written from TensorFlow graphs of
    the model (`BackendError`, naming the backend and what to do)."""
    from keras_resnets.utils.backend import require_tensorflow_backend

    require_tensorflow_backend(
        "Export (keras_resnets.export: SavedModel, LiteRT and ONNX files are converted from TensorFlow graphs)"
    )


def float32_model(model):
    """`model` itself, or for a mixed-precision model (`mixed_bfloat16`,
    `mixed_float16`) a copy with the same weights computing in float32.

    Exported files compute in float32 (or in the quantized types derived
    from float32): the runtimes have no bfloat16 kernels, and the variables
    of a mixed-precision model are float32 already.
    """
    model_input(model)
    if not any(
        layer.dtype_policy.compute_dtype in _REDUCED_FLOATS
        for layer in model._flatten_layers(include_self=True, recursive=True)
    ):
        return model
    config = _float32_config(keras.saving.serialize_keras_object(model))
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


def channel_values(name, value, channels):
    """`value` (None, a number or one number per channel) as a float32 array
    of 1 or `channels` values; a `ValueError` naming `name` otherwise, and
    for a `std` that is not positive."""
    if value is None:
        return None
    try:
        values = np.atleast_1d(np.asarray(value, dtype="float32"))
    except (TypeError, ValueError):
        values = None
    if values is None or values.ndim != 1 or len(values) not in (1, channels):
        raise UsageError(
            f"`{name}` must be a number or {channels} numbers (one per channel); "
            f"received {name}={value!r}."
        )
    if name == "std" and not np.all(values > 0):
        raise UsageError(f"`std` must be positive; received std={value!r}.")
    return values


def check_normalization(model, mean, std):
    """`(mean, std)` checked against `model`: arrays (or None) for a float
    model; a `ValueError` for a model that takes uint8 images, which
    normalizes them inside itself."""
    shape, dtype = model_input(model)
    mean = channel_values("mean", mean, shape[-1])
    std = channel_values("std", std, shape[-1])
    if dtype == "uint8" and (mean is not None or std is not None):
        raise UsageError(
            f"`model` ({model.name!r}) takes uint8 images and normalizes them inside "
            f"itself; `mean` and `std` are for float models. Received mean={mean}, std={std}."
        )
    return mean, std


def normalized_model(model, mean=None, std=None):
    """`model` itself without `mean` and `std`; otherwise a float model
    behind its normalization: a model taking `uint8` images (0..255) that
    computes `(images - mean) / std` in float32 and runs `model` on the
    result, as a model trained by `keras_resnets.train` does. Exported, the
    normalization is inside the file, which then takes raw `uint8` images.

    Args:
        model: a built `keras.Model` taking float images.
        mean: None, a number or one per channel (0..255 scale), subtracted.
        std: None, a number or one per channel, dividing; positive.

    Returns:
        A `keras.Model` of the same name.
    """
    mean, std = check_normalization(model, mean, std)
    if mean is None and std is None:
        return model
    shape, _ = model_input(model)
    channels = shape[-1]
    mean = np.zeros(channels, "float32") if mean is None else np.broadcast_to(mean, (channels,))
    std = np.ones(channels, "float32") if std is None else np.broadcast_to(std, (channels,))
    inputs = keras.Input(shape[1:], dtype="uint8", name="images")
    x = keras.layers.Normalization(
        mean=mean.tolist(), variance=np.square(std).tolist(), dtype="float32", name="normalize"
    )(inputs)
    return keras.Model(inputs, model(x), name=model.name)


def _float32_config(obj):
    """A serialized model with every reduced float (layer dtype policies and
    the dtypes of the tensors between layers) replaced by float32."""
    if isinstance(obj, list):
        return [_float32_config(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if obj.get("class_name") == "DTypePolicy" and obj["config"]["name"] in _REDUCED_POLICIES:
        return "float32"
    return {
        key: "float32" if key == "dtype" and value in _REDUCED_FLOATS else _float32_config(value)
        for key, value in obj.items()
    }


def check_destination(path, overwrite, what):
    """Refuses an existing `path` unless `overwrite`; creates its folder."""
    path = os.fspath(path)
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(
            f"The {what} destination {path!r} exists; pass overwrite=True "
            "(`--overwrite` on the command line) to replace it."
        )
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_directory(path):
    """Yields a temporary folder beside `path`; when the block ends without
    error it replaces `path` (an existing one is removed only then), else it
    is deleted: `path` is the old folder or the whole new one, never a mix."""
    tmp = partial_path(path)
    old = partial_path(os.fspath(path) + "-old")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        if os.path.lexists(path):
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, old):
            if os.path.isdir(leftover) and not os.path.islink(leftover):
                shutil.rmtree(leftover)
            elif os.path.lexists(leftover):
                os.remove(leftover)


def image_batches(data, name="data"):
    """Yields `(images, labels)` NumPy batches from `data`; `labels` is None
    where `data` has none.

    `data` is an array (or tensor) of images `[n, h, w, c]`, a tuple
    `(images, labels)`, or a `tf.data.Dataset` of images or of
    `(images, labels)`, batched or not (as `load_data` gives them).
    """
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        for element in data.as_numpy_iterator():
            images, labels = element if isinstance(element, tuple) else (element, None)
            if np.ndim(images) == 3:
                images = images[None]
                labels = None if labels is None else np.reshape(labels, (1,))
            yield _checked_batch(images, name), labels
        return
    if isinstance(data, tuple) and len(data) == 2:
        images, labels = data
        yield _checked_batch(images, name), np.asarray(labels)
        return
    if isinstance(data, (np.ndarray, tf.Tensor)) or _is_array_like(data):
        yield _checked_batch(data, name), None
        return
    raise TypeError(
        f"`{name}` must be an array of images [n, height, width, channels], a tuple "
        f"(images, labels) or a tf.data.Dataset of them; received {type(data).__name__}."
    )


def _is_array_like(data):
    return isinstance(data, list) and data and hasattr(data[0], "shape")


def _checked_batch(images, name):
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype.kind not in "iuf":
        raise UsageError(
            f"`{name}` must hold images [n, height, width, channels] of numbers; "
            f"received a batch of shape {images.shape} and dtype {images.dtype}."
        )
    return images


def check_image_shape(images, input_shape, name="data"):
    """Raises a `ValueError` unless the images fit the model's input shape."""
    expected = tuple(input_shape[1:])
    got = tuple(images.shape[1:])
    if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
        wanted = "x".join("any" if e is None else str(e) for e in expected)
        raise UsageError(
            f"`{name}` holds images of shape {got}; the model takes images of shape "
            f"{wanted} (height x width x channels)."
        )
    return images


def as_input_dtype(images, dtype, name="data"):
    """The images in the model's input type; uint8 models need 0..255 values."""
    if dtype == "uint8" and images.dtype != np.uint8:
        if images.size and (images.min() < 0 or images.max() > 255):
            raise UsageError(
                f"`{name}`: the model takes uint8 images (0..255); received "
                f"{images.dtype} values from {images.min()} to {images.max()}."
            )
        images = np.round(images)
    return images.astype(dtype)
