"""The machine's own limit: matrix-multiply throughput."""

import functools

import numpy as np

from keras_resnets.benchmark.timing import median_seconds


@functools.lru_cache(maxsize=None)
def _product():
    """One `tf.function` for every call: a new one per call would trace
    anew each time (and TensorFlow warns about retracing)."""
    import tensorflow as tf

    return tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b)[:1, :1], "float32")))


def matmul_peak_gflops(dtype="float32", size=4096, repeats=3):
    """GFLOP/s of one large `tf.matmul` (`size` x `size` operands) in `dtype`.

    A dense matrix product is the best case of every convolution kernel, so
    a model's `2 x MACs x images/s` divided by this number says how much of
    the machine it uses.

    Args:
        dtype: "float32" or "bfloat16".
        size: int, side of the square operands.
        repeats: int, timed products (median).

    Example:

    >>> matmul_peak_gflops("float32", size=1024)  # doctest: +SKIP
    480.2
    """
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.cast(rng.standard_normal((size, size), "float32"), dtype)
    b = tf.cast(rng.standard_normal((size, size), "float32"), dtype)
    product = _product()
    seconds, _ = median_seconds(lambda: product(a, b).numpy(), warmup=1, repeats=repeats)
    return 2.0 * size**3 / seconds / 1e9
