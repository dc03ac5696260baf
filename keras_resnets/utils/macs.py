"""Multiply-accumulate counts of a forward pass, read off the traced graph."""

import numpy as np

# torchvision's "GFLOPS" column counts the multiply-accumulates of the
# convolutions and linear layers; so does this.
_COUNTED = ("Conv2D", "DepthwiseConv2dNative", "MatMul", "BatchMatMulV2", "BatchMatMulV3")


def _op_macs(op):
    if op.type == "Conv2D":
        # output [n, h, w, c_out], filter [kh, kw, c_in / groups, c_out]
        n, h, w, c_out = op.outputs[0].shape
        kh, kw, c_in, _ = op.inputs[1].shape
        return h * w * c_out * kh * kw * c_in * n
    if op.type == "DepthwiseConv2dNative":
        n, h, w, c_out = op.outputs[0].shape
        kh, kw, _, _ = op.inputs[1].shape
        return n * h * w * c_out * kh * kw
    # matrix products: output [..., m, n], contracted dimension k
    a = op.inputs[0].shape
    transpose = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
    k = a[-2] if transpose else a[-1]
    return int(np.prod(op.outputs[0].shape)) * k


def count_macs(model, input_shape=None):
    """Multiply-accumulates of one forward pass of `model` on one image.

    Counts convolutions (grouped ones at their real cost) and dense layers,
    the convention of torchvision's GFLOPS column and of the papers' FLOPs.

    Args:
        model: a Keras model with one image input.
        input_shape: `(height, width, channels)` to count at; defaults to the
            model's input shape, or, where that has no size, the registered
            architecture's default size (224, or 32 for the CIFAR nets).

    Returns:
        int, multiply-accumulates per image.

    Example:

    >>> keras_resnets.count_macs(keras_resnets.ResNet50())  # doctest: +SKIP
    4089184256
    """
    import tensorflow as tf

    model_shape = tuple(model.inputs[0].shape[1:])
    if input_shape is None:
        input_shape = model_shape
        if any(d is None for d in input_shape):
            from keras_resnets.models.registry import get_spec

            try:
                size = get_spec(model.name).default_size
            except ValueError:
                size = 224
            input_shape = tuple(size if d is None else d for d in model_shape)
    input_shape = tuple(input_shape)
    if len(input_shape) != len(model_shape) or any(
        m is not None and m != d for m, d in zip(model_shape, input_shape)
    ):
        raise ValueError(
            f"`input_shape` must fit the model's input {model_shape}; received "
            f"input_shape={input_shape}."
        )
    spec = tf.TensorSpec((1, *input_shape), model.inputs[0].dtype)
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    return int(sum(_op_macs(op) for op in graph.get_operations() if op.type in _COUNTED))
