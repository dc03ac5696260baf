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
from keras_resnets.weights.pretrained import (
    SOURCES,
    WeightSource,
    fetch,
    get_source,
    list_sources,
    load_weights,
)
from keras_resnets.weights.preprocessing import decode_predictions, preprocess_input
