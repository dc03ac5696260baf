"""`keras-resnets benchmark --litert`: batch-1 LiteRT latency of the exported files.

Each model (random weights) is exported by `keras_resnets.export.tflite` in
the four forms it writes: float32, float16 weights, dynamic-range (int8
weights) and full int8 (calibrated on random images: the latency does not
depend on the values). All files are timed in the same rounds, one file after
another (XNNPACK, batch 1, the machine's cores), so that a ratio between two
rows compares figures taken minutes apart at most, not in different runs;
each figure is the median over the rounds of each round's median.

The table gives, per model, the latency of each form, the int8 speed-up over
float32, and the int8 time per GMAC; below it, each model's int8 time per
MAC relative to the first ResNet of the list (ResNeXt-50's against
ResNet-50's: the grouped convolution's cost in int8, issue 32).
"""

import os
import tempfile
import time

import numpy as np

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
DEFAULT_MODELS = ("resnet18", "resnet50", "resnext50_32x4d", "seresnext50_32x4d")
DEFAULT_IMAGE_SIZE = 224
CALIBRATION_IMAGES = 8


def export_files(name, image_size, folder, log=print, group_width=None):
    """Exports the model `name` at `image_size` in each of `QUANTIZATIONS`
    into `folder` (the int8 and dynamic files' grouped convolutions merged
    to `group_width`, as `export.tflite` takes it): `(GMACs, {quantization:
    path})`."""
    import keras_resnets
    from keras_resnets.export import tflite
    from keras_resnets.export.convert import INT8_KERNEL_QUANTIZATIONS
    from keras_resnets.utils.macs import count_macs

    model = keras_resnets.get_model(name, input_shape=(image_size, image_size, 3))
    images = np.random.default_rng(0).uniform(-1, 1, (CALIBRATION_IMAGES, image_size, image_size, 3)).astype("float32")
    paths = {}
    for quantize in QUANTIZATIONS:
        started = time.time()
        path = os.path.join(folder, f"{name}_{quantize}.tflite")
        tflite(model, path, quantize=None if quantize == "float32" else quantize,
               representative_data=images if quantize == "int8" else None, calibration_images=len(images),
               group_width=group_width if quantize in INT8_KERNEL_QUANTIZATIONS else None)
        paths[quantize] = path
        log(f"  {name} {quantize}: {os.path.getsize(path) / 2**20:.1f} MiB, exported in {time.time() - started:.0f} s")
    return count_macs(model) / 1e9, paths


def time_files(paths, rounds=5, runs=10, warmup=3, num_threads=None):
    """`{key: median ms}` of batch-1 calls of each `.tflite` file in `paths`
    (`{key: path}`): `rounds` rounds over all files, `runs` timed calls of each
    per round after `warmup` untimed ones; the median of the rounds' medians."""
    from keras_resnets.export.runtime import _latency_ms, _run_interpreter, default_threads, load_interpreter

    num_threads = num_threads or default_threads()
    interpreters = {key: load_interpreter(path, num_threads) for key, path in paths.items()}
    images = {}
    for key, interpreter in interpreters.items():
        shape = interpreter.get_input_details()[0]["shape"]
        images[key] = np.random.default_rng(1).uniform(0, 255, [1, *shape[1:]]).astype("float32")
    medians = {key: [] for key in paths}
    for _ in range(rounds):
        for key, interpreter in interpreters.items():
            median, _ = _latency_ms(lambda i=interpreter, x=images[key]: _run_interpreter(i, x), runs, warmup)
            medians[key].append(median)
    return {key: float(np.median(values)) for key, values in medians.items()}, num_threads


