"""Multiply-accumulate counts of a forward pass, two ways.

- "graph" (TensorFlow): the operations of the traced TensorFlow graph,
  nested functions included: whatever the layers compute.
- "layers" (every backend): the convolution and dense layers, from the
  shapes they are called with in one symbolic forward pass (nothing is
  computed) and their configuration.

`count_macs` uses the first where TensorFlow is Keras's backend and the
second elsewhere; on every registered model the two agree
(tests/test_macs.py, and all of them in tests/test_catalog.py's full run).
"""

import contextlib
import re

import numpy as np

from keras_resnets.utils.validation import UsageError

METHODS = ("auto", "graph", "layers")

# torchvision's "GFLOPS" column counts the multiply-accumulates of the
# convolutions and linear layers; so does this.
_COUNTED = ("Conv2D", "DepthwiseConv2dNative", "MatMul", "BatchMatMulV2", "BatchMatMulV3")


def _op_macs(op):
    shapes = [op.outputs[0].shape, *(t.shape for t in op.inputs[:2])]
    if not all(shape.is_fully_defined() for shape in shapes):
        raise UsageError(
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


def count_macs(model, input_shape=None, method="auto"):
    """Multiply-accumulates of one forward pass of `model` on one image.

    Counts convolutions (grouped ones at their real cost) and dense layers,
    the convention of torchvision's GFLOPS column and of the papers' FLOPs.

    Args:
        model: a Keras model with one image input.
        input_shape: `(height, width, channels)` to count at; defaults to the
            model's input shape, or, where that has no size, the registered
            architecture's default size (224, or 32 for the CIFAR nets).
        method: "graph" counts the operations of the TensorFlow graph of one
            forward pass (the TensorFlow backend only); operations inside
            functions that the graph calls are counted too, once per call
            (stock `keras.layers.Conv2D(groups=...)` runs its convolution in
            a `tf.function` of its own on TensorFlow). "layers" counts
            Keras's convolution (`Conv1D`/`2D`/`3D`, grouped or not,
            `DepthwiseConv1D`/`2D`) and `Dense` layers from the shapes they
            are called with, on any backend; a model holding another layer
            with a kernel (`EinsumDense`, a transposed convolution, ...) is
            refused. "auto" (default): "graph" on TensorFlow, "layers"
            elsewhere. The two agree on every registered model.

    Returns:
        int, multiply-accumulates per image.

    Example:

    >>> keras_resnets.count_macs(keras_resnets.ResNet50())  # doctest: +SKIP
    4089184256
    """
    if _resolve_method(method) == "layers":
        return int(sum(macs for _, macs in _layer_macs(model, input_shape)))
    return int(sum(_op_macs(op) for op, _ in _counted_ops(model, input_shape)))


def _resolve_method(method):
    import keras

    if method not in METHODS:
        raise UsageError(f"`method` must be one of {', '.join(map(repr, METHODS))}; received method={method!r}.")
    backend = keras.backend.backend()
    if method == "auto":
        return "graph" if backend == "tensorflow" else "layers"
    if method == "graph" and backend != "tensorflow":
        raise UsageError(
            f"method='graph' counts the operations of a TensorFlow graph: it needs the TensorFlow backend, "
            f"and Keras runs on {backend!r} here. Use method='layers' (or 'auto'), or KERAS_BACKEND=tensorflow."
        )
    return method


def macs_by_layer(model, input_shape=None, method="auto"):
    """Multiply-accumulates of one image, per top-level layer of `model`.

    The traced operations are attributed by their name scope (a block's
    convolutions run under the block's name), so the values add up to
    `count_macs(model, input_shape)`.

    Args:
        model: a Keras model with one image input.
        input_shape, method: as for `count_macs`; with "layers" each
            convolution or dense layer counts for the top-level layer that
            holds it.

    Returns:
        dict, layer name -> MACs, in the model's layer order; layers without
        multiply-accumulates are left out.

    Example:

    >>> macs_by_layer(keras_resnets.ResNet18())["predictions"]  # doctest: +SKIP
    512000
    """
    names = [layer.name for layer in model.layers]
    totals = dict.fromkeys(names, 0)
    if _resolve_method(method) == "layers":
        owner = {id(inner): layer.name for layer in model.layers
                 for inner in layer._flatten_layers(include_self=True, recursive=True)}
        for layer, macs in _layer_macs(model, input_shape):
            totals[owner[id(layer)]] += macs
        return {name: macs for name, macs in totals.items() if macs}
    for op, name in _counted_ops(model, input_shape):
        # Traced scopes may carry a suffix: "stage1_block1_1/conv1_1/...".
        scopes = name.split("/")[:-1]
        owner = next((n for s in scopes for n in (s, re.sub(r"_\d+$", "", s)) if n in totals), None)
        if owner is None:
            raise UsageError(f"Operation {name!r} belongs to no layer of {model.name!r}.")
        totals[owner] += int(_op_macs(op))
    return {name: macs for name, macs in totals.items() if macs}


def _image_shape(model, input_shape):
    """`(height, width, channels)` to count `model` at (see `count_macs`)."""
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
        raise UsageError(
            f"`input_shape` must fit the model's input {model_shape}; received "
            f"input_shape={input_shape}."
        )
    return input_shape


def _counted_ops(model, input_shape):
    """`(op, name)` of every counted operation of one forward pass, with the
    operations inside nested function calls (see `_graph_ops`)."""
    import tensorflow as tf

    input_shape = _image_shape(model, input_shape)
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
    raise UsageError(
        f"count_macs cannot see inside {call.name!r}: the function {function_name!r} it "
        "calls has no traced graph in the model's trace, so its operations cannot be counted."
    )


def _layer_macs(model, input_shape):
    """`(layer, MACs)` for every call of a convolution or dense layer in one
    symbolic forward pass of `model` on one image, in the order of the calls.

    The pass runs under `keras.src.backend.compute_output_spec` (JAX's
    `eval_shape`, a TensorFlow graph, PyTorch's meta tensors): every layer
    runs its `call` on shapes only. For the time of the pass each counted
    layer's method that does its arithmetic (`convolution_op` of a
    convolution, which the batch-norm folding of `conv_norm` calls too, or
    `call`) is replaced on the instance by a wrapper that records the shapes
    it sees, and restored afterwards."""
    import keras
    from keras.src.backend import compute_output_spec

    input_shape = _image_shape(model, input_shape)
    convolutions = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
    depthwise = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
    counted, calls = [], []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Conv1D):
            # Keras's Conv1D.call runs `ops.conv` itself, not `convolution_op`
            counted.append((layer, "call", _conv1d_macs))
        elif isinstance(layer, convolutions):
            counted.append((layer, "convolution_op", _conv_macs))
        elif isinstance(layer, depthwise):
            counted.append((layer, "call", _depthwise_macs))
        elif isinstance(layer, keras.layers.Dense):
            counted.append((layer, "call", _dense_macs))
        elif any(w.path.split("/")[-1] == "kernel" for w in layer._trainable_variables + layer._non_trainable_variables):
            raise UsageError(
                f"count_macs(method='layers') counts convolution and dense layers; the layer {layer.name!r} "
                f"({type(layer).__name__}) has a kernel that it cannot count. Count with method='graph' on "
                "the TensorFlow backend."
            )
    spec = keras.KerasTensor((1, *input_shape), model.inputs[0].dtype)
    with _recording(counted, calls):
        compute_output_spec(lambda x: model(x, training=False), spec)
    return calls


