"""`ImagePreprocessing`: the normalization pretrained weights expect, as a layer.

A model that fine-tunes pretrained weights takes raw `uint8` images, like
every model `keras-resnets train` saves, and normalizes them inside itself
the way the weights were trained: this layer runs
`keras.applications.imagenet_utils.preprocess_input` in one of its modes
(see `keras_resnets.weights.preprocessing`), so that the saved model, its
SavedModel and TFLite exports need no preprocessing outside.
"""

import keras

from keras_resnets.utils.validation import UsageError

MODES = ("torch", "caffe", "tf")


@keras.saving.register_keras_serializable(package="keras_resnets")
class ImagePreprocessing(keras.layers.Layer):
    """Normalizes RGB images with values 0..255 as pretrained weights expect.

    - "torch" (torchvision, timm): `(x / 255 - mean) / std`, ImageNet's mean
      (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225);
    - "caffe" (keras.applications' ResNet50/101/152): RGB to BGR, minus the
      BGR mean (103.939, 116.779, 123.68);
    - "tf" (keras.applications' v2, timm's ResNetV2 `.a1h`): `x / 127.5 - 1`.

    Computes in float32 whatever the dtype policy (its input is usually
    `uint8`).

    Args:
        mode: "torch", "caffe" or "tf".
        **kwargs: `keras.layers.Layer` arguments (`name`, ...).

    Example:

    >>> inputs = keras.Input((224, 224, 3), dtype="uint8")
    >>> x = ImagePreprocessing("torch")(inputs)
    """

    def __init__(self, mode="torch", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if mode not in MODES:
            raise UsageError(f"`mode` must be one of {', '.join(map(repr, MODES))}; received mode={mode!r}.")
        self.mode = mode

    def call(self, images):
        from keras.applications import imagenet_utils

        x = keras.ops.cast(images, "float32")
        return imagenet_utils.preprocess_input(x, data_format="channels_last", mode=self.mode)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
