"""Multiply-accumulate counts of a forward pass, read off the traced graph."""

import re

import numpy as np

# torchvision's "GFLOPS" column counts the multiply-accumulates of the
# convolutions and linear layers; so does this.
_COUNTED = ("Conv2D", "DepthwiseConv2dNative", "MatMul", "BatchMatMulV2", "BatchMatMulV3")


def _op_macs(op):
    shapes = [op.outputs[0].shape, *(t.shape for t in op.inputs[:2])]
    if not all(shape.is_fully_defined() for shape in shapes):
        raise ValueError(
            f"count_macs needs known shapes; the operation {op.name!r} ({op.type}) has "
            f"inputs {[tuple(t.shape) for t in op.inputs[:2]]} and output {tuple(shapes[0])}."
        )
    if op.type == "Conv2D":
        # output [n, h, w, c_out], filter [kh, kw, c_in / groups, c_out]
        n, h, w, c_out = op.outputs[0].shape
        kh, kw, c_in, _ = op.inputs[1].shape
        return h * w * c_out * kh * kw * c_in * n
    if op.type == "DepthwiseConv2dNative":
        n, h, w, c_out = op.outputs[0].shape
        kh, kw, _, _ = op.inputs[1].shape
        return n * h * w * c_out * kh * kw
    # matrix products: output [..., m, n], contracted dimension k
    a = op.inputs[0].shape
    transpose = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
    k = a[-2] if transpose else a[-1]
    return int(np.prod(op.outputs[0].shape)) * k


def count_macs(model, input_shape=None):
    """Multiply-accumulates of one forward pass of `model` on one image.

    Counts convolutions (grouped ones at their real cost) and dense layers,
    the convention of torchvision's GFLOPS column and of the papers' FLOPs.
    Operations inside functions that the traced graph calls are counted
    too, once per call: stock `keras.layers.Conv2D(groups=...)` runs its
    convolution in a `tf.function` of its own on TensorFlow.

    Args:
        model: a Keras model with one image input.
        input_shape: `(height, width, channels)` to count at; defaults to the
            model's input shape, or, where that has no size, the registered
            architecture's default size (224, or 32 for the CIFAR nets).

    Returns:
        int, multiply-accumulates per image.

    Example:

    >>> keras_resnets.count_macs(keras_resnets.ResNet50())  # doctest: +SKIP
    4089184256
    """
    return int(sum(_op_macs(op) for op, _ in _counted_ops(model, input_shape)))


def macs_by_layer(model, input_shape=None):
    """Multiply-accumulates of one image, per top-level layer of `model`.

    The traced operations are attributed by their name scope (a block's
    convolutions run under the block's name), so the values add up to
    `count_macs(model, input_shape)`.

    Args:
        model: a Keras model with one image input.
        input_shape: as for `count_macs`.

    Returns:
        dict, layer name -> MACs, in the model's layer order; layers without
        multiply-accumulates are left out.

    Example:

    >>> macs_by_layer(keras_resnets.ResNet18())["predictions"]  # doctest: +SKIP
    512000
    """
    names = [layer.name for layer in model.layers]
    totals = dict.fromkeys(names, 0)
    for op, name in _counted_ops(model, input_shape):
        # Traced scopes may carry a suffix: "stage1_block1_1/conv1_1/...".
        scopes = name.split("/")[:-1]
        owner = next((n for s in scopes for n in (s, re.sub(r"_\d+$", "", s)) if n in totals), None)
        if owner is None:
            raise ValueError(f"Operation {name!r} belongs to no layer of {model.name!r}.")
        totals[owner] += int(_op_macs(op))
    return {name: macs for name, macs in totals.items() if macs}


def _counted_ops(model, input_shape):
    """`(op, name)` of every counted operation of one forward pass, with the
    operations inside nested function calls (see `_graph_ops`)."""
    import tensorflow as tf

    model_shape = tuple(model.inputs[0].shape[1:])
    if input_shape is None:
        input_shape = model_shape
        if any(d is None for d in input_shape):
            from keras_resnets.models.registry import get_spec

            try:
                size = get_spec(model.name).default_size
            except ValueError:
                size = 224
            input_shape = tuple(size if d is None else d for d in model_shape)
    input_shape = tuple(input_shape)
    if len(input_shape) != len(model_shape) or any(
        m is not None and m != d for m, d in zip(model_shape, input_shape)
    ):
        raise ValueError(
            f"`input_shape` must fit the model's input {model_shape}; received "
            f"input_shape={input_shape}."
        )
    spec = tf.TensorSpec((1, *input_shape), model.inputs[0].dtype)
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    return [(op, name) for op, name in _graph_ops(graph, "", [graph]) if op.type in _COUNTED]


# Operations that call a function of the graph's library. Keras runs some
# layers' computation in a `tf.function` of its own (stock
# `keras.layers.Conv2D(groups=...)` on TensorFlow: an XLA-compiled one), and
# the traced graph holds one such call in its place.
_CALLS = ("PartitionedCall", "StatefulPartitionedCall")


def _graph_ops(graph, prefix, scopes):
    """Yields `(op, name)` for every operation of `graph` and, recursively,
    of the function bodies its call operations run, each time they are
    called. `name` is the operation's name with the names of the calls it
    runs under in front (`"model/conv/StatefulPartitionedCall/Conv2D"`), so
    that `macs_by_layer` attributes it to the calling layer. `scopes` are the
    graphs, innermost last, whose function libraries may hold a callee."""
    for op in graph.get_operations():
        name = f"{prefix}{op.name}"
        if op.type not in _CALLS:
            yield op, name
            continue
        body = _function_graph(op, scopes)
        yield from _graph_ops(body, f"{name}/", [*scopes, body])


def _function_graph(call, scopes):
    """The traced graph of the function that the operation `call` runs."""
    function_name = call.get_attr("f").name
    for graph in reversed(scopes):
        function = graph._get_function(function_name)
        if function is not None and getattr(function, "graph", None) is not None:
            return function.graph
    raise ValueError(
        f"count_macs cannot see inside {call.name!r}: the function {function_name!r} it "
        "calls has no traced graph in the model's trace, so its operations cannot be counted."
    )
