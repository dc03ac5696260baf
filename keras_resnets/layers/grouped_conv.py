"""A grouped 2D convolution that runs TensorFlow's native grouped kernel."""

import keras

from keras_resnets.layers.conv import Conv2D
from keras_resnets.utils.validation import UsageError, check_positive_int


def _native_grouped_conv2d():
    """Returns the TensorFlow grouped convolution, or None on other backends.

    On the TensorFlow backend `keras.ops.conv` compiles every grouped
    convolution with XLA, which trains a ResNeXt-50 about 40x slower on CPU
    than TensorFlow's native grouped `Conv2D` kernel (oneDNN). The native
    kernel's gradients, however, exist only in graph mode (eagerly TensorFlow
    raises "Gradients for grouped convolutions are not supported on CPU"), so
    eager calls go through a `tf.function`: its gradient is a graph function
    too.
    """
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    def conv(inputs, kernel, strides, padding, dilations):
        return tf.nn.conv2d(
            inputs, kernel, strides=strides, padding=padding, dilations=dilations
        )

    graph_conv = tf.function(conv, autograph=False, reduce_retracing=True)

    def grouped_conv2d(inputs, kernel, strides, padding, dilations):
        if tf.executing_eagerly():
            return graph_conv(inputs, kernel, strides, padding, dilations)
        return conv(inputs, kernel, strides, padding, dilations)

    return grouped_conv2d


_GROUPED_CONV2D = _native_grouped_conv2d()


@keras.saving.register_keras_serializable(package="keras_resnets")
class GroupedConv2D(Conv2D):
    """2D convolution split into `groups` independent groups of channels.

    The same layer as `keras.layers.Conv2D(groups=...)` (same arguments, same
    weights, same outputs), with a faster path on the TensorFlow backend: it
    calls TensorFlow's native grouped convolution instead of the XLA-compiled
    op that Keras uses there, so that ResNeXt trains at dense-convolution speed
    on CPU. Other backends and `channels_first` use `keras.ops.conv`.

    Args:
        filters: int, number of output channels; divisible by `groups`.
        kernel_size: int or tuple of 2 ints.
        groups: int, number of groups; divides the input channels and
            `filters`. Defaults to `1` (a dense convolution).
        **kwargs: the other `keras.layers.Conv2D` arguments (`strides`,
            `padding`, `dilation_rate`, `use_bias`, initializers, ...).

    Example:

    >>> layer = GroupedConv2D(64, 3, groups=32, padding="same")
    >>> layer(keras.ops.ones((1, 8, 8, 64))).shape
    (1, 8, 8, 64)
    """

    def __init__(self, filters, kernel_size, groups=1, **kwargs):
        check_positive_int("filters", filters)
        check_positive_int("groups", groups)
        if filters % groups:
            raise UsageError(
                f"`groups` must divide `filters`; received groups={groups}, "
                f"filters={filters}. Allowed: a divisor of {filters}."
            )
        super().__init__(filters, kernel_size, groups=groups, **kwargs)

    def build(self, input_shape):
        channels = input_shape[-1 if self.data_format == "channels_last" else 1]
        if channels is not None and channels % self.groups:
            raise UsageError(
                f"`groups` must divide the input channels; received "
                f"groups={self.groups} for an input with {channels} channels "
                f"(input_shape={tuple(input_shape)})."
            )
        super().build(input_shape)

    def convolution_op(self, inputs, kernel):
        if (
            self.groups == 1
            or _GROUPED_CONV2D is None
            or self.data_format != "channels_last"
        ):
            # One group: `Conv2D`'s path (matrix-product gradients).
            return super().convolution_op(inputs, kernel)
        return _GROUPED_CONV2D(
            inputs,
            kernel,
            strides=list(self.strides),
            padding=self.padding.upper(),
            dilations=list(self.dilation_rate),
        )
