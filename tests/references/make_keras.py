"""Records keras.applications' ResNets for tests/test_references.py.

    python tests/references/make_keras.py    # where keras and TensorFlow are installed (no torch)

The keras.applications counterpart of `make.py` (which runs torch only: the
two do not share a process on these machines). It builds keras.applications'
own `ResNet` (the function behind `ResNet50` and `ResNet50V2`: its residual
blocks, stacks, stem and head) at narrow widths: the stacks' filters scaled
by `scale` through their `filters` argument, and the stem's 64 filters by
the same scale (its one fixed width, narrowed through the `Conv2D` it names
"conv1_conv"). Weights random, every bias and batch-norm tensor random and
distinct, and writes:

- `NAME.h5`: the weights as keras.applications' downloads hold them
  (`save_weights`' HDF5 groups at the root, "layer_names" and
  "weight_names" attributes);
- `NAME.npz`: random NCHW images at the two sizes of `make.py` and the
  model's logits on them;
- its entry in `manifest.json` (the other entries are kept).
"""

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = (32, 35)
CLASSES = 10


@contextlib.contextmanager
def narrow_stem(resnet_module, scale):
    """keras.applications' stem `Conv2D(64, 7, name="conv1_conv")` with
    `int(64 * scale)` filters; every other layer as it is."""
    import keras

    class Conv2D(keras.layers.Conv2D):
        def __init__(self, filters, *args, name=None, **kwargs):
            if name == "conv1_conv":
                filters = int(filters * scale)
            super().__init__(filters, *args, name=name, **kwargs)

    original = resnet_module.layers
    resnet_module.layers = types.SimpleNamespace(**{**vars(original), "Conv2D": Conv2D})
    try:
        yield
    finally:
        resnet_module.layers = original


def build(version, scale, size):
    """keras.applications' ResNet50 (v1) or ResNet50V2 stacks, narrowed."""
    from keras.src.applications import resnet

    f = [int(c * scale) for c in (64, 128, 256, 512)]
    if version == 1:
        def stack_fn(x):  # keras.applications.ResNet50's, with `f` for its widths
            x = resnet.stack_residual_blocks_v1(x, f[0], 3, stride1=1, name="conv2")
            x = resnet.stack_residual_blocks_v1(x, f[1], 4, name="conv3")
            x = resnet.stack_residual_blocks_v1(x, f[2], 6, name="conv4")
            return resnet.stack_residual_blocks_v1(x, f[3], 3, name="conv5")
    else:
        def stack_fn(x):  # keras.applications.ResNet50V2's
            x = resnet.stack_residual_blocks_v2(x, f[0], 3, name="conv2")
            x = resnet.stack_residual_blocks_v2(x, f[1], 4, name="conv3")
            x = resnet.stack_residual_blocks_v2(x, f[2], 6, name="conv4")
            return resnet.stack_residual_blocks_v2(x, f[3], 3, stride1=1, name="conv5")

    with narrow_stem(resnet, scale):
        return resnet.ResNet(stack_fn, preact=version == 2, use_bias=True, weights=None,
                             input_shape=(size, size, 3), classes=CLASSES, classifier_activation=None,
                             name=f"resnet50{'v2' if version == 2 else ''}")


def randomize(model, seed):
    """Random biases and batch-norm state (the kernels keep their seeded
    initializers); each residual branch's last batch norm small, as in
    trained networks, so the outputs stay of order one."""
    import keras

    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = (w.numpy() for w in (layer.gamma, layer.beta, layer.moving_mean,
                                                          layer.moving_variance))
            last = layer.name.endswith("_3_bn")
            layer.gamma.assign(rng.uniform(0.1, 0.4, gamma.shape) if last else rng.uniform(0.5, 1.5, gamma.shape))
            layer.beta.assign(0.2 * rng.standard_normal(beta.shape))
            layer.moving_mean.assign(0.2 * rng.standard_normal(mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, var.shape))
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.bias is not None:
            layer.bias.assign(0.1 * rng.standard_normal(layer.bias.shape))
            if layer.name.endswith("_3_conv") and isinstance(layer, keras.layers.Conv2D):
                layer.kernel.assign(layer.kernel.numpy() * 0.3)
    return model


def save_like_the_downloads(model, path):
    """keras.applications' weight files: `save_weights`' HDF5 groups
    ("layer_names", each layer's "weight_names") at the file's root."""
    import h5py

    with tempfile.TemporaryDirectory() as tmp:
        full = os.path.join(tmp, "model.h5")
        model.save(full)  # Keras' HDF5 model file: the same groups under "model_weights"
        with h5py.File(full, "r") as f, h5py.File(path, "w") as g:
            for key, value in f["model_weights"].attrs.items():
                g.attrs[key] = value
            for name in f["model_weights"]:
                f.copy(f["model_weights"][name], g, name=name)


def images(seed):
    rng = np.random.default_rng(seed)
    return {size: rng.standard_normal((2, 3, size, size)).astype("float32") for size in SIZES}


def record(name, version, seed, scale):
    import keras

    # `include_top` needs a static input shape: one model a size, the same weights.
    model = randomize(build(version, scale, SIZES[0]), seed)
    path = os.path.join(HERE, f"{name}.h5")
    save_like_the_downloads(model, path)
    arrays = {}
    for size, x in images(seed).items():
        sized = build(version, scale, size)
        sized.set_weights(model.get_weights())
        arrays[f"images_{size}"] = x
        arrays[f"logits_{size}"] = np.asarray(sized(x.transpose(0, 2, 3, 1), training=False))
    np.savez_compressed(os.path.join(HERE, f"{name}.npz"), **arrays)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    source = f"keras {keras.__version__} applications ResNet50{'V2' if version == 2 else ''} x{scale}"
    return {"source": source, "scale": scale, "parameters": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            "arrays": sorted(arrays), "sha256": digest}


def main():
    import keras
    import tensorflow as tf

    with open(os.path.join(HERE, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["sizes"] == list(SIZES) and manifest["classes"] == CLASSES
    manifest["versions"].update(keras=keras.__version__, tensorflow=tf.__version__)
    out = manifest["references"]
    out["keras_resnet50"] = record("keras_resnet50", 1, seed=8, scale=1 / 16)
    out["keras_resnet50v2"] = record("keras_resnet50v2", 2, seed=9, scale=1 / 16)
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote keras_resnet50, keras_resnet50v2 into {HERE} (python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
