import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_resnets.layers import GroupedConv2D
from keras_resnets.layers.grouped_conv import native_grouped_convolutions, onednn_enabled

from helpers import random_images, run_layer_test


def split_concat_reference(x, kernel, groups, strides, padding, dilation):
    """The definition of a grouped convolution: one convolution per group."""
    xs = tf.split(x, groups, axis=-1)
    ks = tf.split(kernel, groups, axis=-1)
    return tf.concat(
        [
            tf.nn.convolution(a, k, strides=strides, padding=padding.upper(), dilations=dilation)
            for a, k in zip(xs, ks)
        ],
        axis=-1,
    )


CASES = [
    # (in_channels, filters, groups, kernel, strides, padding, dilation)
    (64, 64, 32, 3, 1, "same", 1),
    (64, 128, 32, 3, 2, "valid", 1),
    (32, 64, 8, 3, 2, "same", 1),
    (16, 16, 4, 1, 1, "valid", 1),
    (24, 48, 3, 3, 1, "same", 2),
]


@pytest.mark.parametrize("eager", [True, False], ids=["eager", "graph"])
@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
def test_forward_and_gradients_equal_split_concat(case, eager):
    c_in, filters, groups, k, strides, padding, dilation = case
    layer = GroupedConv2D(
        filters, k, groups=groups, strides=strides, padding=padding,
        dilation_rate=dilation, use_bias=False,
    )
    x = tf.constant(random_images((2, 9, 9, c_in)))
    layer.build(x.shape)
    upstream = tf.constant(random_images(layer.compute_output_shape(x.shape), seed=1))

    def both(x):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            ours = layer(x)
            ref = split_concat_reference(x, layer.kernel, groups, strides, padding, dilation)
            loss_ours = tf.reduce_sum(ours * upstream)
            loss_ref = tf.reduce_sum(ref * upstream)
        g_ours = tape.gradient(loss_ours, [x, layer.kernel])
        g_ref = tape.gradient(loss_ref, [x, layer.kernel])
        return ours, ref, g_ours, g_ref

    fn = both if eager else tf.function(both)
    ours, ref, g_ours, g_ref = fn(x)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    for a, b in zip(g_ours, g_ref):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_equals_keras_conv2d_with_groups():
    """Same weights as keras.layers.Conv2D(groups=...), same outputs."""
    x = random_images((2, 8, 8, 32))
    ours = GroupedConv2D(64, 3, groups=8, padding="same")
    theirs = keras.layers.Conv2D(64, 3, groups=8, padding="same")
    ours.build(x.shape)
    theirs.build(x.shape)
    assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x), theirs(x), atol=1e-5)


def test_native_op_in_graph():
    """On TensorFlow the layer lowers to one Conv2D op, not an XLA cluster;
    without oneDNN (no native grouped gradient on the CPU), to one dense
    Conv2D per group, joined."""
    layer = GroupedConv2D(64, 3, groups=32, padding="same")
    fn = tf.function(lambda x: layer(x))
    graph = fn.get_concrete_function(tf.TensorSpec((1, 8, 8, 64))).graph
    types = [op.type for op in graph.get_operations()]
    assert types.count("Conv2D") == (1 if onednn_enabled() else 32)
    assert types.count("ConcatV2") == (0 if onednn_enabled() else 1)
    assert not any("Xla" in t or t in ("StatefulPartitionedCall", "PartitionedCall") for t in types)


@pytest.mark.parametrize("channels,groups,filters,strides,dilation,merged_width", [
    (64, 16, 32, 1, 1, 8),  # 4 channels a group (ResNeXt-50's stage 1), pairs merged
    (32, 32, 64, 2, 1, 8),  # 1 channel a group, strided: 8 merged
    (12, 6, 12, 1, 2, 6),  # 2 a group, dilated: 4 do not divide 6 groups, 3 do
    (64, 8, 16, 1, 1, 8),  # 8 a group already: as it is
])
def test_narrow_groups_merged_give_the_same_outputs(channels, groups, filters, strides, dilation, merged_width):
    """`native_grouped_convolutions(min_group_width=8)` (LiteRT's int8
    files): groups of fewer input channels are traced as merged groups, one
    Conv2D whose block-diagonal kernel gives the same outputs."""
    x = random_images((2, 9, 9, channels))
    # (no bias: without oneDNN, TensorFlow's graph optimizer fuses the bias
    # add into a convolution kernel that refuses groups)
    layer = GroupedConv2D(filters, 3, groups=groups, strides=strides, dilation_rate=dilation, padding="same",
                          use_bias=False)
    layer.build(x.shape)
    layer.kernel.assign(np.random.default_rng(0).normal(size=layer.kernel.shape).astype("float32"))

    def traced(min_group_width):
        fn = tf.function(lambda images: layer(images))
        with native_grouped_convolutions(min_group_width):
            concrete = fn.get_concrete_function(tf.TensorSpec(x.shape))
        convs = [op for op in concrete.graph.get_operations() if op.type == "Conv2D"]
        assert len(convs) == 1
        return concrete(tf.constant(x)).numpy(), convs[0].inputs[1].shape[2]

    plain, width = traced(None)
    merged, merged_depth = traced(8)
    assert width == channels // groups and merged_depth == merged_width
    np.testing.assert_allclose(merged, plain, atol=1e-5, rtol=1e-6)


