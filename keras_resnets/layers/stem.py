"""The stems: what a network does to the image before its residual stages."""

import keras
from keras import ops

from keras_resnets.layers.common import (
    KeepsFrozenSublayers,
    HE_NORMAL_FAN_OUT,
    build_sequence,
    conv_layers,
    conv_norm,
    serialize_initializer,
    strided_output_shape,
)
from keras_resnets.layers.normalization import BatchNormalization
from keras_resnets.models.specs import STEM_CONV_STRIDES, STEM_POOLS, STEM_STRIDES
from keras_resnets.utils.validation import check_choice, check_positive_int

STEMS = tuple(STEM_STRIDES)


@keras.saving.register_keras_serializable(package="keras_resnets")
class StemPool(KeepsFrozenSublayers, keras.layers.Layer):
    """The stem's max-pool: 3x3, stride 2, one pixel of padding on each side
    (PyTorch's `MaxPool2d(3, 2, padding=1)`).

    Args:
        padding: "min" pads with -inf, never a maximum (PyTorch's
            semantics); "zeros" pads with zeros (keras.applications'). After
            a ReLU both are the same, and zeros keep int8 export sane: a -inf
            pad value would set the quantization range of the tensor.

    Example:

    >>> StemPool()(keras.ops.ones((1, 32, 32, 64))).shape
    (1, 16, 16, 64)
    """

    def __init__(self, padding="min", **kwargs):
        super().__init__(**kwargs)
        self.padding = check_choice("padding", padding, ("min", "zeros"))
        self.pool = keras.layers.MaxPooling2D(3, strides=2, name="pool", dtype=self.dtype_policy)

    def build(self, input_shape):
        n, h, w, c = input_shape
        self.pool.build((n, None if h is None else h + 2, None if w is None else w + 2, c))
        self._freeze_sublayers()
        self.built = True

    def call(self, inputs):
        pad_value = float("-inf") if self.padding == "min" else 0.0
        x = ops.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=pad_value)
        return self.pool(x)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else (h - 1) // 2 + 1, None if w is None else (w - 1) // 2 + 1, c)

    def get_config(self):
        config = super().get_config()
        config["padding"] = self.padding
        return config


@keras.saving.register_keras_serializable(package="keras_resnets")
class StemConvPool(KeepsFrozenSublayers, keras.layers.Layer):
    """The stem's downsampling as a convolution instead of a max-pool: 3x3,
    stride 2, then BN and ReLU, the channels kept (ResNet-RS, Bello et al.
    2021; timm's `replace_stem_pool=True`).

    Args:
        bn_epsilon: float. Defaults to `1e-5`.
        bn_momentum: float. Defaults to `0.9`.
        kernel_initializer: initializer of the convolution.

    Example:

    >>> StemConvPool()(keras.ops.ones((1, 32, 32, 64))).shape
    (1, 16, 16, 64)
    """

    def __init__(self, bn_epsilon=1e-5, bn_momentum=0.9, kernel_initializer=HE_NORMAL_FAN_OUT, **kwargs):
        super().__init__(**kwargs)
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        self.kernel_initializer = kernel_initializer
        self.conv = self.norm = None

    def build(self, input_shape):
        self.conv = conv_layers(input_shape[-1], 3, strides=2, kernel_initializer=self.kernel_initializer,
                                name="conv", dtype=self.dtype_policy)
        self.norm = BatchNormalization(epsilon=self.bn_epsilon, momentum=self.bn_momentum, name="bn",
                                       dtype=self.dtype_policy)
        self.norm.build(build_sequence(self.conv, input_shape))
        self._freeze_sublayers()
        self.built = True

    def call(self, inputs, training=None):
        return ops.relu(conv_norm(self.conv, self.norm, inputs, training))

    def compute_output_shape(self, input_shape):
        return strided_output_shape(input_shape, 2, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"bn_epsilon": self.bn_epsilon, "bn_momentum": self.bn_momentum,
                       "kernel_initializer": serialize_initializer(self.kernel_initializer)})
        return config


