"""The architecture search space and the cost budgets of a search.

Families and depths come from the model table (`keras_resnets.models.specs`):
a family's depths are the depths of its registered variants for the image
size, the number in the variant's name (the papers' count):

| family | small images (<= 64 px): CIFAR nets | large images: ImageNet nets |
|---|---|---|
| "v1" | resnet20, 32, 44, 56 (110, 1202) | resnet18, 34, 50, 101 (152, 200) |
| "v2" | preact_resnet164 (1001) | resnet18v2, 34v2, 50v2, 101v2 (152v2, 200v2) |
| "resnext" | resnext29 | resnext50, 101 |
| "wide" | wide_resnet16, 28 (WRN-d-k) | wide_resnet50, 101 |

Depths in brackets are in the space only when asked for (`depths=` or
`max_depth=`). On small images the default families are "v1", "resnext" and
"wide": "v2" there is the 164-layer pre-activation net, whose graph alone
takes minutes to build on a 2-core CPU; name it in `families` to search it.
Width, cardinality and group width are separate hyperparameters that the
builders apply to the variant (`width_multiplier`, `groups`,
`width_per_group`), so "wide" at `width_multiplier=0.25` is WRN-16-2.

The default space on small images is sized for a search of minutes on a
CPU: from 10M to 330M MACs per image (ResNet-20 has 41M), where the full
table would reach 2.7G (ResNet-110 at twice the width, ResNeXt-29 16x64d),
and a 10-minute Hyperband search spent a third of its time on one such
trial. Widen it with `max_depth`, `width_multipliers`, `groups` and
`widths_per_group`.
"""

import dataclasses
import numbers
import re
import time

from keras_resnets.utils.backend import require_tensorflow_backend

# Its trials train on tf.data pipelines under TensorFlow's precision and
# memory handling, and its latency budget times LiteRT files: refused with
# a clear error on the other backends, before KerasTuner loads.
require_tensorflow_backend("keras_resnets.tuning (the KerasTuner search, `keras-resnets tune`)")

import keras_tuner  # noqa: E402
import numpy as np

from keras_resnets.layers.shortcuts import SHORTCUT_OPTIONS
from keras_resnets.layers.stem import STEMS
from keras_resnets.models.registry import get_spec, list_models
from keras_resnets.tuning.settings import FAMILIES
from keras_resnets.utils.validation import UsageError, check_positive_int

SMALL_IMAGE_MAX = 64
"""Images up to this side search the CIFAR nets; larger ones the ImageNet nets."""

# Defaults of the space: (small images, large images).
DEFAULT_FAMILIES = (("v1", "resnext", "wide"), tuple(FAMILIES))
DEFAULT_MAX_DEPTH = (56, 101)
DEFAULT_WIDTH_MULTIPLIERS = (
    {"v1": (0.5, 1.0, 1.5), "v2": (0.25, 0.5), "resnext": (0.25,), "wide": (0.25,)},
    {"v1": (0.5, 1.0), "v2": (0.5, 1.0), "resnext": (0.5, 1.0), "wide": (0.5, 1.0)},
)
DEFAULT_GROUPS = ((4, 8), (16, 32, 64))
DEFAULT_WIDTHS_PER_GROUP = ((16, 32), (4, 8))
DEFAULT_STEMS = (("cifar", "deep"), ("imagenet", "deep"))
DEFAULT_SHORTCUTS = ("A", "B", "D")
BUDGETS = ("max_params", "max_macs", "max_latency_ms")


def _depth(name):
    return int(re.search(r"\d+", name).group())


def variants(family, image_size):
    """`{depth: registered name}` of a search family for images of `image_size` px."""
    if family not in FAMILIES:
        raise UsageError(
            f"Unknown family: received family={family!r}. Allowed: {', '.join(map(repr, FAMILIES))}."
        )
    size = 32 if image_size <= SMALL_IMAGE_MAX else 224
    found = {}
    for name in list_models(FAMILIES[family]):
        if get_spec(name).default_size == size:
            found.setdefault(_depth(name), name)
    return dict(sorted(found.items()))


def _default(values, default):
    """`values`, or `default` where none were given (an empty list is refused, not replaced)."""
    return default if values is None else values


