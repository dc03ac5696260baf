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

The names come from the one model walk of `keras_resnets.weights.layouts`
(layout "torchvision"). PyTorch is imported only to read `.pth` files: a state
dict's values may be torch tensors or numpy arrays.
"""

from keras_resnets.weights.files import read_checkpoint
from keras_resnets.weights.layouts import assign_weights, weight_map

__all__ = ["load_torchvision", "load_torchvision_state_dict", "torchvision_weight_map"]


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
    return weight_map(model, "torchvision")


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
        model: a keras_resnets model with torchvision's architecture (see
            `torchvision_weight_map`).
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
    state_dict = torch.load("resnet50.pth", weights_only=True)
    model = keras_resnets.get_model("resnet50", classifier_activation=None)
    load_torchvision_state_dict(model, state_dict)
    # model(images_nhwc) now gives the logits that torchvision's resnet50
    # gives on the same images in NCHW (images_nhwc.transpose(0, 3, 1, 2)).
    ```
    """
    return assign_weights(model, state_dict, "torchvision")


def load_torchvision(model, checkpoint):
    """Loads a torchvision checkpoint file (or state dict) onto `model`.

    Args:
        model: a keras_resnets model with torchvision's architecture.
        checkpoint: the path of a `.pth`/`.pt` file (read with
            `torch.load(weights_only=True)`, needs torch) or a `.safetensors`
            file (no torch needed), or a state dict.

    Returns:
        `model`, with the weights assigned (see `load_torchvision_state_dict`).

    Example:

    >>> model = keras_resnets.ResNet50(classifier_activation=None)  # doctest: +SKIP
    >>> load_torchvision(model, "resnet50-0676ba61.pth")  # doctest: +SKIP
    """
    state = checkpoint if hasattr(checkpoint, "keys") else read_checkpoint(checkpoint)
    return load_torchvision_state_dict(model, state)
