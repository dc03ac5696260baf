"""`verify` and `benchmark`: exported files run against the Keras model.

TFLite files run in the LiteRT interpreter (`ai_edge_litert`), which applies
its default XNNPACK delegate to the CPU; SavedModels run in TensorFlow, ONNX
files in onnxruntime.
"""

import dataclasses
import os
import time

import numpy as np

from keras_resnets.export.common import (
    as_input_dtype,
    check_backend,
    check_image_shape,
    float32_model,
    image_batches,
    model_input,
    normalized_model,
)
from keras_resnets.export.serving import SIGNATURE, output_name, serving_function
from keras_resnets.utils.validation import UsageError, check_non_negative_int, check_positive_int


@dataclasses.dataclass
class Verification:
    """What `verify` measured for one exported file or folder.

    Attributes:
        path: the file (`.tflite`, `.onnx`) or SavedModel folder.
        format: `"tflite"`, `"saved_model"` or `"onnx"`.
        size_bytes: the file's size (a SavedModel: all its files).
        input_type: the exported input's type (`"uint8"`, `"int8"`, `"float32"`).
        images: how many images were compared.
        max_abs_diff: the largest absolute difference between the exported
            and the Keras outputs (dequantized for an integer output).
        top1_agreement: the fraction of images whose top-1 class agrees.
        keras_accuracy: the Keras model's top-1 accuracy, None without labels.
        exported_accuracy: the exported model's, None without labels.
        latency_ms_median: batch-1 latency, the median over `runs` calls.
        latency_ms_p90: its 90th percentile.
        num_threads: the LiteRT interpreter's (onnxruntime's) threads; None
            for a SavedModel (TensorFlow's default thread pools).
        runtime: what ran it, e.g. `"LiteRT 2.3.0 (XNNPACK)"`.
    """

    path: str
    format: str
    size_bytes: int
    input_type: str
    images: int
    max_abs_diff: float
    top1_agreement: float
    keras_accuracy: float = None
    exported_accuracy: float = None
    latency_ms_median: float = None
    latency_ms_p90: float = None
    num_threads: int = None
    runtime: str = ""


def default_threads():
    """The LiteRT thread count used when none is given: every CPU core, as
    TensorFlow's own thread pools use."""
    return os.cpu_count() or 1


