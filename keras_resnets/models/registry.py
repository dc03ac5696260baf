"""Name -> `ModelSpec` registry. Duplicate names are refused."""

import difflib

from keras_resnets.models.specs import SPECS

_REGISTRY = {}
_ALIASES = {}


def register(spec):
    """Adds `spec` (a `ModelSpec`) under its name and aliases."""
    for key in (spec.name, *spec.aliases):
        if key in _REGISTRY or key in _ALIASES:
            raise ValueError(
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
        raise ValueError(
            f"Unknown `family`: received family={family!r}. Allowed: {families}."
        )
    return [n for n, s in _REGISTRY.items() if family in (None, s.family)]


def get_spec(name):
    """The `ModelSpec` of `name` (or of an alias); a clear error otherwise."""
    if not isinstance(name, str):
        raise ValueError(f"`name` must be a model name string; received name={name!r}.")
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, [*_REGISTRY, *_ALIASES], n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown model: received name={name!r}.{hint} "
            f"Allowed: {', '.join(_REGISTRY)} (see keras_resnets.list_models())."
        )
    return _REGISTRY[key]


for _spec in SPECS:
    register(_spec)
