"""A grouped 2D convolution that runs TensorFlow's native grouped kernel."""

import contextlib
import functools

import keras

from keras_resnets.layers.conv import Conv2D, _on_cpu
from keras_resnets.utils.validation import UsageError, check_positive_int


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN kernels in this process.

    TensorFlow turns them on by default only on CPUs with AVX-512 VNNI,
    AVX512-BF16 or AMX (`TF_ENABLE_ONEDNN_OPTS=1` before importing it turns
    them on elsewhere, `=0` off). Without them its CPU kernels (Eigen) have
    no gradient for a grouped convolution ("Gradients for grouped
    convolutions are not supported on CPU") and its graph optimizer fuses a
    grouped convolution with the bias add after it into a kernel that
    refuses groups. (`tensorflow.python.util._pywrap_util_port.IsMklEnabled`
    is private: tests/test_grouped_conv.py checks that it tells which of the
    two this process has.)
    """
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


@functools.cache
def native_bfloat16_gradient():
    """Whether this process's CPU kernels differentiate a bfloat16 grouped
    convolution natively (asked once, by running a tiny one).

    oneDNN runs bfloat16 only on CPUs that have instructions for it
    (AVX-512, AMX); elsewhere TensorFlow leaves a bfloat16 convolution to its
    other kernels even with `TF_ENABLE_ONEDNN_OPTS=1`, and those have no
    grouped gradient (measured on an AMD Zen 3, AVX2: "filter_size does not
    have enough elements" training ResNeXt-50 in mixed_bfloat16). Then the
    layer splits bfloat16 groups too.
    """
    import tensorflow as tf

    # The two gradient kernels, run eagerly (`init_scope` lifts the probe
    # out of a function being traced; a tape would be paused there).
    with tf.init_scope(), tf.device("/CPU:0"):
        one = tf.constant(0.5, tf.bfloat16)
        x, dy, kernel = tf.fill((1, 4, 4, 4), one), tf.fill((1, 4, 4, 4), one), tf.fill((3, 3, 2, 4), one)
        try:
            tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=[3, 3, 2, 4], out_backprop=dy,
                                            strides=[1, 1, 1, 1], padding="SAME")
            tf.raw_ops.Conv2DBackpropInput(input_sizes=[1, 4, 4, 4], filter=kernel, out_backprop=dy,
                                           strides=[1, 1, 1, 1], padding="SAME")
        except tf.errors.OpError:
            return False
    return True


# Non-empty inside `native_grouped_convolutions()`: the `min_group_width`
# of each, the innermost last.
_NATIVE_ONLY = []


@contextlib.contextmanager
def native_grouped_convolutions(min_group_width=None):
    """Traces every grouped convolution as TensorFlow's one grouped op, even
    where this process's CPU kernels could not run its gradient (no oneDNN):
    for files that other runtimes run (TFLite, ONNX), where one grouped
    `CONV_2D` is the fast and compact form.

    `min_group_width`: an int, or None. A convolution whose groups read
    fewer input channels is traced with `min_group_width // width` groups
    merged into each (`merged_group_kernel`): the same outputs, bit for bit,
    from a kernel with zeros off its blocks. LiteRT files take it from
    `tflite(group_width=...)`: XNNPACK pads each group to its kernel's tile
    of output channels, so merging narrow groups runs faster despite the
    MACs (docs/performance.md, "LiteRT batch-1 latency")."""
    _NATIVE_ONLY.append(min_group_width)
    try:
        yield
    finally:
        _NATIVE_ONLY.pop()


def merged_group_kernel(kernel, groups, merge):
    """The kernel of `groups` groups as that of `groups // merge` groups of
    `merge` times the input channels: merged group p's block of original
    group p * merge + j keeps that group's weights in its j-th slice of
    input channels and zeros in the others. `tf.nn.conv2d` with it gives
    the outputs of `kernel`, in the same order."""
    import tensorflow as tf

    kh, kw, width, filters = kernel.shape
    per_group = filters // groups
    blocks = tf.reshape(kernel, [kh, kw, 1, width, groups // merge, merge, per_group])
    # [h, w, i (slice), c, p (merged group), j (group in it), o]: nonzero
    # where i == j. (A broadcast product and reshapes, which the converters
    # fold into a constant; an einsum left a Transpose in LiteRT's int8 file.)
    mask = tf.reshape(tf.eye(merge, dtype=kernel.dtype), [1, 1, merge, 1, 1, merge, 1])
    return tf.reshape(blocks * mask, [kh, kw, merge * width, filters])


def _split_grouped_conv2d(inputs, kernel, strides, padding, dilations, groups):
    """The grouped convolution as one dense convolution a group, joined:
    what TensorFlow's CPU kernels without oneDNN can run and differentiate."""
    import tensorflow as tf

    # `tf.nn.convolution`: without oneDNN, `tf.nn.conv2d` has no gradient
    # for dilations above 1 on the CPU; it takes them through space-to-batch.
    outputs = [
        tf.nn.convolution(x, k, strides=strides, padding=padding, dilations=dilations)
        for x, k in zip(tf.split(inputs, groups, axis=-1), tf.split(kernel, groups, axis=-1))
    ]
    return tf.concat(outputs, axis=-1)


def _native_grouped_conv2d():
    """Returns the TensorFlow grouped convolution, or None on other backends.

    On the TensorFlow backend `keras.ops.conv` compiles every grouped
    convolution with XLA, which trains a ResNeXt-50 about 40x slower on CPU
    than TensorFlow's native grouped `Conv2D` kernel (oneDNN). The native
    kernel's gradients, however, exist only in graph mode (eagerly TensorFlow
    raises "Gradients for grouped convolutions are not supported on CPU"), so
    eager calls go through a `tf.function`: its gradient is a graph function
    too. Where TensorFlow runs without oneDNN (`onednn_enabled`), there is no
    native grouped gradient on the CPU at all: the convolution is split into
    one dense convolution per group (with a GPU, the native kernel runs); in
    bfloat16 also where oneDNN has no bfloat16 kernels
    (`native_bfloat16_gradient`).
    """
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    split = not onednn_enabled()

    def conv(inputs, kernel, strides, padding, dilations, groups):
        if (
            (split or (inputs.dtype == tf.bfloat16 and not native_bfloat16_gradient()))
            and not _NATIVE_ONLY
            and _on_cpu()
        ):
            return _split_grouped_conv2d(inputs, kernel, strides, padding, dilations, groups)
        min_width = _NATIVE_ONLY[-1] if _NATIVE_ONLY else None
        width = kernel.shape[2]
        if min_width and width < min_width:
            merge = min_width // width
            while groups % merge:  # the largest merge that divides the groups
                merge -= 1
            if merge > 1:
                kernel = merged_group_kernel(kernel, groups, merge)
        return tf.nn.conv2d(
            inputs, kernel, strides=strides, padding=padding, dilations=dilations
        )

    # The split convolutions need static kernel shapes (a dilated one goes
    # through space-to-batch): no shapes relaxed across traces there.
    graph_conv = tf.function(conv, autograph=False, reduce_retracing=not split)

    def grouped_conv2d(inputs, kernel, strides, padding, dilations, groups):
        if tf.executing_eagerly():
            return graph_conv(inputs, kernel, strides, padding, dilations, groups)
        return conv(inputs, kernel, strides, padding, dilations, groups)

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
            groups=self.groups,
        )
