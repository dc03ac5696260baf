"""Residual blocks: basic (two 3x3) and bottleneck (1x1, 3x3, 1x1).

Each block exists once; the variants are flags:

- `preactivation=False` is the original block of He et al. 2015 (ResNet v1):
  conv -> BN -> ReLU ... conv -> BN, add the shortcut, ReLU.
- `preactivation=True` is the block of "Identity Mappings in Deep Residual
  Networks" (ResNet v2): BN -> ReLU -> conv ... conv, add the shortcut, with
  nothing after the addition. A projection shortcut then starts from the
  pre-activated input, as in the paper's code and keras.applications.
- `groups` and `width_per_group` (bottleneck) give ResNeXt and wide ResNets:
  the 3x3 convolution has `int(filters * width_per_group / 64) * groups`
  channels in `groups` groups (torchvision's rule).
- `dilation_rate` and `first_dilation_rate` dilate the 3x3 convolutions of a
  stage that trades its stride for dilation (`output_stride` of the
  builder): the first 3x3 of the stage's first block keeps the previous
  dilation, every other one uses the new (torchvision's
  `replace_stride_with_dilation`, timm's `output_stride`).
- `attention` gates the branch's output channel by channel before the
  addition: "se" (squeeze-and-excitation, SE-ResNet / SE-ResNeXt /
  ResNet-RS) or "eca" (ECA-Net), see `keras_resnets.layers.attention`.
"""

import keras
from keras import ops

from keras_resnets.layers.attention import ATTENTIONS, check_se_ratio, make_attention
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
from keras_resnets.layers.shortcuts import (
    SHORTCUT_OPTIONS,
    IdentityShortcut,
    ProjectionShortcut,
    shortcut_kind,
)
from keras_resnets.utils.validation import (
    UsageError,
    check_choice,
    check_positive_int,
    check_rate,
)


