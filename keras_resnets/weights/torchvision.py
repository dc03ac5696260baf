"""Loading torchvision ResNet, ResNeXt and Wide-ResNet checkpoints.

torchvision's `resnet18` ... `resnet152`, `resnext50_32x4d`,
`resnext101_32x8d`, `resnext101_64x4d`, `wide_resnet50_2` and
`wide_resnet101_2` have the same architecture as the keras_resnets models of
the same name built with the default ("torchvision") layout; this module
copies a torchvision `state_dict` onto such a model, so that both compute the
same outputs (on NHWC images in Keras, NCHW in PyTorch).

Key mapping (torchvision -> keras_resnets layer):

- `conv1.weight` -> the `stem` convolution; `bn1.*` -> the stem's batch norm;
- `layer{i}.{j}.conv{k}.weight`, `layer{i}.{j}.bn{k}.*` -> the k-th convolution
  and batch norm of block `stage{i}_block{j + 1}`;
- `layer{i}.{j}.downsample.0.weight`, `layer{i}.{j}.downsample.1.*` -> that
  block's projection shortcut (`shortcut.conv`, `shortcut.bn`);
- `fc.weight`, `fc.bias` -> the `predictions` dense layer, when the model
  has one.

Batch-norm tensors map as `weight, bias, running_mean, running_var` ->
`gamma, beta, moving_mean, moving_variance`; `num_batches_tracked` is ignored.
Convolution kernels are transposed from PyTorch's `(out, in / groups, kh, kw)`
to Keras's `(kh, kw, in / groups, out)`, the dense kernel from `(out, in)` to
`(in, out)`.

PyTorch is not imported by this module: the state dict's values may be torch
tensors or numpy arrays.
"""

import re

import numpy as np

from keras_resnets.layers.blocks import BottleneckBlock, ResidualBlock
from keras_resnets.layers.shortcuts import ProjectionShortcut
from keras_resnets.layers.stem import Stem

__all__ = ["load_torchvision_state_dict", "torchvision_weight_map"]

_BLOCK_NAME = re.compile(r"^stage(\d+)_block(\d+)$")
# Keys of a torchvision state dict that hold no weight.
_IGNORED_SUFFIXES = (".num_batches_tracked",)


def _conv_entries(prefix, conv):
    entries = {f"{prefix}.weight": conv.kernel}
    if conv.use_bias:
        entries[f"{prefix}.bias"] = conv.bias
    return entries


def _bn_entries(prefix, bn):
    entries = {}
    if bn.scale:
        entries[f"{prefix}.weight"] = bn.gamma
    if bn.center:
        entries[f"{prefix}.bias"] = bn.beta
    entries[f"{prefix}.running_mean"] = bn.moving_mean
    entries[f"{prefix}.running_var"] = bn.moving_variance
    return entries


def _check_torchvision_structure(model, stem, blocks):
    """Architectural differences that no key or shape would reveal."""
    problems = []
    if stem is None:
        problems.append("the model has no `stem` layer")
    elif stem.kind != "imagenet":
        problems.append(
            f"its stem is {stem.kind!r}; torchvision's is 'imagenet' "
            "(7x7 convolution and max-pool)"
        )
    elif stem.preactivation:
        problems.append("it is a pre-activation (v2) network; torchvision's are v1")
    for (i, j), block in sorted(blocks.items()):
        if block.preactivation:
            problems.append(f"{block.name} is a pre-activation block")
            break
    for (i, j), block in sorted(blocks.items()):
        if isinstance(block, BottleneckBlock) and block.stride_in_1x1 and block.strides > 1:
            problems.append(
                f"{block.name} puts its stride on the first 1x1 convolution "
                "(layout='keras'); torchvision puts it on the 3x3"
            )
            break
    for (i, j), block in sorted(blocks.items()):
        shortcut = block.shortcut_layer
        if isinstance(shortcut, ProjectionShortcut) and shortcut.pool is not None:
            problems.append(
                f"{block.name} has an average-pooling (option 'D') shortcut; "
                "torchvision's projection is a strided 1x1 convolution"
            )
            break
    if problems:
        raise ValueError(
            f"Model {model.name!r} does not have torchvision's ResNet "
            "architecture, so a torchvision state dict cannot be loaded onto "
            "it: " + "; ".join(problems) + ". Build it with the default "
            "torchvision layout, e.g. keras_resnets.get_model('resnet50')."
        )


