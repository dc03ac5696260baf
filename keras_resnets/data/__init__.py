"""Data for training: `load_data` returns train / validation / test
`tf.data` pipelines of `uint8` images and `int32` labels, with the facts the
model needs (`DataBundle`).

They are TensorFlow's `tf.data` pipelines on every Keras backend (Keras 3's
`fit` takes them on JAX and PyTorch too), so this package needs TensorFlow
installed: without it, importing it raises `TensorFlowNeededError`, which
says so.

>>> from keras_resnets.data import load_data
>>> bundle = load_data("digits", augment="cifar")  # doctest: +SKIP
"""

from keras_resnets.utils.backend import require_tensorflow

require_tensorflow("keras_resnets.data (tf.data pipelines, used by `train`, `tune` and `export --data`)")

# (after the check: they import TensorFlow)

from keras_resnets.data.augment import (  # noqa: E402
    AUGMENTATIONS,
    cifar_augment,
    imagenet_augment,
    imagenet_eval_transform,
    resize_image,
    resize_shorter_side,
)
from keras_resnets.data.datasets import IMAGE_EXTENSIONS, DataBundle, load_data  # noqa: E402

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
