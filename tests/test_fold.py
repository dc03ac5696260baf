"""`conv_norm`: in inference the batch norm folds into the convolution where
that pays; the function stays the same, and so do its gradients."""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_resnets
from keras_resnets.layers import BatchNormalization
from keras_resnets.layers.common import _folds, conv_layers, conv_norm
from keras_resnets.layers.grouped_conv import onednn_enabled

from helpers import random_images, randomize_batchnorm

CASES = [
    # (conv_layers arguments, input shape)
    (dict(filters=24, kernel_size=1), (4, 6, 6, 16)),
    (dict(filters=24, kernel_size=1, strides=2), (4, 7, 7, 16)),
    (dict(filters=16, kernel_size=3), (8, 6, 5, 8)),
    (dict(filters=16, kernel_size=3, strides=2), (8, 9, 9, 8)),  # explicit padding layer
    (dict(filters=16, kernel_size=3, groups=4), (4, 6, 6, 16)),
    (dict(filters=8, kernel_size=7, strides=2, use_bias=True), (8, 16, 16, 3)),
]
IDS = [f"{c[0]}-{c[1]}" for c in CASES]


def conv_and_norm(kwargs, shape, dtype="float32"):
    conv = conv_layers(**kwargs, dtype=dtype)
    norm = BatchNormalization(dtype=dtype)
    x = tf.constant(random_images(shape))
    for layer in conv:
        layer.build(x.shape)
        x = layer(x)
    norm.build(x.shape)
    randomize_batchnorm(norm, seed=1)
    if kwargs.get("use_bias"):
        conv[-1].bias.assign(np.random.default_rng(2).normal(0, 0.5, conv[-1].bias.shape))
    return conv, norm


def unfolded(conv, norm, x, training=False):
    for layer in conv:
        x = layer(x)
    return norm(x, training=training)


def graph_ops(fn, spec):
    graph = tf.function(fn).get_concrete_function(spec).graph
    return collections.Counter(node.op for node in graph.as_graph_def().node)


