"""One constructor for every registered architecture."""

import math
import numbers
import os

import keras

from keras_resnets.layers.blocks import BasicBlock, BottleneckBlock
from keras_resnets.layers.normalization import BatchNormalization
from keras_resnets.layers.shortcuts import SHORTCUT_OPTIONS, shortcut_kind
from keras_resnets.layers.stem import STEMS, Stem
from keras_resnets.models.model import ResNetModel
from keras_resnets.models.registry import get_spec
from keras_resnets.models.specs import STEM_STRIDES, min_input_size, output_strides
from keras_resnets.utils.validation import (
    UsageError,
    check_bool,
    check_choice,
    check_positive_int,
    check_rate,
)
from keras_resnets.weights.pretrained import PRETRAINED, is_source_name  # noqa: F401  (PRETRAINED: public here too)

# What distinguishes the two weight layouts (see `build_model`'s `layout`).
# torchvision: torchvision/models/resnet.py; timm's ResNetV2 for the v2 nets.
# keras: keras/src/applications/resnet.py, block1/stack1 (v1), block2/stack2 (v2).
_TORCHVISION = dict(
    stride_in_1x1=False, stride_at_stage_end=False, use_bias=False,
    output_bias=False, bn_epsilon=1e-5, bn_momentum=0.9, pool_padding="min",
)
LAYOUTS = {
    "torchvision": {False: _TORCHVISION, True: _TORCHVISION},
    "keras": {
        False: dict(stride_in_1x1=True, stride_at_stage_end=False, use_bias=True,
                    output_bias=True, bn_epsilon=1.001e-5, bn_momentum=0.99,
                    pool_padding="zeros"),
        True: dict(stride_in_1x1=False, stride_at_stage_end=True, use_bias=False,
                   output_bias=True, bn_epsilon=1.001e-5, bn_momentum=0.99,
                   pool_padding="zeros"),
    },
}


def _check_output_stride(output_stride, spec, stem):
    """`output_stride` (None: the total stride) checked: the total stride
    divided by 1, 2 or 4, the last one or two strided stages dilated."""
    allowed = output_strides(spec, stem)
    if output_stride is None:
        return allowed[0]
    if isinstance(output_stride, bool) or output_stride not in allowed:
        raise UsageError(
            f"`output_stride` must be one of {allowed} for {spec.name} with the {stem!r} stem (its "
            f"total stride, or that divided by 2 or 4: the last stages dilated instead of strided); "
            f"received output_stride={output_stride!r}."
        )
    return int(output_stride)


def block_schedule(strides, stem_stride, output_stride):
    """Each block's `(strides, first_dilation_rate, dilation_rate)`.

    `strides`: per stage, the blocks' strides without dilation. Going
    through the blocks in order, a block that would stride once the network
    is at `output_stride` does not: its dilation, and that of the blocks
    after it, grows by the stride instead, and its first 3x3 convolution
    keeps the previous one (torchvision's `replace_stride_with_dilation`,
    timm's `output_stride`).
    """
    net, dilation, schedule = stem_stride, 1, []
    for stage in strides:
        row = []
        for s in stage:
            first = dilation
            if s > 1 and net >= output_stride:
                dilation *= s
                s = 1
            net *= s
            row.append((s, first, dilation))
        schedule.append(row)
    return schedule


def _check_features(features_only, include_top, pooling, levels):
    check_bool("features_only", features_only)
    if features_only and (include_top or pooling is not None):
        raise UsageError(
            "features_only=True builds the trunk's feature maps without a head: leave include_top out "
            f"(or pass False) and pooling=None; received include_top={include_top!r}, pooling={pooling!r}."
        )
    if levels is not None and not features_only:
        raise UsageError(f"`levels` needs features_only=True; received levels={levels!r}.")


