"""Pretrained weights: checkpoints of torchvision, timm and keras.applications.

- `load_torchvision`, `load_timm`, `load_keras_applications`: strict loaders
  of checkpoint files (or state dicts) onto keras_resnets models, all built
  on the one model walk of `layouts.py`.
- `from_keras_hub`: a keras-hub `ResNetBackbone` or `ResNetImageClassifier`
  as the keras_resnets model of its architecture, with its weights
  (`keras_resnets.keras_hub`).
- `SOURCES`, `WeightSource`, `get_source`, `list_sources`, `fetch`,
  `load_weights`: the named sources behind `weights=` and their downloads.
- `preprocess_input`, `decode_predictions`: the images the weights expect
  and the ImageNet class names.

Each loads its module (and Keras) when first used (`keras_resnets.utils.lazy`).
"""

from keras_resnets.utils.lazy import attach

__all__ = [
    "load_torchvision", "load_torchvision_state_dict", "torchvision_weight_map",
    "load_timm", "load_keras_applications", "from_keras_hub", "load_keras_applications_model",
    "keras_applications_layer_map", "weight_map", "to_state_dict",
    "SOURCES", "WeightSource", "get_source", "list_sources", "fetch", "load_weights",
    "preprocess_input", "decode_predictions",
]

__getattr__, __dir__ = attach(
    __name__,
    {
        **dict.fromkeys(("keras_applications_layer_map", "load_keras_applications",
                         "load_keras_applications_model"), "keras_resnets.weights.keras_applications"),
        **dict.fromkeys(("to_state_dict", "weight_map"), "keras_resnets.weights.layouts"),
        **dict.fromkeys(("decode_predictions", "preprocess_input"), "keras_resnets.weights.preprocessing"),
        **dict.fromkeys(("SOURCES", "WeightSource", "fetch", "get_source", "list_sources", "load_weights"),
                        "keras_resnets.weights.pretrained"),
        "load_timm": "keras_resnets.weights.timm",
        "from_keras_hub": "keras_resnets.keras_hub",
        **dict.fromkeys(("load_torchvision", "load_torchvision_state_dict", "torchvision_weight_map"),
                        "keras_resnets.weights.torchvision"),
    },
    submodules=("files", "keras_applications", "layouts", "preprocessing", "pretrained", "sources",
                "timm", "torchvision"),
)
