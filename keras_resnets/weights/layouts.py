"""One walk over a keras_resnets model; each checkpoint layout names what it finds.

The walk (`weight_map`) visits the weighted layers of a model by their role:
the stem's convolutions and batch norms, each block's pre-activation norm,
convolutions, norms and projection shortcut, the final norm of a v2 network
and the classifier. A `Layout` turns a role into the checkpoint's name for it
and says which architectures it describes. The five layouts:

| layout | checkpoints | block `stage{i}_block{j}`, conv `k` |
|---|---|---|
| `torchvision` | torchvision ResNet/ResNeXt/Wide-ResNet | `layer{i}.{j-1}.conv{k}` |
| `timm` | timm `resnet*`, `resnext*`, `wide_resnet*`, the "d" variants (deep stem, average-pool shortcut), `seresne(x)t*`, `ecaresnet*`, `resnetrs*` | the same; attention `layer{i}.{j-1}.se.fc1`/`.fc2` (SE) or `.se.conv` (ECA), ResNet-RS's stem pool `maxpool.0`, `maxpool.1` |
| `timm_resnetv2` | timm `resnetv2_*` (pre-activation) | `stages.{i-1}.blocks.{j-1}.conv{k}` |
| `keras` | keras.applications ResNet50/101/152 (V2) | `conv{i+1}_block{j}_{k}_conv` |
| `keras_hub` | keras-hub `ResNetBackbone` (v1, v2, vd; `keras_resnets.keras_hub.from_keras_hub`) | `stack{i-1}_block{j-1}_{k}_conv` |

PyTorch layouts name tensors `weight, bias, running_mean, running_var` and
store kernels as `(out, in, kh, kw)`; the keras layout names them after the
Keras variables (`conv1_conv/kernel`, `conv1_bn/moving_mean`, ...).

`assign_weights` is the one strict loader behind every converter: every
weight of the model must have its key, every key of the checkpoint must name a
weight, every shape must match; otherwise one `ValueError` lists everything
and nothing is assigned.
"""

import dataclasses
import logging
import re

import numpy as np

from keras_resnets.layers.attention import EfficientChannelAttention, SqueezeExcite
from keras_resnets.layers.blocks import BottleneckBlock, ResidualBlock
from keras_resnets.layers.shortcuts import ProjectionShortcut
from keras_resnets.layers.stem import Stem, StemConvPool
from keras_resnets.utils.validation import UsageError

_BLOCK_NAME = re.compile(r"^stage(\d+)_block(\d+)$")

_LEAVES = {
    # kind: (PyTorch names, Keras names), in the order of the layer's weights.
    "conv": (("weight", "bias"), ("kernel", "bias")),
    "bn": (("weight", "bias", "running_mean", "running_var"),
           ("gamma", "beta", "moving_mean", "moving_variance")),
    "dense": (("weight", "bias"), ("kernel", "bias")),
}


def _layer_variables(kind, layer):
    """[(leaf index, variable)] of a conv, batch norm or dense layer."""
    if kind == "bn":
        pairs = [(0, layer.gamma if layer.scale else None),
                 (1, layer.beta if layer.center else None),
                 (2, layer.moving_mean), (3, layer.moving_variance)]
    else:
        pairs = [(0, layer.kernel), (1, layer.bias if layer.use_bias else None)]
    return [(i, v) for i, v in pairs if v is not None]


@dataclasses.dataclass
class _Parts:
    """The weighted layers of a model, found by `_walk`."""

    stem: object = None
    stem_pool: object = None  # a StemConvPool (ResNet-RS), or None
    blocks: dict = dataclasses.field(default_factory=dict)  # (i, j) -> block
    post_bn: object = None
    head: object = None

    def last_block(self, i):
        return max(j for (s, j) in self.blocks if s == i)


