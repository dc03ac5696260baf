"""The shared test harness: every layer and model goes through these.

It runs on every Keras backend (no TensorFlow import): the tests marked
`backends` use it under JAX and PyTorch too (see conftest.py).
"""

import copy
import importlib.util
import os

import keras
import numpy as np


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_env(**extra):
    """The environment of a test's child Python process that imports this
    repository's package (not the installed one): quiet TensorFlow, no GPU."""
    return dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", **extra)


# The parity tests against torchvision and timm need torch, too large for CI.
PARITY_MODULE = "test_torchvision_parity.py"
PARITY_COMMAND = 'pip install ".[torch]" && python -m pytest tests/test_torchvision_parity.py'


def torch_installed():
    """Whether torch and torchvision are installed (found, not imported)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "torchvision"))


def to_numpy(x):
    """A backend tensor (or a NumPy array) as a NumPy array: a PyTorch tensor
    that requires a gradient refuses `np.asarray`."""
    return np.asarray(keras.ops.convert_to_numpy(x))


def outputs_and_gradients(model, inputs, training=True):
    """`(outputs, gradients)`: the outputs of `model(inputs)` and the
    gradients of mean(outputs^2) with respect to `model.trainable_weights`,
    on whichever backend Keras runs: TensorFlow's `GradientTape`,
    `jax.value_and_grad` over `stateless_call`, PyTorch's autograd. A
    weight that does not reach the loss gets None, except on JAX, whose
    gradients are zeros there."""
    backend = keras.backend.backend()
    weights = model.trainable_weights
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            outputs = model(inputs, training=training)
            loss = tf.reduce_mean(tf.square(tf.cast(outputs, "float32")))
        return outputs, tape.gradient(loss, weights)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        # (the variables: with the random generators' seeds, which are not weights)
        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss_fn(trainable):
            outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=training)
            return jnp.mean(jnp.square(outputs.astype("float32"))), outputs

        trainable = model.trainable_variables
        assert [v.path for v in trainable] == [w.path for w in weights]
        # (compiled whole, as Keras's JAX trainer runs its step: ResNet-20's
        # gradients 2.5 s instead of 7.5 op by op)
        (_, outputs), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))([v.value for v in trainable])
        return outputs, grads
    if backend == "torch":
        import torch

        outputs = model(inputs, training=training)
        loss = torch.mean(torch.square(outputs.float()))
        return outputs, torch.autograd.grad(loss, [v.value for v in weights], allow_unused=True)
    raise ValueError(f"no gradient helper for the Keras backend {backend!r}")


def random_images(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype("float32")


def randomize_batchnorm(model_or_layer, seed=0):
    """Non-trivial BN statistics, so that inference-mode checks mean something."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model_or_layer):
        if isinstance(layer, keras.layers.BatchNormalization) and layer.built:
            g, b, m, v = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, g.shape),
                    rng.normal(0, 0.1, b.shape),
                    rng.normal(0, 0.1, m.shape),
                    rng.uniform(0.5, 1.5, v.shape),
                ]
            )


def _all_layers(obj):
    yield obj
    for layer in obj._flatten_layers(include_self=False, recursive=True):
        yield layer


def assert_gradients(model, inputs, training=True):
    """Forward pass without NaN; every trainable weight gets a finite gradient
    (on JAX: a finite gradient that is not zero everywhere, JAX's sign of a
    weight that does not reach the loss)."""
    outputs, grads = outputs_and_gradients(model, inputs, training)
    grads = [None if g is None else to_numpy(g).astype("float32") for g in grads]
    assert np.all(np.isfinite(to_numpy(outputs).astype("float32"))), "NaN or inf in the outputs"
    unused = keras.backend.backend() == "jax"
    missing = [w.path for w, g in zip(model.trainable_weights, grads) if g is None or (unused and not g.any())]
    assert not missing, f"{len(missing)} trainable weights without a gradient: {missing[:10]}"
    bad = [w.path for w, g in zip(model.trainable_weights, grads) if not np.all(np.isfinite(g))]
    assert not bad, f"{len(bad)} non-finite gradients: {bad[-10:]}"
    return outputs


def assert_config_round_trip(layer, inputs):
    """get_config -> from_config gives the same config and, with the same
    weights, the same outputs."""
    config = layer.get_config()
    # from_config may consume the dict it is given (Functional does).
    clone = layer.__class__.from_config(copy.deepcopy(config))
    if not isinstance(layer, keras.Model):
        clone(inputs)  # builds it
    assert clone.get_config() == config
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        to_numpy(clone(inputs, training=False)),
        to_numpy(layer(inputs, training=False)),
        atol=1e-6,
    )
    return clone


