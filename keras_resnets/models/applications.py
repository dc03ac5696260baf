"""The public builders: `keras_resnets.ResNet50(...)` and friends.

Each builder is a thin lookup of one registry row, with the
keras.applications signature; the architecture lives in `specs.SPECS`, the
public names in `registry.BUILDER_NAMES`.
"""

import inspect

from keras_resnets.models.builder import build_model, get_model
from keras_resnets.models.registry import BUILDER_NAMES, get_spec

_SIGNATURE = inspect.signature(build_model)


def _builder(public_name, registry_name):
    spec = get_spec(registry_name)

    def builder(**kwargs):
        return get_model(registry_name, **kwargs)

    params = [
        p.replace(name="name" if p.name == "model_name" else p.name, kind=p.KEYWORD_ONLY)
        for p in list(_SIGNATURE.parameters.values())[1:]
    ]
    builder.__signature__ = _SIGNATURE.replace(parameters=params)
    builder.__name__ = builder.__qualname__ = public_name
    builder.__module__ = "keras_resnets"
    builder.registry_name = registry_name
    builder.__doc__ = (
        f"Builds {spec.title}: {spec.reference}.\n\n"
        f"Registry name {spec.name!r}; default input {spec.default_size}x"
        f"{spec.default_size}. Arguments: see `keras_resnets.build_model`.\n\n"
        "Example:\n\n"
        f">>> model = keras_resnets.{public_name}(weights=None, classes=10)\n"
    )
    return builder


for _public, _registry in BUILDER_NAMES.items():
    globals()[_public] = _builder(_public, _registry)

BUILDERS = {name: globals()[name] for name in BUILDER_NAMES}
__all__ = [*BUILDER_NAMES, "BUILDERS"]
