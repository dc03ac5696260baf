"""`tflite`: a LiteRT (TensorFlow Lite) flatbuffer, float or quantized."""

import contextlib
import logging
import os
import re
import warnings

import numpy as np

from keras_resnets.export.common import (
    as_input_dtype,
    check_backend,
    check_destination,
    check_image_shape,
    float32_model,
    image_batches,
    inference_function,
    model_input,
    normalized_model,
)
from keras_resnets.training.callbacks import atomic_path
from keras_resnets.utils.tf_logs import native_stderr_without
from keras_resnets.utils.validation import UsageError, check_choice, check_positive_int

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
"""`None` (float32), `"float16"` weights, `"dynamic"` range (int8 weights,
float activations), `"int8"` full-integer (int8 weights and activations)."""
INT8_INPUT_TYPES = ("uint8", "int8")
DEFAULT_CALIBRATION_IMAGES = 200
INT8_KERNEL_QUANTIZATIONS = ("int8", "dynamic")
"""The files whose convolutions run LiteRT's int8 kernels (`group_width`)."""
INT8_MIN_GROUP_WIDTH = 8
"""int8 files, by default: a grouped convolution whose groups read fewer
input channels has groups merged up to this many (`group_width` of
`tflite`). XNNPACK runs a grouped convolution as one matrix product a
group, each padded to its int8 kernel's tile of output channels: 8 on an
AVX2 CPU, 16 with AVX-512, 64 with AMX (LiteRT 2.3.0). On an AMD
Zen 3 (AVX2) ResNeXt-50's 4-channel groups (stage 1, 56 px) ran 1.9x
faster with pairs merged and its 8-channel groups 1.4x slower; the whole
int8 ResNeXt-50 at 224 px 3.3% faster, its outputs equal. On an AMX Xeon,
`group_width=64` runs it 2x faster than 8 (docs/performance.md, "LiteRT
batch-1 latency")."""


def representative_images(data, model, limit=DEFAULT_CALIBRATION_IMAGES):
    """Up to `limit` images of `data`, checked against the model's input and
    in its input type: the calibration set of an int8 export.

    Args:
        data: an array of images, `(images, labels)` or a `tf.data.Dataset`
            (see `keras_resnets.export.common.image_batches`); draw it from
            the training data, e.g. `load_data("digits").train`.
        model: the model to be exported.
        limit: int, the most images to take.

    Returns:
        A NumPy array `[n, height, width, channels]`.
    """
    limit = check_positive_int("calibration_images", limit)
    shape, dtype = model_input(model)
    taken, count = [], 0
    for images, _ in image_batches(data, "representative_data"):
        check_image_shape(images, shape, "representative_data")
        taken.append(as_input_dtype(images[: limit - count], dtype, "representative_data"))
        count += len(taken[-1])
        if count >= limit:
            break
    if count == 0:
        raise UsageError("`representative_data` holds no images; int8 calibration needs some.")
    return np.concatenate(taken)


