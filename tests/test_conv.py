import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_resnets.layers import Conv2D

from helpers import random_images, run_layer_test

CASES = [
    # (kwargs, input shape, takes the matrix-product 1x1 path, takes the
    # per-tap kernel gradient in training)
    (dict(filters=24, kernel_size=1), (2, 5, 6, 16), True, False),
    (dict(filters=24, kernel_size=1, strides=2), (2, 5, 7, 16), True, False),
    (dict(filters=8, kernel_size=1, strides=2, padding="same"), (2, 6, 6, 8), True, False),
    (dict(filters=8, kernel_size=1, use_bias=False, activation="relu"), (2, 3, 5, 8), True, False),
    (dict(filters=16, kernel_size=3, padding="same"), (2, 4, 4, 64), False, True),
    (dict(filters=16, kernel_size=3, strides=2), (2, 9, 9, 64), False, True),
    # an odd padded size at stride 3 (the phase planes are padded to 12 x 12)
    (dict(filters=8, kernel_size=5, strides=3, activation="relu"), (2, 11, 10, 64), False, True),
    # at stride 1, more output pixels than TAP_GRADIENT_MAX_PIXELS
    (dict(filters=8, kernel_size=3, padding="same"), (2, 9, 9, 64), False, False),
    # fewer input channels than TAP_GRADIENT_MIN_CHANNELS (a stem, a CIFAR net)
    (dict(filters=8, kernel_size=3, strides=2), (2, 9, 9, 32), False, False),
    # "same" at stride 2 pads unevenly: TensorFlow's op
    (dict(filters=8, kernel_size=3, strides=2, padding="same"), (2, 6, 6, 64), False, False),
]


def gradients(layer, x, upstream, training=None):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, upstream.dtype) * upstream)
    return [y, *tape.gradient(loss, [x, layer.kernel])]