def torchvision_weight_map(model):
    """The torchvision `state_dict` key of every weight of `model`.

    This is the table that `load_torchvision_state_dict` uses. Every weight of
    the model has a key, including weights that torchvision's ResNets lack
    (a convolution bias, for instance), so that loading reports them as
    missing.

    Args:
        model: a keras_resnets ResNet, ResNeXt or Wide-ResNet model with
            torchvision's architecture (the default layout of `resnet18` ...
            `resnet152`, `resnext*`, `wide_resnet50_2`, `wide_resnet101_2`).

    Returns:
        A dict `{torch_key: keras.Variable}` in the model's layer order, e.g.
        `{"conv1.weight": <stem conv kernel>, "bn1.weight": <stem gamma>, ...,
        "layer1.0.conv1.weight": ..., "fc.bias": ...}`.

    Raises:
        ValueError: if the model's architecture differs from torchvision's in
            a way that keys and shapes would not show (a "cifar" or "deep"
            stem, pre-activation blocks, the stride on the bottleneck's 1x1,
            an average-pooling shortcut), or if it has weights that no
            torchvision key describes.

    Example:

    >>> model = keras_resnets.get_model("resnet18")  # doctest: +SKIP
    >>> mapping = torchvision_weight_map(model)  # doctest: +SKIP
    >>> tuple(mapping["conv1.weight"].shape)  # doctest: +SKIP
    (7, 7, 3, 64)
    """
    stem = None
    blocks = {}
    head = None
    for layer in model.layers:
        if isinstance(layer, Stem) and layer.name == "stem":
            stem = layer
        elif isinstance(layer, ResidualBlock):
            match = _BLOCK_NAME.match(layer.name)
            if match is None:
                raise ValueError(
                    f"Model {model.name!r} has a residual block named "
                    f"{layer.name!r}; torchvision keys need blocks named "
                    "'stage{i}_block{j}'."
                )
            blocks[(int(match.group(1)), int(match.group(2)))] = layer
        elif layer.name == "predictions":
            head = layer
    _check_torchvision_structure(model, stem, blocks)

    mapping = {}
    mapping.update(_conv_entries("conv1", stem.convs[0][-1]))
    mapping.update(_bn_entries("bn1", stem.norms[0]))
    for (i, j), block in sorted(blocks.items()):
        prefix = f"layer{i}.{j - 1}"
        for k, (conv, norm) in enumerate(zip(block.convs, block.norms), start=1):
            mapping.update(_conv_entries(f"{prefix}.conv{k}", conv[-1]))
            if norm is not None:
                mapping.update(_bn_entries(f"{prefix}.bn{k}", norm))
        shortcut = block.shortcut_layer
        if isinstance(shortcut, ProjectionShortcut):
            mapping.update(_conv_entries(f"{prefix}.downsample.0", shortcut.conv))
            if shortcut.bn is not None:
                mapping.update(_bn_entries(f"{prefix}.downsample.1", shortcut.bn))
    if head is not None:
        mapping["fc.weight"] = head.kernel
        if head.use_bias:
            mapping["fc.bias"] = head.bias

    # A safety net: a weight that the walk above did not reach (a layer this
    # module does not know) would otherwise keep its initial value silently.
    mapped = {id(v) for v in mapping.values()}
    unmapped = [w.path for w in model.weights if id(w) not in mapped]
    if unmapped:
        raise ValueError(
            f"Model {model.name!r} has weights with no torchvision "
            f"counterpart: {unmapped}."
        )
    return mapping


def _to_numpy(value):
    if hasattr(value, "detach"):  # a torch.Tensor; torch is not imported here
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _to_keras_layout(array):
    """PyTorch's layout of a weight -> Keras's (chosen by rank)."""
    if array.ndim == 4:  # conv (out, in / groups, kh, kw) -> (kh, kw, in / groups, out)
        return np.transpose(array, (2, 3, 1, 0))
    if array.ndim == 2:  # dense (out, in) -> (in, out)
        return array.T
    return array