def _walk(model):
    parts = _Parts()
    for layer in model.layers:
        if isinstance(layer, Stem) and layer.name == "stem":
            parts.stem = layer
            if isinstance(layer.pool, StemConvPool):
                parts.stem_pool = layer.pool
        elif isinstance(layer, StemConvPool) and layer.name == "stem_pool":
            parts.stem_pool = layer
        elif isinstance(layer, ResidualBlock):
            match = _BLOCK_NAME.match(layer.name)
            if match is None:
                raise UsageError(
                    f"Model {model.name!r} has a residual block named {layer.name!r}; "
                    "checkpoint keys need blocks named 'stage{i}_block{j}'."
                )
            parts.blocks[(int(match.group(1)), int(match.group(2)))] = layer
        elif layer.name == "post_bn":
            parts.post_bn = layer
        elif layer.name == "predictions":
            parts.head = layer
    if parts.stem is None:
        raise UsageError(f"Model {model.name!r} has no `stem` layer: it is not a keras_resnets model.")
    return parts


def _roles(parts):
    """(role, kind, layer) of every weighted layer, in the model's order."""
    stem = parts.stem
    n = len(stem.convs)
    for s, (conv, norm) in enumerate(zip(stem.convs, stem.norms)):
        yield ("stem_conv", s, n), "conv", conv[-1]
        if norm is not None:
            yield ("stem_bn", s, n), "bn", norm
    if parts.stem_pool is not None:
        yield ("stem_pool_conv",), "conv", parts.stem_pool.conv[-1]
        yield ("stem_pool_bn",), "bn", parts.stem_pool.norm
    for (i, j), block in sorted(parts.blocks.items()):
        if block.preact_bn is not None:
            yield ("preact", i, j), "bn", block.preact_bn
        for k, (conv, norm) in enumerate(zip(block.convs, block.norms), start=1):
            yield ("conv", i, j, k), "conv", conv[-1]
            if norm is not None:
                yield ("bn", i, j, k), "bn", norm
        attention = block.attention_layer
        if isinstance(attention, SqueezeExcite):
            yield ("attention", i, j, "fc1"), "conv", attention.fc1
            yield ("attention", i, j, "fc2"), "conv", attention.fc2
        elif isinstance(attention, EfficientChannelAttention):
            yield ("attention", i, j, "conv"), "conv", attention.conv
        shortcut = block.shortcut_layer
        if isinstance(shortcut, ProjectionShortcut):
            yield ("shortcut_conv", i, j, shortcut.avg_down), "conv", shortcut.conv
            if shortcut.bn is not None:
                yield ("shortcut_bn", i, j, shortcut.avg_down), "bn", shortcut.bn
    if parts.post_bn is not None:
        yield ("post_bn",), "bn", parts.post_bn
    if parts.head is not None:
        yield ("head",), "dense", parts.head


# --- the layouts: names and the architecture each one describes --------------


def _torch_v1_name(role):
    what = role[0]
    if what in ("stem_conv", "stem_bn"):
        s, n = role[1:]
        if n == 1:
            return "conv1" if what == "stem_conv" else "bn1"
        # timm's deep stem: Sequential(conv, bn, relu, conv, bn, relu, conv); bn1.
        if what == "stem_bn" and s == n - 1:
            return "bn1"
        return f"conv1.{3 * s + (what == 'stem_bn')}"
    if what in ("stem_pool_conv", "stem_pool_bn"):
        # timm's replace_stem_pool: maxpool = Sequential(conv, bn, act)
        return f"maxpool.{int(what == 'stem_pool_bn')}"
    if what == "head":
        return "fc"
    i, j = role[1:3]
    prefix = f"layer{i}.{j - 1}"
    if what in ("conv", "bn"):
        return f"{prefix}.{what}{role[3]}"
    if what == "attention":  # timm calls the block's attention `se`, SE or ECA
        return f"{prefix}.se.{role[3]}"
    # downsample = Sequential([AvgPool,] conv, bn): the pool shifts the indices.
    offset = 1 if role[3] else 0
    return f"{prefix}.downsample.{offset + (what == 'shortcut_bn')}"