@contextlib.contextmanager
def _recording(counted, calls):
    """Wraps `method` of each `(layer, method, macs)` of `counted` so that a
    call appends `(layer, macs(layer, arguments, output))` to `calls`."""
    def wrap(layer, original, macs):
        def recorded(*args, **kwargs):
            output = original(*args, **kwargs)
            calls.append((layer, int(macs(layer, args, output))))
            return output
        return recorded

    try:
        for layer, method, macs in counted:
            object.__setattr__(layer, method, wrap(layer, getattr(layer, method), macs))
        yield
    finally:
        for layer, method, _ in counted:
            if method in vars(layer):
                object.__delattr__(layer, method)


def _conv_macs(layer, args, output):
    # kernel (*window, input channels per group, filters): each output value
    # is a sum over the window and one group's input channels.
    kernel = args[1]
    return int(np.prod(output.shape)) * int(np.prod(kernel.shape[:-1]))


def _conv1d_macs(layer, args, output):
    return int(np.prod(output.shape)) * int(np.prod(layer.kernel.shape[:-1]))


def _depthwise_macs(layer, args, output):
    return int(np.prod(output.shape)) * int(np.prod(layer.kernel_size))


def _dense_macs(layer, args, output):
    return int(np.prod(output.shape)) * int(args[0].shape[-1])