def _torch_shape(keras_shape):
    """The PyTorch shape of a weight of Keras shape `keras_shape`."""
    shape = tuple(int(d) for d in keras_shape)
    if len(shape) == 4:
        kh, kw, cin, cout = shape
        return (cout, cin, kh, kw)
    if len(shape) == 2:
        return shape[::-1]
    return shape


def load_torchvision_state_dict(model, state_dict):
    """Copies a torchvision ResNet / ResNeXt / Wide-ResNet `state_dict` onto `model`.

    The load is strict and all-or-nothing: every weight of the model must have
    its key in `state_dict`, every key of `state_dict` must name a weight of
    the model (`num_batches_tracked` counters are ignored), and every shape
    must match. If anything is wrong, one `ValueError` lists all the missing
    keys, unexpected keys and shape mismatches, and no weight is changed.

    A model built with `include_top=False` has no classifier: the checkpoint's
    `fc.weight` and `fc.bias` are then skipped (loading a backbone from a
    classification checkpoint), and all other keys are still checked.

    Args:
        model: a keras_resnets model with torchvision's architecture: one of
            `resnet18`, `resnet34`, `resnet50`, `resnet101`, `resnet152`,
            `resnext50_32x4d`, `resnext101_32x8d`, `resnext101_64x4d`,
            `wide_resnet50_2`, `wide_resnet101_2`, built with the default
            layout (see `torchvision_weight_map`).
        state_dict: a mapping from torchvision keys ("conv1.weight",
            "layer1.0.bn1.running_mean", "fc.bias", ...) to torch tensors or
            numpy arrays, as returned by `torch_model.state_dict()` or
            `torch.load(path, weights_only=True)`.

    Returns:
        `model`, with the weights assigned.

    Raises:
        ValueError: with the list of missing keys, unexpected keys and shape
            mismatches (shapes in PyTorch's order), or if the model's
            architecture differs from torchvision's.

    Example:

    ```python
    import torch
    import keras_resnets
    from keras_resnets.weights.torchvision import load_torchvision_state_dict

    state_dict = torch.load("resnet50.pth", weights_only=True)
    model = keras_resnets.get_model("resnet50", classifier_activation=None)
    load_torchvision_state_dict(model, state_dict)
    # model(images_nhwc) now gives the logits that torchvision's resnet50
    # gives on the same images in NCHW (images_nhwc.transpose(0, 3, 1, 2)).
    ```
    """
    if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
        raise ValueError(
            "`state_dict` must be a mapping from torchvision keys to tensors "
            f"or arrays; received an object of type {type(state_dict).__name__}."
        )
    mapping = torchvision_weight_map(model)
    has_head = "fc.weight" in mapping
    keys = [
        key
        for key in state_dict.keys()
        if not str(key).endswith(_IGNORED_SUFFIXES)
        and not (not has_head and str(key) in ("fc.weight", "fc.bias"))
    ]

    missing = [key for key in mapping if key not in state_dict]
    unexpected = [key for key in keys if key not in mapping]
    mismatched = []
    values = {}
    for key, variable in mapping.items():
        if key not in state_dict:
            continue
        array = _to_numpy(state_dict[key])
        expected = _torch_shape(variable.shape)
        if tuple(array.shape) != expected:
            mismatched.append(
                f"{key}: checkpoint shape {tuple(array.shape)}, model shape "
                f"{expected} (Keras {tuple(int(d) for d in variable.shape)})"
            )
            continue
        values[key] = _to_keras_layout(array)

    if missing or unexpected or mismatched:
        lines = [
            f"Cannot load the torchvision state dict onto model {model.name!r}; "
            "no weight was assigned."
        ]
        if missing:
            lines.append(f"Missing keys ({len(missing)}): {missing}")
        if unexpected:
            lines.append(f"Unexpected keys ({len(unexpected)}): {unexpected}")
            if all(str(key).startswith("module.") for key in unexpected):
                lines.append(
                    "The keys start with 'module.' (a DataParallel checkpoint): "
                    "strip that prefix first."
                )
        if mismatched:
            lines.append(f"Shape mismatches ({len(mismatched)}):")
            lines.extend(f"  {line}" for line in mismatched)
        raise ValueError("\n".join(lines))

    for key, variable in mapping.items():
        variable.assign(values[key].astype(variable.dtype, copy=False))
    return model