def test_onednn_enabled_tells_whether_the_native_grouped_gradient_runs():
    """`onednn_enabled` (a TensorFlow private) says which CPU kernels this
    process has: with oneDNN, TensorFlow's own grouped convolution has a
    gradient; without, it raises, which is why the layer splits the groups."""
    x = tf.constant(random_images((1, 6, 6, 8)))
    kernel = tf.constant(random_images((3, 3, 2, 8), seed=1))

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.conv2d(x, kernel, strides=1, padding="SAME")
        return tape.gradient(y, x)

    try:
        gradient(x)
        native = True
    except tf.errors.InvalidArgumentError as e:
        assert "Gradients for grouped convolutions are not supported on CPU" in str(e)
        native = False
    assert onednn_enabled() == native


def test_layer_contract(tmp_path):
    run_layer_test(
        GroupedConv2D(32, 3, groups=4, strides=2, padding="same"),
        random_images((2, 8, 8, 16)),
        tmp_path,
        expected_shape=(2, 4, 4, 32),
    )


def test_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = GroupedConv2D(32, 3, groups=4, padding="same")
    x = random_images((1, 8, 8, 16))
    y = layer(x)
    assert y.dtype == "bfloat16"
    assert layer.kernel.dtype == "float32"
    ref = split_concat_reference(
        tf.constant(x), layer.kernel.value, 4, 1, "same", 1
    )
    np.testing.assert_allclose(np.asarray(y, "float32"), ref, atol=0.1, rtol=0.05)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(filters=30, kernel_size=3, groups=4), r"`groups` must divide `filters`.*groups=4.*filters=30"),
        (dict(filters=32, kernel_size=3, groups=0), r"`groups`.*positive integer.*groups=0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GroupedConv2D(**kwargs)


def test_groups_must_divide_input_channels():
    with pytest.raises(ValueError, match=r"groups=4 for an input with 6 channels"):
        GroupedConv2D(8, 3, groups=4)(np.zeros((1, 4, 4, 6), "float32"))


def test_eager_calls_of_layers_of_several_shapes_with_dilation():
    """Eager calls of layers with different kernels, then dilated ones (all share one
    eager `tf.function`, whose later traces relaxed the shapes it had seen,
    and a split dilated convolution then lost its static kernel shape)
    equal the definition, each."""
    for channels, filters, groups, dilation in ((8, 16, 4, 1), (24, 24, 4, 1), (8, 16, 4, 2), (24, 24, 4, 2),
                                                (12, 6, 3, 2)):
        layer = GroupedConv2D(filters, 3, groups=groups, padding="same", dilation_rate=dilation, use_bias=False)
        for size in (9, 7):
            x = tf.constant(random_images((2, size, size, channels), seed=size))
            ours = layer(x)
            np.testing.assert_allclose(ours, split_concat_reference(x, layer.kernel, groups, 1, "same", dilation),
                                       atol=1e-5)


_BFLOAT16_SCRIPT = """
import os, sys
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"  # as the keras-resnets commands ask
import numpy as np, keras, tensorflow as tf
from keras_resnets.layers import GroupedConv2D
from keras_resnets.layers.grouped_conv import native_bfloat16_gradient

rng = np.random.default_rng(0)
x = tf.constant(rng.standard_normal((2, 8, 8, 16)), tf.float32)
upstream = tf.constant(rng.standard_normal((2, 4, 4, 32)), tf.float32)
keras.config.set_dtype_policy("mixed_bfloat16")
layer = GroupedConv2D(32, 3, groups=4, strides=2, padding="same", use_bias=False)
layer.build(x.shape)

@tf.function
def gradients(x):
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = tf.reduce_sum(tf.cast(layer(x), tf.float32) * upstream)
        xs = tf.split(x, 4, axis=-1)
        ks = tf.split(layer.kernel.value, 4, axis=-1)
        ref = tf.concat([tf.nn.conv2d(a, k, 2, "SAME") for a, k in zip(xs, ks)], axis=-1)
        ref = tf.reduce_sum(ref * upstream)
    return tape.gradient(ours, [x, layer.kernel.value]), tape.gradient(ref, [x, layer.kernel.value])

(gx, gk), (rx, rk) = gradients(x)
for a, b in ((gx, rx), (gk, rk)):
    a, b = np.asarray(a, "float32"), np.asarray(b, "float32")
    # bfloat16's 8 bits: a relative error of order 2**-8 per product
    assert np.abs(a - b).max() < 0.05 * np.abs(b).max(), (np.abs(a - b).max(), np.abs(b).max())
print("native bfloat16 gradient:", native_bfloat16_gradient())
"""


def test_bfloat16_training_with_onednn_asked_for():
    """In a process that asked for oneDNN (as the keras-resnets commands do),
    a bfloat16 grouped convolution trains with the float32 definition's
    gradients, whether oneDNN has bfloat16 kernels on this CPU (AVX-512, AMX:
    native) or not (an AVX2 CPU: TensorFlow's other kernels, which have no
    grouped gradient, and the layer splits the groups; before, ResNeXt-50
    failed there with "filter_size does not have enough elements")."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _BFLOAT16_SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "native bfloat16 gradient:" in out.stdout
