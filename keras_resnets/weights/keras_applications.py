"""Weights of keras.applications' ResNet50/101/152 and ResNet50V2/101V2/152V2.

Those models have the "keras" layout of keras_resnets (`layout="keras"`, the
default of the v2 models): the same layers with other names. The names are
keras.applications' (`keras/src/applications/resnet.py`): stage `s` (1-based)
is `conv{s+1}`, its block `b` is `conv{s+1}_block{b}`, whose convolutions are
`_1_conv`, `_2_conv`, `_3_conv` and the shortcut `_0_conv`.
"""


def keras_applications_layer_map(model):
    """{keras.applications layer name: keras_resnets layer} for `model`."""
    pairs = {}
    stem = model.get_layer("stem")
    if stem.kind != "imagenet":
        raise ValueError(
            f"keras.applications' ResNets have the 'imagenet' stem; received a "
            f"model with stem={stem.kind!r}."
        )
    pairs["conv1_conv"] = stem.convs[0][-1]
    if stem.norms[0] is not None:
        pairs["conv1_bn"] = stem.norms[0]
    for layer in model.layers:
        if not layer.name.startswith("stage"):
            continue
        stage, block = layer.name[len("stage"):].split("_block")
        prefix = f"conv{int(stage) + 1}_block{block}"
        if layer.preact_bn is not None:
            pairs[f"{prefix}_preact_bn"] = layer.preact_bn
        for k, (conv, norm) in enumerate(zip(layer.convs, layer.norms), start=1):
            pairs[f"{prefix}_{k}_conv"] = conv[-1]
            if norm is not None:
                pairs[f"{prefix}_{k}_bn"] = norm
        if layer.projects:
            pairs[f"{prefix}_0_conv"] = layer.shortcut_layer.conv
            if layer.shortcut_layer.bn is not None:
                pairs[f"{prefix}_0_bn"] = layer.shortcut_layer.bn
    for name in ("post_bn", "predictions"):
        if any(layer.name == name for layer in model.layers):
            pairs[name] = model.get_layer(name)
    return pairs


def load_keras_applications_model(model, source):
    """Copies the weights of a keras.applications ResNet onto `model`.

    Strict: every weighted layer of either model must have its counterpart
    with weights of the same shapes, else a `ValueError` lists what differs
    and nothing is copied.

    Args:
        model: a keras_resnets model with `layout="keras"`.
        source: a `keras.applications` ResNet (v1 or v2) model.

    Example:

    >>> src = keras.applications.ResNet50(weights=None)  # doctest: +SKIP
    >>> dst = keras_resnets.ResNet50(layout="keras")  # doctest: +SKIP
    >>> load_keras_applications_model(dst, src)  # doctest: +SKIP
    """
    pairs = keras_applications_layer_map(model)
    weighted = {layer.name: layer for layer in source.layers if layer.weights}
    missing = sorted(set(pairs) - set(weighted))
    unexpected = sorted(set(weighted) - set(pairs))
    mismatched = []
    for name in sorted(set(pairs) & set(weighted)):
        ours = [tuple(w.shape) for w in pairs[name].weights]
        theirs = [tuple(w.shape) for w in weighted[name].weights]
        if ours != theirs:
            mismatched.append(f"{name}: ours {ours}, theirs {theirs}")
    if missing or unexpected or mismatched:
        raise ValueError(
            "The keras.applications model does not fit this keras_resnets model "
            "(build it with layout='keras' and the same depth):\n"
            f"  missing in the source: {missing}\n"
            f"  unexpected in the source: {unexpected}\n"
            f"  shape mismatches: {mismatched}"
        )
    for name, layer in pairs.items():
        layer.set_weights(weighted[name].get_weights())
