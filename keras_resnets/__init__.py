"""keras_resnets: the residual-network family for Keras 3.

ResNet v1 and v2, ResNeXt, wide ResNets and the papers' CIFAR networks, built
from serializable Keras layers, with parameter counts, MACs and outputs equal
to the reference implementations.

`import keras_resnets` does not import Keras or TensorFlow: each public name
loads its module when first used (`keras_resnets.utils.lazy`), so the
command line answers `--help` at once. Once Keras is imported (before or
after this package), the package's layers and models are registered with
it, so that `keras.saving.load_model` reads their `.keras` files;
`keras_resnets.load_model` reads them in any process.

>>> import keras_resnets
>>> model = keras_resnets.ResNeXt50(weights=None, classes=10)  # doctest: +SKIP
"""

__version__ = "0.1.0"

from keras_resnets.models.registry import BUILDER_NAMES as _BUILDER_NAMES
from keras_resnets.models.registry import get_spec, list_models
from keras_resnets.models.specs import ModelSpec
from keras_resnets.utils.backend import torch_before_tensorflow as _torch_before_tensorflow
from keras_resnets.utils.lazy import attach as _attach
from keras_resnets.utils.lazy import before_imported as _before_imported
from keras_resnets.utils.lazy import when_imported as _when_imported

__all__ = [
    "__version__", "layers", "build_model", "get_model", "get_spec", "ModelSpec",
    "list_models", "count_macs", "load_model", "train", "predict", *_BUILDER_NAMES,
    "preprocess_input", "decode_predictions",
]

__getattr__, __dir__ = _attach(
    __name__,
    {
        "build_model": "keras_resnets.models.builder",
        "get_model": "keras_resnets.models.builder",
        "count_macs": "keras_resnets.utils.macs",
        "load_model": "keras_resnets.models.saving",
        "train": "keras_resnets.training.loop",
        "predict": "keras_resnets.prediction.classify",
        "preprocess_input": "keras_resnets.weights.preprocessing",
        "decode_predictions": "keras_resnets.weights.preprocessing",
        "BUILDERS": "keras_resnets.models.applications",
        **dict.fromkeys(_BUILDER_NAMES, "keras_resnets.models.applications"),
    },
    submodules=("benchmark", "cli", "data", "export", "info", "keras_hub", "layers", "models", "prediction",
                "training", "tuning", "utils", "weights"),
)


def _register_with_keras():
    from keras_resnets.models.saving import register

    register()


_when_imported("keras", _register_with_keras)
_before_imported("tensorflow", _torch_before_tensorflow)
