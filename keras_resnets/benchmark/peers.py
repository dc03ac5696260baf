"""The alternatives a user would pick instead of keras_resnets, built on the
same inputs: keras.applications' ResNets, a ResNeXt-50 from stock
`keras.layers.Conv2D(groups=32)` layers, and torchvision (in a subprocess)."""

import json
import os
import subprocess
import sys


def stock_resnext50(input_shape=(224, 224, 3), classes=1000, groups=32, width_per_group=4,
                    depths=(3, 4, 6, 3)):
    """ResNeXt-50 32x4d as a user writes it with `keras.layers.Conv2D(groups=...)`.

    torchvision's layout (stride on the 3x3, symmetric padding, no conv
    biases): the same parameters as `keras_resnets.ResNeXt50`, but each
    grouped convolution runs Keras's own op, which TensorFlow compiles with XLA.

    Example:

    >>> stock_resnext50((128, 128, 3)).count_params()  # doctest: +SKIP
    25028904
    """
    import keras
    from keras import layers

    def conv_bn(x, filters, kernel, strides=1, groups=1, relu=True):
        if strides > 1 and kernel > 1:
            x = layers.ZeroPadding2D(kernel // 2)(x)
            padding = "valid"
        else:
            padding = "same"
        x = layers.Conv2D(filters, kernel, strides, padding=padding, groups=groups, use_bias=False)(x)
        x = layers.BatchNormalization(epsilon=1e-5)(x)
        return layers.ReLU()(x) if relu else x

    inputs = keras.Input(input_shape)
    x = conv_bn(inputs, 64, 7, strides=2)
    x = layers.ZeroPadding2D(1)(x)
    x = layers.MaxPooling2D(3, 2)(x)
    for stage, depth in enumerate(depths):
        width, out = groups * width_per_group * 2**stage, 256 * 2**stage
        for i in range(depth):
            strides = 2 if stage > 0 and i == 0 else 1
            y = conv_bn(x, width, 1)
            y = conv_bn(y, width, 3, strides=strides, groups=groups)
            y = conv_bn(y, out, 1, relu=False)
            shortcut = conv_bn(x, out, 1, strides=strides, relu=False) if i == 0 else x
            x = layers.ReLU()(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="stock_resnext50")


def _keras_application(name):
    def build(input_shape, classes):
        import keras

        return getattr(keras.applications, name)(weights=None, input_shape=input_shape, classes=classes)

    return build


# name on the command line -> (label in the tables, builder or torchvision name)
KERAS_PEERS = {
    "keras-resnet50": ("keras.applications ResNet50", _keras_application("ResNet50")),
    "keras-resnet50v2": ("keras.applications ResNet50V2", _keras_application("ResNet50V2")),
    "stock-resnext50": ("Conv2D(groups=32) ResNeXt-50", stock_resnext50),
}
TORCH_PEERS = {
    "torch-resnet50": ("torchvision resnet50", "resnet50"),
    "torch-resnext50": ("torchvision resnext50_32x4d", "resnext50_32x4d"),
    # timm's own model (torchvision has no SE-ResNeXt); its name is ours too.
    "timm-seresnext50": ("timm seresnext50_32x4d", "seresnext50_32x4d"),
}


def peer_library(label):
    """"torchvision" or "timm": the library of a `TORCH_PEERS` label."""
    return "timm" if label.startswith("timm ") else "torchvision"
PEERS = (*KERAS_PEERS, *TORCH_PEERS)
# How each torchvision peer runs (torch_peer.py): as written (NCHW, eager),
# channels_last (with bf16 autocast under mixed_bfloat16: PyTorch's usual
# fast CPU configuration), and channels_last + torch.compile (opt-in: the
# compilation takes minutes per model and precision on a small CPU).
TORCH_CONFIGS = ("eager", "channels_last", "compile")
DEFAULT_TORCH_CONFIGS = ("eager", "channels_last")


def torch_available(library="torchvision"):
    """Whether torch and `library` (torchvision or timm) are installed
    (checked in a subprocess: importing torch next to TensorFlow can crash
    through triton)."""
    probe = f"import importlib.util as u; print(all(u.find_spec(m) for m in ('torch', {library!r})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return out.stdout.strip() == "True"


def measure_torchvision(name, precisions, image_size, batch_size, warmup, repeats, threads,
                        classes=1000, gpu=False, configs=("eager",), library="torchvision"):
    """Runs `torch_peer.py` in a subprocess on `threads` CPU threads, or with
    `gpu` on torch's first CUDA device where torch sees one; returns one
    result dict per configuration (`TORCH_CONFIGS`) and precision (the keys
    of `measure_keras_model`, `config`, and `device`: "cpu" or "gpu", as the
    Keras rows)."""
    script = os.path.join(os.path.dirname(__file__), "torch_peer.py")
    args = dict(name=name, precisions=list(precisions), image_size=image_size,
                batch_size=batch_size, warmup=warmup, repeats=repeats, threads=threads,
                classes=classes, gpu=gpu, configs=list(configs), library=library)
    out = subprocess.run([sys.executable, script, json.dumps(args)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{library} {name} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
