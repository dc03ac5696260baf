"""The public builders: `keras_resnets.ResNet50(...)` and friends.

Each builder is a thin lookup of one registry row, with the
keras.applications signature; the architecture lives in `specs.SPECS`.
"""

import inspect

from keras_resnets.models.builder import build_model, get_model
from keras_resnets.models.registry import get_spec

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


ResNet18 = _builder("ResNet18", "resnet18")
ResNet34 = _builder("ResNet34", "resnet34")
ResNet50 = _builder("ResNet50", "resnet50")
ResNet101 = _builder("ResNet101", "resnet101")
ResNet152 = _builder("ResNet152", "resnet152")
ResNet200 = _builder("ResNet200", "resnet200")
ResNet18V2 = _builder("ResNet18V2", "resnet18v2")
ResNet34V2 = _builder("ResNet34V2", "resnet34v2")
ResNet50V2 = _builder("ResNet50V2", "resnet50v2")
ResNet101V2 = _builder("ResNet101V2", "resnet101v2")
ResNet152V2 = _builder("ResNet152V2", "resnet152v2")
ResNet200V2 = _builder("ResNet200V2", "resnet200v2")
ResNeXt50 = _builder("ResNeXt50", "resnext50_32x4d")
ResNeXt50_32x4d = _builder("ResNeXt50_32x4d", "resnext50_32x4d")
ResNeXt101 = _builder("ResNeXt101", "resnext101_32x4d")
ResNeXt101_32x4d = _builder("ResNeXt101_32x4d", "resnext101_32x4d")
ResNeXt101_32x8d = _builder("ResNeXt101_32x8d", "resnext101_32x8d")
ResNeXt101_64x4d = _builder("ResNeXt101_64x4d", "resnext101_64x4d")
WideResNet50_2 = _builder("WideResNet50_2", "wide_resnet50_2")
WideResNet101_2 = _builder("WideResNet101_2", "wide_resnet101_2")
ResNet20 = _builder("ResNet20", "resnet20")
ResNet32 = _builder("ResNet32", "resnet32")
ResNet44 = _builder("ResNet44", "resnet44")
ResNet56 = _builder("ResNet56", "resnet56")
ResNet110 = _builder("ResNet110", "resnet110")
ResNet1202 = _builder("ResNet1202", "resnet1202")
PreActResNet164 = _builder("PreActResNet164", "preact_resnet164")
PreActResNet1001 = _builder("PreActResNet1001", "preact_resnet1001")
ResNeXt29_8x64d = _builder("ResNeXt29_8x64d", "resnext29_8x64d")
ResNeXt29_16x64d = _builder("ResNeXt29_16x64d", "resnext29_16x64d")
WideResNet16_8 = _builder("WideResNet16_8", "wide_resnet16_8")
WideResNet28_10 = _builder("WideResNet28_10", "wide_resnet28_10")

BUILDERS = {
    name: obj for name, obj in list(globals().items())
    if callable(obj) and getattr(obj, "__module__", None) == "keras_resnets"
}
