"""Prediction: the top classes of images, from a trained `.keras` model or
pretrained weights (`predict`, and `keras-resnets predict`).

`predict` loads Keras and TensorFlow when first used
(`keras_resnets.utils.lazy`); the command line's parser does not.
"""

from keras_resnets.utils.lazy import attach

__all__ = ["predict", "load_classifier"]

__getattr__, __dir__ = attach(
    __name__,
    dict.fromkeys(__all__, "keras_resnets.prediction.classify"),
    submodules=("classify", "command"),
)