def load_interpreter(path, num_threads=None, delegates=True):
    """A `ai_edge_litert.interpreter.Interpreter` for `path`, tensors allocated.

    Args:
        path: a `.tflite` file.
        num_threads: int; defaults to `default_threads()`.
        delegates: bool, apply LiteRT's default delegate (XNNPACK on CPU).

    A missing file is a `FileNotFoundError`; an empty, truncated or corrupt
    one a `ValueError` naming it.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No .tflite file at path={path!r}.")
    resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = Interpreter(
            model_path=path,
            num_threads=num_threads or default_threads(),
            experimental_op_resolver_type=resolver,
        )
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        if delegates and "XNNPACK" in str(e):
            try:  # (loads the file without the delegate)
                scales = requantization_scales(path)
            except UsageError:
                scales = None  # LiteRT's own kernels refuse it too
            if scales is not None:
                raise UsageError(_xnnpack_refusal(path, str(e).strip(), scales)) from None
        raise UsageError(
            f"{path!r} ({os.path.getsize(path)} bytes) is not a valid TFLite model: the "
            f"LiteRT interpreter refused it ({str(e).strip()}). Is it truncated or corrupt?"
        ) from None
    return interpreter


XNNPACK_MAX_REQUANTIZATION = 256.0
"""XNNPACK's int8 convolutions and fully connected layers take a
requantization scale (input scale x weight scale / output scale, per
output channel) below this; it refuses a file with a larger one."""


def requantization_scales(path):
    """The largest requantization scale of each int8 CONV_2D,
    DEPTHWISE_CONV_2D and FULLY_CONNECTED of a `.tflite` file:
    `[(output tensor name, scale)]`, in execution order."""
    interpreter = load_interpreter(path, num_threads=1, delegates=False)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}

    def scales(index):
        return np.asarray(tensors[int(index)]["quantization_parameters"]["scales"], "float64")

    found = []
    for op in interpreter._get_ops_details():
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        x, w, y = scales(op["inputs"][0]), scales(op["inputs"][1]), scales(op["outputs"][0])
        if len(x) and len(w) and len(y):
            found.append((tensors[int(op["outputs"][0])]["name"], float(np.max(x[0] * w / y[0]))))
    return found


def _operator_name(tensor_name):
    """The convolution's (or matrix product's) part of a fused operator's
    output name ("model/block/relu;model/block/bn;model/block/conv/Conv2D"),
    else its first."""
    parts = tensor_name.split(";")
    return next((p for p in parts if p.endswith(("Conv2D", "Conv2D1", "MatMul", "convolution", "convolution1"))),
                parts[0])


def _xnnpack_refusal(path, error, scales):
    """Why XNNPACK refused a file that LiteRT's own kernels load: the
    operators over its requantization limit (of `scales`, as
    `requantization_scales` gives them), where there are."""
    over = [(name, scale) for name, scale in scales if scale >= XNNPACK_MAX_REQUANTIZATION]
    if not over:
        return (f"{path!r}: XNNPACK, LiteRT's CPU delegate (phones run it too), refused the file ({error}); "
                "LiteRT's own kernels load it.")
    listed = "; ".join(f"{_operator_name(name)} ({scale:.0f})" for name, scale in over[:4])
    more = f" and {len(over) - 4} more" if len(over) > 4 else ""
    return (
        f"{path!r}: XNNPACK, LiteRT's CPU delegate (phones run it too), refuses this int8 file: "
        f"{len(over)} operator(s) need a requantization scale (input scale x weight scale / output scale) "
        f"of {XNNPACK_MAX_REQUANTIZATION:.0f} or more, its limit: {listed}{more}. Their inputs' calibrated "
        "range is too wide for int8 against their outputs' (seen on quarter-width ResNeXt-50s trained "
        "15 and 30 epochs, whose stage-1 groups hold one channel each). Train it further, or export it "
        "as float16 or dynamic (--quantize float16 dynamic); LiteRT's own kernels, without XNNPACK, "
        "load this file."
    )


def tflite_ops(path):
    """The operators of a `.tflite` file in execution order, as the plain
    runtime (no delegate) sees them.

    Returns:
        A list of dicts `{"op": "CONV_2D", "inputs": [shapes], "input_types":
        ["int8", ...], "outputs": [shapes]}`, shapes as tuples (an absent
        optional input, e.g. no bias, is None).

    Example:

    >>> sorted({op["op"] for op in tflite_ops("/tmp/resnet20.tflite")})  # doctest: +SKIP
    ['ADD', 'CONV_2D', 'FULLY_CONNECTED', 'MEAN', 'PAD', 'SOFTMAX', 'STRIDED_SLICE']
    """
    interpreter = load_interpreter(path, num_threads=1, delegates=False)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}

    def shapes(indices):
        return [tuple(tensors[i]["shape"]) if i in tensors else None for i in map(int, indices)]

    def types(indices):
        return [np.dtype(tensors[i]["dtype"]).name if i in tensors else None for i in map(int, indices)]

    return [
        {
            "op": op["op_name"],
            "inputs": shapes(op["inputs"]),
            "input_types": types(op["inputs"]),
            "outputs": shapes(op["outputs"]),
        }
        for op in interpreter._get_ops_details()
    ]


def _run_interpreter(interpreter, images):
    inp = interpreter.get_input_details()[0]
    if tuple(inp["shape"]) != images.shape:
        interpreter.resize_tensor_input(inp["index"], images.shape)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], _to_tensor(images, inp))
    interpreter.invoke()
    out = interpreter.get_output_details()[0]
    values = interpreter.get_tensor(out["index"])
    scale, zero_point = out["quantization"]
    if scale:
        return (values.astype("float32") - zero_point) * scale
    return values


def _to_tensor(images, detail):
    """Images in the input tensor's type; quantized with its scale and zero
    point where it has them (a float model's int8 input)."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if scale and images.dtype != dtype:
        info = np.iinfo(dtype)
        images = np.clip(np.round(images / scale + zero_point), info.min, info.max)
    return images.astype(dtype)


def _latency_ms(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times)), float(np.percentile(times, 90))