def _timm_v2_name(role):
    what = role[0]
    if what in ("stem_conv", "stem_bn"):
        s, n = role[1:]
        base = "conv" if what == "stem_conv" else "norm"
        return f"stem.{base}" if n == 1 else f"stem.{base}{s + 1}"
    if what == "post_bn":
        return "norm"
    if what == "head":
        return "head.fc"
    i, j = role[1:3]
    prefix = f"stages.{i - 1}.blocks.{j - 1}"
    if what == "preact":
        return f"{prefix}.norm1"
    if what == "conv":
        return f"{prefix}.conv{role[3]}"
    if what == "bn":  # timm counts the pre-activation norm as norm1
        return f"{prefix}.norm{role[3] + 1}"
    return f"{prefix}.downsample.{'conv' if what == 'shortcut_conv' else 'norm'}"


def _keras_name(role):
    what = role[0]
    if what == "stem_conv":
        return "conv1_conv"
    if what == "stem_bn":
        return "conv1_bn"
    if what in ("post_bn",):
        return "post_bn"
    if what == "head":
        return "predictions"
    i, j = role[1:3]
    return _keras_block_name(role, f"conv{i + 1}_block{j}", "preact_bn")


def _keras_block_name(role, prefix, preact):
    # keras.applications' names in a block, which keras-hub kept: `{prefix}_{k}_conv`
    # and `_{k}_bn` for the k-th convolution, `_0_` for the projection.
    what = role[0]
    if what == "preact":
        return f"{prefix}_{preact}"
    if what in ("conv", "bn"):
        return f"{prefix}_{role[3]}_{what}"
    return f"{prefix}_0_{'conv' if what == 'shortcut_conv' else 'bn'}"


def _keras_hub_name(role):
    # keras_hub.models.ResNetBackbone's layer names (its v1, v2 and vd blocks).
    what = role[0]
    if what in ("stem_conv", "stem_bn"):
        return f"conv{role[1] + 1}_{'conv' if what == 'stem_conv' else 'bn'}"
    if what == "post_bn":
        return "post_bn"
    if what == "head":  # ResNetImageClassifier's
        return "predictions"
    i, j = role[1:3]
    return _keras_block_name(role, f"stack{i - 1}_block{j - 1}", "pre_activation_bn")


def _strided(parts):
    return [(i, j, b) for (i, j), b in sorted(parts.blocks.items()) if b.strides > 1]


def _check(parts, *, preactivation, stems, avg_shortcut, stride_in_1x1, stride_at, timm_extras=False):
    """What differs from a layout's architecture that keys and shapes would not
    show. `timm_extras`: the layout also names channel attention and a
    convolutional stem pool (timm's v1 ResNets)."""
    problems = []
    stem = parts.stem
    if not timm_extras:
        if parts.stem_pool is not None:
            problems.append("its stem downsamples with a convolution (stem_pool='conv', ResNet-RS); "
                            "the checkpoint's stem max-pools")
        attended = [b.name for b in parts.blocks.values() if b.attention_layer is not None]
        if attended:
            problems.append(f"its blocks have channel attention ({attended[0]}, ...); the checkpoint's have none")
    if stem.kind not in stems:
        problems.append(
            f"its stem is {stem.kind!r}; allowed: {' or '.join(map(repr, stems))} "
            "('imagenet': 7x7 convolution and max-pool)"
        )
    if stem.preactivation != preactivation or any(
        b.preactivation != preactivation for b in parts.blocks.values()
    ):
        problems.append(
            "it is a pre-activation (v2) network; the checkpoint's is v1" if not preactivation
            else "it is not a pre-activation (v2) network; the checkpoint's is"
        )
    for i, j, block in _strided(parts):
        if isinstance(block, BottleneckBlock) and block.stride_in_1x1 != stride_in_1x1:
            problems.append(
                f"{block.name} puts its stride on the "
                + ("3x3 convolution; the checkpoint's is on the first 1x1" if stride_in_1x1 else
                   "first 1x1 convolution (layout='keras'); the checkpoint's is on the 3x3")
            )
            break
    for i, j, block in _strided(parts):
        where = 1 if stride_at == "first" else parts.last_block(i)
        if j != where:
            problems.append(
                f"{block.name} is strided; the checkpoint strides the {stride_at} block of a stage"
            )
            break
    if not avg_shortcut:
        for block in parts.blocks.values():
            shortcut = block.shortcut_layer
            if isinstance(shortcut, ProjectionShortcut) and shortcut.avg_down:
                problems.append(
                    f"{block.name} has an average-pooling (option 'D') shortcut; "
                    "the checkpoint's projection is a strided 1x1 convolution"
                )
                break
    return problems


