"""Weight converters from other implementations of the same architectures."""

from keras_resnets.weights.keras_applications import (
    keras_applications_layer_map,
    load_keras_applications,
    load_keras_applications_model,
)
from keras_resnets.weights.timm import load_timm
from keras_resnets.weights.torchvision import (
    load_torchvision,
    load_torchvision_state_dict,
    torchvision_weight_map,
)
