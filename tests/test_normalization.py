import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_resnets
from keras_resnets.layers import BatchNormalization

from helpers import run_layer_test

SHAPE = (8, 6, 5, 16)


def pair(shape=SHAPE, seed=0, **kwargs):
    """Stock Keras BN and ours, built, with the same non-trivial weights."""
    rng = np.random.default_rng(seed)
    kwargs = {"momentum": 0.9, "epsilon": 1e-5, **kwargs}
    stock, fused = keras.layers.BatchNormalization(**kwargs), BatchNormalization(**kwargs)
    stock.build(shape)
    fused.build(shape)
    channels = shape[kwargs.get("axis", -1)]
    values = {
        "gamma": rng.uniform(0.5, 1.5, channels),
        "beta": rng.normal(0, 1, channels),
        "moving_mean": rng.normal(0, 1, channels),
        "moving_variance": rng.uniform(0.5, 2.0, channels),
    }
    weights = [values[w.name].astype("float32") for w in stock.weights]
    stock.set_weights(weights)
    fused.set_weights(weights)
    return stock, fused


def forward_backward(layer, x, dy, training):
    """Outputs and the gradients of <outputs, dy> wrt x, gamma, beta."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, "float32") * dy)
    return [y, *tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])]


def op_types(layer, x, training):
    fn = tf.function(lambda t: layer(t, training=training))
    return {op.type for op in fn.get_concrete_function(x).graph.get_operations()}


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_training_steps_match_keras(graph):
    stock, fused = pair()
    assert "FusedBatchNormV3" in op_types(fused, tf.zeros(SHAPE), True)
    step = functools.partial(forward_backward, fused, training=True)
    if graph:
        step = tf.function(step)
    rng = np.random.default_rng(1)
    for _ in range(4):
        # Channel means far from 0: the variance is not the mean square.
        x = tf.constant(rng.normal(2.0, 3.0, SHAPE).astype("float32"))
        dy = tf.constant(rng.normal(0, 1, SHAPE).astype("float32"))
        expected = forward_backward(stock, x, dy, True)
        got = step(x=x, dy=dy)
        # Measured max abs diffs over the 4 steps: output 9.5e-7, d/dx 3.6e-7,
        # d/dgamma 1.1e-5 and d/dbeta 7.6e-6 on sums of 240 terms, of size
        # 27 and 41 (another summation order: 4e-7 relative); moving mean
        # 1.2e-7, moving variance 7.2e-7.
        for e, g in zip(expected[:2], got[:2]):
            np.testing.assert_allclose(g, e, atol=1e-5)
        for e, g in zip(expected[2:], got[2:]):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5 * np.abs(e).max())
        np.testing.assert_allclose(fused.moving_mean.numpy(), stock.moving_mean.numpy(), atol=1e-5)
        np.testing.assert_allclose(fused.moving_variance.numpy(), stock.moving_variance.numpy(), atol=1e-5)
    # The moving statistics moved: the comparison is not of initial values.
    assert np.abs(fused.moving_variance.numpy() - pair()[1].moving_variance.numpy()).min() > 0.1


def test_inference_and_frozen_match_keras():
    stock, fused = pair()
    x = tf.constant(np.random.default_rng(2).normal(2.0, 3.0, SHAPE).astype("float32"))
    dy = tf.ones(SHAPE)
    assert "FusedBatchNormV3" in op_types(fused, x, False)
    # Measured max abs diffs: output 1.9e-6, d/dx 1.2e-7 (the same affine
    # map, rounded in another order); d/dgamma 1.2e-4 on sums of size up to
    # 716 (2e-7 relative), d/dbeta 0.
    expected = forward_backward(stock, x, dy, False)
    got = forward_backward(fused, x, dy, False)
    for e, g in zip(expected[:2], got[:2]):
        np.testing.assert_allclose(g, e, atol=1e-5)
    for e, g in zip(expected[2:], got[2:]):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5 * np.abs(e).max())
    # Frozen (the "finetune" recipe): training=True normalizes with the
    # moving statistics and leaves them alone.
    before = [w.numpy() for w in fused.weights]
    stock.trainable = fused.trainable = False
    np.testing.assert_allclose(fused(x, training=True), stock(x, training=False), atol=1e-5)
    for b, w in zip(before, fused.weights):
        np.testing.assert_array_equal(w.numpy(), b)


def test_momentum_zero_takes_the_batch_statistics():
    # PreciseBatchNorm (keras_resnets.tuning) relies on this.
    _, fused = pair(momentum=0.0)
    x = tf.constant(np.random.default_rng(3).normal(2.0, 3.0, SHAPE).astype("float32"))
    fused(x, training=True)
    mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
    np.testing.assert_allclose(fused.moving_mean.numpy(), mean, atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance.numpy(), variance, rtol=1e-6)


def test_mixed_bfloat16_within_bfloat16_rounding():
    keras.config.set_dtype_policy("mixed_bfloat16")
    stock, fused = pair()
    rng = np.random.default_rng(4)
    x = tf.cast(rng.normal(2.0, 3.0, SHAPE), "bfloat16")
    dy = tf.constant(rng.normal(0, 1, SHAPE).astype("float32"))
    expected = forward_backward(stock, x, dy, True)
    got = forward_backward(fused, x, dy, True)
    assert got[0].dtype == tf.bfloat16 and got[1].dtype == tf.bfloat16
    # bfloat16 keeps 8 significant bits (relative rounding 2^-9): outputs
    # and d/dx may differ by one rounding (measured: equal); d/dgamma 3.8e-6
    # on sums of size 32, moving variance 2.4e-7.
    for e, g in zip(expected[:2], got[:2]):
        e, g = np.asarray(e, "float32"), np.asarray(g, "float32")
        np.testing.assert_allclose(g, e, rtol=2**-7, atol=2**-7 * np.abs(e).max())
    for e, g in zip(expected[2:], got[2:]):
        np.testing.assert_allclose(g, e, rtol=1e-3, atol=1e-3 * np.abs(e).max())
    # Statistics in float32 of the same bfloat16 inputs.
    np.testing.assert_allclose(fused.moving_mean.numpy(), stock.moving_mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), stock.moving_variance.numpy(), atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(fused(x, training=False), "float32"),
        np.asarray(stock(x, training=False), "float32"),
        rtol=2**-7, atol=2**-7 * 4,
    )


@pytest.mark.parametrize(
    "shape, kwargs",
    [((8, 16), {}), ((4, 16, 5, 6), {"axis": 1}), (SHAPE, {"center": False}), (SHAPE, {"scale": False})],
    ids=["2d", "axis1", "no_center", "no_scale"],
)
def test_other_cases_are_keras(shape, kwargs):
    stock, fused = pair(shape, **kwargs)
    x = tf.constant(np.random.default_rng(5).normal(2.0, 3.0, shape).astype("float32"))
    assert "FusedBatchNormV3" not in op_types(fused, x, True)
    for training in (True, False):
        np.testing.assert_array_equal(fused(x, training=training), stock(x, training=training))
    np.testing.assert_array_equal(fused.moving_variance.numpy(), stock.moving_variance.numpy())


def test_replaced_moments_take_keras_path():
    # What keras_resnets.training.distribute.set_synchronized_batchnorm does.
    _, fused = pair()
    calls = []

    def shifted_moments(layer, inputs, mask=None):
        calls.append(layer.name)
        mean, variance = type(layer)._moments(layer, inputs, mask)
        return mean + 1.0, variance

    x = tf.constant(np.random.default_rng(6).normal(0, 1, SHAPE).astype("float32"))
    plain = fused(x, training=True)
    fused._moments = functools.partial(shifted_moments, fused)
    shifted = fused(x, training=True)
    assert calls == [fused.name]
    # Normalized with a mean 1 higher: outputs 1 / std lower, times gamma.
    np.testing.assert_allclose(
        plain - shifted, np.broadcast_to(fused.gamma.numpy(), SHAPE) / np.sqrt(np.var(x, axis=(0, 1, 2)) + 1e-5), rtol=1e-4
    )


def test_serialization(tmp_path):
    layer = BatchNormalization(momentum=0.8, epsilon=1e-4, name="bn")
    x = np.random.default_rng(7).normal(0, 1, SHAPE).astype("float32")
    run_layer_test(layer, x, tmp_path, expected_shape=SHAPE)
    assert layer.get_config()["momentum"] == 0.8


def test_models_use_it():
    model = keras_resnets.get_model("resnet20", input_shape=(16, 16, 3), classes=10)
    norms = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
    assert norms and all(type(l) is BatchNormalization for l in norms)


TWO_REPLICAS = """
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from keras_resnets.layers import BatchNormalization

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
result = {}
for case in ("float32", "float64", "synchronized"):
    dtype = "float64" if case == "float64" else "float32"
    # Each replica's part of the batch from another distribution.
    parts = [rng.normal(0.0, 1.0, (4, 3, 3, 8)), rng.normal(2.0, 3.0, (4, 3, 3, 8))]
    with strategy.scope():
        layer = BatchNormalization(momentum=0.9, dtype=dtype, synchronized=case == "synchronized")
        layer.build((None, 3, 3, 8))
    batch = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant(parts[context.replica_id_in_sync_group], dtype))
    strategy.run(tf.function(lambda x: layer(x, training=True)), args=(batch,))
    result[case] = {
        "mean": [np.asarray(v, "float64").tolist() for v in strategy.experimental_local_results(layer.moving_mean.value)],
        "variance": [np.asarray(v, "float64").tolist()
                     for v in strategy.experimental_local_results(layer.moving_variance.value)],
        "parts": [p.tolist() for p in parts],
    }
