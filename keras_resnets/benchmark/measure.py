"""Throughput, latency and memory of one Keras model in one precision."""

import os
import time

import numpy as np

from keras_resnets.benchmark.timing import PeakRss, median_seconds, release_memory, rss_mib


def _litert_latency(model, image_size, repeats):
    """Batch-1 LiteRT (XNNPACK) latency in ms of the model exported to float32
    and to int8 by `keras_resnets.export`: `{"float32_ms": ..., "int8_ms": ...}`,
    with `"<kind>_error"` in place of a latency whose export failed."""
    import tempfile

    from keras_resnets.export import tflite, verify

    # Random images calibrate the int8 ranges: the latency does not depend on them.
    images = np.random.default_rng(0).uniform(-1, 1, (8, image_size, image_size, 3)).astype("float32")
    result = {}
    with tempfile.TemporaryDirectory() as folder:
        for key, quantize in (("float32_ms", None), ("int8_ms", "int8")):
            try:
                path = tflite(model, os.path.join(folder, f"{key}.tflite"), quantize=quantize,
                              representative_data=images if quantize else None,
                              calibration_images=len(images))
                result[key] = verify(path, model, images[:1], runs=repeats,
                                     warmup=1).latency_ms_median
            except (ValueError, RuntimeError) as e:
                # One failed export must not cost the whole run's figures.
                result[key.replace("_ms", "_error")] = str(e).strip().splitlines()[0][:300]
    return result


def cpu_threads():
    """TensorFlow's intra-op thread count (its default is one per core)."""
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or len(os.sched_getaffinity(0))


class KerasCase:
    """One Keras model in one precision, ready to time.

    `prepare()` builds the model under the dtype policy `precision` (restored
    afterwards), compiles it (SGD with momentum, cross-entropy, no XLA) and
    runs the warm-up calls while sampling the resident memory. Then each
    `time_*()` call times one compiled call: `train()` one optimizer step
    (`model.train_on_batch` on a batch already in memory: no data loading),
    `infer()` the compiled `predict_step` on the batch, `infer_one()` on one
    image; each inference call timed follows an untimed one of its kind.
    With `serving=True`, `serve()` and `serve_one()` do the same through the
    model exported by `keras_resnets.export.saved_model` (frozen, in the
    model's own precision) and loaded back: the path a server runs. It is
    exported after the warm-up training steps, which leave the batch norms
    with statistics and offsets that are not zero, as a trained model's are:
    a graph optimizer drops an addition of zeros, and a convolution with no
    bias left to fuse runs slower (ResNeXt-50 in bfloat16, 128 px, batch 16:
    86 against 47 ms).

    Args:
        label: name of the row in the tables.
        build: callable `(input_shape, classes) -> keras.Model`.
        precision: a Keras dtype policy name ("float32", "mixed_bfloat16", ...).
        image_size, batch_size, classes: the inputs (random images and labels).
        source: where the model comes from, for the record.
        serving: also time the exported SavedModel.
    """

    def __init__(self, label, build, precision="float32", image_size=128, batch_size=16,
                 classes=1000, source="keras_resnets", serving=False):
        self.label, self.build, self.precision, self.source = label, build, precision, source
        self.image_size, self.batch_size, self.classes = image_size, batch_size, classes
        self.serving = serving
        self.times = {"train": [], "infer": [], "infer_one": []}
        if serving:
            self.times.update(serve=[], serve_one=[])
        self.cpu_times = []
        self.model = self.served = None

    def prepare(self, warmup=1):
        import keras
        import tensorflow as tf

        from keras_resnets.utils.macs import count_macs

        release_memory()
        base = rss_mib()
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.precision)
        try:
            shape = (self.image_size, self.image_size, 3)
            self.model = self.build(shape, self.classes)
            self.macs = count_macs(self.model, shape)
            self.model.compile(
                optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                loss="sparse_categorical_crossentropy",
                jit_compile=False,
            )
        finally:
            keras.config.set_dtype_policy(previous)
        rng = np.random.default_rng(0)
        self.x = tf.constant(rng.standard_normal((self.batch_size, *shape), "float32"))
        self.y = tf.constant(rng.integers(0, self.classes, self.batch_size))
        with PeakRss() as gauge:
            # At least one call each: the first one traces the graph.
            for _ in range(max(1, warmup)):
                self.model.train_on_batch(self.x, self.y)
        self.peak_rss, self.rss_increase = gauge.peak, gauge.peak - base
        for _ in range(max(1, warmup)):
            self.model.predict_on_batch(self.x)
            self.model.predict_on_batch(self.x[:1])
        if self.serving:
            self._load_served(rng, shape, warmup)
        return self

    def _load_served(self, rng, shape, warmup):
        import tempfile

        import tensorflow as tf

        from keras_resnets.export.serving import SIGNATURE, saved_model

        with tempfile.TemporaryDirectory() as folder:
            path = saved_model(self.model, os.path.join(folder, "served"), keep_precision=True)
            signature = tf.saved_model.load(path).signatures[SIGNATURE]
        # The SavedModel takes uint8 images (0..255), cast to the model's floats.
        self.images = tf.constant(rng.integers(0, 256, (self.batch_size, *shape)).astype("uint8"))
        self.served = lambda images: next(iter(signature(images=images).values())).numpy()
        # The first calls optimize the graph with its constants (seconds).
        for _ in range(max(1, warmup)):
            self.served(self.images)
            self.served(self.images[:1])

    def time(self, what):
        """Times one call of `what` ("train", "infer", "infer_one", and with
        `serving` "serve" and "serve_one")."""
        call = {
            "train": lambda: self.model.train_on_batch(self.x, self.y),
            "infer": lambda: self.model.predict_on_batch(self.x),
            "infer_one": lambda: self.model.predict_on_batch(self.x[:1]),
            "serve": lambda: self.served(self.images),
            "serve_one": lambda: self.served(self.images[:1]),
        }[what]
        # Inference is timed warm, after an untimed call of its own kind, as
        # the torchvision peer times it (its calls of one kind run back to
        # back): right after a training step a ResNet-50 inference call
        # measured 7% slower here (261 vs 244 ms).
        warmup = 0 if what == "train" else 1
        cpu = time.process_time()
        seconds, _ = median_seconds(call, warmup=warmup, repeats=1)
        self.times[what].append(seconds)
        if what == "train":
            self.cpu_times.append(time.process_time() - cpu)
        return seconds

    def result(self, litert=False, repeats=5):
        """The figures from the calls timed so far (medians)."""
        import statistics

        median = {k: statistics.median(v) for k, v in self.times.items()}
        lite = None
        if litert and self.precision == "float32":
            lite = _litert_latency(self.model, self.image_size, repeats)
        served = {}
        if self.serving:
            served = dict(served_ips=self.batch_size / median["serve"],
                          served_b1_ms=1e3 * median["serve_one"])
        return dict(
            precision=self.precision, macs=self.macs,
            train_ips=self.batch_size / median["train"], train_step_times=self.times["train"],
            infer_ips=self.batch_size / median["infer"], infer_b1_ms=1e3 * median["infer_one"],
            train_peak_rss_mib=self.peak_rss, train_rss_increase_mib=self.rss_increase,
            train_cpu_busy=sum(self.cpu_times) / sum(self.times["train"]) / cpu_threads(),
            litert=lite, **served,
        )

    def release(self):
        import keras

        self.model = self.x = self.y = self.served = self.images = None
        keras.backend.clear_session()
        release_memory()


