"""Loading timm ResNet, ResNeXt, Wide-ResNet and ResNetV2 checkpoints.

- timm's `resnet*`, `resnext*` and `wide_resnet*` use torchvision's key names
  and architecture: they load onto the keras_resnets model of the same name
  (default layout). So do their "d" variants (`resnet50d`,
  `resnext50d_32x4d`, ...: a deep stem of three 3x3 convolutions, 32-32-64,
  and average-pooling projections; also the plain model built with
  `stem="deep", shortcut="D"`), the SE and ECA models (`seresnet50`,
  `seresnext50_32x4d`, `ecaresnet50d`: the block's attention is `se`, with
  `fc1`/`fc2` or one 1D `conv`) and ResNet-RS (`resnetrs50`: its stem's
  max-pool replaced by `maxpool.0` conv and `maxpool.1` norm).
- timm's `resnetv2_50` and `resnetv2_101` are pre-activation networks with
  the stride on the 3x3 convolution at a stage's first block, a 7x7 stem
  without normalization, projections from the pre-activated input and a
  final norm: exactly keras_resnets' `resnet50v2` / `resnet101v2` with
  `layout="torchvision"`. Key mapping: `stem.conv` -> the stem convolution;
  `stages.{i-1}.blocks.{j-1}.norm1` -> the block's pre-activation norm,
  `.conv{k}` -> its k-th convolution, `.norm{k+1}` -> the norm after it,
  `.downsample.conv` -> the projection; `norm` -> `post_bn`; `head.fc` ->
  `predictions`.
"""

from keras_resnets.weights.files import read_checkpoint
from keras_resnets.weights.layouts import assign_weights, detect_layout

__all__ = ["load_timm"]


def load_timm(model, checkpoint):
    """Loads a timm ResNet / ResNeXt / Wide-ResNet / ResNetV2 checkpoint onto `model`.

    Strict and all-or-nothing, like `load_torchvision_state_dict`; the
    layout (v1 or ResNetV2) is read from the checkpoint's keys.

    Args:
        model: a keras_resnets model of the same architecture (see the module
            docstring for the v2 and "d" models' build arguments).
        checkpoint: a `.safetensors` file (timm's Hugging Face files; no torch
            needed), a `.pth` file (needs torch), or a state dict.

    Returns:
        `model`, with the weights assigned.

    Example:

    >>> model = keras_resnets.ResNet50V2(layout="torchvision")  # doctest: +SKIP
    >>> load_timm(model, "resnetv2_50.a1h_in1k/model.safetensors")  # doctest: +SKIP
    """
    state = checkpoint if hasattr(checkpoint, "keys") else read_checkpoint(checkpoint)
    layout = detect_layout(state)
    return assign_weights(model, state, "timm_resnetv2" if layout == "timm_resnetv2" else "timm")
