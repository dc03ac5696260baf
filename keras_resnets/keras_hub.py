"""keras-hub interop, both ways.

- keras-hub's ResNets as keras_resnets models: `from_keras_hub(backbone)`
  converts a `keras_hub.models.ResNetBackbone` (any of its configurations:
  v1, v2 and the vd presets, basic or bottleneck blocks) or a
  `ResNetImageClassifier` into the keras_resnets model of the same
  architecture, with its weights: equal feature maps and outputs, and then
  this package's command line, fine-tuning, export and grouped convolutions.
- keras_resnets models as the image encoders of keras-hub's task models.

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
from keras_resnets.models.specs import ModelSpec
from keras_resnets.utils.validation import UsageError

# keras-hub's block_type: (our block, vd: deep stem and average-pool shortcuts)
BLOCK_TYPES = {
    "basic_block": ("basic", False),
    "bottleneck_block": ("bottleneck", False),
    "basic_block_vd": ("basic", True),
    "bottleneck_block_vd": ("bottleneck", True),
}
# build_model's arguments that from_keras_hub passes on; the architecture
# (block, stem, shortcut, layout, widths) is the backbone's.
BUILD_ARGUMENTS = ("include_top", "classes", "classifier_activation", "pooling", "input_shape", "input_tensor",
                   "model_name", "output_stride", "features_only", "levels", "drop_path_rate", "dropout_rate")


def _refuse(key, value, allowed):
    raise UsageError(
        f"The keras-hub ResNetBackbone's `{key}` must be {allowed} to convert it; received {key}={value!r}."
    )


def keras_hub_spec(config):
    """The `ModelSpec` of a keras-hub `ResNetBackbone` config (its `get_config()`).

    keras-hub's layers map onto this package's as follows: `block_type`
    "basic_block" / "bottleneck_block" -> `block`, with the stride on the
    3x3 convolution (torchvision's layout); the "_vd" types -> the average-
    pool shortcut ("D"), whose basic blocks also project at stage 1's first
    block (`project_first_blocks`); `input_conv_filters` `[c]` with kernel
    `[7]` -> the 7x7 stem, `[c/2, c/2, c]` with `[3, 3, 3]` -> the deep stem;
    `use_pre_activation` -> the v2 blocks, their projections from the
    pre-activated input and the final norm (timm's ResNetV2).
    """
    block_type = config.get("block_type")
    if block_type not in BLOCK_TYPES:
        _refuse("block_type", block_type, f"one of {', '.join(map(repr, BLOCK_TYPES))}")
    block, vd = BLOCK_TYPES[block_type]
    v2 = bool(config.get("use_pre_activation", False))
    if v2 and vd:  # keras-hub's vd shortcut does not downsample the pre-activated input
        _refuse("use_pre_activation", True, f"False with block_type={block_type!r}")
    if config.get("data_format", "channels_last") != "channels_last":
        _refuse("data_format", config.get("data_format"), "'channels_last'")
    filters, kernels = list(config["input_conv_filters"]), list(config["input_conv_kernel_sizes"])
    width = filters[-1] if filters else None
    if kernels == [7] and len(filters) == 1:
        stem = "imagenet"
    elif kernels == [3, 3, 3] and filters == [width // 2, width // 2, width]:
        stem = "deep"
    else:
        _refuse("input_conv_filters / input_conv_kernel_sizes", (filters, kernels),
                "([c], [7]) (a 7x7 stem) or ([c/2, c/2, c], [3, 3, 3]) (the deep stem of the vd presets)")
    depths = tuple(int(d) for d in config["stackwise_num_blocks"])
    widths = tuple(int(w) for w in config["stackwise_num_filters"])
    strides = [int(s) for s in config["stackwise_num_strides"]]
    if strides != [1] + [2] * (len(strides) - 1):
        _refuse("stackwise_num_strides", strides, f"{[1] + [2] * (len(strides) - 1)} (each stage after the first halves)")
    if any(a == b for a, b in zip(widths, widths[1:])):
        # keras-hub projects there; the shortcut options here keep an identity
        _refuse("stackwise_num_filters", list(widths), "a list whose stages after the first each change the width")
    depth = (2 if block == "basic" else 3) * sum(depths) + 2
    kind = "_vd" if vd else "_v2" if v2 else ""
    return ModelSpec(
        f"keras_hub_resnet{kind}_{depth}", f"keras-hub ResNet{kind.replace('_', '-')}-{depth}",
        "resnet_d" if vd else "resnet_v2" if v2 else "resnet", block, depths, widths=widths, stem=stem,
        stem_width=width, preactivation=v2, shortcut="D" if vd else "B",
        project_first_blocks=vd and block == "basic", layout="torchvision",
        reference=f"keras-hub ResNetBackbone(block_type={block_type!r}, use_pre_activation={v2})",
    )


def from_keras_hub(backbone, **kwargs):
    """The keras_resnets model of a keras-hub ResNet, with its weights.

    Args:
        backbone: a `keras_hub.models.ResNetBackbone` (from a preset, e.g.
            `ResNetBackbone.from_preset("resnet_vd_50_imagenet")`, or built),
            or a `keras_hub.models.ResNetImageClassifier`, whose backbone and
            classifier (`include_top=True`, its classes and activation) are
            converted. keras-hub's preprocessor is not part of the model:
            normalize images as it does (ImageNet's mean and std for its
            presets), e.g. `keras_resnets.preprocess_input(x, mode="torch")`.
        **kwargs: `build_model`'s `include_top` (default False for a
            backbone), `classes`, `classifier_activation`, `pooling`,
            `input_shape` (default the backbone's `image_shape`),
            `input_tensor`, `model_name`, `output_stride`, `features_only`,
            `levels`, `drop_path_rate`, `dropout_rate`. The classifier is
            new with `include_top=True` and a backbone, or with a
            classifier and other `classes`.

    Returns:
        A `ResNetModel` whose trunk computes what the backbone does: the same
        output without a head, the classifier's with its head, and the same
        `pyramid_outputs` "P2" ... "P5" (a v2 network's "P5" here is after
        the final norm and ReLU, as timm's; keras-hub's is before them).

    Example:

    >>> import keras_hub  # doctest: +SKIP
    >>> backbone = keras_hub.models.ResNetBackbone.from_preset("resnet_vd_50_imagenet")  # doctest: +SKIP
    >>> model = from_keras_hub(backbone, include_top=True, classes=10)  # doctest: +SKIP
    >>> model.save("resnet_vd_50.keras")  # then: keras-resnets train --weights resnet_vd_50.keras ...
    """
    from keras_resnets.models.builder import build_model
    from keras_resnets.weights.layouts import assign_weights, layer_state

    unknown = sorted(set(kwargs) - set(BUILD_ARGUMENTS))
    if unknown:
        raise UsageError(
            f"from_keras_hub takes build_model's {', '.join(BUILD_ARGUMENTS)}; received {', '.join(unknown)} "
            "(the architecture is the backbone's)."
        )
    head = None
    if hasattr(backbone, "backbone") and hasattr(backbone, "output_dense"):  # an ImageClassifier
        classifier = backbone
        if getattr(classifier, "pooling", "avg") != "avg":
            raise UsageError(
                "The keras-hub classifier's `pooling` must be 'avg' (keras_resnets' head) to convert it; "
                f"received pooling={classifier.pooling!r}. Convert its backbone: from_keras_hub(classifier.backbone)."
            )
        head, backbone = classifier.output_dense, classifier.backbone
        activation = getattr(head.activation, "__name__", None)
        kwargs = dict(dict(include_top=True, classes=int(head.units), dropout_rate=float(classifier.dropout or 0),
                           classifier_activation=None if activation == "linear" else activation), **kwargs)
    if not hasattr(backbone, "get_config") or "block_type" not in backbone.get_config():
        raise UsageError(
            "`backbone` must be a keras_hub.models.ResNetBackbone or ResNetImageClassifier; received "
            f"{type(backbone).__name__}."
        )
    # (the layout of the images is an attribute, not part of the config)
    config = dict(backbone.get_config(), data_format=getattr(backbone, "data_format", "channels_last"))
    spec = keras_hub_spec(config)
    if kwargs.get("input_tensor") is None:
        kwargs.setdefault("input_shape", tuple(config.get("image_shape") or (None, None, 3)))
    kwargs.setdefault("include_top", False)
    model = build_model(spec, **kwargs)
    # The classifier's head is converted too, unless another is asked for (other classes, or none).
    with_head = head is not None and kwargs["include_top"] and kwargs.get("classes") == int(head.units)
    state = layer_state([*backbone.layers, *([head] if with_head else [])])
    return assign_weights(model, state, "keras_hub", classifier=with_head)


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
