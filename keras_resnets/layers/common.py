"""Pieces shared by the layers: convolution factory and initializers."""

import contextlib
import math

import keras
import numpy as np
from keras import ops

from keras_resnets.layers.conv import Conv2D
from keras_resnets.layers.grouped_conv import GroupedConv2D
from keras_resnets.layers.normalization import BatchNormalization
from keras_resnets.utils.validation import UsageError

HE_NORMAL_FAN_OUT = "he_normal_fan_out"


class KeepsFrozenSublayers:
    """A mixin for the layers that hold layers of their own (blocks, stems,
    projections, attention): which of those are frozen (`trainable=False`
    inside a trainable layer) survives `get_config`/`from_config` and a
    `.keras` file, as a functional model's own layers' flags do.

    Keras saves a layer's own `trainable`, not those of the layers it makes
    itself: batch norm frozen inside the blocks (the `finetune` recipe, a
    detection backbone's frozen batch norm) came back trainable from a
    `.keras` file, training again and in training mode, and the saved
    optimizer no longer fitted the model's trainable variables (Keras warned
    "Skipping variable loading for optimizer" and dropped its state).

    The config gains `"frozen_sublayers"`, the paths of the frozen layers
    by name (`"bn1"`, `"shortcut/bn"`), only where there are some; a
    subclass's `build` ends with `self._freeze_sublayers()`, which freezes
    them again once every layer exists (a block makes its shortcut there).
    """

    def __init__(self, *args, frozen_sublayers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self._frozen_paths = tuple(frozen_sublayers)

    def _sublayers_by_path(self):
        found = {}

        def walk(layer, prefix):
            for sub in layer._flatten_layers(include_self=False, recursive=False):
                path = prefix + sub.name
                found[path] = sub
                walk(sub, path + "/")

        walk(self, "")
        return found

    def frozen_sublayers(self):
        """The paths of the layers with weights inside this one that are
        frozen while this one is trainable, outermost only; before `build`,
        with those still to be frozen then."""
        frozen = []

        def walk(layer, prefix):
            for sub in layer._flatten_layers(include_self=False, recursive=False):
                path = prefix + sub.name
                if sub.trainable:
                    walk(sub, path + "/")
                elif sub.weights:
                    frozen.append(path)

        if self.trainable:
            walk(self, "")
        if not self.built:
            layers = self._sublayers_by_path()
            frozen += [path for path in self._frozen_paths if path not in layers]
        return frozen

    def _freeze_sublayers(self):
        if not self._frozen_paths:
            return
        layers = self._sublayers_by_path()
        unknown = [path for path in self._frozen_paths if path not in layers]
        if unknown:
            raise ValueError(
                f"`frozen_sublayers` names layers that {self.name!r} does not have: {unknown}; it has "
                f"{sorted(layers)}."
            )
        for path in self._frozen_paths:
            layers[path].trainable = False

    def get_config(self):
        config = super().get_config()
        frozen = self.frozen_sublayers()
        if frozen:
            config["frozen_sublayers"] = frozen
        return config


@keras.saving.register_keras_serializable(package="keras_resnets")
class HeNormalFanOut(keras.initializers.VarianceScaling):
    """He et al.'s normal of variance 2 / fan_out, as torchvision initializes.

    On JAX a random draw is compiled for each shape it is drawn in (about
    0.1 s of XLA each on a CPU): building or loading a ResNet-50 compiled one
    for each of its kernel shapes, and loading six small models took 48 s of
    a 100 s process. There, the draw is of the next power of two of the
    kernel's size, cut to the kernel: the same independent normals, and a
    handful of compilations a process. The other backends draw as Keras does.
    """

    def __init__(self, seed=None):
        super().__init__(scale=2.0, mode="fan_out", distribution="untruncated_normal", seed=seed)

    def get_config(self):
        return {"seed": super().get_config()["seed"]}

    def __call__(self, shape, dtype=None):
        if keras.backend.backend() != "jax":
            return super().__call__(shape, dtype)
        shape, dtype = tuple(int(d) for d in shape), keras.backend.standardize_dtype(dtype)
        # Keras's fan out: the last axis times the kernel's spatial size.
        fan_out = shape[-1] * math.prod(shape[:-2]) if len(shape) >= 2 else (shape[0] if shape else 1)
        stddev = math.sqrt(self.scale / max(1.0, fan_out))
        count = math.prod(shape)
        draw = keras.random.normal((1 << max(0, count - 1).bit_length(),), stddev=stddev, dtype=dtype,
                                   seed=self.seed)
        import jax

        if isinstance(draw, jax.core.Tracer):  # drawn inside jax.jit: cut with the backend's ops
            return ops.reshape(draw[:count], shape)
        values = np.asarray(draw)
        # (with its dtype named: JAX compiles a program per shape to take in
        # a NumPy array of no dtype named)
        return ops.convert_to_tensor(values[:count].reshape(shape), dtype=dtype)


def conv_initializer(identifier):
    """Resolves an initializer, including "he_normal_fan_out".

    "he_normal_fan_out" is the initialization of He et al. 2015 that
    torchvision uses (`kaiming_normal_(mode="fan_out")`): an untruncated
    normal of variance 2 / (kernel_h * kernel_w * filters).
    """
    if identifier == HE_NORMAL_FAN_OUT:
        return HeNormalFanOut()
    return keras.initializers.get(identifier)


def serialize_initializer(identifier):
    if isinstance(identifier, (str, dict)) or identifier is None:
        return identifier
    return keras.initializers.serialize(identifier)


def conv_layers(
    filters,
    kernel_size,
    strides=1,
    groups=1,
    use_bias=False,
    kernel_initializer=HE_NORMAL_FAN_OUT,
    name="conv",
    dtype=None,
    dilation_rate=1,
):
    """A convolution with PyTorch's symmetric padding, as a list of layers.

    A stride-1 convolution uses "same" padding, which is symmetric for odd
    kernels (a dilated one pads `dilation_rate * (kernel_size // 2)`, as
    PyTorch's `padding=dilation`). A strided one pads `kernel_size // 2`
    pixels on every side explicitly and then runs "valid": TensorFlow's
    "same" would pad only the bottom and right of an even-sized input, which
    shifts the sampling grid away from PyTorch's (and breaks weight
    compatibility). A convolution is strided or dilated, not both (as in
    the networks: a stage trades its stride for dilation). `dtype`: the
    layers' dtype policy (a composite layer passes its own, so that a model
    loaded under another global policy keeps it).
    """
    if strides > 1 and dilation_rate > 1:
        raise UsageError(
            f"A convolution is strided or dilated, not both; received strides={strides}, "
            f"dilation_rate={dilation_rate}."
        )
    layers = []
    padding = "same"
    if strides > 1 and kernel_size > 1:
        layers.append(keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad", dtype=dtype))
        padding = "valid"
    conv_cls = GroupedConv2D if groups > 1 else Conv2D
    extra = {"groups": groups} if groups > 1 else {}
    if dilation_rate > 1 and kernel_size > 1:
        extra["dilation_rate"] = dilation_rate
    layers.append(
        conv_cls(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=use_bias,
            kernel_initializer=conv_initializer(kernel_initializer),
            name=name,
            dtype=dtype,
            **extra,
        )
    )
    return layers


def conv_norm(conv, norm, inputs, training=None):
    """`norm(conv(inputs))`: the layers of `conv_layers`, then `norm` (a
    `BatchNormalization`, or None for none).

    In inference on the TensorFlow backend the batch norm is folded into the
    convolution where that pays: the kernel scaled by
    `gamma / sqrt(moving_variance + epsilon)` per output channel, then a bias
    add, which TensorFlow's graph optimizer fuses into the convolution
    together with a following ReLU, or residual addition and ReLU. The same
    function (equal within rounding, and its gradients too), what inference
    engines do with a batch norm. TensorFlow fuses a float32 batch norm into
    its convolution by itself, but not a bfloat16 one, nor the residual
    addition after it. Folding costs a pass over the kernel on every call
    and saves one over the output, so it is done where the output has at
    least twice as many pixels (batch x height x width) as the kernel has
    input rows (kernel height x width x input channels per group): where the
    sizes are known and the batch is not too small for the layer.

    Measured (2-core CPU, 128 px, median of 25 interleaved calls), ResNet-50
    inference at batch 16: 145.9 -> 129.2 ms in mixed_bfloat16, 231.7 ->
    225.6 in float32; ResNeXt-50 in mixed_bfloat16 187.5 -> 165.3 ms; at
    batch 1 unchanged (35.9 -> 34.4 and 24.1 -> 23.1 ms). Folding every
    layer would make batch 1 slower (33.6 -> 40.0 ms in mixed_bfloat16).
    """
    x = inputs
    *pads, layer = conv
    for pad in pads:
        x = pad(x)
    if not _folds(layer, norm, x, training):
        x = layer(x)
        return x if norm is None else norm(x, training=training)
    import tensorflow as tf

    x = ops.cast(x, layer.compute_dtype)
    scale, shift = norm.inference_scale_shift()
    if layer.use_bias:
        shift = shift + ops.cast(layer.bias, "float32") * scale
    # `layer.kernel` reads in the compute dtype (as the convolution uses it).
    # Inside `fold_every_batch_norm`, the stored (float32) kernel instead: a
    # frozen graph's optimizer folds the product into a constant, which it
    # does not do through a cast up from bfloat16 (a larger constant). The
    # product is taken in float32 and rounded once.
    kernel = _stored_value(layer.kernel) if _FOLD_EVERY else layer.kernel
    kernel = ops.cast(ops.cast(kernel, "float32") * scale, x.dtype)
    return tf.nn.bias_add(layer.convolution_op(x, kernel), ops.cast(shift, x.dtype))


# Non-empty inside `fold_every_batch_norm()`.
_FOLD_EVERY = []


@contextlib.contextmanager
def fold_every_batch_norm():
    """Traces `conv_norm` with every batch norm that can fold folded, at any
    size, known or not (a batch dimension of None among them).

    For graphs whose weights become constants (`keras_resnets.export`'s
    frozen SavedModel): there the folded kernel is computed once, when the
    graph is optimized, so folding costs nothing per call and saves a pass
    over every output. Measured (bfloat16 ResNet-50, 128 px, batch 16,
    oneDNN's own times): a frozen graph traced for any batch folded none,
    and its 53 batch norms took 22.5 of 60.8 ms."""
    _FOLD_EVERY.append(True)
    try:
        yield
    finally:
        _FOLD_EVERY.pop()


def _stored_value(variable):
    """`variable`'s value in the dtype it is stored in, also where a mixed
    precision layer's call reads its variables in the compute dtype."""
    from keras.src.backend.common.variables import AutocastScope

    with AutocastScope(None):
        return variable.value


def _folds(layer, norm, inputs, training):
    """Whether `conv_norm` folds `norm` into `layer` for `inputs`."""
    if not (
        norm is not None
        and (training is None or training is False)
        and isinstance(layer, Conv2D)
        and isinstance(norm, BatchNormalization)
        and layer.data_format == "channels_last"
        and layer.activation in (None, keras.activations.linear)
        and getattr(layer, "quantization_mode", None) is None
        # The conditions of the fused batch norm (the TensorFlow backend
        # among them), for the convolution's output (the input's rank, the
        # compute dtype).
        and norm._fused(keras.KerasTensor(inputs.shape, layer.compute_dtype), None)
    ):
        return False
    if _FOLD_EVERY:
        return True
    shape = tuple(inputs.shape)
    output = layer.compute_output_shape(shape)
    if None in shape or None in output:
        return False
    kernel_rows = layer.kernel_size[0] * layer.kernel_size[1] * shape[-1] // layer.groups
    return output[0] * output[1] * output[2] >= 2 * kernel_rows


def build_sequence(layers, input_shape):
    """Builds `layers` one after another; returns the final output shape."""
    shape = input_shape
    for layer in layers:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


def strided_output_shape(input_shape, strides, channels):
    """(n, h, w, c) after a layer of stride `strides` with symmetric padding:
    each side becomes ceil(side / strides), the channels `channels`."""
    n, h, w, _ = input_shape
    h = None if h is None else -(-h // strides)
    w = None if w is None else -(-w // strides)
    return (n, h, w, channels)