def _size_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )


def _litert_name():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"LiteRT {version('ai-edge-litert')} (XNNPACK)"
    except PackageNotFoundError:
        return "LiteRT (XNNPACK)"


def verify(
    path,
    model,
    data,
    num_threads=None,
    runs=100,
    warmup=10,
    batch_size=32,
    mean=None,
    std=None,
):
    """Runs an exported model and compares it with the Keras model.

    A `.tflite` file runs in the LiteRT interpreter
    (`ai_edge_litert.interpreter.Interpreter`) with its default XNNPACK CPU
    delegate and `num_threads` threads; a SavedModel folder (from
    `saved_model`) runs its `serving_default` signature in TensorFlow, an
    `.onnx` file (from `onnx`) runs in onnxruntime. All get the same images as the Keras model, which runs in float32 (a
    mixed-precision model is compared as exported). Quantized inputs and
    outputs are converted with the file's scale and zero point.

    Args:
        path: a `.tflite` or `.onnx` file, or a SavedModel folder.
        model: the Keras model it was exported from.
        data: images `[n, h, w, c]`, `(images, labels)` or a `tf.data.Dataset`
            of them (e.g. `load_data("digits").test`); with labels, the
            accuracies are reported too.
        num_threads: int, LiteRT threads; defaults to every core.
        runs: int, timed batch-1 calls for the latency. Defaults to 100.
        warmup: int, untimed calls before them. Defaults to 10.
        batch_size: int, images per call for the comparison. Defaults to 32.
        mean, std: for a float model, the values given to the exporter
            (`saved_model`, `tflite` or `onnx`): the file takes raw `uint8`
            images, and the Keras model is run behind the same
            normalization.

    Returns:
        A `Verification`.

    Example:

    >>> result = verify("/tmp/resnet20.tflite", model, images)  # doctest: +SKIP
    >>> result.max_abs_diff < 1e-4, result.top1_agreement  # doctest: +SKIP
    (True, 1.0)
    """
    check_backend()
    path = os.fspath(path)
    runs = check_positive_int("runs", runs)
    batch_size = check_positive_int("batch_size", batch_size)
    warmup = check_non_negative_int("warmup", warmup)
    if num_threads is not None:
        num_threads = check_positive_int("num_threads", num_threads)
    model = float32_model(model)

    if os.path.isdir(path):
        exported, reference, run_one, info = _saved_model_runner(path, model, mean, std)
    else:
        # The file holds the normalization: compare it with the model behind it.
        model = normalized_model(model, mean, std)
        num_threads = num_threads or default_threads()
        runner = _onnx_runner if path.endswith(".onnx") else _tflite_runner
        exported, reference, run_one, info = runner(path, model, num_threads)
    shape, _ = model_input(model)

    diffs, agree, keras_hits, exported_hits, count, labelled = [], 0, 0, 0, 0, True
    first = None
    for images, labels in image_batches(data, "data"):
        check_image_shape(images, shape, "data")
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            want = np.asarray(reference(x), dtype="float32")
            got = np.asarray(exported(x), dtype="float32")
            diffs.append(float(np.max(np.abs(want - got))))
            agree += int(np.sum(np.argmax(want, -1) == np.argmax(got, -1)))
            if labels is None:
                labelled = False
            else:
                y = labels[start : start + batch_size].reshape(-1)
                keras_hits += int(np.sum(np.argmax(want, -1) == y))
                exported_hits += int(np.sum(np.argmax(got, -1) == y))
            count += len(x)
            first = x[:1] if first is None else first
    if count == 0:
        raise UsageError("`data` holds no images to verify with.")
    median, p90 = _latency_ms(lambda: run_one(first), runs, warmup)
    return Verification(
        path=path,
        format=info["format"],
        size_bytes=_size_bytes(path),
        input_type=info["input_type"],
        images=count,
        max_abs_diff=max(diffs),
        top1_agreement=agree / count,
        keras_accuracy=keras_hits / count if labelled else None,
        exported_accuracy=exported_hits / count if labelled else None,
        latency_ms_median=median,
        latency_ms_p90=p90,
        num_threads=info["num_threads"],
        runtime=info["runtime"],
    )


