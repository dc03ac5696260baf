"""Where a training step's time goes: every convolution of a model timed
alone, forward and backward, by shape."""

import collections
import time

import numpy as np


def conv_shapes(model, image_size):
    """The distinct convolutions of `model` at `image_size`: a dict mapping
    (kind, input shape, filters, kernel, strides, groups) to the layers."""
    import keras

    convs = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
             if isinstance(layer, keras.layers.Conv2D)]
    seen = {}
    originals = {}
    # `convolution_op`: every path of a convolution goes through it, also a
    # batch norm folded into it (`keras_resnets.layers.common.conv_norm`).
    for layer in convs:
        originals[id(layer)] = layer.convolution_op

        def record(x, *args, _layer=layer, **kwargs):
            seen.setdefault(id(_layer), tuple(x.shape[1:]))
            return originals[id(_layer)](x, *args, **kwargs)

        layer.convolution_op = record
    try:
        model(np.zeros((1, image_size, image_size, 3), "float32"), training=False)
    finally:
        for layer in convs:
            del layer.convolution_op  # the class's method again
    shapes = collections.defaultdict(list)
    for layer in convs:
        k = layer.kernel_size
        kind = f"{k[0]}x{k[1]}" + (f" groups={layer.groups}" if layer.groups > 1 else "")
        key = (kind, seen[id(layer)], layer.filters, k, layer.strides, layer.groups)
        shapes[key].append(layer)
    return dict(shapes)


def time_conv_layers(model, image_size=128, batch_size=16, repeats=5):
    """Times forward + backward (input and kernel gradients) of each distinct
    convolution of `model` alone, in process CPU seconds (robust when other
    processes share the cores).

    Returns:
        list of dicts: kind, input shape, filters, kernel, strides, groups,
        count (layers of that shape), `cpu_ms` (one call) and
        `gflop_per_cpu_s` (3 x 2 x MACs per CPU second).

    Example:

    >>> rows = time_conv_layers(keras_resnets.ResNeXt50(input_shape=(128, 128, 3)))  # doctest: +SKIP
    """
    import tensorflow as tf

    rows = []
    for (kind, shape, filters, kernel, strides, groups), layers in conv_shapes(model, image_size).items():
        layer = layers[0]
        x = tf.random.normal((batch_size, *shape))

        @tf.function
        def step(x, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
                loss = tf.reduce_sum(tf.cast(y, "float32"))
            gx, gk = tape.gradient(loss, [x, layer.kernel])
            return tf.reduce_sum(tf.cast(gx, "float32")) + tf.reduce_sum(gk)

        step(x).numpy()
        times = []
        for _ in range(repeats):
            start = time.process_time()
            step(x).numpy()
            times.append(time.process_time() - start)
        seconds = float(np.median(times))
        out = layer.compute_output_shape((batch_size, *shape))
        macs = int(np.prod(out)) * kernel[0] * kernel[1] * shape[-1] // groups
        rows.append(dict(kind=kind, input_shape=shape, filters=filters, kernel=kernel,
                         strides=strides, groups=groups, count=len(layers),
                         cpu_ms=1e3 * seconds, gflop_per_cpu_s=6 * macs / seconds / 1e9))
    return rows


def format_conv_table(name, rows):
    """`time_conv_layers` rows as text, with the total per kind of convolution."""
    from keras_resnets.benchmark.run import _columns

    table = [[r["kind"], "x".join(map(str, r["input_shape"])), str(r["filters"]),
              str(r["strides"][0]), str(r["count"]), f"{r['cpu_ms']:.1f}",
              f"{r['cpu_ms'] * r['count']:.1f}", f"{r['gflop_per_cpu_s']:.0f}"] for r in rows]
    totals = collections.Counter()
    for r in rows:
        totals[r["kind"]] += r["cpu_ms"] * r["count"]
    lines = [f"{name}: convolutions alone, forward + backward, process CPU ms",
             *_columns(["kind", "input", "filters", "stride", "layers", "CPU ms", "x layers",
                        "GFLOP/CPU-s"], table)]
    lines.append("total: " + ", ".join(f"{k} {v:.0f} ms" for k, v in totals.items())
                 + f"; all {sum(totals.values()):.0f} ms")
    return "\n".join(lines)
