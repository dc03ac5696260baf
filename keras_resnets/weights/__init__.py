"""Pretrained weights: checkpoints of torchvision, timm and keras.applications.

- `load_torchvision`, `load_timm`, `load_keras_applications`: strict loaders
  of checkpoint files (or state dicts) onto keras_resnets models, all built
  on the one model walk of `layouts.py`.
- `SOURCES`, `WeightSource`, `get_source`, `list_sources`, `fetch`,
  `load_weights`: the named sources behind `weights=` and their downloads.
- `preprocess_input`, `decode_predictions`: the images the weights expect
  and the ImageNet class names.
"""

from keras_resnets.weights.keras_applications import (
    keras_applications_layer_map,
    load_keras_applications,
    load_keras_applications_model,
)
from keras_resnets.weights.layouts import to_state_dict, weight_map
from keras_resnets.weights.preprocessing import decode_predictions, preprocess_input
from keras_resnets.weights.pretrained import (
    SOURCES,
    WeightSource,
    fetch,
    get_source,
    list_sources,
    load_weights,
)
from keras_resnets.weights.timm import load_timm
from keras_resnets.weights.torchvision import (
    load_torchvision,
    load_torchvision_state_dict,
    torchvision_weight_map,
)

__all__ = [
    "load_torchvision", "load_torchvision_state_dict", "torchvision_weight_map",
    "load_timm", "load_keras_applications", "load_keras_applications_model",
    "keras_applications_layer_map", "weight_map", "to_state_dict",
    "SOURCES", "WeightSource", "get_source", "list_sources", "fetch", "load_weights",
    "preprocess_input", "decode_predictions",
]