def _tflite_runner(path, model, num_threads):
    _, dtype = model_input(model)
    interpreter = load_interpreter(path, num_threads)
    single = load_interpreter(path, num_threads)
    detail = interpreter.get_input_details()[0]
    input_type = np.dtype(detail["dtype"]).name
    if dtype != "uint8" and input_type == "uint8" and not detail["quantization"][0]:
        raise UsageError(
            f"{path!r} takes raw uint8 images and `model` ({model.name!r}) floats: the file "
            "holds a normalization; pass `verify` the `mean` and `std` it was exported with."
        )

    # The images as the Keras model takes them; `_to_tensor` quantizes them
    # further for an integer input.
    def exported(x):
        return _run_interpreter(interpreter, as_input_dtype(x, dtype))

    def run_one(x):
        return _run_interpreter(single, as_input_dtype(x, dtype))

    info = {"format": "tflite", "input_type": input_type, "num_threads": num_threads,
            "runtime": _litert_name()}
    return exported, _keras_call(model), run_one, info


def _keras_call(model):
    import tensorflow as tf

    _, dtype = model_input(model)
    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda x: call(tf.constant(as_input_dtype(x, dtype)))


def _onnx_runner(path, model, num_threads):
    import onnxruntime

    if not os.path.isfile(path):
        raise FileNotFoundError(f"No .onnx file at path={path!r}.")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = num_threads
    try:
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, ...)
        raise UsageError(
            f"{path!r} ({os.path.getsize(path)} bytes) is not a valid ONNX model: onnxruntime "
            f"refused it ({str(e).strip()}). Is it truncated or corrupt?"
        ) from None
    _, dtype = model_input(model)
    name = session.get_inputs()[0].name

    def exported(x):
        return session.run(None, {name: as_input_dtype(x, dtype)})[0]

    info = {"format": "onnx", "input_type": dtype, "num_threads": num_threads,
            "runtime": f"ONNX Runtime {onnxruntime.__version__} (CPU)"}
    return exported, _keras_call(model), exported, info


def _saved_model_runner(path, model, mean, std):
    import tensorflow as tf

    try:
        served = tf.saved_model.load(path).signatures[SIGNATURE]
    except (OSError, ValueError, KeyError) as e:
        raise UsageError(
            f"{path!r} is not a SavedModel with a {SIGNATURE!r} signature ({e})."
        ) from None
    key = output_name(model)
    serve = serving_function(model, mean=mean, std=std)

    def reference(x):
        return serve(tf.constant(as_input_dtype(x, "uint8")))[key]

    def exported(x):
        return served(images=tf.constant(as_input_dtype(x, "uint8")))[key]

    def run_one(x):
        return exported(x).numpy()

    info = {"format": "saved_model", "input_type": "uint8", "num_threads": None,
            "runtime": f"TensorFlow {tf.__version__}"}
    return exported, reference, run_one, info


