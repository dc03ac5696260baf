"""Data for training: `load_data` returns train / validation / test
`tf.data` pipelines of `uint8` images and `int32` labels, with the facts the
model needs (`DataBundle`).

>>> from keras_resnets.data import load_data
>>> bundle = load_data("digits", augment="cifar")  # doctest: +SKIP
"""

from keras_resnets.data.augment import (
    AUGMENTATIONS,
    cifar_augment,
    imagenet_augment,
    imagenet_eval_transform,
    resize_image,
    resize_shorter_side,
)
from keras_resnets.data.datasets import IMAGE_EXTENSIONS, DataBundle, load_data

__all__ = [
    "AUGMENTATIONS",
    "IMAGE_EXTENSIONS",
    "DataBundle",
    "load_data",
    "cifar_augment",
    "imagenet_augment",
    "imagenet_eval_transform",
    "resize_image",
    "resize_shorter_side",
]
