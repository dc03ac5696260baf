"""Model table, registry and builder.

The table and the registry load without Keras; the builder, which needs it,
loads when `build_model`, `get_model` or `LAYOUTS` is first used (see
`keras_resnets.utils.lazy`).
"""

from keras_resnets.models.registry import BUILDER_NAMES, get_spec, list_models, register
from keras_resnets.models.specs import SPECS, ModelSpec, min_input_size
from keras_resnets.utils.lazy import attach

__all__ = ["BUILDER_NAMES", "LAYOUTS", "ModelSpec", "ResNetModel", "SPECS", "build_model", "get_model",
           "get_spec", "list_models", "load_model", "min_input_size", "register"]

__getattr__, __dir__ = attach(
    __name__,
    {
        **dict.fromkeys(("LAYOUTS", "build_model", "get_model"), "keras_resnets.models.builder"),
        "ResNetModel": "keras_resnets.models.model",
        "load_model": "keras_resnets.models.saving",
    },
    submodules=("applications", "builder", "catalog", "model", "saving"),
)
