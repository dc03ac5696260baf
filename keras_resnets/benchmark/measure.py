"""Throughput, latency and memory of one Keras model in one precision."""

import numpy as np

from keras_resnets.benchmark.timing import PeakRss, median_seconds, release_memory, rss_mib


def _litert_latency(model, image_size, repeats):
    """Batch-1 LiteRT latency (ms) in float32 and int8 through
    `keras_resnets.export`, or None where that module is not there yet."""
    try:
        from keras_resnets import export
    except ImportError:
        return None
    measure = getattr(export, "litert_latency_ms", None)
    if measure is None:
        return None
    return measure(model, image_size=image_size, repeats=repeats)


def measure_keras_model(build, precision="float32", image_size=128, batch_size=16,
                        warmup=1, repeats=5, classes=1000, litert=False):
    """Times one optimizer step and inference of the model `build` returns.

    The dtype policy is `precision` while the model is built and measured,
    and is restored afterwards. The step is the compiled `train_step`
    (`model.train_on_batch` on a batch already in memory: no data loading),
    SGD with momentum and cross-entropy; inference is the compiled
    `predict_step` at `batch_size` and at batch 1. Each figure is the median
    of `repeats` calls after `warmup` calls.

    Args:
        build: callable `(input_shape, classes) -> keras.Model`.
        precision: a Keras dtype policy name ("float32", "mixed_bfloat16", ...).
        image_size, batch_size, classes: the inputs.
        warmup, repeats: calls before timing, timed calls.
        litert: also time LiteRT batch-1 inference (float32 models only).

    Returns:
        dict: `macs` (per image), `train_ips`, `train_step_times`,
        `infer_ips`, `infer_b1_ms`, `train_peak_rss_mib` (resident memory
        during the training steps, sampled) and `train_rss_increase_mib`
        (that peak minus the memory before the model was built), `litert`.

    Example:

    >>> measure_keras_model(lambda s, c: keras_resnets.ResNet20(input_shape=s, classes=c),
    ...                     image_size=32, batch_size=8)  # doctest: +SKIP
    """
    import keras
    import tensorflow as tf

    from keras_resnets.utils.macs import count_macs

    previous = keras.config.dtype_policy()
    keras.backend.clear_session()
    release_memory()
    base = rss_mib()
    keras.config.set_dtype_policy(precision)
    try:
        model = build((image_size, image_size, 3), classes)
        macs = count_macs(model, (image_size, image_size, 3))
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            jit_compile=False,
        )
        rng = np.random.default_rng(0)
        x = tf.constant(rng.standard_normal((batch_size, image_size, image_size, 3), "float32"))
        y = tf.constant(rng.integers(0, classes, batch_size))
        with PeakRss() as gauge:
            train_s, train_times = median_seconds(lambda: model.train_on_batch(x, y), warmup, repeats)
        infer_s, _ = median_seconds(lambda: model.predict_on_batch(x), warmup, repeats)
        b1_s, _ = median_seconds(lambda: model.predict_on_batch(x[:1]), warmup, repeats)
        lite = _litert_latency(model, image_size, repeats) if litert else None
    finally:
        keras.config.set_dtype_policy(previous)
    result = dict(
        precision=precision, macs=macs, train_ips=batch_size / train_s,
        train_step_times=train_times, infer_ips=batch_size / infer_s, infer_b1_ms=1e3 * b1_s,
        train_peak_rss_mib=gauge.peak, train_rss_increase_mib=gauge.peak - base, litert=lite,
    )
    del model
    keras.backend.clear_session()
    return result
