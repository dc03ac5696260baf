"""Shortcut connections of residual blocks (He et al. 2015, section 3.3).

The rule that picks a shortcut is stated once, in `shortcut_kind`:

- shape unchanged (same channels, stride 1): identity, whatever the option;
- option "A": parameter-free identity, subsampled by the stride and zero-padded
  with the extra channels (the paper's CIFAR networks);
- option "B": a projection (1x1 convolution) where the channel count changes,
  otherwise the (subsampled) identity;
- option "C": a projection in every block;
- option "D": like "B", but the projection average-pools before a stride-1 1x1
  convolution ("Bag of Tricks", He et al. 2019, ResNet-D).
"""

import keras
from keras import ops

from keras_resnets.layers.common import (
    KeepsFrozenSublayers,
    HE_NORMAL_FAN_OUT,
    build_sequence,
    conv_initializer,
    conv_norm,
    serialize_initializer,
    strided_output_shape,
)
from keras_resnets.layers.conv import Conv2D
from keras_resnets.layers.normalization import BatchNormalization
from keras_resnets.models.specs import SHORTCUT_OPTIONS
from keras_resnets.utils.validation import UsageError, check_choice, check_positive_int



def shortcut_kind(option, in_channels, out_channels, strides):
    """Which shortcut a block uses: "identity", "projection" or "avg_projection".

    "identity" covers the subsampled and zero-padded identity of option A.
    """
    check_choice("shortcut", option, SHORTCUT_OPTIONS)
    if option == "C":
        return "projection"
    if in_channels == out_channels and strides == 1:
        return "identity"
    if option == "A" or in_channels == out_channels:
        return "identity"
    return "avg_projection" if option == "D" else "projection"


@keras.saving.register_keras_serializable(package="keras_resnets")
class IdentityShortcut(keras.layers.Layer):
    """Parameter-free shortcut: identity, subsampling and zero channel padding.

    With `strides > 1` it keeps every `strides`-th pixel (the top-left one of
    each window, like a 1x1 max-pool of that stride); with `filters` larger
    than the input's channel count it appends zero channels. This is option A
    of the ResNet paper.

    Args:
        filters: int or None, output channels; `None` keeps the input's.
            Must not be smaller than the input's channel count.
        strides: int, spatial subsampling factor. Defaults to `1`.

    Example:

    >>> IdentityShortcut(filters=32, strides=2)(keras.ops.ones((1, 8, 8, 16))).shape
    (1, 4, 4, 32)
    """

    def __init__(self, filters=None, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = None if filters is None else check_positive_int("filters", filters)
        self.strides = check_positive_int("strides", strides)

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.filters is not None and channels is not None and self.filters < channels:
            raise UsageError(
                f"IdentityShortcut cannot reduce channels: received filters="
                f"{self.filters} for an input with {channels} channels. Allowed: "
                f"filters >= {channels}, or a ProjectionShortcut."
            )
        self.built = True

    def call(self, inputs):
        x = inputs
        if self.strides > 1:
            x = x[:, :: self.strides, :: self.strides, :]
        extra = 0 if self.filters is None else self.filters - x.shape[-1]
        if extra > 0:
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])
        return x

    def compute_output_shape(self, input_shape):
        return strided_output_shape(input_shape, self.strides, self.filters or input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "strides": self.strides})
        return config


@keras.saving.register_keras_serializable(package="keras_resnets")
class ProjectionShortcut(KeepsFrozenSublayers, keras.layers.Layer):
    """Projection shortcut: a 1x1 convolution, then batch normalization.

    Options B and C of the ResNet paper, and with `avg_down=True` the "D"
    variant, which average-pools by the stride before a stride-1 convolution
    so that no activation is skipped. In a dilated block (a stage that traded
    its stride for dilation, `output_stride`) the "D" variant still averages
    2x2 windows, at stride 1, over the input with a row and a column of zeros
    added at the bottom and right (and counted), as timm's `downsample_avg`
    does there (`AvgPool2dSame`), so that a dilated ResNet-D gives timm's
    features. Pre-activation networks use it without
    normalization (`normalize=False`): its input is already normalized.

    Args:
        filters: int, output channels.
        strides: int, spatial stride. Defaults to `1`.
        avg_down: bool, average-pool instead of striding the convolution.
        dilation_rate: int, the dilation of the block's convolutions; with
            `avg_down` and more than 1, the stride-1 2x2 pool described
            above. Defaults to `1`.
        normalize: bool, batch normalization after the convolution.
        use_bias: bool, a bias on the convolution.
        bn_epsilon: float. Defaults to `1e-5`.
        bn_momentum: float. Defaults to `0.9` (PyTorch's 0.1).
        kernel_initializer: initializer of the convolution.

    Example:

    >>> ProjectionShortcut(256, strides=2)(keras.ops.ones((1, 8, 8, 64))).shape
    (1, 4, 4, 256)
    """

    def __init__(
        self,
        filters,
        strides=1,
        avg_down=False,
        dilation_rate=1,
        normalize=True,
        use_bias=False,
        bn_epsilon=1e-5,
        bn_momentum=0.9,
        kernel_initializer=HE_NORMAL_FAN_OUT,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_positive_int("filters", filters)
        self.strides = check_positive_int("strides", strides)
        self.avg_down = bool(avg_down)
        self.dilation_rate = check_positive_int("dilation_rate", dilation_rate)
        self.normalize = bool(normalize)
        self.use_bias = bool(use_bias)
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        self.kernel_initializer = kernel_initializer
        pool = self.avg_down and self.strides > 1
        self.pool = []
        if pool:
            self.pool = [keras.layers.AveragePooling2D(
                self.strides, self.strides, padding="same", name="pool", dtype=self.dtype_policy)]
        elif self.avg_down and self.dilation_rate > 1:
            self.pool = [
                keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name="pool_pad", dtype=self.dtype_policy),
                keras.layers.AveragePooling2D(2, 1, padding="valid", name="pool", dtype=self.dtype_policy),
            ]
        self.conv = Conv2D(
            self.filters,
            1,
            strides=1 if pool else self.strides,
            use_bias=self.use_bias,
            kernel_initializer=conv_initializer(kernel_initializer),
            name="conv",
            dtype=self.dtype_policy,
        )
        self.bn = (
            BatchNormalization(
                epsilon=bn_epsilon, momentum=bn_momentum, name="bn",
                dtype=self.dtype_policy,
            )
            if self.normalize
            else None
        )

    def build(self, input_shape):
        build_sequence([*self.pool, *(l for l in (self.conv, self.bn) if l is not None)], input_shape)
        self._freeze_sublayers()
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.pool:
            x = layer(x)
        return conv_norm([self.conv], self.bn, x, training)

    def compute_output_shape(self, input_shape):
        return strided_output_shape(input_shape, self.strides, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "strides": self.strides,
                "avg_down": self.avg_down,
                "dilation_rate": self.dilation_rate,
                "normalize": self.normalize,
                "use_bias": self.use_bias,
                "bn_epsilon": self.bn_epsilon,
                "bn_momentum": self.bn_momentum,
                "kernel_initializer": serialize_initializer(self.kernel_initializer),
            }
        )
        return config