def _check_input_shape(input_shape, min_size, weights, pretrained=False):
    if input_shape is None:
        return (None, None, 3)
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or any(
        d is not None and (not isinstance(d, numbers.Integral) or d < 1) for d in shape
    ):
        raise UsageError(
            "`input_shape` must be (height, width, channels) with positive "
            f"integers or None; received input_shape={input_shape!r}."
        )
    h, w, c = shape
    for side in (h, w):
        if side is not None and side < min_size:
            raise UsageError(
                f"`input_shape` is too small for the network's downsampling "
                f"(total stride {min_size}); received input_shape={shape}. "
                f"Allowed: height and width >= {min_size}."
            )
    if c is None:
        raise UsageError(
            f"`input_shape` needs a known channel count; received input_shape={shape}."
        )
    if pretrained and c != 3:
        raise UsageError(
            f"weights={weights!r} take 3-channel RGB images; received "
            f"input_shape={shape} with {c} channels. Allowed: 3 channels, or "
            "weights=None."
        )
    return shape


def _resolve_weights(weights, model, include_top, classes):
    """`weights` -> None, a `WeightSource` or a `CheckpointFile` (the file
    read); a clear error otherwise."""
    from keras_resnets.weights.pretrained import WeightSource, get_source, read_weights_file

    if weights is None:
        return None
    if isinstance(weights, WeightSource):
        source = weights
        if source.model != model:
            raise UsageError(
                f"weights={source.name!r} are for {source.model!r}, not {model!r}."
            )
    elif is_source_name(weights):
        source = get_source(weights, model)
    elif isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        return read_weights_file(weights)
    else:
        raise UsageError(
            "`weights` must be None, 'imagenet', a named source such as "
            "'torchvision:IMAGENET1K_V2' (keras_resnets.weights.list_sources()), "
            "a WeightSource, or the path of an existing weights file; received "
            f"weights={weights!r}."
        )
    if include_top and classes != source.classes:
        raise UsageError(
            f"weights={weights if isinstance(weights, str) else source.name!r} with "
            f"include_top=True has {source.classes} classes; received classes={classes}. "
            f"Allowed: classes={source.classes}, or include_top=False with your own head."
        )
    return source


def _apply_file_build(checkpoint, chosen):
    """The build arguments a weights file needs, where the user gave none.
    An argument given is kept: if it contradicts the file, loading fails
    with the layout's error, which says what differs and how to build a
    model that fits."""
    return {arg: needed if chosen[arg] is None else chosen[arg]
            for arg, needed in {**chosen, **checkpoint.build}.items()}


def weights_build_arguments(name, weights, shortcut=None, stem=None, layout=None, include_top=False,
                            classes=1000):
    """What `weights` (as `build_model` takes them) need of a model `name`:
    `(source, {"shortcut", "stem", "layout"})`, the source a `WeightSource`,
    a `CheckpointFile` or None, and the arguments filled in where they are
    None and the weights need them (a named source refuses a contradicting
    one; a file's contradiction shows when it loads)."""
    source = _resolve_weights(weights, get_spec(name).name, include_top, classes)
    chosen = dict(shortcut=shortcut, stem=stem, layout=layout)
    if source is None:
        return None, chosen
    if hasattr(source, "state"):  # a CheckpointFile
        return source, _apply_file_build(source, chosen)
    return source, _apply_source_build(source, chosen)


def _apply_source_build(source, chosen):
    """The build arguments a source needs, checked against the user's."""
    for arg, needed in source.build.items():
        if chosen[arg] is not None and chosen[arg] != needed:
            raise UsageError(
                f"weights={source.name!r} need {arg}={needed!r}; received "
                f"{arg}={chosen[arg]!r}. Leave `{arg}` out or set it to {needed!r}."
            )
        chosen[arg] = needed
    return chosen


