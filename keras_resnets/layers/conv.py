"""A 2D convolution whose kernel gradient runs as a matrix product where
that is faster on TensorFlow's CPU kernels."""

import keras

# A 3x3 (k x k) convolution computes its kernel gradient as k * k matrix
# products when its input is at most this many pixels and has at least this
# many channels: there oneDNN's direct weight-gradient kernel parallelizes
# poorly (measured on a 2-core AVX-512 CPU, batch 16: 8 px x 256 channels
# 12.1 -> 8.2 ms in float32, 8.4 -> 5.6 in bfloat16; 4 px x 512 channels
# 10.4 -> 8.6 and 13.7 -> 6.1), and loses at larger images or fewer
# channels (32 px x 64 channels 9.1 -> 13.4 ms).
_TAPS_MAX_PIXELS = 64
_TAPS_MIN_CHANNELS = 256


def _matmul_gradient_conv2d(inputs, kernel, strides, padding):
    """`tf.nn.conv2d(inputs, kernel, strides, padding)` (NHWC, dilation 1,
    one group) with the kernel gradient as matrix products.

    The forward pass is TensorFlow's convolution op as it is (in inference
    the graph optimizer still fuses a following batch norm and ReLU into it).
    The gradients:
    - kernel, 1x1: one product `inputs^T @ output_gradient` over the batch's
      pixels (the strided pixels for a strided convolution);
    - kernel, k x k: one such product per kernel tap, over the zero-padded
      input shifted by the tap;
    - input, 1x1 stride 1: `output_gradient @ kernel^T`; otherwise
      TensorFlow's `Conv2DBackpropInput`.
    """
    import tensorflow as tf

    k_h, k_w, c_in, c_out = kernel.shape

    @tf.custom_gradient
    def conv(x, k):
        y = tf.nn.conv2d(x, k, strides, padding)

        def grad(dy):
            dy_2d = tf.reshape(dy, [-1, c_out])
            if k_h == k_w == 1:
                taps = [x[:, ::strides, ::strides, :] if strides > 1 else x]
            else:
                # Stride 1, "same" padding: tap (i, j) sees the input shifted.
                top, left = (k_h - 1) // 2, (k_w - 1) // 2
                padded = tf.pad(
                    x, [[0, 0], [top, k_h - 1 - top], [left, k_w - 1 - left], [0, 0]]
                )
                h, w = x.shape[1], x.shape[2]
                taps = [
                    padded[:, i : i + h, j : j + w, :]
                    for i in range(k_h)
                    for j in range(k_w)
                ]
            dk = tf.stack(
                [
                    tf.matmul(tf.reshape(t, [-1, c_in]), dy_2d, transpose_a=True)
                    for t in taps
                ]
            )
            dk = tf.reshape(dk, [k_h, k_w, c_in, c_out])
            if k_h == k_w == 1 and strides == 1:
                dx = tf.matmul(dy_2d, tf.reshape(k, [c_in, c_out]), transpose_b=True)
                dx = tf.reshape(dx, tf.shape(x))
            else:
                dx = tf.raw_ops.Conv2DBackpropInput(
                    input_sizes=tf.shape(x),
                    filter=k,
                    out_backprop=dy,
                    strides=[1, strides, strides, 1],
                    padding=padding,
                )
            return dx, dk

        return y, grad

    return conv(inputs, kernel)


@keras.saving.register_keras_serializable(package="keras_resnets")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` with faster gradients on TensorFlow's CPU kernels.

    The same layer (same arguments, weights, outputs, and gradients up to the
    order of float additions). On the TensorFlow backend, for channels-last
    inputs, one group and no dilation, it computes the kernel gradient as
    matrix products where TensorFlow's convolution gradient kernel is slower:
    - every 1x1 convolution (at any stride): the kernel gradient is one
      product over the batch's pixels, the input gradient (stride 1) another.
      Measured on a 2-core AVX-512 CPU over ResNeXt-50's 1x1 shapes at 128 px,
      batch 16: 197 -> 156 ms in float32 and 107 -> 84 ms in bfloat16 for the
      kernel gradients.
    - k x k convolutions with stride 1 and "same" padding on small, wide
      inputs (at most 64 pixels, at least 256 channels): one product per
      kernel tap.
    The forward pass is TensorFlow's convolution as it is, so inference,
    SavedModel and TFLite export see the usual op. Other backends and
    shapes run Keras's own computation.

    Args:
        filters, kernel_size, **kwargs: the `keras.layers.Conv2D` arguments.

    Example:

    >>> layer = Conv2D(8, 1)
    >>> layer(keras.ops.ones((2, 4, 4, 16))).shape
    (2, 4, 4, 8)
    """

    def _matmul_gradient(self, inputs):
        if (
            keras.backend.backend() != "tensorflow"
            or self.data_format != "channels_last"
            or self.groups != 1
            or self.dilation_rate != (1, 1)
            or self.strides[0] != self.strides[1]
            or len(inputs.shape) != 4
        ):
            return False
        k_h, k_w = self.kernel_size
        if k_h == k_w == 1:
            return True
        height, width, channels = inputs.shape[1:]
        return (
            self.strides[0] == 1
            and self.padding == "same"
            and k_h % 2 == 1
            and k_w % 2 == 1
            and height is not None
            and width is not None
            and height * width <= _TAPS_MAX_PIXELS
            and channels is not None
            and channels >= _TAPS_MIN_CHANNELS
        )

    def convolution_op(self, inputs, kernel):
        if not self._matmul_gradient(inputs):
            return super().convolution_op(inputs, kernel)
        inputs = keras.ops.convert_to_tensor(inputs)
        kernel = keras.ops.cast(kernel, inputs.dtype)
        return _matmul_gradient_conv2d(
            inputs, kernel, self.strides[0], self.padding.upper()
        )
