"""A features-only model costs what the classifier's trunk costs.

    python benchmarks/features_forward.py                 # ResNet-50, 128 px, batch 16
    python benchmarks/features_forward.py --model resnext50_32x4d --output-stride 16

Times the forward pass (inference) of `include_top=False` (the trunk, one
output) and of `features_only=True` (every level as an output) for the same
architecture, interleaved in one process (ABBA order, median of the rounds),
and prints the ratio: both run the same layers, so it should be 1.0 within
the machine's noise.
"""

import argparse
import time

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--output-stride", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)

    import tensorflow as tf

    import keras_resnets

    shape = (args.image_size, args.image_size, 3)
    x = tf.constant(np.random.default_rng(0).random((args.batch_size, *shape), dtype="float32"))
    kwargs = dict(include_top=False, input_shape=shape, output_stride=args.output_stride)
    models = {
        "trunk": keras_resnets.get_model(args.model, **kwargs),
        "features_only": keras_resnets.get_model(args.model, features_only=True, **kwargs),
    }
    calls = {name: tf.function(lambda v, m=model: m(v, training=False)) for name, model in models.items()}
    for call in calls.values():
        for _ in range(3):  # trace, warm up
            call(x)
    times = {name: [] for name in calls}
    for i in range(args.rounds):
        for name in (list(calls) if i % 2 else list(calls)[::-1]):
            start = time.perf_counter()
            calls[name](x)
            times[name].append(time.perf_counter() - start)
    ms = {name: 1000 * float(np.median(t)) for name, t in times.items()}
    print(f"{args.model}, {args.image_size} px, batch {args.batch_size}, output stride "
          f"{args.output_stride or 'default'}: trunk {ms['trunk']:.1f} ms, features_only "
          f"{ms['features_only']:.1f} ms, ratio {ms['features_only'] / ms['trunk']:.3f}")


if __name__ == "__main__":
    main()