@dataclasses.dataclass(frozen=True)
class Layout:
    """How one kind of checkpoint names the weights of a keras_resnets model.

    Attributes:
        name: "torchvision", "timm", "timm_resnetv2", "keras" or "keras_hub".
        title: what the checkpoint is, for messages.
        torch: PyTorch tensor names and axis order.
        name_of: role -> the checkpoint's name of the layer.
        check: `_Parts` -> list of architectural differences.
        hint: how to build a model that fits.
    """

    name: str
    title: str
    torch: bool
    name_of: object
    check: object
    hint: str

    def key(self, prefix, kind, index):
        leaf = _LEAVES[kind][0 if self.torch else 1][index]
        return f"{prefix}.{leaf}" if self.torch else f"{prefix}/{leaf}"


def _keras_check(parts):
    v2 = parts.stem.preactivation
    return _check(parts, preactivation=v2, stems=("imagenet",), avg_shortcut=False,
                  stride_in_1x1=not v2, stride_at="last" if v2 else "first")


def _keras_hub_check(parts):
    return _check(parts, preactivation=parts.stem.preactivation, stems=("imagenet", "deep"),
                  avg_shortcut=True, stride_in_1x1=False, stride_at="first")


LAYOUTS = {
    "torchvision": Layout(
        "torchvision", "torchvision ResNet", True, _torch_v1_name,
        lambda p: _check(p, preactivation=False, stems=("imagenet",), avg_shortcut=False,
                         stride_in_1x1=False, stride_at="first"),
        "Build it with the default torchvision layout, e.g. keras_resnets.get_model('resnet50')",
    ),
    "timm": Layout(
        # (timm's v1 names are torchvision's: a file detected by its keys is either)
        "timm", "torchvision or timm ResNet", True, _torch_v1_name,
        lambda p: _check(p, preactivation=False, stems=("imagenet", "deep"), avg_shortcut=True,
                         stride_in_1x1=False, stride_at="first", timm_extras=True),
        "Build the model of the timm name: resnet50 for resnet50, resnet50d for resnet50d "
        "(or resnet50 with stem='deep', shortcut='D'), seresnext50_32x4d, ecaresnet50d, resnetrs50, ...",
    ),
    "timm_resnetv2": Layout(
        "timm_resnetv2", "timm ResNetV2", True, _timm_v2_name,
        lambda p: _check(p, preactivation=True, stems=("imagenet", "deep"), avg_shortcut=True,
                         stride_in_1x1=False, stride_at="first"),
        "Build the v2 model with layout='torchvision', e.g. "
        "keras_resnets.get_model('resnet50v2', layout='torchvision')",
    ),
    "keras": Layout(
        "keras", "keras.applications ResNet", False, _keras_name, _keras_check,
        "Build it with layout='keras' and the same depth, e.g. "
        "keras_resnets.get_model('resnet50', layout='keras')",
    ),
    "keras_hub": Layout(
        "keras_hub", "keras-hub ResNetBackbone", False, _keras_hub_name, _keras_hub_check,
        "Convert the backbone with keras_resnets.keras_hub.from_keras_hub(backbone), which builds the "
        "model that fits it",
    ),
}


def get_layout(layout):
    if isinstance(layout, Layout):
        return layout
    if layout not in LAYOUTS:
        raise UsageError(f"`layout` must be one of {list(LAYOUTS)}; received layout={layout!r}.")
    return LAYOUTS[layout]


