"""A 2D convolution whose gradients train as matrix products where they are
faster than TensorFlow's CPU convolution kernels: 1x1 kernels, and the
kernel gradient of k x k kernels over wide inputs."""

import contextlib

import keras

# Non-empty inside `plain_convolutions()`.
_PLAIN = []


@contextlib.contextmanager
def plain_convolutions():
    """Traces `Conv2D` as Keras' convolution, without this module's custom
    gradients: for graphs that are never differentiated (the frozen
    SavedModel of `keras_resnets.export.saved_model`), which then save
    without gradient functions and load without TensorFlow's warning about
    them."""
    _PLAIN.append(True)
    try:
        yield
    finally:
        _PLAIN.pop()


def _matmul_conv2d(inputs, kernel, strides, padding, matmul_forward=False):
    """`tf.nn.conv2d(inputs, kernel, strides, padding)` for a 1x1 `kernel`
    (NHWC, dilation 1, one group) with its gradients as matrix products.

    The forward pass: TensorFlow's convolution op (in inference the graph
    optimizer fuses a following batch norm and ReLU into it), or with
    `matmul_forward` one product `inputs @ kernel` over the (strided) pixels,
    faster where nothing fuses into the convolution (a training step).
    The gradients: kernel, one product `inputs^T @ output_gradient` over the
    batch's pixels (the strided pixels for a strided convolution); input, at
    stride 1 `output_gradient @ kernel^T`, else TensorFlow's
    `Conv2DBackpropInput`.
    """
    import tensorflow as tf

    c_in, c_out = kernel.shape[2:]

    @tf.custom_gradient
    def conv(x, k):
        # For a 1x1 kernel, "same" and "valid" both take these pixels.
        pixels = x[:, ::strides, ::strides, :] if strides > 1 else x
        if matmul_forward:
            y = tf.matmul(tf.reshape(pixels, [-1, c_in]), tf.reshape(k, [c_in, c_out]))
            y = tf.reshape(y, tf.concat([tf.shape(pixels)[:3], [c_out]], 0))
            y.set_shape(pixels.shape[:3].concatenate([c_out]))
        else:
            y = tf.nn.conv2d(x, k, strides, padding)

        def grad(dy):
            dy_2d = tf.reshape(dy, [-1, c_out])
            dk = tf.matmul(tf.reshape(pixels, [-1, c_in]), dy_2d, transpose_a=True)
            dk = tf.reshape(dk, [1, 1, c_in, c_out])
            if strides == 1:
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