def litert_table(models=DEFAULT_MODELS, image_size=DEFAULT_IMAGE_SIZE, rounds=5, runs=10, log=print,
                 group_width=None):
    """Exports and times `models` (their grouped convolutions merged to
    `group_width`: None, `export.tflite`'s defaults); the record
    `format_litert_table` prints."""
    from keras_resnets.export.runtime import _litert_name

    rows, paths = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for name in models:
            gmacs, files = export_files(name, image_size, folder, log, group_width)
            rows.append(dict(model=name, gmacs=gmacs))
            paths.update({(name, q): p for q, p in files.items()})
        log(f"timing {len(paths)} files: {rounds} rounds of {runs} batch-1 calls each")
        latency, threads = time_files(paths, rounds=rounds, runs=runs)
        sizes = {key: os.path.getsize(path) / 2**20 for key, path in paths.items()}
    for row in rows:
        row.update({f"{q}_ms": latency[(row["model"], q)] for q in QUANTIZATIONS})
        row.update({f"{q}_mib": sizes[(row["model"], q)] for q in QUANTIZATIONS})
        row["int8_speedup"] = row["float32_ms"] / row["int8_ms"]
        row["int8_ms_per_gmac"] = row["int8_ms"] / row["gmacs"]
    return dict(image_size=image_size, threads=threads, runtime=_litert_name(), rounds=rounds, runs=runs,
                group_width=group_width, rows=rows, per_mac=per_mac_ratios(rows))


def per_mac_ratios(rows):
    """Each other model's int8 latency, and its int8 and float32 time per
    MAC, over the first plain ResNet's in `rows` (ResNet-50's when listed):
    `[{model, against, int8_latency, int8, float32}]`."""
    plain = [r for r in rows if r["model"].startswith("resnet") and r["model"][6:].isdigit()]
    if not plain:
        return []
    base = next((r for r in plain if r["model"] == "resnet50"), plain[0])
    return [dict(model=r["model"], against=base["model"], int8_latency=r["int8_ms"] / base["int8_ms"],
                 int8=(r["int8_ms"] / r["gmacs"]) / (base["int8_ms"] / base["gmacs"]),
                 float32=(r["float32_ms"] / r["gmacs"]) / (base["float32_ms"] / base["gmacs"]))
            for r in rows if r is not base]


def amx_hint(record):
    """A line for a run on an AMX CPU whose int8 files were not merged to
    64 channels a group (its int8 kernels' tile; docs/performance.md, "Issue
    32 on an AMX Xeon"), else None. `record["machine"]["cpu_flags"]`, where
    the record has them."""
    flags = (record.get("machine") or {}).get("cpu_flags") or []
    if "amx_int8" not in flags or record.get("group_width") == 64:
        return None
    return ("this CPU has AMX (amx_int8): its int8 kernels take 64 output channels a tile, and grouped "
            "convolutions merged to 64 run faster there (ResNeXt-50 int8 about 2x): --group-width 64")


def format_litert_table(record, cpu=""):
    """The record as text: the latency table, then the per-MAC ratios."""
    from keras_resnets.benchmark.run import _columns

    lines = [f"LiteRT batch-1 latency, {record['image_size']} px, {record['runtime']}, {record['threads']} threads"
             + (f", {cpu}" if cpu else "") + f"; median of {record['rounds']} rounds of {record['runs']} calls",
             "grouped convolutions: " + (f"int8 and dynamic files' groups merged to {record['group_width']} channels"
                                         if record.get("group_width")
                                         else "export's defaults (int8: merged to 8 channels)"), ""]
    header = ["model", "GMACs", *(f"{q} ms" for q in QUANTIZATIONS), "int8 speed-up", "int8 ms/GMAC"]
    lines += _columns(header, [
        [r["model"], f"{r['gmacs']:.2f}", *(f"{r[q + '_ms']:.1f}" for q in QUANTIZATIONS),
         f"{r['int8_speedup']:.2f}x", f"{r['int8_ms_per_gmac']:.2f}"] for r in record["rows"]])
    if record["per_mac"]:
        lines += ["", *_columns(["ratio", "against", "int8 latency", "int8 per MAC", "float32 per MAC"], [
            [p["model"], p["against"], f"{p['int8_latency']:.2f}", f"{p['int8']:.2f}", f"{p['float32']:.2f}"]
            for p in record["per_mac"]])]
    hint = amx_hint(record)
    if hint:
        lines += ["", hint]
    return "\n".join(lines)
