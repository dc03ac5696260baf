"""Keras layers of the residual family."""

from keras_resnets.layers.attention import ATTENTIONS, EfficientChannelAttention, SqueezeExcite
from keras_resnets.layers.blocks import BasicBlock, BottleneckBlock, ResidualBlock
from keras_resnets.layers.conv import Conv2D
from keras_resnets.layers.grouped_conv import GroupedConv2D
from keras_resnets.layers.normalization import BatchNormalization
from keras_resnets.layers.preprocessing import ImagePreprocessing
from keras_resnets.layers.shortcuts import (
    SHORTCUT_OPTIONS,
    IdentityShortcut,
    ProjectionShortcut,
    shortcut_kind,
)
from keras_resnets.layers.stem import STEM_POOLS, STEMS, Stem, StemConvPool, StemPool
