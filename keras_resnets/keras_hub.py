"""keras_resnets models as the image encoders of keras-hub's task models.

keras-hub's `DeepLabV3Backbone` and `RetinaNetBackbone` take any Keras
model with a `pyramid_outputs` dict as their `image_encoder`, and every
keras_resnets model has one (see `keras_resnets.models.ResNetModel`): with
the default output stride, pass the model itself. keras-hub reads a level's
name as its scale ("Pn": 2**n times smaller than the image) and sizes its
upsampling and anchors by it, while a keras_resnets level keeps the name of
its stage when dilation changes its stride. `as_image_encoder` gives a
dilated model keras-hub's names. keras-hub itself is not needed here.

Example:

>>> import keras_hub  # doctest: +SKIP
>>> encoder = keras_resnets.ResNet50(include_top=False, output_stride=16)  # doctest: +SKIP
>>> backbone = keras_hub.models.DeepLabV3Backbone(  # doctest: +SKIP
...     image_encoder=as_image_encoder(encoder),  # "P4": the dilated last stage
...     spatial_pyramid_pooling_key="P4", upsampling_size=4,
...     low_level_feature_key="P2", dilation_rates=[6, 12, 18])
"""

import math

from keras_resnets.models.model import ResNetModel
from keras_resnets.utils.validation import UsageError


def as_image_encoder(model):
    """`model` with its levels named by their actual stride, as keras-hub's
    task models read them.

    Each "Pn" is the deepest feature map of `model` at stride 2**n: with
    `output_stride=16` the last stage (the model's "P5", at stride 16)
    becomes "P4", and the third stage, at the same stride, is left out;
    with the default output stride the names are the model's own and
    `model` is returned as it is. Otherwise the result is a `ResNetModel`
    over the same layers (nothing is copied), which saves and loads as
    `.keras` with its names.

    Args:
        model: a keras_resnets model (a `ResNetModel`).

    Returns:
        A `ResNetModel` whose `pyramid_outputs` follow keras-hub's names.
    """
    if not isinstance(model, ResNetModel) or not model.pyramid_outputs:
        raise UsageError(
            "`model` must be a keras_resnets model with `pyramid_outputs` (built by keras_resnets, e.g. "
            f"keras_resnets.ResNet50(include_top=False)); received {type(model).__name__} {model.name!r}."
        )
    by_stride = {}
    for level, tensor in model.pyramid_outputs.items():  # shallow to deep
        by_stride[f"P{int(math.log2(model.feature_strides[level]))}"] = tensor
    if list(by_stride) == list(model.pyramid_outputs):
        return model
    view = ResNetModel(model.input, model.output, name=model.name)
    return view.set_pyramid(by_stride, {level: 2 ** int(level[1:]) for level in by_stride})
