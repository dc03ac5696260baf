"""The machine's own limit: matrix-multiply throughput."""

import functools
import time

import numpy as np

from keras_resnets.benchmark.timing import median_seconds


@functools.lru_cache(maxsize=None)
def _product():
    """One `tf.function` for every call: a new one per call would trace
    anew each time (and TensorFlow warns about retracing)."""
    import tensorflow as tf

    return tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b)[:1, :1], "float32")))


def matmul_peak_gflops(dtype="float32", size=4096, repeats=3, min_seconds=0.0):
    """GFLOP/s of one large `tf.matmul` (`size` x `size` operands) in `dtype`:
    the median of `repeats` products, or with `min_seconds` the best of at
    least `repeats` products and of as many more as `min_seconds` of products
    take.

    A dense matrix product is the best case of every convolution kernel, so
    a model's `2 x MACs x images/s` divided by this number says how much of
    the machine it uses.

    Args:
        dtype: "float32" or "bfloat16".
        size: int, side of the square operands.
        repeats: int, timed products (median; with `min_seconds`, at least
            this many, and the best of them).
        min_seconds: float, with a value above 0 the best over at least this
            much time. A peak is what the machine reaches undisturbed: the
            first products after a warm-up call run slower (on an AMX Xeon
            the best of the first three bfloat16 512-wide products was 50-80%
            of the best over a second), and another process can slow any one
            of them, so a small product is best sampled for a while.

    Example:

    >>> matmul_peak_gflops("float32", size=1024)  # doctest: +SKIP
    480.2
    """
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.cast(rng.standard_normal((size, size), "float32"), dtype)
    b = tf.cast(rng.standard_normal((size, size), "float32"), dtype)
    product = _product()
    run = lambda: product(a, b).numpy()  # noqa: E731
    seconds, times = median_seconds(run, warmup=1, repeats=repeats)
    if min_seconds > 0:
        while sum(times) < min_seconds:
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        seconds = min(times)
    return 2.0 * size**3 / seconds / 1e9