class ResidualBlock(KeepsFrozenSublayers, keras.layers.Layer):
    """Shared machinery of `BasicBlock` and `BottleneckBlock`.

    A subclass states its residual branch with `branch_convs()`, a list of
    `(filters, kernel_size, strides, groups, dilation_rate)`; everything else
    (normalization, activations, shortcut, stochastic depth) is common.

    Args:
        filters: int, the block's width (see the subclass).
        strides: int, stride of the block (applied by its first 3x3
            convolution, or by the first 1x1 with `stride_in_1x1`).
        preactivation: bool, the pre-activation form (ResNet v2).
        shortcut: one of "A", "B", "C", "D": the shortcut option used when the
            block changes the shape of its input (see `shortcut_kind`).
            Defaults to "B".
        use_bias: bool, a bias on convolutions that batch normalization
            follows (keras.applications' ResNet v1 layout has them).
        output_bias: bool, pre-activation only: a bias on the convolutions
            whose output is not normalized (the last one and the projection).
        bn_epsilon: float. Defaults to `1e-5` (PyTorch's).
        bn_momentum: float. Defaults to `0.9` (PyTorch's 0.1).
        drop_path_rate: float in [0, 1), stochastic depth: the probability of
            dropping the residual branch of a sample during training.
        zero_init_residual: bool, start the residual branch at zero (the last
            BN's gamma, or the last convolution in a pre-activation block).
        kernel_initializer: initializer of the convolutions. Defaults to
            "he_normal_fan_out", torchvision's.
        dilation_rate: int, dilation of the 3x3 convolutions. Defaults to 1.
        first_dilation_rate: int or None, dilation of the first 3x3
            convolution; defaults to `dilation_rate`. A block that would have
            strided into a dilated stage keeps the previous dilation there.
        attention: None, "se" or "eca": channel attention on the residual
            branch's output, before the addition. Defaults to None.
        se_ratio: float in (0, 1], the squeeze's width relative to the
            block's output channels with `attention="se"`. Defaults to
            `1/16` (SE-ResNet; ResNet-RS uses 0.25).
    """

    expansion = 1

    def __init__(
        self,
        filters,
        strides=1,
        preactivation=False,
        shortcut="B",
        use_bias=False,
        output_bias=False,
        bn_epsilon=1e-5,
        bn_momentum=0.9,
        drop_path_rate=0.0,
        zero_init_residual=False,
        kernel_initializer=HE_NORMAL_FAN_OUT,
        dilation_rate=1,
        first_dilation_rate=None,
        attention=None,
        se_ratio=1 / 16,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_positive_int("filters", filters)
        self.strides = check_positive_int("strides", strides)
        self.dilation_rate = check_positive_int("dilation_rate", dilation_rate)
        self.first_dilation_rate = check_positive_int(
            "first_dilation_rate", self.dilation_rate if first_dilation_rate is None else first_dilation_rate
        )
        self.preactivation = bool(preactivation)
        self.shortcut = check_choice("shortcut", shortcut, SHORTCUT_OPTIONS)
        self.use_bias = bool(use_bias)
        self.output_bias = bool(output_bias)
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        self.drop_path_rate = check_rate("drop_path_rate", drop_path_rate)
        self.zero_init_residual = bool(zero_init_residual)
        self.kernel_initializer = kernel_initializer
        self.out_channels = self.filters * self.expansion
        self.attention = check_choice("attention", attention, ATTENTIONS)
        self.se_ratio = check_se_ratio(se_ratio)
        self.attention_layer = make_attention(self.attention, self.se_ratio, dtype=self.dtype_policy)

        specs = self.branch_convs()
        last = len(specs) - 1
        self.preact_bn = self._norm("preact_bn") if self.preactivation else None
        self.convs, self.norms = [], []
        for i, (conv_filters, kernel_size, conv_strides, groups, dilation) in enumerate(specs):
            # In a pre-activation block the last convolution is not normalized:
            # its output goes straight into the addition.
            normalized = not (self.preactivation and i == last)
            zero = self.zero_init_residual and i == last
            self.convs.append(
                conv_layers(
                    conv_filters,
                    kernel_size,
                    strides=conv_strides,
                    groups=groups,
                    use_bias=self.use_bias if normalized else self.output_bias,
                    kernel_initializer=(
                        "zeros" if zero and not normalized else kernel_initializer
                    ),
                    name=f"conv{i + 1}",
                    dtype=self.dtype_policy,
                    dilation_rate=dilation,
                )
            )
            self.norms.append(
                self._norm(f"bn{i + 1}", zero=zero) if normalized else None
            )
        self.drop_path = (
            keras.layers.Dropout(
                self.drop_path_rate, noise_shape=(None, 1, 1, 1), name="drop_path",
                dtype=self.dtype_policy,
            )
            if self.drop_path_rate > 0
            else None
        )
        # The shortcut depends on the input's channel count: made in build().
        self.shortcut_layer = None

    def branch_convs(self):
        raise NotImplementedError

    def _norm(self, name, zero=False):
        return BatchNormalization(
            epsilon=self.bn_epsilon,
            momentum=self.bn_momentum,
            gamma_initializer="zeros" if zero else "ones",
            name=name,
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        in_channels = input_shape[-1]
        kind = shortcut_kind(self.shortcut, in_channels, self.out_channels, self.strides)
        if kind == "identity":
            self.shortcut_layer = IdentityShortcut(
                filters=self.out_channels, strides=self.strides, name="shortcut",
                dtype=self.dtype_policy,
            )
        else:
            self.shortcut_layer = ProjectionShortcut(
                self.out_channels,
                strides=self.strides,
                avg_down=kind == "avg_projection",
                dilation_rate=self.dilation_rate,
                normalize=not self.preactivation,
                use_bias=self.output_bias if self.preactivation else self.use_bias,
                bn_epsilon=self.bn_epsilon,
                bn_momentum=self.bn_momentum,
                kernel_initializer=self.kernel_initializer,
                name="shortcut",
                dtype=self.dtype_policy,
            )
        self.shortcut_layer.build(input_shape)
        if self.preact_bn is not None:
            self.preact_bn.build(input_shape)
        shape = input_shape
        for conv, norm in zip(self.convs, self.norms):
            shape = build_sequence(conv, shape)
            if norm is not None:
                norm.build(shape)
        if self.attention_layer is not None:
            self.attention_layer.build(shape)
        self._freeze_sublayers()
        self.built = True

    @property
    def projects(self):
        """Whether the shortcut carries weights (a projection)."""
        return isinstance(self.shortcut_layer, ProjectionShortcut)

    def call(self, inputs, training=None):
        x = inputs
        if self.preact_bn is not None:
            x = ops.relu(self.preact_bn(x, training=training))
            # A projection starts from the pre-activated input; the identity
            # carries the raw input, keeping the path from input to output clean.
            shortcut = self.shortcut_layer(x if self.projects else inputs, training=training)
        else:
            shortcut = self.shortcut_layer(inputs, training=training)
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = conv_norm(conv, norm, x, training)
            if i < last:
                x = ops.relu(x)
        if self.attention_layer is not None:
            x = self.attention_layer(x)
        if self.drop_path is not None:
            x = self.drop_path(x, training=training)
        x = ops.add(shortcut, x)
        return x if self.preactivation else ops.relu(x)

    def compute_output_shape(self, input_shape):
        return strided_output_shape(input_shape, self.strides, self.out_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "strides": self.strides,
                "preactivation": self.preactivation,
                "shortcut": self.shortcut,
                "use_bias": self.use_bias,
                "output_bias": self.output_bias,
                "bn_epsilon": self.bn_epsilon,
                "bn_momentum": self.bn_momentum,
                "drop_path_rate": self.drop_path_rate,
                "zero_init_residual": self.zero_init_residual,
                "kernel_initializer": serialize_initializer(self.kernel_initializer),
                "dilation_rate": self.dilation_rate,
                "first_dilation_rate": self.first_dilation_rate,
                "attention": self.attention,
                "se_ratio": self.se_ratio,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_resnets")
class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions with a shortcut (ResNet-18/34, the CIFAR nets).

    Args:
        filters: int, channels of both convolutions and of the output.
        **kwargs: the arguments of `ResidualBlock` (strides, preactivation,
            shortcut, ...).

    Example:

    >>> block = BasicBlock(32, strides=2, shortcut="A")
    >>> block(keras.ops.ones((2, 16, 16, 16))).shape
    (2, 8, 8, 32)
    """

    expansion = 1

    def branch_convs(self):
        return [
            (self.filters, 3, self.strides, 1, self.first_dilation_rate),
            (self.filters, 3, 1, 1, self.dilation_rate),
        ]


@keras.saving.register_keras_serializable(package="keras_resnets")
class BottleneckBlock(ResidualBlock):
    """1x1 reduce, 3x3 (optionally grouped), 1x1 expand by 4, with a shortcut.

    Args:
        filters: int, the block's "planes": it outputs `4 * filters` channels.
        groups: int, groups of the 3x3 convolution (ResNeXt's cardinality).
            Defaults to `1`.
        width_per_group: int, channels per group of the 3x3 convolution at
            `filters=64`; it scales with `filters`. Defaults to `64`
            (ResNet); ResNeXt-50 32x4d uses `groups=32, width_per_group=4`,
            Wide ResNet-50-2 `width_per_group=128`.
        stride_in_1x1: bool, put the stride on the first 1x1 convolution (the
            paper and keras.applications) instead of the 3x3 (torchvision,
            "ResNet v1.5").
        **kwargs: the arguments of `ResidualBlock` (strides, preactivation,
            shortcut, ...).

    Example:

    >>> block = BottleneckBlock(64, groups=32, width_per_group=4)
    >>> block(keras.ops.ones((1, 8, 8, 256))).shape
    (1, 8, 8, 256)
    """

    expansion = 4

    def __init__(self, filters, groups=1, width_per_group=64, stride_in_1x1=False, **kwargs):
        self.groups = check_positive_int("groups", groups)
        self.width_per_group = check_positive_int("width_per_group", width_per_group)
        self.stride_in_1x1 = bool(stride_in_1x1)
        super().__init__(filters, **kwargs)

    @property
    def width(self):
        return int(self.filters * (self.width_per_group / 64.0)) * self.groups

    def branch_convs(self):
        if self.width < self.groups:
            raise UsageError(
                f"`width_per_group`={self.width_per_group} gives no channel per "
                f"group at filters={self.filters}; allowed: width_per_group >= "
                f"{-(-64 // self.filters)}."
            )
        s1, s3 = (self.strides, 1) if self.stride_in_1x1 else (1, self.strides)
        return [
            (self.width, 1, s1, 1, 1),
            (self.width, 3, s3, self.groups, self.first_dilation_rate),
            (self.out_channels, 1, 1, 1, 1),
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "groups": self.groups,
                "width_per_group": self.width_per_group,
                "stride_in_1x1": self.stride_in_1x1,
            }
        )
        return config