def _values(name, values, allowed=None, kind=numbers.Real):
    """A non-empty tuple of distinct values, each of type `kind` (and in `allowed`)."""
    if isinstance(values, (str, numbers.Number)):
        values = (values,)
    try:
        values = tuple(dict.fromkeys(values))
    except TypeError:
        values = None
    if not values:
        raise UsageError(f"`{name}` must be a non-empty list; received {name}={values!r}.")
    for v in values:
        bad_type = isinstance(v, bool) or not isinstance(v, kind)
        if bad_type or (allowed is not None and v not in allowed) or (
            allowed is None and v <= 0
        ):
            what = f"one of {', '.join(map(repr, allowed))}" if allowed is not None else "positive numbers"
            raise UsageError(f"`{name}` must hold {what}; received {name}={list(values)!r}.")
    return values


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The architecture choices of a search, after narrowing and validation.

    Build it with `SearchSpace.create`; `ResNetHyperModel` does.

    Attributes:
        image_size: side of the images, which picks the variant table.
        depths: `{family: {depth: registered name}}`, in search order.
        width_multipliers: `{family: (float, ...)}`.
        groups, widths_per_group: ResNeXt's cardinality and group widths.
        shortcuts, stems: the options searched.
    """

    image_size: int
    depths: dict
    width_multipliers: dict
    groups: tuple
    widths_per_group: tuple
    shortcuts: tuple
    stems: tuple

    @classmethod
    def create(cls, image_size, families=None, depths=None, min_depth=None, max_depth=None,
               width_multipliers=None, groups=None, widths_per_group=None, shortcuts=None,
               stems=None):
        """Validates the narrowing arguments (see `ResNetHyperModel`)."""
        small = 0 if image_size <= SMALL_IMAGE_MAX else 1
        families = _values("families", DEFAULT_FAMILIES[small] if families is None else families,
                           tuple(FAMILIES), str)
        tables = {f: variants(f, image_size) for f in families}
        if depths is not None:
            depths = _values("depths", depths, kind=numbers.Integral)
            known = sorted({d for t in tables.values() for d in t})
            unknown = [d for d in depths if d not in known]
            if unknown:
                raise UsageError(
                    f"Unknown depth for families {list(families)} at {image_size} px: received "
                    f"depths={list(depths)}. Allowed: {known}."
                )
            tables = {f: {d: n for d, n in t.items() if d in depths} for f, t in tables.items()}
        if min_depth is not None:
            min_depth = check_positive_int("min_depth", min_depth)
        if max_depth is not None:
            max_depth = check_positive_int("max_depth", max_depth)

        def depth_range(table):
            if max_depth is not None or depths is not None:
                return min_depth or 0, max_depth or float("inf")
            # The default bound keeps at least the family's shallowest net
            # (on small images "v2" has only the 164-layer one).
            return min_depth or 0, max(DEFAULT_MAX_DEPTH[small], min(table, default=0))

        ranges = {f: depth_range(t) for f, t in tables.items()}
        tables = {
            f: {d: n for d, n in t.items() if ranges[f][0] <= d <= ranges[f][1]}
            for f, t in tables.items()
        }
        empty = [f for f, t in tables.items() if not t]
        if depths is None and (min_depth is not None or max_depth is not None) and len(empty) < len(tables):
            # A depth range drops the families it excludes entirely.
            tables = {f: t for f, t in tables.items() if t}
        elif empty:
            allowed = {f: list(variants(f, image_size)) for f in empty}
            raise UsageError(
                f"No depth left for families {empty}: received depths={depths!r}, "
                f"min_depth={min_depth!r}, max_depth={max_depth!r}. Allowed depths: {allowed}."
            )
        if width_multipliers is None:
            wms = {f: DEFAULT_WIDTH_MULTIPLIERS[small][f] for f in tables}
        else:
            wm = _values("width_multipliers", width_multipliers)
            wms = {f: wm for f in tables}
        return cls(
            image_size=image_size,
            depths=tables,
            width_multipliers=wms,
            groups=_values("groups", _default(groups, DEFAULT_GROUPS[small]), kind=numbers.Integral),
            widths_per_group=_values("widths_per_group",
                                     _default(widths_per_group, DEFAULT_WIDTHS_PER_GROUP[small]),
                                     kind=numbers.Integral),
            shortcuts=_values("shortcuts", _default(shortcuts, DEFAULT_SHORTCUTS), SHORTCUT_OPTIONS, str),
            stems=_values("stems", _default(stems, DEFAULT_STEMS[small]), STEMS, str),
        )

    def cheapest(self, family):
        """The architectures that can be the cheapest of `family`: smallest
        depth, width, cardinality and group width, shortcut A where searched
        (zero-padding costs nothing), each searched stem (stems trade
        parameters for resolution)."""
        shortcuts = ("A",) if "A" in self.shortcuts else self.shortcuts
        arch = dict(name=next(iter(self.depths[family].values())),
                    width_multiplier=min(self.width_multipliers[family]))
        if family == "resnext":
            arch.update(groups=min(self.groups), width_per_group=min(self.widths_per_group))
        return [dict(arch, shortcut=s, stem=t) for s in shortcuts for t in self.stems]


class BudgetExceeded(keras_tuner.errors.FailedTrialError):
    """A candidate over a cost budget: KerasTuner records the trial as failed,
    with this message, and does not retry it."""


def check_budgets(max_params=None, max_macs=None, max_latency_ms=None):
    """Validates the budgets; returns `{name: limit}` of those given."""
    budgets = {}
    for name, value in (("max_params", max_params), ("max_macs", max_macs),
                        ("max_latency_ms", max_latency_ms)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
            raise UsageError(f"`{name}` must be a positive number; received {name}={value!r}.")
        budgets[name] = value
    return budgets


def _amount(name, value):
    if name == "macs":
        return f"{value / 1e6:,.4g}M MACs"
    if name == "latency_ms":
        return f"{value:.3g} ms"
    return f"{int(value):,} params"


def over_budget(cost, budgets):
    """A sentence naming each budget `cost` exceeds ("41.1M MACs > max_macs
    20.3M MACs"), or None."""
    excess = []
    for name, limit in budgets.items():
        key = name.removeprefix("max_")
        if cost[key] > limit:
            excess.append(f"{_amount(key, cost[key])} > {name} {_amount(key, limit)}")
    return "; ".join(excess) or None


def tflite_latency_ms(model, runs=20, threads=1):
    """Median latency of one image through the TFLite (LiteRT) interpreter.

    The model is converted with `tf.lite.TFLiteConverter` (float32) and run
    on one thread, batch 1, after two warm-up runs.
    """
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    spec = tf.TensorSpec((1, *model.inputs[0].shape[1:]), model.inputs[0].dtype)
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    flatbuffer = tf.lite.TFLiteConverter.from_concrete_functions([fn], model).convert()
    interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
    times = []
    for i in range(runs + 2):
        start = time.perf_counter()
        interpreter.invoke()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)
