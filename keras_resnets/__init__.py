"""keras_resnets: the residual-network family for Keras 3.

ResNet v1 and v2, ResNeXt, wide ResNets and the papers' CIFAR networks, built
from serializable Keras layers, with parameter counts, MACs and outputs equal
to the reference implementations.

>>> import keras_resnets
>>> model = keras_resnets.ResNeXt50(weights=None, classes=10)  # doctest: +SKIP
"""

__version__ = "0.1.0"

from keras_resnets import layers
from keras_resnets.models import build_model, get_model, get_spec, list_models
from keras_resnets.models.applications import *  # noqa: F401,F403 (the builders)
from keras_resnets.models.applications import BUILDERS
from keras_resnets.training import train
from keras_resnets.utils.macs import count_macs


__all__ = [
    "__version__", "layers", "build_model", "get_model", "get_spec",
    "list_models", "count_macs", "train", *BUILDERS,
]

from keras_resnets.weights.preprocessing import decode_predictions, preprocess_input  # noqa: E402

__all__ += ["preprocess_input", "decode_predictions"]