def format_table(results, baseline=None):
    """The verification results as a text table, one row per file.

    Args:
        results: a list of `Verification`.
        baseline: optional `Verification` whose size the "size %" column is
            relative to (the float32 file).
    """
    header = ["file", "input", "size", "size %", "max |diff|", "top-1 agree",
              "accuracy keras -> file", "latency ms median / p90", "threads"]
    rows = []
    for r in results:
        size_pct = f"{100 * r.size_bytes / baseline.size_bytes:.1f}%" if baseline else "-"
        accuracy = (
            f"{r.keras_accuracy:.4f} -> {r.exported_accuracy:.4f}"
            if r.keras_accuracy is not None else "-"
        )
        rows.append([
            os.path.basename(os.path.normpath(r.path)), r.input_type, _human_size(r.size_bytes),
            size_pct, f"{r.max_abs_diff:.3g}", f"{r.top1_agreement:.4f} ({r.images})",
            accuracy, f"{r.latency_ms_median:.3f} / {r.latency_ms_p90:.3f}",
            "TF default" if r.num_threads is None else str(r.num_threads),
        ])
    return _table(header, rows)


def _table(header, rows):
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _human_size(n):
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def benchmark(model, tflite_paths, image=None, num_threads=None, runs=100, warmup=10):
    """Batch-1 latency of the Keras model and its LiteRT files, side by side.

    Times one image through Keras `model.predict`, a `tf.function` of the
    model (inference mode), and each `.tflite` file in the LiteRT
    interpreter (XNNPACK, `num_threads` threads). Not a test: numbers depend
    on the machine and its load.

    Args:
        model: the Keras model.
        tflite_paths: dict `{label: path}` of `.tflite` files, e.g.
            `{"LiteRT float32": "m.tflite", "LiteRT int8": "m_int8.tflite"}`.
        image: one image `[1, h, w, c]` (or `[h, w, c]`); defaults to a seeded
            random one of the model's input shape.
        num_threads: int, LiteRT threads; defaults to every core.
        runs: int, timed calls per row. Defaults to 100.
        warmup: int, untimed calls first. Defaults to 10.

    Returns:
        A list of dicts `{"name", "median_ms", "p90_ms", "speedup_vs_predict",
        "speedup_vs_tf_function"}`; `format_benchmark` prints them.

    Example:

    >>> rows = benchmark(model, {"LiteRT float32": "/tmp/resnet20.tflite"})  # doctest: +SKIP
    >>> print(format_benchmark(rows))  # doctest: +SKIP
    """
    check_backend()
    import tensorflow as tf

    runs = check_positive_int("runs", runs)
    num_threads = num_threads or default_threads()
    model = float32_model(model)
    shape, dtype = model_input(model)
    if image is None:
        size = [1] + [d or 32 for d in shape[1:]]
        image = np.random.default_rng(0).uniform(0, 255, size)
    image = np.asarray(image)
    image = image[None] if image.ndim == 3 else image
    image = as_input_dtype(check_image_shape(image[:1], shape, "image"), dtype, "image")

    call = tf.function(lambda x: model(x, training=False))
    tensor = tf.constant(image)
    timed = [
        ("Keras predict", lambda: model.predict(image, verbose=0)),
        ("tf.function", lambda: call(tensor).numpy()),
    ]
    for name, path in tflite_paths.items():
        interpreter = load_interpreter(path, num_threads)
        timed.append((f"{name} ({num_threads} threads)",
                      lambda i=interpreter: _run_interpreter(i, image)))
    rows = []
    for name, fn in timed:
        median, p90 = _latency_ms(fn, runs, warmup)
        rows.append({"name": name, "median_ms": median, "p90_ms": p90})
    predict, function = rows[0]["median_ms"], rows[1]["median_ms"]
    for row in rows:
        row["speedup_vs_predict"] = predict / row["median_ms"]
        row["speedup_vs_tf_function"] = function / row["median_ms"]
    return rows


def format_benchmark(rows):
    """`benchmark`'s rows as a text table with the ratios."""
    return _table(
        ["batch-1 latency", "median ms", "p90 ms", "x vs predict", "x vs tf.function"],
        [[r["name"], f"{r['median_ms']:.3f}", f"{r['p90_ms']:.3f}",
          f"{r['speedup_vs_predict']:.2f}", f"{r['speedup_vs_tf_function']:.2f}"] for r in rows],
    )