def build_model(
    name,
    include_top=None,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    model_name=None,
    shortcut=None,
    stem=None,
    layout=None,
    zero_init_residual=False,
    drop_path_rate=0.0,
    dropout_rate=0.0,
    width_multiplier=1.0,
    groups=None,
    width_per_group=None,
    output_stride=None,
    features_only=False,
    levels=None,
):
    """Builds the registered architecture `name` as a functional Keras model.

    Args:
        name: str, a registered name (`keras_resnets.list_models()`), or a
            `keras_resnets.ModelSpec`: an architecture of your own, e.g.
            `dataclasses.replace(keras_resnets.get_spec("resnet50"),
            attention="eca")`.
        include_top: bool, end with global average pooling and a `classes`-way
            dense classifier. Defaults to `True`, or `False` with
            `features_only=True` (a trunk of feature maps has no head).
        weights: `None` (random initialization); "imagenet" (torchvision's
            IMAGENET1K_V1 for the v1, ResNeXt and wide models, keras.applications'
            for the v2 models); a named source such as
            "torchvision:IMAGENET1K_V2", "timm:resnet50.a1_in1k" or
            "keras:imagenet" (`keras_resnets.weights.list_sources(name)`),
            which also sets the `layout`, `stem` and `shortcut` it needs; a
            `keras_resnets.weights.WeightSource`; or the path of a weights
            file: `.weights.h5` (`model.save_weights`), keras.applications
            `.h5`, `.pth`/`.pt` or `.safetensors` (torchvision or timm),
            read first: the `layout`, `stem` and `shortcut` its keys show
            are used where not given (a keras.applications file builds
            `layout="keras"`, a timm ResNetV2 one `layout="torchvision"`,
            timm's "d" variants `stem="deep", shortcut="D"`).
            Downloads are cached in `~/.keras/models` and checked against a
            pinned hash. Preprocess images with
            `keras_resnets.preprocess_input(x, weights=..., model=name)`.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: optional `(height, width, channels)`; defaults to
            `(None, None, 3)`, any image size.
        pooling: with `include_top=False`: `None` (the 4D feature map),
            "avg" or "max" (global pooling to 2D).
        classes: int, classes of the classifier. Defaults to `1000`.
        classifier_activation: activation of the classifier ("softmax",
            `None` for logits, ...). Defaults to "softmax".
        model_name: str, the model's name; defaults to `name`.
        shortcut: "A", "B", "C" or "D"; defaults to the architecture's
            ("A" for the paper's CIFAR nets, "B" otherwise).
        stem: "imagenet", "cifar" or "deep"; defaults to the architecture's.
        layout: "torchvision" (stride on the bottleneck's 3x3, no conv biases,
            PyTorch's BN epsilon) or "keras" (keras.applications: v1 with the
            stride on the first 1x1 and conv biases, v2 with the stride on a
            stage's last block). Defaults to the architecture's: "keras" for
            the ImageNet v2 nets, "torchvision" otherwise.
        zero_init_residual: bool, initialize each residual branch to output
            zero ("Bag of Tricks", Goyal et al. 2017).
        drop_path_rate: float in [0, 1), stochastic depth: the last block's
            drop probability, rising linearly from 0 at the first block.
        dropout_rate: float in [0, 1), dropout before the classifier.
        width_multiplier: positive float, scales every stage's width and the
            stem's.
        groups: int, overrides the bottleneck's cardinality.
        width_per_group: int, overrides the bottleneck's width per group.
        output_stride: int, the trunk's downsampling: 32 (the default of the
            ImageNet stems), 16 or 8; the CIFAR nets' 4, 2 or 1. Below the
            total stride the last stage (16) or two (8) dilate their 3x3
            convolutions instead of striding (`block_schedule`), as
            torchvision's `replace_stride_with_dilation` and timm's
            `output_stride`: the same weights, denser features (DeepLab).
        features_only: bool, without a head (`include_top` left out or
            False, `pooling=None`): the model's output is a dict of feature maps, `{"P2": ..., "P5": ...}` (see
            `ResNetModel.pyramid_outputs`), instead of the last one.
        levels: with `features_only`, the levels to output, e.g.
            `("P3", "P4", "P5")`; defaults to all.

    Returns:
        A `ResNetModel` (a functional `keras.Model` with `pyramid_outputs`).
    """
    spec = get_spec(name)
    if include_top is None:
        include_top = features_only is not True
    check_bool("include_top", include_top)
    if include_top:
        classes = check_positive_int("classes", classes)
    source, chosen = weights_build_arguments(spec, weights, shortcut, stem, layout, include_top, classes)
    shortcut, stem, layout = chosen["shortcut"], chosen["stem"], chosen["layout"]
    pretrained = source is not None and not hasattr(source, "state")
    shortcut = check_choice("shortcut", spec.shortcut if shortcut is None else shortcut, SHORTCUT_OPTIONS)
    stem = check_choice("stem", spec.stem if stem is None else stem, STEMS)
    layout = check_choice("layout", spec.layout if layout is None else layout, tuple(LAYOUTS))
    drop_path_rate = check_rate("drop_path_rate", drop_path_rate)
    dropout_rate = check_rate("dropout_rate", dropout_rate)
    if pooling not in (None, "avg", "max"):
        raise UsageError(
            f"`pooling` must be None, 'avg' or 'max'; received pooling={pooling!r}."
        )
    if (
        isinstance(width_multiplier, bool)
        or not isinstance(width_multiplier, numbers.Real)
        or width_multiplier <= 0
    ):
        raise UsageError(
            "`width_multiplier` must be a positive number; received "
            f"width_multiplier={width_multiplier!r}."
        )
    if spec.block == "basic" and (groups not in (None, 1) or width_per_group not in (None, 64)):
        raise UsageError(
            f"{spec.name} has basic blocks, which take no `groups` or "
            f"`width_per_group`; received groups={groups!r}, "
            f"width_per_group={width_per_group!r}. Allowed: a bottleneck model."
        )
    groups = check_positive_int("groups", spec.groups if groups is None else groups)
    width_per_group = check_positive_int(
        "width_per_group", spec.width_per_group if width_per_group is None else width_per_group
    )
    output_stride = _check_output_stride(output_stride, spec, stem)
    _check_features(features_only, include_top, pooling, levels)
    if input_tensor is not None and input_shape is None:
        input_shape = tuple(input_tensor.shape[1:])
    input_shape = _check_input_shape(
        input_shape, min_input_size(spec, stem, output_stride), weights, pretrained
    )

    def scaled(width):
        return max(1, int(round(width * width_multiplier)))

    opts = LAYOUTS[layout][spec.preactivation]
    block_cls = BasicBlock if spec.block == "basic" else BottleneckBlock
    block_kw = dict(
        preactivation=spec.preactivation,
        shortcut=shortcut,
        use_bias=opts["use_bias"],
        output_bias=opts["output_bias"],
        bn_epsilon=opts["bn_epsilon"],
        bn_momentum=opts["bn_momentum"],
        zero_init_residual=zero_init_residual,
        attention=spec.attention,
        se_ratio=spec.se_ratio,
    )
    if block_cls is BottleneckBlock:
        block_kw.update(groups=groups, width_per_group=width_per_group,
                        stride_in_1x1=opts["stride_in_1x1"])

    if input_tensor is None:
        inputs = keras.Input(shape=input_shape, name="image")
    elif keras.backend.is_keras_tensor(input_tensor):
        inputs = input_tensor
    else:
        inputs = keras.Input(tensor=input_tensor, shape=input_shape, name="image")

    pyramid, feature_strides = {}, {}

    def record(x, nominal, actual):
        # "Pn": the last feature map at stride 2**n without dilation.
        level = f"P{int(math.log2(nominal))}"
        pyramid[level], feature_strides[level] = x, actual

    stem_layer = Stem(
        stem,
        filters=scaled(spec.stem_width),
        preactivation=spec.preactivation,
        use_bias=opts["use_bias"],
        output_bias=opts["output_bias"],
        pool_padding=opts["pool_padding"],
        bn_epsilon=opts["bn_epsilon"],
        bn_momentum=opts["bn_momentum"],
        pool=False,
        pool_type=spec.stem_pool,
        name="stem",
    )
    x = stem_layer(inputs)
    record(x, stem_layer.strides, stem_layer.strides)
    pool = stem_layer.make_pool("stem_pool")
    if pool is not None:
        x = pool(x)

    # Stage i > 0 halves the resolution: at its first block (the papers,
    # torchvision), or at the previous stage's last block (keras.applications v2).
    n_blocks = sum(spec.depths)
    strides = []
    for i, depth in enumerate(spec.depths):
        stage = [1] * depth
        if opts["stride_at_stage_end"]:
            stage[-1] = 2 if i + 1 < len(spec.depths) else 1
        else:
            stage[0] = 1 if i == 0 else 2
        strides.append(stage)
    schedule = block_schedule(strides, STEM_STRIDES[stem], output_stride)
    index, nominal = 0, STEM_STRIDES[stem]
    for i, (depth, width) in enumerate(zip(spec.depths, spec.widths)):
        for j in range(depth):
            rate = drop_path_rate * index / max(n_blocks - 1, 1)
            block_strides, first_dilation, dilation = schedule[i][j]
            kw = block_kw
            if j == 0 and spec.project_first_blocks and shortcut_kind(
                    shortcut, x.shape[-1], scaled(width) * block_cls.expansion, block_strides) == "identity":
                kw = dict(block_kw, shortcut="C")  # a projection where the shape allows an identity
            x = block_cls(
                scaled(width),
                strides=block_strides,
                dilation_rate=dilation,
                first_dilation_rate=first_dilation,
                drop_path_rate=rate,
                name=f"stage{i + 1}_block{j + 1}",
                **kw,
            )(x)
            nominal *= strides[i][j]
            record(x, nominal, nominal // dilation)
            index += 1

    if spec.preactivation:
        x = BatchNormalization(
            epsilon=opts["bn_epsilon"], momentum=opts["bn_momentum"], name="post_bn"
        )(x)
        x = keras.layers.ReLU(name="post_relu")(x)
        record(x, nominal, nominal // dilation)

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate > 0:
            x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
        # Under mixed precision the classifier computes in float32, so that the
        # probabilities and the loss do not lose precision.
        head_dtype = "float32" if keras.mixed_precision.global_policy().name.startswith("mixed") else None
        x = keras.layers.Dense(
            classes, activation=classifier_activation, name="predictions", dtype=head_dtype
        )(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)

    if input_tensor is not None:
        model_inputs = keras.utils.get_source_inputs(input_tensor)
    else:
        model_inputs = inputs
    model_name = model_name or spec.name
    model = ResNetModel(model_inputs, x, name=model_name).set_pyramid(pyramid, feature_strides)
    if source is not None:
        from keras_resnets.weights.pretrained import load_weights

        load_weights(model, source, include_top=include_top)
    if features_only:
        # The whole trunk holds the weights (loaded above); this model shares
        # its layers up to the deepest level asked for.
        chosen = _check_levels(levels, pyramid)
        model = ResNetModel(model_inputs, {k: pyramid[k] for k in chosen}, name=model_name)
        model.set_pyramid({k: pyramid[k] for k in chosen}, feature_strides)
    return model


def _check_levels(levels, pyramid):
    allowed = tuple(pyramid)
    if levels is None:
        return allowed
    chosen = (levels,) if isinstance(levels, str) else tuple(levels)
    if not chosen or any(level not in allowed for level in chosen) or len(set(chosen)) < len(chosen):
        raise UsageError(
            f"`levels` must be distinct levels of this model, some of {allowed}; received levels={levels!r}."
        )
    return chosen


def get_model(name, /, **kwargs):
    """Builds the registered model `name`; keyword arguments as the builders
    (`name=` inside them names the model, like keras.applications').

    Example:

    >>> model = keras_resnets.get_model("resnet20", classes=10)  # doctest: +SKIP
    """
    if "name" in kwargs:
        kwargs["model_name"] = kwargs.pop("name")
    return build_model(name, **kwargs)
