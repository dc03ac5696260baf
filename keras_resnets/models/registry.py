"""Name -> `ModelSpec` registry. Duplicate names are refused."""

import difflib

from keras_resnets.models.specs import SPECS, ModelSpec
from keras_resnets.utils.validation import UsageError

_REGISTRY = {}
_ALIASES = {}


def register(spec):
    """Adds `spec` (a `ModelSpec`) under its name and aliases."""
    for key in (spec.name, *spec.aliases):
        if key in _REGISTRY or key in _ALIASES:
            raise UsageError(
                f"A model named {key!r} is already registered; names must be unique."
            )
    _REGISTRY[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.name
    return spec


def list_models(family=None):
    """Names of the registered models, optionally of one family.

    Args:
        family: None, or one of "resnet", "resnet_v2", "resnext",
            "wide_resnet".

    Returns:
        A list of names in table order.
    """
    families = sorted({s.family for s in _REGISTRY.values()})
    if family is not None and family not in families:
        raise UsageError(
            f"Unknown `family`: received family={family!r}. Allowed: {families}."
        )
    return [n for n, s in _REGISTRY.items() if family in (None, s.family)]


def get_spec(name):
    """The `ModelSpec` of `name` (or of an alias; a `ModelSpec` is its own);
    a clear error otherwise."""
    if isinstance(name, ModelSpec):
        return name
    if not isinstance(name, str):
        raise UsageError(f"`name` must be a model name string; received name={name!r}.")
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, [*_REGISTRY, *_ALIASES], n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UsageError(
            f"Unknown model: received name={name!r}.{hint} "
            f"Allowed: {', '.join(_REGISTRY)} (see keras_resnets.list_models())."
        )
    return _REGISTRY[key]


def check_model_name(arg, name):
    """The `ModelSpec` of `name`, given as the argument `arg` (e.g.
    "--model"); a `UsageError` naming `arg` otherwise."""
    try:
        return get_spec(name)
    except ValueError as e:
        raise UsageError(f"`{arg}`: {e}") from None


for _spec in SPECS:
    register(_spec)

BUILDER_NAMES = {
    "ResNet18": "resnet18",
    "ResNet34": "resnet34",
    "ResNet50": "resnet50",
    "ResNet101": "resnet101",
    "ResNet152": "resnet152",
    "ResNet200": "resnet200",
    "ResNet18V2": "resnet18v2",
    "ResNet34V2": "resnet34v2",
    "ResNet50V2": "resnet50v2",
    "ResNet101V2": "resnet101v2",
    "ResNet152V2": "resnet152v2",
    "ResNet200V2": "resnet200v2",
    "ResNeXt50": "resnext50_32x4d",
    "ResNeXt50_32x4d": "resnext50_32x4d",
    "ResNeXt101": "resnext101_32x4d",
    "ResNeXt101_32x4d": "resnext101_32x4d",
    "ResNeXt101_32x8d": "resnext101_32x8d",
    "ResNeXt101_64x4d": "resnext101_64x4d",
    "WideResNet50_2": "wide_resnet50_2",
    "WideResNet101_2": "wide_resnet101_2",
    "ResNet20": "resnet20",
    "ResNet32": "resnet32",
    "ResNet44": "resnet44",
    "ResNet56": "resnet56",
    "ResNet110": "resnet110",
    "ResNet1202": "resnet1202",
    "PreActResNet164": "preact_resnet164",
    "PreActResNet1001": "preact_resnet1001",
    "ResNeXt29_8x64d": "resnext29_8x64d",
    "ResNeXt29_16x64d": "resnext29_16x64d",
    "WideResNet16_8": "wide_resnet16_8",
    "WideResNet28_10": "wide_resnet28_10",
    "ResNet18D": "resnet18d",
    "ResNet34D": "resnet34d",
    "ResNet50D": "resnet50d",
    "ResNet101D": "resnet101d",
    "ResNet152D": "resnet152d",
    "ResNet200D": "resnet200d",
    "ResNeXt50D_32x4d": "resnext50d_32x4d",
    "SEResNet50": "seresnet50",
    "SEResNeXt50_32x4d": "seresnext50_32x4d",
    "SEResNeXt101_32x4d": "seresnext101_32x4d",
    "ECAResNet50D": "ecaresnet50d",
    "ECAResNet101D": "ecaresnet101d",
    "ResNetRS50": "resnetrs50",
    "ResNetRS101": "resnetrs101",
    "ResNetRS152": "resnetrs152",
    "ResNetRS200": "resnetrs200",
}
"""The public builders, `keras_resnets.ResNet50(...)` and friends, and the
registered model each builds. The builders themselves (which need Keras) are
made from this table in `applications.py`; `import keras_resnets` lists
them from here without importing Keras."""