# Synchronized as `train` does, then called outside `strategy.run` (in the
# strategy's scope, as a callback is): the moments of the batch it is given.
from keras_resnets.training.distribute import set_synchronized_batchnorm
whole = np.concatenate(parts)
with strategy.scope():
    layer = BatchNormalization(momentum=0.9)
    model = keras.Sequential([keras.Input((3, 3, 8)), layer])
    set_synchronized_batchnorm(model)
    model(tf.constant(whole, "float32"), training=True)
result["cross-replica"] = {"mean": [np.asarray(v, "float64").tolist()
                                    for v in strategy.experimental_local_results(layer.moving_mean.value)],
                           "variance": [np.asarray(v, "float64").tolist()
                                        for v in strategy.experimental_local_results(layer.moving_variance.value)],
                           "parts": [whole.tolist()]}
print(json.dumps(result))
"""


def test_moving_statistics_are_averaged_across_replicas():
    """Two replicas (MirroredStrategy on two logical CPUs), each training on
    its own part of the batch: after one step both hold the moving mean of
    the whole batch and the mean of the two parts' variances, on the fused
    path (float32) and Keras's (float64); Keras 3's layer would leave each
    replica the statistics of its own part. With Keras's `synchronized=True`
    both follow the whole batch's moments (no averaging needed). A layer
    synchronized as `train` does it, called in the strategy's scope outside
    `strategy.run` (as a callback calls a model), takes the moments of the
    batch it is given."""
    import json
    import subprocess
    import sys

    from helpers import REPO, subprocess_env

    out = subprocess.run([sys.executable, "-c", TWO_REPLICAS], cwd=REPO, env=subprocess_env(),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for case, tol in (("float32", 1e-6), ("float64", 1e-12), ("synchronized", 1e-5), ("cross-replica", 1e-5)):
        parts = [np.asarray(p) for p in result[case]["parts"]]
        whole = np.concatenate(parts).reshape(-1, 8)
        if case in ("synchronized", "cross-replica"):
            mean, variance = whole.mean(0), whole.var(0)
        else:
            mean = np.mean([p.reshape(-1, 8).mean(0) for p in parts], axis=0)
            variance = np.mean([p.reshape(-1, 8).var(0) for p in parts], axis=0)
        for replica in range(2):
            np.testing.assert_allclose(result[case]["mean"][replica], 0.1 * mean, atol=tol, err_msg=case)
            np.testing.assert_allclose(result[case]["variance"][replica], 0.9 + 0.1 * variance, atol=tol,
                                       err_msg=case)
