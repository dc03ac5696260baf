"""Weights of keras.applications' ResNet50/101/152 and ResNet50V2/101V2/152V2.

Those models have the "keras" layout of keras_resnets (`layout="keras"`, the
default of the v2 models): the same layers with other names. The names are
keras.applications' (`keras/src/applications/resnet.py`): stage `s` (1-based)
is `conv{s+1}`, its block `b` is `conv{s+1}_block{b}`, whose convolutions are
`_1_conv`, `_2_conv`, `_3_conv` and the shortcut `_0_conv`; see
`keras_resnets.weights.layouts` for the one model walk behind every layout.
"""

from keras_resnets.weights.files import read_checkpoint
from keras_resnets.weights.layouts import assign_weights, layer_state, weight_map

__all__ = ["keras_applications_layer_map", "load_keras_applications",
           "load_keras_applications_model"]


def keras_applications_layer_map(model):
    """{"layer/variable" key of keras.applications: keras_resnets variable}."""
    return weight_map(model, "keras")


def load_keras_applications_model(model, source):
    """Copies the weights of a keras.applications ResNet model onto `model`.

    Strict: every weight of either model must have its counterpart with the
    same shape, else a `ValueError` lists what differs and nothing is copied.

    Args:
        model: a keras_resnets model with `layout="keras"`.
        source: a `keras.applications` ResNet (v1 or v2) model.

    Example:

    >>> src = keras.applications.ResNet50(weights=None)  # doctest: +SKIP
    >>> dst = keras_resnets.ResNet50(layout="keras")  # doctest: +SKIP
    >>> load_keras_applications_model(dst, src)  # doctest: +SKIP
    """
    return assign_weights(model, layer_state(source.layers), "keras")


def load_keras_applications(model, checkpoint):
    """Loads a keras.applications ResNet weights file onto `model`.

    Args:
        model: a keras_resnets model with `layout="keras"` and the same depth.
        checkpoint: the path of a keras.applications `.h5` file (the files
            `keras.applications.ResNet50(weights="imagenet")` downloads, with
            or without the top), a keras.applications model, or a mapping
            `{"conv1_conv/kernel": array, ...}`.

    Returns:
        `model`, with the weights assigned.

    Example:

    >>> model = keras_resnets.ResNet50(layout="keras")  # doctest: +SKIP
    >>> load_keras_applications(
    ...     model, "resnet50_weights_tf_dim_ordering_tf_kernels.h5")  # doctest: +SKIP
    """
    if hasattr(checkpoint, "layers"):
        return load_keras_applications_model(model, checkpoint)
    state = checkpoint if hasattr(checkpoint, "keys") else read_checkpoint(checkpoint)
    return assign_weights(model, state, "keras")