def weight_map(model, layout):
    """The checkpoint key of every weight of `model` in `layout`.

    Args:
        model: a keras_resnets model.
        layout: "torchvision", "timm", "timm_resnetv2", "keras" or "keras_hub".

    Returns:
        `{key: keras.Variable}` in the model's layer order, e.g. for
        "torchvision" `{"conv1.weight": <stem kernel>, "bn1.weight": ..., ...,
        "fc.bias": ...}`.

    Raises:
        ValueError: if the model's architecture differs from the layout's in a
            way that keys and shapes would not show (stem, pre-activation,
            stride placement, shortcut), or if it has weights that no key
            describes.

    Example:

    >>> weight_map(keras_resnets.ResNet18(), "torchvision")["conv1.weight"].shape  # doctest: +SKIP
    (7, 7, 3, 64)
    """
    layout = get_layout(layout)
    parts = _walk(model)
    problems = layout.check(parts)
    if problems:
        raise UsageError(
            f"Model {model.name!r} does not have the architecture of a "
            f"{layout.title} checkpoint, so it cannot be loaded onto it: "
            + "; ".join(problems) + f". {layout.hint}."
        )
    mapping = {}
    for role, kind, layer in _roles(parts):
        prefix = layout.name_of(role)
        for index, variable in _layer_variables(kind, layer):
            mapping[layout.key(prefix, kind, index)] = variable
    # A safety net: a weight the walk did not reach would keep its initial
    # value silently.
    mapped = {id(v) for v in mapping.values()}
    unmapped = [w.path for w in model.weights if id(w) not in mapped]
    if unmapped:
        raise UsageError(
            f"Model {model.name!r} has weights with no {layout.title} counterpart: {unmapped}."
        )
    return mapping


def head_keys(layout):
    """The checkpoint keys of the classifier in `layout`."""
    layout = get_layout(layout)
    prefix = layout.name_of(("head",))
    return {layout.key(prefix, "dense", i) for i in (0, 1)}


def _to_numpy(value):
    if hasattr(value, "detach"):  # a torch.Tensor; torch is not imported here
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def layer_state(layers):
    """`{"layer/variable": array}` of the weights of Keras `layers` (e.g. a
    model's `.layers`): the keys of the keras and keras_hub layouts, read
    from another library's Keras model (keras.applications, keras-hub)."""
    return {
        f"{layer.name}/{w.path.split('/')[-1].split(':')[0]}": w.numpy()
        for layer in layers for w in layer.weights
    }


def to_state_dict(model, layout):
    """The model's weights as a checkpoint of `layout`: `{key: numpy array}`
    in the checkpoint's names and axis order (the inverse of `assign_weights`).

    Example:

    >>> state = to_state_dict(keras_resnets.ResNet18(), "torchvision")  # doctest: +SKIP
    >>> state["conv1.weight"].shape  # doctest: +SKIP
    (64, 3, 7, 7)
    """
    layout = get_layout(layout)
    state = {}
    for key, variable in weight_map(model, layout).items():
        array = np.asarray(variable.numpy())
        if layout.torch:
            # conv (kh, kw, in, out) -> (out, in, kh, kw); conv1d and dense: reversed
            array = np.transpose(array, (3, 2, 0, 1)) if array.ndim == 4 else array.T
        state[key] = np.ascontiguousarray(array)
    return state


def _to_keras_order(array):
    if array.ndim == 4:  # conv (out, in / groups, kh, kw) -> (kh, kw, in / groups, out)
        return np.transpose(array, (2, 3, 1, 0))
    if array.ndim == 3:  # conv1d (out, in, k) -> (k, in, out)
        return np.transpose(array, (2, 1, 0))
    if array.ndim == 2:  # dense (out, in) -> (in, out)
        return array.T
    return array


def _torch_shape(keras_shape):
    shape = tuple(int(d) for d in keras_shape)
    if len(shape) == 4:
        kh, kw, cin, cout = shape
        return (cout, cin, kh, kw)
    if len(shape) == 3:
        k, cin, cout = shape
        return (cout, cin, k)
    return shape[::-1] if len(shape) == 2 else shape