def _tap_gradient_conv2d(inputs, kernel, strides, padding):
    """`tf.nn.conv2d(inputs, kernel, strides, padding)` for a k x k `kernel`
    (NHWC, dilation 1, one group; "valid", or "same" at stride 1) with the
    kernel gradient as one matrix product per tap: for tap (i, j),
    `patch_ij^T @ output_gradient` over the batch's pixels, where `patch_ij`
    is the input window that tap sees (a strided input is split into its
    `strides x strides` phase planes first, one transpose, so that each
    window is a plain slice). The forward pass and the input gradient are
    TensorFlow's ops. Needs the image size in the static shape.
    """
    import tensorflow as tf

    kh, kw, c_in, c_out = kernel.shape
    s = strides

    @tf.custom_gradient
    def conv(x, k):
        y = tf.nn.conv2d(x, k, s, padding)

        def grad(dy):
            dx = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x), filter=k, out_backprop=dy,
                strides=[1, s, s, 1], padding=padding,
            )
            xp = x
            if padding == "SAME":  # stride 1, odd kernel: symmetric
                xp = tf.pad(x, [[0, 0], [kh // 2] * 2, [kw // 2] * 2, [0, 0]])
            ho, wo = y.shape[1], y.shape[2]
            if s > 1:
                h, w = xp.shape[1], xp.shape[2]
                hp, wp = -(-h // s) * s, -(-w // s) * s
                xp = tf.pad(xp, [[0, 0], [0, hp - h], [0, wp - w], [0, 0]])
                phases = tf.transpose(
                    tf.reshape(xp, [-1, hp // s, s, wp // s, s, c_in]), [2, 4, 0, 1, 3, 5]
                )
            dy_2d = tf.reshape(dy, [-1, c_out])
            taps = []
            for i in range(kh):
                for j in range(kw):
                    if s > 1:
                        patch = phases[i % s, j % s, :, i // s:i // s + ho, j // s:j // s + wo, :]
                    else:
                        patch = xp[:, i:i + ho, j:j + wo, :]
                    taps.append(
                        tf.matmul(tf.reshape(patch, [-1, c_in]), dy_2d, transpose_a=True)
                    )
            dk = tf.reshape(tf.stack(taps), [kh, kw, c_in, c_out])
            return dx, dk

        return y, grad

    return conv(inputs, kernel)


# Where a training step on the CPU takes a k x k kernel's gradient as
# products per tap: at least this many input channels, and at stride 1 at
# most this many output pixels (height x width, per image). Measured on a
# 2-core AVX512-BF16 CPU over ResNet-50's 3x3 layers at 128 px, batch 16 (ms,
# TensorFlow's op -> products, each alone): strided, bfloat16 8.2 -> 6.6,
# 11.2 -> 6.4, 21.1 -> 5.9, float32 11.3 -> 11.2, 13.5 -> 10.7, 22.4 -> 10.1;
# stride 1 at 8 and 4 px, bfloat16 9.1 -> 5.1 and 17.9 -> 5.3, float32
# 8.9 -> 8.5 and 13.9 -> 10.0. Larger stride-1 layers gain a little alone in
# bfloat16 (7.0 -> 6.1 at 16 px) but not within a ResNet-18 step, and lose in
# float32 (9.4 -> 13.5 at 32 px).
TAP_GRADIENT_MIN_CHANNELS = 64
TAP_GRADIENT_MAX_PIXELS = 64


def _on_cpu():
    import tensorflow as tf

    return not tf.config.list_logical_devices("GPU")


@keras.saving.register_keras_serializable(package="keras_resnets")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` with faster gradients on TensorFlow's CPU kernels.

    The same layer (same arguments, weights, outputs, and gradients up to the
    order of float additions). On the TensorFlow backend's CPU (the only
    device where they were measured; a GPU runs Keras's own computation), for channels-last
    inputs, one group and no dilation, it computes the gradients of 1x1
    convolutions as matrix products, where TensorFlow's convolution-gradient
    kernels are slower: the kernel gradient is one product over the batch's
    pixels (at any stride), the input gradient (stride 1) another. Measured
    on a 2-core AVX-512 CPU over the 1x1 shapes of ResNet-50 and ResNeXt-50
    at 128 px, batch 16: kernel gradients 197 -> 156 ms in float32 and
    107 -> 84 ms in bfloat16; a whole training step 5-7% faster.

    In a training step on the CPU, the kernel gradient of a k x k
    convolution over at least `TAP_GRADIENT_MIN_CHANNELS` channels, strided
    or with a small output, is one product per tap (`_uses_taps` says
    where): TensorFlow's `Conv2DBackpropFilter` is slow there, in bfloat16
    most of all. ResNet-50's 3x3 kernel gradients at 128 px, batch 16, each
    timed alone: 160 -> 93 ms per step in bfloat16, 175 -> 150 ms in
    float32. Within a step TensorFlow overlaps two kernels on this CPU and
    the gain shrinks: training steps in pairs, ResNet-50 +2% in bfloat16
    and in float32, ResNet-18 +5% in bfloat16 (medians of 30-60 pairs).
    (An earlier version, over every 3x3 layer, gained nothing: it sliced
    strided inputs with strides, which is slow, and float32's larger
    stride-1 layers lose.)

    In training (`training=True`, as `fit` calls it) the forward pass of a
    1x1 convolution is a matrix product too: nothing fuses into it there,
    and the product skips oneDNN's weight reorder (ResNeXt-50 training
    step, process CPU time, 2.07 -> 2.01 s in float32, 1.23 -> 1.20 s in
    bfloat16). Otherwise (inference, SavedModel and TFLite export) it is
    TensorFlow's convolution op as it is, into which the graph optimizer
    fuses a following batch norm and ReLU. Other backends and shapes run
    Keras's own computation.

    Args:
        filters, kernel_size, **kwargs: the `keras.layers.Conv2D` arguments.

    Example:

    >>> layer = Conv2D(8, 1)
    >>> layer(keras.ops.ones((2, 4, 4, 16))).shape
    (2, 4, 4, 8)
    """

    def _tensorflow_dense(self, inputs):
        """The conditions both faster paths share: TensorFlow on the CPU
        (where they were measured to pay; a GPU runs Keras's own
        computation), channels last, one group, no dilation, equal strides,
        a 4D input."""
        return (
            keras.backend.backend() == "tensorflow"
            and self.data_format == "channels_last"
            and self.groups == 1
            and self.dilation_rate == (1, 1)
            and self.strides[0] == self.strides[1]
            and len(inputs.shape) == 4
            and _on_cpu()
        )

    def _uses_matmul(self, inputs):
        return self.kernel_size == (1, 1) and self._tensorflow_dense(inputs)

    def _uses_taps(self, inputs):
        """Whether a training step takes this k x k kernel's gradient as
        products per tap: on TensorFlow's CPU, channels last, one group, no
        dilation, a square odd kernel over at least
        `TAP_GRADIENT_MIN_CHANNELS` input channels, image size known; a
        strided ("valid") convolution at any size, a stride-1 one with an
        output of at most `TAP_GRADIENT_MAX_PIXELS` pixels per image."""
        k, s = self.kernel_size, self.strides
        if not (
            self._tensorflow_dense(inputs)
            and k[0] == k[1] > 1 and k[0] % 2 == 1
            and (self.padding == "valid" or s[0] == 1)
            and None not in inputs.shape[1:]
            and inputs.shape[-1] >= TAP_GRADIENT_MIN_CHANNELS
        ):
            return False
        if s[0] > 1:
            return True
        _, h, w, _ = self.compute_output_shape(inputs.shape)
        return h * w <= TAP_GRADIENT_MAX_PIXELS

    def call(self, inputs, training=None):
        # A Python `training=True` (as `fit` passes it): nothing fuses into
        # the convolution in a training step, so its forward pass is a
        # product too. Otherwise (inference, export, a tensor) the op.
        if not (isinstance(training, bool) and training):
            return super().call(inputs)
        if self._uses_matmul(inputs):
            outputs = self._matmul(inputs, self.kernel, matmul_forward=True)
        elif self._uses_taps(inputs):
            inputs = keras.ops.convert_to_tensor(inputs)
            outputs = _tap_gradient_conv2d(
                inputs, keras.ops.cast(self.kernel, inputs.dtype), self.strides[0],
                self.padding.upper(),
            )
        else:
            return super().call(inputs)
        if self.use_bias:
            outputs = keras.ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def convolution_op(self, inputs, kernel):
        if _PLAIN or not self._uses_matmul(inputs):
            return super().convolution_op(inputs, kernel)
        return self._matmul(inputs, kernel)

    def _matmul(self, inputs, kernel, matmul_forward=False):
        inputs = keras.ops.convert_to_tensor(inputs)
        kernel = keras.ops.cast(kernel, inputs.dtype)
        return _matmul_conv2d(
            inputs, kernel, self.strides[0], self.padding.upper(), matmul_forward
        )