def tflite(
    model,
    path,
    quantize=None,
    representative_data=None,
    calibration_images=DEFAULT_CALIBRATION_IMAGES,
    input_type="uint8",
    overwrite=False,
    mean=None,
    std=None,
    group_width=None,
):
    """Exports `model` as a LiteRT / TensorFlow Lite flatbuffer (`.tflite`).

    The file holds only builtin operators (`TFLITE_BUILTINS`, or
    `TFLITE_BUILTINS_INT8` for int8): an operator the plain mobile runtime
    lacks is a conversion error, never a Flex (SELECT_TF_OPS) operator. A
    grouped convolution is one builtin `CONV_2D` whose filter depth is the
    group width (in int8 and dynamic files at least `group_width`: narrower
    groups merged, the same outputs). The input keeps the model's batch
    (any size: resize it in the interpreter), image shape and type: raw
    `uint8` images for a model trained by `keras_resnets.train`, floats for
    a builder's model, or raw `uint8` images for a float model given `mean`
    and `std`, whose normalization the file then holds. A mixed-precision
    model is exported computing in float32. The output is float32: the
    model's own output (probabilities or logits).

    Args:
        model: a built `keras.Model` with one image input.
        path: str or path ending in `.tflite`.
        quantize: None (float32), `"float16"` (float16 weights, about half
            the size), `"dynamic"` (int8 weights, float activations, about a
            quarter) or `"int8"` (full integer: int8 weights and activations,
            calibrated on `representative_data`).
        representative_data: int8 only, and required there: images drawn from
            the training data (an array, `(images, labels)` or a
            `tf.data.Dataset` such as `load_data(...).train`), of the model's
            input shape.
        calibration_images: int, how many of them calibrate. Defaults to 200.
        input_type: int8 only: `"uint8"` (default) or `"int8"`, the quantized
            input of a float model. A model taking `uint8` images keeps its
            raw `uint8` input.
        overwrite: bool, replace an existing file. Defaults to False: a
            `FileExistsError`.
        mean: None, a number or one per channel (0..255 scale), float
            models only: the file takes `uint8` images and computes
            `(images - mean) / std` before the model, as `saved_model` does.
            int8 calibration images are then raw 0..255 images.
        std: None, a number or one per channel, float models only.
        group_width: None or an int >= 1, `"int8"` and `"dynamic"` files
            only: each grouped convolution whose groups read fewer input
            channels is written with groups merged into groups of this many
            (a kernel with zeros off its blocks; the same outputs, bit for
            bit in int8, within the quantization error in dynamic files,
            which then run another kernel). LiteRT's int8 kernels pad every
            group to their tile of output channels, so merging up to the
            tile of the CPU that runs the file makes it faster: 8 on AVX2,
            16 with AVX-512, 64 with AMX (ResNeXt-50 int8 2x faster there
            than with 8; ARM phones: not measured). The file grows by the
            zeros (ResNeXt-50 int8: 24.7 MiB with 8, 27.4 with 64). Defaults
            to `INT8_MIN_GROUP_WIDTH` (8) for int8, and to the groups as
            they are for dynamic files; float files always keep them.

    Returns:
        The `path`, as a str. The file is written beside it and renamed into
        place: it is whole or absent.

    Example:

    >>> model = keras_resnets.ResNet20(input_shape=(32, 32, 3), classes=10)
    >>> tflite(model, "/tmp/resnet20.tflite")
    '/tmp/resnet20.tflite'
    >>> images = np.random.uniform(-1, 1, (100, 32, 32, 3)).astype("float32")
    >>> tflite(model, "/tmp/resnet20_int8.tflite", quantize="int8", representative_data=images)
    '/tmp/resnet20_int8.tflite'
    """
    check_backend()
    import tensorflow as tf

    check_choice("quantize", quantize, QUANTIZATIONS)
    check_choice("input_type", input_type, INT8_INPUT_TYPES)
    if group_width is not None:
        check_positive_int("group_width", group_width)
        if quantize not in INT8_KERNEL_QUANTIZATIONS:
            raise UsageError(
                f"`group_width` fits grouped convolutions to LiteRT's int8 kernels: it is for "
                f"quantize='int8' or 'dynamic'; received group_width={group_width!r} with "
                f"quantize={quantize!r} (float files keep their groups)."
            )
    elif quantize == "int8":
        group_width = INT8_MIN_GROUP_WIDTH
    path = os.fspath(path)
    if not path.endswith(".tflite"):
        raise UsageError(f"`path` must end with '.tflite'; received path={path!r}.")
    model = normalized_model(float32_model(model), mean, std)
    shape, dtype = model_input(model)
    if quantize == "int8":
        if representative_data is None:
            raise UsageError(
                "quantize='int8' needs `representative_data`: images from the training "
                "data to calibrate the activation ranges (e.g. load_data(...).train)."
            )
        if dtype == "uint8" and input_type != "uint8":
            raise UsageError(
                f"`model` ({model.name!r}) takes uint8 images; its int8 file keeps them: "
                f"input_type must be 'uint8', received input_type={input_type!r}."
            )
        images = representative_images(representative_data, model, calibration_images)
    elif representative_data is not None:
        raise UsageError(
            f"`representative_data` calibrates int8 only; received it with quantize={quantize!r}."
        )
    path = check_destination(path, overwrite, "TFLite")

    options = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if quantize is not None:
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        options["target_spec"]["supported_types"] = [tf.float16]
    if quantize == "int8":

        def representative_dataset():
            for i in range(len(images)):
                yield [images[i : i + 1]]

        options["target_spec"]["supported_ops"] = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        options["representative_dataset"] = representative_dataset
        options["inference_input_type"] = tf.uint8 if input_type == "uint8" else tf.int8
        options["inference_output_type"] = tf.float32

    flatbuffer = _convert(model, options, min_group_width=group_width)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(flatbuffer)
    return path


@contextlib.contextmanager
def _without_log_line(logger, start):
    """Drops the records of the Python logger `logger` that start with `start`."""
    def keep(record):
        return not record.getMessage().startswith(start)

    found = logging.getLogger(logger)
    found.addFilter(keep)
    try:
        yield
    finally:
        found.removeFilter(keep)


def _convert(model, options, min_group_width=None):
    """The TFLite converter on the model's inference function (its grouped
    convolutions merged up to `min_group_width` input channels a group,
    see `inference_function`). Without a `trackable_obj` TensorFlow
    freezes the weights into constants (its "frozen graph" converter): 3
    to 4 times faster than Keras' `model.export(format="litert")`, which
    writes and reads back a SavedModel first, for the same operators."""
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import ConverterError

    with _without_log_line("absl", "Please consider providing the trackable_obj"):  # (the frozen graph, chosen)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([inference_function(model, min_group_width)])
    for key, value in options.pop("target_spec").items():
        setattr(converter.target_spec, key, value)
    for key, value in options.items():
        setattr(converter, key, value)
    try:
        # (the quantizer's C++ prints its settings: "fully_quantize: 0, inference_type: 6, ...")
        with warnings.catch_warnings(), native_stderr_without(lambda line: line.startswith(b"fully_quantize: ")):
            # A uint8 model's input is uint8 already: it needs no statistics.
            warnings.filterwarnings("ignore", "Statistics for quantized inputs")
            return converter.convert()
    except ConverterError as e:
        missing = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", str(e))))
        if not missing:
            raise
        raise UsageError(
            f"`model` ({model.name!r}) uses TensorFlow operators that the builtin TFLite "
            f"runtime lacks: {', '.join(missing)}. Flex (SELECT_TF_OPS) operators are not "
            "exported: the file must run on the plain mobile runtime."
        ) from None