_LISTED = 30  # keys listed in an error; a whole other network would flood it


def _first(keys):
    more = f" and {len(keys) - _LISTED} more" if len(keys) > _LISTED else ""
    return f"{keys[:_LISTED]}{more}"


# Keys of a PyTorch state dict that hold no weight.
_IGNORED_SUFFIXES = (".num_batches_tracked",)


def assign_weights(model, state, layout, classifier=True):
    """Copies the checkpoint `state` (`{key: array or tensor}`) onto `model`.

    Strict and all-or-nothing (see the module docstring). A model built with
    `include_top=False` (a trunk, a features-only model) skips the
    checkpoint's classifier, whose keys are reported as unused (an INFO
    record of the `keras_resnets.weights.layouts` logger); every other key is
    still checked.

    Args:
        model: a keras_resnets model with the layout's architecture.
        state: a mapping from the layout's keys to numpy arrays or torch
            tensors.
        layout: "torchvision", "timm", "timm_resnetv2", "keras" or "keras_hub".
        classifier: bool; False: the checkpoint's classifier is skipped and
            the model's keeps its weights (a new head for another task, of
            any number of classes). Defaults to True.

    Returns:
        `model`, with the weights assigned.
    """
    layout = get_layout(layout)
    if not hasattr(state, "keys") or not hasattr(state, "__getitem__"):
        raise UsageError(
            f"The {layout.title} checkpoint must be a mapping from keys to tensors "
            f"or arrays; received an object of type {type(state).__name__}."
        )
    mapping = weight_map(model, layout)
    head = head_keys(layout)
    if not classifier:
        mapping = {key: variable for key, variable in mapping.items() if key not in head}
    has_head = bool(head & set(mapping))
    keys = [
        key for key in state.keys()
        if not str(key).endswith(_IGNORED_SUFFIXES) and (has_head or key not in head)
    ]
    missing = [key for key in mapping if key not in state]
    unexpected = [key for key in keys if key not in mapping]
    mismatched, values = [], {}
    for key, variable in mapping.items():
        if key not in state:
            continue
        array = _to_numpy(state[key])
        if key in head and array.ndim == 4 and array.shape[2:] == (1, 1):
            array = array[:, :, 0, 0]  # timm's ResNetV2 classifier is a 1x1 convolution
        ours = tuple(int(d) for d in variable.shape)
        expected = _torch_shape(ours) if layout.torch else ours
        if tuple(array.shape) != expected:
            order = f" (Keras {ours})" if layout.torch else ""
            mismatched.append(
                f"{key}: checkpoint shape {tuple(array.shape)}, model shape {expected}{order}"
            )
            continue
        values[key] = _to_keras_order(array) if layout.torch else array

    if missing or unexpected or mismatched:
        lines = [f"Cannot load the {layout.title} checkpoint onto model "
                 f"{model.name!r}; no weight was assigned."]
        if missing:
            lines.append(f"Missing keys ({len(missing)}): {_first(missing)}")
        if unexpected:
            lines.append(f"Unexpected keys ({len(unexpected)}): {_first(unexpected)}")
            if all(str(key).startswith("module.") for key in unexpected):
                lines.append("The keys start with 'module.' (a DataParallel "
                             "checkpoint): strip that prefix first.")
        if mismatched:
            lines.append(f"Shape mismatches ({len(mismatched)}):")
            lines.extend(f"  {line}" for line in mismatched[:_LISTED])
            head_rows = [line for line in mismatched if line.split(":")[0] in head]
            if head_rows and len(head_rows) == len(mismatched):
                theirs = _to_numpy(state[sorted(head & set(state))[0]]).shape[0]
                ours = int(next(v for k, v in mapping.items() if k in head).shape[-1])
                lines.append(
                    f"Only the classifier differs: the model has classes={ours}, the "
                    f"checkpoint {theirs}. Build the model with classes={theirs}, or "
                    "with include_top=False (the checkpoint's classifier is then "
                    "skipped) and add your own head."
                )
        lines.append(f"{layout.hint}.")
        raise UsageError("\n".join(lines))

    for key, variable in mapping.items():
        variable.assign(values[key].astype(variable.dtype, copy=False))
    skipped = sorted(str(key) for key in state.keys() if key in head and not has_head)
    if skipped:
        logging.getLogger(__name__).info(
            "Loaded the %s checkpoint onto %r without its classifier (the model has no head): "
            "%d keys unused: %s", layout.title, model.name, len(skipped), ", ".join(skipped),
        )
    return model