@pytest.mark.parametrize("eager", [True, False], ids=["eager", "graph"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_folded_equals_keras_convolution_then_batch_norm_in_float64(case, eager):
    """The folded convolution (float32) against Keras's own Conv2D and
    BatchNormalization in float64 with the same weights: outputs, input
    and kernel gradients within 2e-6 of the largest value (measured: at
    most 4.2e-7)."""
    kwargs, shape = case
    conv, norm = conv_and_norm(kwargs, shape)
    x = tf.constant(random_images(shape, seed=3))
    assert _folds(conv[-1], norm, conv[-2](x) if len(conv) > 1 else x, False)
    plain = [(keras.layers.Conv2D if isinstance(layer, keras.layers.Conv2D) else type(layer)).from_config(
        {**layer.get_config(), "dtype": "float64"}) for layer in conv]
    keys = keras.layers.BatchNormalization().get_config()
    bn = keras.layers.BatchNormalization.from_config(
        {k: v for k, v in {**norm.get_config(), "dtype": "float64"}.items() if k in keys})
    h = tf.cast(x, "float64")
    for layer, ours in zip(plain, conv):
        layer.build(h.shape)
        layer.set_weights([w.astype("float64") for w in ours.get_weights()])
        h = layer(h)
    bn.build(h.shape)
    bn.set_weights([w.astype("float64") for w in norm.get_weights()])
    upstream = np.random.default_rng(4).normal(size=h.shape)

    def reference(x):
        for layer in plain:
            x = layer(x)
        return bn(x, training=False)

    def outputs_and_gradients(fn, x, kernel):
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = fn(x)
                loss = tf.reduce_sum(y * tf.constant(upstream, y.dtype))
            return [y, *tape.gradient(loss, [x, kernel])]

        return run(x) if eager else tf.function(run)(x)

    ours = outputs_and_gradients(lambda x: conv_norm(conv, norm, x, training=False), x, conv[-1].kernel)
    expected = outputs_and_gradients(reference, tf.cast(x, "float64"), plain[-1].kernel)
    for a, b, what in zip(ours, expected, ["outputs", "input gradient", "kernel gradient"]):
        a, b = np.asarray(a, "float64"), np.asarray(b)
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6 * np.abs(b).max(), err_msg=what)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_folded_graph_has_a_bias_add_instead_of_the_batch_norm(case):
    kwargs, shape = case
    conv, norm = conv_and_norm(kwargs, shape)
    spec = tf.TensorSpec(shape)
    folded = graph_ops(lambda x: conv_norm(conv, norm, x, training=False), spec)
    # The convolution's own bias, if any, goes into the folded one.
    assert folded["FusedBatchNormV3"] == 0 and folded["BiasAdd"] == 1
    # A grouped convolution without oneDNN: one dense convolution a group.
    groups = kwargs.get("groups", 1)
    assert folded["Conv2D"] == (1 if onednn_enabled() else groups)
    # Unknown batch size: the size test cannot be made, so no folding.
    unknown = graph_ops(lambda x: conv_norm(conv, norm, x, training=False),
                        tf.TensorSpec((None, *shape[1:])))
    assert unknown["FusedBatchNormV3"] == 1
    assert unknown["BiasAdd"] == int(kwargs.get("use_bias", False))


def test_training_is_not_folded_and_updates_the_moving_statistics():
    conv, norm = conv_and_norm(dict(filters=8, kernel_size=3), (4, 6, 6, 8))
    x = tf.constant(random_images((4, 6, 6, 8), seed=5))
    before = norm.moving_mean.numpy().copy()
    ours = conv_norm(conv, norm, x, training=True)
    after_ours = norm.moving_mean.numpy().copy()
    norm.moving_mean.assign(before)
    reference = unfolded(conv, norm, x, training=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert not np.allclose(after_ours, before)
    np.testing.assert_allclose(after_ours, norm.moving_mean.numpy(), atol=1e-6)
    assert not _folds(conv[-1], norm, x, True)


def test_folds_only_where_the_output_outweighs_the_kernel():
    """Folding scales the kernel on every call: it pays where the output has
    at least twice as many pixels as the kernel has input rows."""
    conv, norm = conv_and_norm(dict(filters=64, kernel_size=1), (1, 4, 4, 64))
    layer = conv[-1]
    # 1x1 over 64 channels: 128 output pixels are needed.
    assert not _folds(layer, norm, tf.zeros((7, 4, 4, 64)), False)  # 112
    assert _folds(layer, norm, tf.zeros((8, 4, 4, 64)), False)  # 128
    # No batch norm, a float64 one (no fused kernel), a training call: no folding.
    assert not _folds(layer, None, tf.zeros((8, 4, 4, 64)), False)
    assert not _folds(layer, norm, tf.zeros((8, 4, 4, 64)), True)
    conv64, norm64 = conv_and_norm(dict(filters=64, kernel_size=1), (8, 4, 4, 64), "float64")
    assert not _folds(conv64[-1], norm64, tf.zeros((8, 4, 4, 64), "float64"), False)


def test_mixed_bfloat16_folds_within_bfloat16_rounding():
    keras.config.set_dtype_policy("mixed_bfloat16")
    conv, norm = conv_and_norm(dict(filters=32, kernel_size=3), (4, 8, 8, 16), "mixed_bfloat16")
    x = tf.constant(random_images((4, 8, 8, 16), seed=6))
    ours = conv_norm(conv, norm, x, training=False)
    reference = unfolded(conv, norm, x)
    assert ours.dtype == reference.dtype == tf.bfloat16
    ours, reference = np.asarray(ours, "float32"), np.asarray(reference, "float32")
    np.testing.assert_allclose(ours, reference, rtol=0, atol=0.02 * np.abs(reference).max())
    keras.config.set_dtype_policy("float32")
    conv32, norm32 = conv_and_norm(dict(filters=32, kernel_size=3), (4, 8, 8, 16))
    for a, b in zip(conv[-1].weights + norm.weights, conv32[-1].weights + norm32.weights):
        b.assign(a)
    exact = unfolded(conv32, norm32, x).numpy()
    # No worse than the unfolded bfloat16 path against float32.
    assert np.abs(ours - exact).max() <= 1.5 * np.abs(reference - exact).max()


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d", "resnet50v2"])
def test_models_in_inference_equal_the_unfolded_models(name):
    model = keras_resnets.get_model(name, weights=None, input_shape=(64, 64, 3))
    randomize_batchnorm(model)
    x = random_images((8, 64, 64, 3), seed=7)
    folded_ops = graph_ops(lambda x: model(x, training=False), tf.TensorSpec(x.shape))
    unfolded_ops = graph_ops(lambda x: model(x, training=False), tf.TensorSpec((None, 64, 64, 3)))
    assert folded_ops["BiasAdd"] > 1 + unfolded_ops["BiasAdd"]
    assert folded_ops["FusedBatchNormV3"] < unfolded_ops["FusedBatchNormV3"]
    # The batch-unknown function does not fold: the reference.
    reference = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((None, 64, 64, 3))],
    )(x).numpy()
    ours = model.predict_on_batch(x)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-6)