@keras.saving.register_keras_serializable(package="keras_resnets")
class Stem(KeepsFrozenSublayers, keras.layers.Layer):
    """The first layers of a ResNet.

    - "imagenet": 7x7 convolution with stride 2, then 3x3 max-pool with
      stride 2 (He et al. 2015).
    - "cifar": one 3x3 convolution with stride 1 (the paper's section 4.2).
    - "deep": three 3x3 convolutions (`filters // 2`, `filters // 2`,
      `filters`), the first with stride 2, then the max-pool ("Bag of
      Tricks", He et al. 2019, ResNet-C/D).

    Each convolution is followed by BN and ReLU, except the last one of a
    pre-activation network, whose first block normalizes its input. With
    `pool=False` the max-pool is left out: the models apply it as a layer of
    its own (`StemPool`), so that the features before it ("P1", stride 2)
    are a tensor of the model.

    Args:
        kind: one of "imagenet", "cifar", "deep". Defaults to "imagenet".
        filters: int, output channels. Defaults to `64`.
        preactivation: bool, the stem of a pre-activation (v2) network.
        use_bias: bool, a bias on convolutions that BN follows.
        output_bias: bool, a bias on the last convolution when no BN follows
            it (keras.applications' ResNetV2 has one).
        pool_padding: "min" pads the max-pool with -inf (PyTorch's semantics)
            or "zeros" (keras.applications'). After a ReLU both are the same.
        pool: bool, end with the max-pool ("imagenet" and "deep").
            Defaults to `True`.
        pool_type: "max" (`StemPool`, the default) or "conv"
            (`StemConvPool`: a strided 3x3 convolution, BN and ReLU; ResNet-RS).
        bn_epsilon: float. Defaults to `1e-5`.
        bn_momentum: float. Defaults to `0.9`.
        kernel_initializer: initializer of the convolutions.

    Example:

    >>> Stem("imagenet")(keras.ops.ones((1, 64, 64, 3))).shape
    (1, 16, 16, 64)
    """

    def __init__(
        self,
        kind="imagenet",
        filters=64,
        preactivation=False,
        use_bias=False,
        output_bias=False,
        pool_padding="min",
        bn_epsilon=1e-5,
        bn_momentum=0.9,
        kernel_initializer=HE_NORMAL_FAN_OUT,
        pool=True,
        pool_type="max",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kind = check_choice("stem", kind, STEMS)
        self.pool_type = check_choice("stem_pool", pool_type, STEM_POOLS)
        self.pool_output = bool(pool)
        self.filters = check_positive_int("filters", filters)
        self.preactivation = bool(preactivation)
        self.use_bias = bool(use_bias)
        self.output_bias = bool(output_bias)
        self.pool_padding = check_choice("pool_padding", pool_padding, ("min", "zeros"))
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        self.kernel_initializer = kernel_initializer

        if self.kind == "imagenet":
            specs = [(self.filters, 7, 2)]
        elif self.kind == "cifar":
            specs = [(self.filters, 3, 1)]
        else:
            half = max(self.filters // 2, 1)
            specs = [(half, 3, 2), (half, 3, 1), (self.filters, 3, 1)]
        last = len(specs) - 1
        self.convs, self.norms = [], []
        for i, (conv_filters, kernel_size, strides) in enumerate(specs):
            normalized = not (self.preactivation and i == last)
            name = "conv" if len(specs) == 1 else f"conv{i + 1}"
            self.convs.append(
                conv_layers(
                    conv_filters,
                    kernel_size,
                    strides=strides,
                    use_bias=self.use_bias if normalized else self.output_bias,
                    kernel_initializer=kernel_initializer,
                    name=name,
                    dtype=self.dtype_policy,
                )
            )
            self.norms.append(
                BatchNormalization(
                    epsilon=bn_epsilon,
                    momentum=bn_momentum,
                    name=name.replace("conv", "bn"),
                    dtype=self.dtype_policy,
                )
                if normalized
                else None
            )
        self.pool = self.make_pool("pool") if self.pool_output else None

    def make_pool(self, name):
        """The stem's `StemPool` (None for the "cifar" stem, which has none):
        after a ReLU its padding is zeros, exactly PyTorch's -inf there
        (every window holds a pixel >= 0). With `pool_type="conv"` a
        `StemConvPool`."""
        if self.kind == "cifar":
            return None
        if self.pool_type == "conv":
            return StemConvPool(self.bn_epsilon, self.bn_momentum, self.kernel_initializer, name=name,
                                dtype=self.dtype_policy)
        after_relu = self.norms[-1] is not None
        padding = "min" if self.pool_padding == "min" and not after_relu else "zeros"
        return StemPool(padding, name=name, dtype=self.dtype_policy)

    @property
    def strides(self):
        return STEM_CONV_STRIDES[self.kind] * (1 if self.pool is None else 2)

    def build(self, input_shape):
        shape = input_shape
        for conv, norm in zip(self.convs, self.norms):
            shape = build_sequence(conv, shape)
            if norm is not None:
                norm.build(shape)
        if self.pool is not None:
            self.pool.build(shape)
        self._freeze_sublayers()
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        for conv, norm in zip(self.convs, self.norms):
            x = conv_norm(conv, norm, x, training)
            if norm is not None:
                x = ops.relu(x)
        if isinstance(self.pool, StemConvPool):
            return self.pool(x, training=training)
        return x if self.pool is None else self.pool(x)

    def compute_output_shape(self, input_shape):
        shape = strided_output_shape(input_shape, STEM_CONV_STRIDES[self.kind], self.filters)
        return shape if self.pool is None else self.pool.compute_output_shape(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kind": self.kind,
                "filters": self.filters,
                "preactivation": self.preactivation,
                "use_bias": self.use_bias,
                "output_bias": self.output_bias,
                "pool_padding": self.pool_padding,
                "bn_epsilon": self.bn_epsilon,
                "bn_momentum": self.bn_momentum,
                "kernel_initializer": serialize_initializer(self.kernel_initializer),
                "pool": self.pool_output,
                "pool_type": self.pool_type,
            }
        )
        return config
