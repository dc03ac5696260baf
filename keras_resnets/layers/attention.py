"""Channel attention of a residual branch: squeeze-and-excitation and ECA.

Both gate the branch's output channel by channel, with weights computed from
its global average: `x * sigmoid(f(mean(x)))`. A block applies its attention
after the last convolution and its norm, before the shortcut is added (Hu
et al. 2018, Fig. 3; timm's `Bottleneck.se`).

- `SqueezeExcite` (Hu et al. 2018, "Squeeze-and-Excitation Networks"): `f`
  is a 1x1 convolution down to `channels * ratio` channels (rounded to a
  multiple of `divisor`, at least `divisor`: timm's `make_divisible`), ReLU,
  a 1x1 convolution back up, both with biases. SE-ResNet and SE-ResNeXt use
  `ratio=1/16`, ResNet-RS 1/4.
- `EfficientChannelAttention` (Wang et al. 2020, "ECA-Net"): `f` is one
  1D convolution across the channels, without bias, its odd kernel size
  growing with the channel count: `k = |log2(channels) + beta| / gamma`,
  rounded down, made odd upwards, at least 3 (timm's `EcaModule`).

`make_attention` builds either from the name a model spec uses ("se",
"eca"). Every operation is a TFLite builtin (MEAN, CONV_2D, LOGISTIC, MUL),
so int8 export keeps them.
"""

import math

import keras
from keras import ops

from keras_resnets.layers.common import (
    HE_NORMAL_FAN_OUT,
    KeepsFrozenSublayers,
    conv_initializer,
    serialize_initializer,
)
from keras_resnets.models.specs import ATTENTIONS
from keras_resnets.utils.validation import UsageError, check_choice, check_positive_int



def make_divisible(value, divisor=8):
    """`value` rounded to the nearest multiple of `divisor`, at least
    `divisor` (timm's `make_divisible` with `round_limit=0`, as its SE uses)."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


def eca_kernel_size(channels, gamma=2, beta=1):
    """ECA's kernel size for `channels` (Wang et al. 2020, eq. 12; timm's rule)."""
    t = int(abs(math.log(channels, 2) + beta) / gamma)
    return max(t if t % 2 else t + 1, 3)


def check_se_ratio(ratio):
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise UsageError(f"`se_ratio` must be a number in (0, 1]; received se_ratio={ratio!r}.")
    return float(ratio)


@keras.saving.register_keras_serializable(package="keras_resnets")
class SqueezeExcite(KeepsFrozenSublayers, keras.layers.Layer):
    """Squeeze-and-excitation: `x * sigmoid(fc2(relu(fc1(mean(x)))))`.

    Args:
        ratio: float in (0, 1], the squeeze's width relative to the input's
            channels. Defaults to `1/16` (Hu et al. 2018).
        divisor: int, the squeeze's width is rounded to a multiple of it.
            Defaults to `8` (timm's).
        kernel_initializer: initializer of the two 1x1 convolutions.

    Example:

    >>> SqueezeExcite()(keras.ops.ones((2, 7, 7, 256))).shape
    (2, 7, 7, 256)
    """

    def __init__(self, ratio=1 / 16, divisor=8, kernel_initializer=HE_NORMAL_FAN_OUT, **kwargs):
        super().__init__(**kwargs)
        self.ratio = check_se_ratio(ratio)
        self.divisor = check_positive_int("divisor", divisor)
        self.kernel_initializer = kernel_initializer
        self.fc1 = self.fc2 = None

    def build(self, input_shape):
        channels = int(input_shape[-1])
        reduced = make_divisible(channels * self.ratio, self.divisor)
        init = conv_initializer(self.kernel_initializer)
        self.fc1 = keras.layers.Conv2D(reduced, 1, kernel_initializer=init, name="fc1", dtype=self.dtype_policy)
        self.fc2 = keras.layers.Conv2D(channels, 1, kernel_initializer=init, name="fc2", dtype=self.dtype_policy)
        pooled = (input_shape[0], 1, 1, channels)
        self.fc1.build(pooled)
        self.fc2.build((input_shape[0], 1, 1, reduced))
        self._freeze_sublayers()
        self.built = True

    def call(self, inputs):
        s = ops.mean(inputs, axis=(1, 2), keepdims=True)
        s = ops.relu(self.fc1(s))
        return inputs * ops.sigmoid(self.fc2(s))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"ratio": self.ratio, "divisor": self.divisor,
                       "kernel_initializer": serialize_initializer(self.kernel_initializer)})
        return config


@keras.saving.register_keras_serializable(package="keras_resnets")
class EfficientChannelAttention(KeepsFrozenSublayers, keras.layers.Layer):
    """ECA: `x * sigmoid(conv1d(mean(x)))`, the 1D convolution across channels.

    Args:
        kernel_size: odd int, or None (the default) for ECA's size from the
            channel count (`eca_kernel_size`).
        gamma, beta: the constants of that size. Default `2` and `1`.

    Example:

    >>> EfficientChannelAttention()(keras.ops.ones((2, 7, 7, 256))).shape
    (2, 7, 7, 256)
    """

    def __init__(self, kernel_size=None, gamma=2, beta=1, **kwargs):
        super().__init__(**kwargs)
        if kernel_size is not None:
            kernel_size = check_positive_int("kernel_size", kernel_size)
            if kernel_size % 2 == 0:
                raise UsageError(f"`kernel_size` must be odd; received kernel_size={kernel_size}.")
        self.kernel_size = kernel_size
        self.gamma, self.beta = gamma, beta
        self.conv = None

    def build(self, input_shape):
        channels = int(input_shape[-1])
        size = self.kernel_size or eca_kernel_size(channels, self.gamma, self.beta)
        self.conv = keras.layers.Conv1D(1, size, padding="same", use_bias=False, name="conv",
                                        dtype=self.dtype_policy)
        self.conv.build((input_shape[0], channels, 1))
        self._freeze_sublayers()
        self.built = True

    def call(self, inputs):
        channels = inputs.shape[-1]
        y = ops.mean(inputs, axis=(1, 2))
        y = self.conv(ops.reshape(y, (-1, channels, 1)))
        return inputs * ops.reshape(ops.sigmoid(y), (-1, 1, 1, channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"kernel_size": self.kernel_size, "gamma": self.gamma, "beta": self.beta})
        return config


def make_attention(kind, se_ratio=1 / 16, name="attention", dtype=None):
    """The attention layer `kind` names ("se", "eca"), or None for None."""
    kind = check_choice("attention", kind, ATTENTIONS)
    if kind is None:
        return None
    if kind == "se":
        return SqueezeExcite(se_ratio, name=name, dtype=dtype)
    return EfficientChannelAttention(name=name, dtype=dtype)