def measure_interleaved(cases, warmup=1, repeats=5, litert=False, log=None):
    """Prepares every case, then times them in turns: repetition r of every
    case before repetition r + 1 of any. A load that comes and goes (other
    processes on the machine) then falls on all of them alike, and the
    ratios between them stay meaningful.

    A case with `max_repeats` set (a slow peer) stops after that many turns.
    Returns one `KerasCase.result()` dict per case, in order.

    The memory figures come from each case's warm-up, while the cases before
    it are loaded: `train_rss_increase_mib` is what that case added.
    """
    for case in cases:
        case.prepare(warmup)
        if log:
            log(f"prepared {case.label} [{case.precision}]")
    for r in range(repeats):
        for case in cases:
            if r < (getattr(case, "max_repeats", None) or repeats):
                for what in case.times:
                    case.time(what)
        if log:
            log(f"repetition {r + 1}/{repeats} done")
    # LiteRT for keras_resnets' own models: the peers export the same way.
    results = [case.result(litert=litert and case.source == "keras_resnets", repeats=repeats)
               for case in cases]
    for case in cases:
        case.release()
    return results


def measure_keras_model(build, precision="float32", image_size=128, batch_size=16,
                        warmup=1, repeats=5, classes=1000, litert=False):
    """Times one optimizer step and inference of the model `build` returns.

    See `KerasCase`; each figure is the median of `repeats` calls after
    `warmup` calls.

    Returns:
        dict: `macs` (per image), `train_ips`, `train_step_times`,
        `infer_ips`, `infer_b1_ms`, `train_peak_rss_mib` (resident memory
        during the warm-up training steps, sampled) and
        `train_rss_increase_mib` (that peak minus the memory before the model
        was built), `litert` (batch-1 LiteRT latencies or None).

    Example:

    >>> measure_keras_model(lambda s, c: keras_resnets.ResNet20(input_shape=s, classes=c),
    ...                     image_size=32, batch_size=8)  # doctest: +SKIP
    """
    case = KerasCase("model", build, precision, image_size, batch_size, classes)
    (result,) = measure_interleaved([case], warmup, repeats, litert)
    return result