@pytest.mark.parametrize("training", [None, True], ids=["inference", "training"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("eager", [True, False], ids=["eager", "graph"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_outputs_and_gradients_equal_keras_conv2d(case, eager, dtype, training):
    kwargs, shape, fast, taps = case
    ours = Conv2D(**kwargs, dtype=dtype)
    theirs = keras.layers.Conv2D(**kwargs, dtype=dtype)
    ours.build(shape)
    theirs.build(shape)
    theirs.set_weights(ours.get_weights())
    x = tf.constant(random_images(shape), dtype)
    assert ours._uses_matmul(x) == fast
    assert ours._uses_taps(x) == taps
    upstream = tf.constant(random_images(ours.compute_output_shape(shape), seed=1))
    fn = gradients if eager else tf.function(gradients)
    atol = 1e-4 if dtype == "float32" else 1e-10
    for a, b in zip(fn(ours, x, upstream, training), fn(theirs, x, upstream, training)):
        np.testing.assert_allclose(a, b, atol=atol, rtol=atol)


@pytest.mark.parametrize("case", [c for c in CASES if c[2]], ids=lambda c: f"{c[0]}-{c[1]}")
def test_kernel_gradient_is_a_matrix_product(case):
    """Where it applies, the kernel gradient is MatMul, not Conv2DBackpropFilter;
    the forward pass is one Conv2D op in inference (where batch norm fuses
    into it), a MatMul in training."""
    kwargs, shape, _, _ = case
    layer = Conv2D(**kwargs)
    layer.build(shape)
    x = tf.constant(random_images(shape))
    upstream = tf.constant(random_images(layer.compute_output_shape(shape), seed=1))
    graph = tf.function(gradients).get_concrete_function(layer, x, upstream).graph
    types = [op.type for op in graph.get_operations()]
    assert "Conv2DBackpropFilter" not in types
    assert "MatMul" in types or "BatchMatMulV2" in types
    for training, conv, matmul in ((None, 1, 0), (False, 1, 0), (True, 0, 1)):
        call = tf.function(lambda x, training=training: layer(x, training=training))
        types = [op.type for op in call.get_concrete_function(x).graph.get_operations()]
        assert (types.count("Conv2D"), types.count("MatMul")) == (conv, matmul), training


@pytest.mark.parametrize("case", CASES[4:], ids=lambda c: f"{c[0]}-{c[1]}")
def test_kernel_gradient_per_tap(case):
    """A k x k kernel's gradient in a training step: products per tap (no
    Conv2DBackpropFilter) where `_uses_taps`, TensorFlow's op elsewhere and
    in inference; the forward pass is one Conv2D op either way."""
    kwargs, shape, _, taps = case
    layer = Conv2D(**kwargs)
    layer.build(shape)
    x = tf.constant(random_images(shape))
    upstream = tf.constant(random_images(layer.compute_output_shape(shape), seed=1))
    for training in (None, True):
        graph = tf.function(gradients).get_concrete_function(layer, x, upstream, training).graph
        types = [op.type for op in graph.get_operations()]
        per_tap = bool(training) and taps
        assert ("Conv2DBackpropFilter" in types) == (not per_tap), training
        assert types.count("MatMul") == (np.prod(layer.kernel_size) if per_tap else 0), training
        assert types.count("Conv2D") == 1


BFLOAT16_CASES = [
    # (kwargs, input shape, takes the 1x1 product path, takes the per-tap kernel gradient in training)
    (dict(filters=32, kernel_size=1), (2, 8, 8, 64), True, False),
    (dict(filters=32, kernel_size=1, strides=2), (2, 9, 9, 64), True, False),
    (dict(filters=32, kernel_size=3, padding="same"), (2, 8, 8, 64), False, True),
    (dict(filters=32, kernel_size=3, strides=2), (2, 9, 9, 64), False, True),  # phase planes
    (dict(filters=16, kernel_size=5, strides=3), (2, 11, 10, 64), False, True),
]


@pytest.mark.parametrize("training", [None, True], ids=["inference", "training"])
@pytest.mark.parametrize("case", BFLOAT16_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_mixed_bfloat16_outputs_and_gradients_against_float64(case, training):
    """Each fast path in mixed bfloat16 (the 1x1 product, the per-tap kernel
    gradient at stride 1 and strided) against Keras's op in float64: the
    output, input gradient and kernel gradient within two units of
    bfloat16's 8-bit precision (2 x 2^-8) of the reference's largest value,
    or, where TensorFlow's CPU kernels round more (without AVX512-BF16 or
    AMX), no further off than Keras's own op in mixed bfloat16 (times 1.25).
    Measured: at most 1.06 units with AVX512-BF16; on an AVX2 CPU (Zen 3)
    at most 4.5 units, where Keras's own op was 7.8 off; a tap or phase
    taken wrong is off by about the whole value (256 units)."""
    kwargs, shape, matmul, taps = case
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = Conv2D(**kwargs)
    layer.build(shape)
    stock = keras.layers.Conv2D(**kwargs)
    stock.build(shape)
    stock.set_weights(layer.get_weights())
    reference = keras.layers.Conv2D(**kwargs, dtype="float64")
    reference.build(shape)
    reference.set_weights([w.astype("float64") for w in layer.get_weights()])
    x = tf.constant(random_images(shape))
    assert (layer._uses_matmul(x), layer._uses_taps(x)) == (matmul, taps)
    upstream = tf.constant(random_images(layer.compute_output_shape(shape), seed=1))
    y, dx, dk = gradients(layer, x, upstream, training)
    assert y.dtype == "bfloat16" and layer.kernel.dtype == "float32" and dk.dtype == "float32"
    expected = gradients(reference, tf.cast(x, "float64"), tf.cast(upstream, "float64"), training)
    keras_own = gradients(stock, x, upstream, training)
    for name, a, b, c in zip(("output", "input gradient", "kernel gradient"), (y, dx, dk), expected, keras_own):
        a, b, c = (np.asarray(tf.cast(v, "float64")) for v in (a, b, c))
        tolerance = max(2 * 2**-8 * np.abs(b).max(), 1.25 * np.abs(c - b).max())
        assert tolerance < 0.1 * np.abs(b).max(), (name, "Keras's own op is far off")
        np.testing.assert_allclose(a, b, rtol=0, atol=tolerance, err_msg=name)


def test_layer_contract(tmp_path):
    run_layer_test(
        Conv2D(8, 1, strides=2),
        random_images((2, 6, 6, 16)),
        tmp_path,
        expected_shape=(2, 3, 3, 8),
    )


@pytest.mark.parametrize("training", [None, True], ids=["inference", "training"])
@pytest.mark.parametrize("strides", [1, 2])
def test_unknown_image_size(strides, training):
    """Models default to `input_shape=(None, None, 3)`: the gradients hold
    for a graph traced without the batch and image sizes."""
    ours = Conv2D(8, 1, strides=strides)
    theirs = keras.layers.Conv2D(8, 1, strides=strides)
    for layer in (ours, theirs):
        layer.build((None, None, None, 16))
    theirs.set_weights(ours.get_weights())
    x = tf.constant(random_images((2, 7, 5, 16)))
    upstream = tf.constant(random_images(ours.compute_output_shape(x.shape), seed=1))
    spec = tf.TensorSpec((None, None, None, 16))
    results = []
    for layer in (ours, theirs):
        fn = tf.function(lambda x, u, layer=layer: gradients(layer, x, u, training),
                         input_signature=[spec, tf.TensorSpec(None)])
        results.append(fn(x, upstream))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_fast_paths_only_on_the_cpu(monkeypatch):
    """Both faster paths were measured on CPUs only: where TensorFlow has a
    GPU, the layer is Keras's Conv2D as it is (the device query stands in for
    a GPU, which this machine has not)."""
    from keras_resnets.layers import conv

    one, three = Conv2D(8, 1), Conv2D(8, 3, strides=2)
    x = tf.constant(random_images((2, 9, 9, 64)))
    assert one._uses_matmul(x) and three._uses_taps(x)
    monkeypatch.setattr(conv, "_on_cpu", lambda: False)
    assert not one._uses_matmul(x) and not three._uses_taps(x)
