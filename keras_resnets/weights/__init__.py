"""Weight converters from other implementations of the same architectures."""

from keras_resnets.weights.keras_applications import (
    keras_applications_layer_map,
    load_keras_applications_model,
)
