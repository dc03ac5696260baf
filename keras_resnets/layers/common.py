"""Pieces shared by the layers: convolution factory and initializers."""

import keras

from keras_resnets.layers.conv import Conv2D
from keras_resnets.layers.grouped_conv import GroupedConv2D

HE_NORMAL_FAN_OUT = "he_normal_fan_out"


def conv_initializer(identifier):
    """Resolves an initializer, including "he_normal_fan_out".

    "he_normal_fan_out" is the initialization of He et al. 2015 that
    torchvision uses (`kaiming_normal_(mode="fan_out")`): an untruncated
    normal of variance 2 / (kernel_h * kernel_w * filters).
    """
    if identifier == HE_NORMAL_FAN_OUT:
        return keras.initializers.VarianceScaling(
            scale=2.0, mode="fan_out", distribution="untruncated_normal"
        )
    return keras.initializers.get(identifier)


def serialize_initializer(identifier):
    if isinstance(identifier, (str, dict)) or identifier is None:
        return identifier
    return keras.initializers.serialize(identifier)


def conv_layers(
    filters,
    kernel_size,
    strides=1,
    groups=1,
    use_bias=False,
    kernel_initializer=HE_NORMAL_FAN_OUT,
    name="conv",
    dtype=None,
):
    """A convolution with PyTorch's symmetric padding, as a list of layers.

    A stride-1 convolution uses "same" padding, which is symmetric for odd
    kernels. A strided one pads `kernel_size // 2` pixels on every side
    explicitly and then runs "valid": TensorFlow's "same" would pad only the
    bottom and right of an even-sized input, which shifts the sampling grid
    away from PyTorch's (and breaks weight compatibility). `dtype`: the
    layers' dtype policy (a composite layer passes its own, so that a model
    loaded under another global policy keeps it).
    """
    layers = []
    padding = "same"
    if strides > 1 and kernel_size > 1:
        layers.append(keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad", dtype=dtype))
        padding = "valid"
    conv_cls = GroupedConv2D if groups > 1 else Conv2D
    extra = {"groups": groups} if groups > 1 else {}
    layers.append(
        conv_cls(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=use_bias,
            kernel_initializer=conv_initializer(kernel_initializer),
            name=name,
            dtype=dtype,
            **extra,
        )
    )
    return layers


def build_sequence(layers, input_shape):
    """Builds `layers` one after another; returns the final output shape."""
    shape = input_shape
    for layer in layers:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


def strided_output_shape(input_shape, strides, channels):
    """(n, h, w, c) after a layer of stride `strides` with symmetric padding:
    each side becomes ceil(side / strides), the channels `channels`."""
    n, h, w, _ = input_shape
    h = None if h is None else -(-h // strides)
    w = None if w is None else -(-w // strides)
    return (n, h, w, channels)