_AVG_DOWN = re.compile(r"^layer\d+\.\d+\.downsample\.2\.")  # Sequential(AvgPool, conv, bn)


def build_arguments(state, layout=None):
    """The build arguments of the model that `state` (a checkpoint in
    `layout`, detected if not given) fits: `{"layout", "stem", "shortcut"}`,
    or `{}` when the layout is unknown.

    - torchvision / timm v1 (`conv1.weight`, `layer1.0.conv1.weight`):
      `layout="torchvision"`; a three-convolution stem (`conv1.0.weight`,
      timm's "d" variants) is `stem="deep"`, and a projection behind an
      average pool (`downsample.2`, the pool shifting the indices) is
      `shortcut="D"`.
    - timm ResNetV2 (`stem.conv`, `stages.0.blocks.0`): `layout="torchvision"`
      (the v2 nets' other layout); a deep stem (`stem.conv1`) is timm's "d"
      variant, which also pools before its projections: `shortcut="D"` (its
      keys do not show the pool).
    - keras.applications (`conv1_conv/kernel`): `layout="keras"`.

    Example:

    >>> build_arguments({"conv1.0.weight": ..., "layer2.0.downsample.2.weight": ...})  # doctest: +SKIP
    {'layout': 'torchvision', 'stem': 'deep', 'shortcut': 'D'}
    """
    layout = layout or detect_layout(state)
    keys = [str(k) for k in state.keys()]
    if layout in ("torchvision", "timm"):
        deep = any(k.startswith("conv1.0.") for k in keys)
        avg_down = any(_AVG_DOWN.match(k) for k in keys)
        return {"layout": "torchvision", "stem": "deep" if deep else "imagenet", "shortcut": "D" if avg_down else "B"}
    if layout == "timm_resnetv2":
        deep = any(k.startswith("stem.conv1.") for k in keys)
        return {"layout": "torchvision", "stem": "deep" if deep else "imagenet", "shortcut": "D" if deep else "B"}
    if layout == "keras":
        return {"layout": "keras", "stem": "imagenet", "shortcut": "B"}
    return {}


def preprocessing_of(state, layout=None):
    """How the images of a checkpoint's training were most likely normalized
    (a file does not say): "torch" for torchvision's and timm's v1 weights,
    "tf" ([-1, 1]) for timm's ResNetV2 (its `.a1h` weights) and
    keras.applications' v2, "caffe" for keras.applications' v1; None for an
    unknown layout. See `keras_resnets.weights.preprocessing`."""
    layout = layout or detect_layout(state)
    if layout == "keras":
        return "tf" if any(str(k).startswith("post_bn/") for k in state.keys()) else "caffe"
    return {"torchvision": "torch", "timm": "torch", "timm_resnetv2": "tf"}.get(layout)


def detect_layout(state):
    """The layout whose keys `state` uses: "torchvision", "timm_resnetv2" or
    "keras" (timm's v1 checkpoints use torchvision's names: "timm" covers
    both, and also timm's deep-stem variants); None if none fits."""
    keys = [str(k) for k in state.keys()]
    if any(k.startswith(("stem.conv", "stages.")) for k in keys):
        return "timm_resnetv2"
    if any(k.startswith(("conv1.weight", "conv1.0.")) for k in keys):
        return "timm"
    if any(k.startswith("conv1_conv/") for k in keys):
        return "keras"
    return None