def assert_saving_round_trip(model_or_layer, inputs, tmp_path):
    """`.keras` save and load: the reloaded model gives equal outputs."""
    if isinstance(model_or_layer, keras.Model):
        model = model_or_layer
    else:
        x = keras.Input(shape=inputs.shape[1:])
        model = keras.Model(x, model_or_layer(x))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == [
        type(layer).__name__ for layer in model.layers
    ]
    np.testing.assert_allclose(
        to_numpy(loaded(inputs, training=False)),
        to_numpy(model(inputs, training=False)),
        atol=1e-6,
    )
    return loaded


def shapes_only():
    """A context in which models are built without initializing their
    variables (`keras.StatelessScope`: Keras defers each initializer): for
    tests that count parameters and never call the model. Building
    ResNet-1202 took 6.9 s of CPU in it against 12.8 s (an AMX Xeon)."""
    return keras.StatelessScope()


def trainable_count(model_or_layer):
    return int(sum(np.prod(w.shape) for w in model_or_layer.trainable_weights))


def run_layer_test(layer, inputs, tmp_path, expected_shape=None):
    """Build, forward (shape, finite), gradients, config and `.keras` round trips."""
    outputs = layer(inputs)
    if expected_shape is not None:
        assert tuple(outputs.shape) == tuple(expected_shape)
    assert tuple(layer.compute_output_shape(inputs.shape)) == tuple(outputs.shape)
    x = keras.Input(shape=inputs.shape[1:])
    assert_gradients(keras.Model(x, layer(x)), inputs)
    assert_config_round_trip(layer, inputs)
    assert_saving_round_trip(layer, inputs, tmp_path)
    return outputs


def reap(*procs):
    """Kills whichever of the subprocesses `procs` still run, and waits for all."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def sigkill(proc, timeout=30):
    """Kills `proc` at once (SIGKILL: no clean-up of its own) and waits for it."""
    proc.kill()
    proc.wait(timeout=timeout)


def cifar_resnet_figures(blocks_per_stage, classes=10, image_size=32):
    """Trainable parameters and MACs per image of He et al. 2015's CIFAR
    ResNet-(6n+2) (section 4.2), counted by hand from the paper's
    description: a 3x3 convolution to 16 channels, then three stages of n
    basic blocks (two 3x3 convolutions, each followed by batch norm's scale
    and shift) with 16, 32 and 64 filters on maps of 1, 1/2 and 1/4 the image
    side, option A shortcuts (no weights), global average pooling and a
    dense classifier. ResNet-20 (n = 3): 269,722 parameters (the paper:
    0.27M) and 40,551,040 MACs at 32 px."""
    params = macs = 0
    channels = 3
    layers = [(16, image_size)] + [
        (width, image_size // 2**stage)
        for stage, width in enumerate((16, 32, 64))
        for _ in range(2 * blocks_per_stage)
    ]
    for width, side in layers:
        params += 3 * 3 * channels * width + 2 * width
        macs += side * side * 3 * 3 * channels * width
        channels = width
    params += (channels + 1) * classes
    macs += channels * classes
    return params, macs


def write_digit_folder(root, digits=range(10), size=32, limit=None):
    """scikit-learn's digits as an image folder of PNGs, `root/<digit>/*.png`
    (the generator of `examples/digits_folder.py`); returns the file count."""
    import os
    import runpy

    examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
    return runpy.run_path(os.path.join(examples, "digits_folder.py"))["write_digit_folder"](
        root, digits, size, limit)


VARIANT_FAMILIES = ("resnet_d", "se_resnet", "eca_resnet", "resnet_rs")


def representative_models():
    """One registered model per architecture, the shallowest: models that
    differ only in their numbers (depths, widths, group width) run the same
    code, so the model-by-model tests build one of each kind (family, block,
    stem, grouped or not, pre-activation, shortcut, layout). The numbers of
    every model are checked against torchvision and the papers in
    tests/test_fidelity.py."""
    import keras_resnets

    chosen = {}
    for name in keras_resnets.list_models():
        spec = keras_resnets.get_spec(name)
        kind = (spec.family, spec.block, spec.stem, spec.groups > 1, spec.preactivation, spec.shortcut,
                spec.layout)
        if spec.family in VARIANT_FAMILIES:
            # The "bag of tricks" and attention families add one piece each
            # (deep stem and average-pool shortcut, SE, ECA, ResNet-RS's
            # stem) to code the families above run: one model a family.
            # (Their blocks on grouped convolutions are checked against
            # timm in test_references.py.)
            kind = (spec.family,)
        if kind not in chosen or sum(spec.depths) < sum(keras_resnets.get_spec(chosen[kind]).depths):
            chosen[kind] = name
    return sorted(chosen.values(), key=keras_resnets.list_models().index)
