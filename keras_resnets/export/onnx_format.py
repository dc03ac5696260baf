"""`onnx`: an ONNX file through tf2onnx, as Keras' exporter does, for onnxruntime."""

import os

from keras_resnets.export.common import (
    check_backend,
    check_destination,
    float32_model,
    inference_function,
    model_input,
    normalized_model,
)
from keras_resnets.training.callbacks import atomic_path
from keras_resnets.utils.validation import UsageError


def onnx(model, path, overwrite=False, opset_version=None, mean=None, std=None):
    """Exports `model` as an ONNX file (tf2onnx, as `model.export(format="onnx")`).

    Keras' exporter hands tf2onnx the model's function with the constants it
    captures (a `Normalization` layer's mean and variance), which tf2onnx
    turns into extra required inputs; here the function is frozen first
    (TensorFlow's `convert_variables_to_constants_v2`), so they stay inside.

    The input keeps the model's type and image shape with any batch size
    (raw `uint8` images for a model trained by `keras_resnets.train`, and
    for a float model given `mean` and `std`, whose normalization the file
    then holds); the output is the model's own. A grouped convolution
    becomes one ONNX `Conv` with its `group` attribute. Needs the `onnx` extra:
    `pip install "keras_resnets[onnx]"` (tf2onnx, onnx, onnxruntime).

    Args:
        model: a built `keras.Model` with one image input.
        path: str or path ending in `.onnx`.
        overwrite: bool, replace an existing file. Defaults to False: a
            `FileExistsError`.
        opset_version: int or None (tf2onnx's default).
        mean: None, a number or one per channel (0..255 scale), float
            models only: the file takes `uint8` images and computes
            `(images - mean) / std` before the model, as `saved_model` does.
        std: None, a number or one per channel, float models only.

    Returns:
        The `path`, as a str; written beside it and renamed into place.

    Example:

    >>> onnx(keras_resnets.ResNet20(input_shape=(32, 32, 3)), "/tmp/resnet20.onnx")  # doctest: +SKIP
    '/tmp/resnet20.onnx'
    """
    check_backend()

    path = os.fspath(path)
    if not path.endswith(".onnx"):
        raise UsageError(f"`path` must end with '.onnx'; received path={path!r}.")
    model = normalized_model(float32_model(model), mean, std)
    model_input(model)  # a model that cannot be exported fails before tf2onnx is looked for
    try:
        import tf2onnx
    except ImportError:
        raise ImportError(
            "ONNX export needs tf2onnx and onnx: pip install \"keras_resnets[onnx]\"."
        ) from None
    path = check_destination(path, overwrite, "ONNX")
    try:  # tf2onnx with numpy 2, as Keras' own exporter patches it
        from keras.src.export.tf2onnx_lib import patch_tf2onnx

        patch_tf2onnx()
    except ImportError:
        pass
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    frozen = convert_variables_to_constants_v2(inference_function(model))
    with atomic_path(path) as tmp:
        tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(),
            input_names=[t.name for t in frozen.inputs],
            output_names=[t.name for t in frozen.outputs],
            opset=opset_version,
            output_path=tmp,
        )
    return path
