"""One benchmark run: every model and peer side by side, the machine's peak,
the ratios against the targets, a printed table and a JSON record.

The measuring modules (NumPy, TensorFlow) load inside the functions that
use them: `keras-resnets benchmark --help` reads this module's defaults."""

import json
import os
import platform
import time

from keras_resnets.benchmark.peers import (
    DEFAULT_TORCH_CONFIGS,
    KERAS_PEERS,
    PEERS,
    TORCH_CONFIGS,
    TORCH_PEERS,
    measure_torchvision,
    peer_library,
    torch_available,
)
from keras_resnets.utils.validation import UsageError

# Each default peer has a ratio against one of these (TARGETS): resnet50v2
# is there for keras.applications' ResNet50V2.
DEFAULT_MODELS = ("resnet50", "resnext50_32x4d", "resnet50v2")
# timm-seresnext50 is for `--models seresnext50_32x4d` (not a default model).
DEFAULT_PEERS = tuple(p for p in PEERS if p != "timm-seresnext50")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# The peer that is slow by design is timed once.
SLOW_PEERS = ("stock-resnext50",)

# (what, numerator (row, precision), denominator (row or "peak", precision), metric, target)
TARGETS = [
    ("ResNeXt-50 / ResNet-50 training", ("resnext50_32x4d", "float32"), ("resnet50", "float32"),
     "train_ips", 0.95),
    ("ResNet-50 training, fraction of fp32 matmul peak", ("resnet50", "float32"), ("peak", "float32"),
     "train_ips", 0.60),
    ("ResNet-50 inference, fraction of fp32 matmul peak", ("resnet50", "float32"), ("peak", "float32"),
     "infer_ips", 0.80),
    ("ResNet-50 bf16 training, fraction of bf16 matmul peak", ("resnet50", "mixed_bfloat16"),
     ("peak", "mixed_bfloat16"), "train_ips", 0.55),
    ("ResNet-50 bf16 / fp32 training", ("resnet50", "mixed_bfloat16"), ("resnet50", "float32"),
     "train_ips", 1.5),
    ("ResNeXt-50 bf16 / fp32 training", ("resnext50_32x4d", "mixed_bfloat16"),
     ("resnext50_32x4d", "float32"), "train_ips", 1.5),
    ("ResNeXt-50 / Conv2D(groups=32) ResNeXt-50 training", ("resnext50_32x4d", "float32"),
     ("Conv2D(groups=32) ResNeXt-50", "float32"), "train_ips", 20.0),
]
# Never slower than the peers, in every precision measured, training and inference;
# against torchvision, its best configuration of the run (TORCH_CONFIGS).
for _ours, _theirs in [("resnet50", "keras.applications ResNet50"),
                       ("resnet50v2", "keras.applications ResNet50V2"),
                       ("resnet50", "torchvision resnet50"),
                       ("resnext50_32x4d", "torchvision resnext50_32x4d"),
                       ("seresnext50_32x4d", "timm seresnext50_32x4d")]:
    for _p in PRECISIONS:
        for _metric in ("train_ips", "infer_ips"):
            TARGETS.append((f"{_ours} / {_theirs} {_metric.split('_')[0]} [{_p}]",
                            (_ours, _p), (_theirs, _p), _metric, 1.0))
# Served: our model exported by `keras_resnets.export.saved_model` (frozen,
# in its own precision) against torchvision's best, batches and batch 1
# (`*_b1_ips`: batch-1 calls per second). A metric pair is (ours, theirs).
for _ours, _theirs in [("resnet50", "torchvision resnet50"),
                       ("resnext50_32x4d", "torchvision resnext50_32x4d")]:
    for _p in PRECISIONS:
        TARGETS.append((f"{_ours} SavedModel / {_theirs} infer [{_p}]", (_ours, _p), (_theirs, _p),
                        ("served_ips", "infer_ips"), 1.0))
        TARGETS.append((f"{_ours} SavedModel / {_theirs} batch-1 [{_p}]", (_ours, _p), (_theirs, _p),
                        ("served_b1_ips", "infer_b1_ips"), 1.0))


MINIMUMS = {"image_size": 32, "batch_size": 1, "warmup": 0, "repeats": 1, "matmul_size": 16}
"""The smallest value of each integer setting of `run_benchmark`."""


def check_list(arg, values, allowed):
    """`values`, a non-empty list of names from `allowed`; a ValueError naming `arg` otherwise."""
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise UsageError(
            f"`{arg}` must be a non-empty list of {', '.join(allowed)}; received {arg}={list(values)}."
        )
    return values


def _check_int(arg, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"`{arg}` must be an integer >= {minimum}; received {arg}={value!r}.")


# The CPU features that decide which kernels oneDNN (TensorFlow) and PyTorch pick.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_flags(path="/proc/cpuinfo"):
    """Which of `CPU_FLAGS` the CPU has (Linux's flag names), in that order;
    empty where /proc/cpuinfo cannot be read."""
    try:
        with open(path) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return []
    return [flag for flag in CPU_FLAGS if flag in flags]


def machine_info():
    """CPU (model and `CPU_FLAGS`), cores, threads, load and library versions, for the record."""
    import keras
    import tensorflow as tf

    from keras_resnets.benchmark.measure import cpu_threads

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return dict(
        cpu=cpu, cpu_flags=cpu_flags(), cores=len(os.sched_getaffinity(0)), threads=cpu_threads(),
        load_average=list(os.getloadavg()), tensorflow=tf.__version__, keras=keras.__version__,
        python=platform.python_version(),
    )


def gpu_name():
    """The first GPU TensorFlow sees (its name), or None: the Keras models run
    on it, and so do the torchvision peers where torch sees one."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)


def default_precisions(gpu=None):
    """float32 and mixed_bfloat16; on a GPU (`gpu` True), mixed_float16 too."""
    return ("float32", "mixed_bfloat16", "mixed_float16") if gpu else ("float32", "mixed_bfloat16")


def _ours(name):
    import keras_resnets

    return lambda input_shape, classes: keras_resnets.get_model(
        name, input_shape=input_shape, classes=classes
    )


def run_benchmark(models=DEFAULT_MODELS, peers=DEFAULT_PEERS, precisions=None,
                  image_size=128, batch_size=16, warmup=1, repeats=5, matmul_size=4096,
                  litert=True, torch_configs=DEFAULT_TORCH_CONFIGS, serving=True, log=print):
    """Measures `models` and `peers` side by side; returns the whole record.

    Args:
        models: registered keras_resnets names. The default, ResNet-50,
            ResNeXt-50 and ResNet-50 v2, gives every default peer a ratio.
        peers: names from `keras_resnets.benchmark.PEERS`; the torchvision ones
            are skipped (with a note) where torch is not installed.
        precisions: dtype policies; keras_resnets models, keras.applications
            and torchvision run in each, the stock grouped ResNeXt in float32.
            Default: `default_precisions()` (mixed_float16 too on a GPU).
        image_size, batch_size: the inputs (random images, 1000 classes).
        warmup, repeats: calls before timing and timed calls (median). The
            Keras models are timed in turns (`measure_interleaved`), so that
            a passing load falls on all of them alike; torchvision runs after
            them in a subprocess.
        matmul_size: side of the matrices of the peak measurement.
        torch_configs: how the torchvision peers run, names from
            `TORCH_CONFIGS` ("eager", "channels_last", "compile"); each is a
            row, and a ratio against torchvision takes its best row.
        litert: time LiteRT batch-1 inference (float32 and int8 files from
            `keras_resnets.export`) of the keras_resnets models' float32 rows.
        serving: time the keras_resnets models' inference through the
            SavedModel `keras_resnets.export.saved_model` writes (frozen, in
            the row's precision), loaded back, beside `predict_on_batch`.
        log: called with a line of progress.

    Returns:
        dict with `machine`, `settings`, `peak_gflops`, `rows` (one per model
        and precision), `targets` and `notes`.

    Example:

    >>> record = run_benchmark(models=["resnet20"], peers=[], image_size=32)  # doctest: +SKIP
    """
    from keras_resnets.benchmark.measure import KerasCase, measure_interleaved
    from keras_resnets.models.registry import get_spec

    gpu = gpu_name()
    peers = list(peers)
    precisions = list(default_precisions(gpu) if precisions is None else precisions)
    if isinstance(models, str) or not list(models):
        raise UsageError(f"`models` must be a non-empty list of model names; received models={models!r}.")
    models = [get_spec(name).name for name in models]  # a clear error for an unknown name
    if peers:
        check_list("peers", peers, PEERS)
    check_list("precisions", precisions, PRECISIONS)
    torch_configs = list(torch_configs)
    check_list("torch_configs", torch_configs, TORCH_CONFIGS)
    for arg, value in [("image_size", image_size), ("batch_size", batch_size), ("warmup", warmup),
                       ("repeats", repeats), ("matmul_size", matmul_size)]:
        _check_int(arg, value, MINIMUMS[arg])

    start = time.time()
    machine = machine_info()
    machine["gpu"] = gpu
    log(f"machine: {machine['cpu']} ({' '.join(machine['cpu_flags']) or 'no listed flags'}), "
        f"{machine['cores']} cores, load {machine['load_average']}"
        + (f"; models on {gpu}" if gpu else ""))
    peak = _peaks(matmul_size, repeats, gpu=bool(gpu))
    log(f"matmul peak: {peak['float32']:.0f} GFLOP/s float32, {peak['mixed_bfloat16']:.0f} bfloat16")

    cases, notes = [], []
    common = dict(image_size=image_size, batch_size=batch_size)
    for name in models:
        for precision in precisions:
            cases.append(KerasCase(name, _ours(name), precision, serving=serving, **common))
    for peer in peers:
        if peer in KERAS_PEERS:
            label, build = KERAS_PEERS[peer]
            for precision in (["float32"] if peer in SLOW_PEERS else precisions):
                case = KerasCase(label, build, precision, source="keras", **common)
                case.max_repeats = 1 if peer in SLOW_PEERS else None
                cases.append(case)
    results = measure_interleaved(cases, warmup, repeats, litert=litert, log=log)
    rows = [dict(model=c.label, source=c.source, config=None, device="gpu" if gpu else "cpu", **r)
            for c, r in zip(cases, results)]

    for peer in peers:
        if peer not in TORCH_PEERS:
            continue
        label, tv_name = TORCH_PEERS[peer]
        library = peer_library(label)
        if not torch_available(library):
            notes.append(f"{peer}: skipped, torch/{library} are not installed")
            log(notes[-1])
            continue
        macs = next((r["macs"] for r in rows if r["model"] == tv_name), None)
        if macs is None:
            import keras_resnets

            macs = keras_resnets.count_macs(
                keras_resnets.get_model(tv_name, input_shape=(image_size, image_size, 3)))
        try:
            # float16 runs on a GPU only (torch's CPU autocast is bfloat16).
            results = measure_torchvision(
                tv_name, [p for p in precisions if gpu or p != "mixed_float16"],
                warmup=warmup, repeats=repeats, threads=machine["threads"], gpu=bool(gpu),
                configs=torch_configs, library=library, **common)
        except RuntimeError as e:
            notes.append(f"{peer}: failed: {str(e)[-300:]}")
            log(notes[-1])
            continue
        for result in results:
            rows.append(dict(model=label, source=library, macs=macs, litert=None, **result))
        if gpu and any(r["device"] == "cpu" for r in results):
            notes.append(f"{peer}: torch sees no GPU; measured on the CPU (not comparable)")
            log(notes[-1])
    for row in rows:
        row["infer_b1_ips"] = 1e3 / row["infer_b1_ms"]
        if "served_b1_ms" in row:
            row["served_b1_ips"] = 1e3 / row["served_b1_ms"]
        log(f"{_label(row)} [{row['precision']}]: train {row['train_ips']:.2f} img/s, "
            f"infer {row['infer_ips']:.2f} img/s, batch-1 {row['infer_b1_ms']:.1f} ms"
            + (f"; SavedModel {row['served_ips']:.2f} img/s, batch-1 {row['served_b1_ms']:.1f} ms"
               if "served_ips" in row else ""))
    # The peak again at the end: the best of both is the machine's limit.
    again = _peaks(matmul_size, repeats, gpu=bool(gpu))
    peak = {k: max(v, again[k]) for k, v in peak.items()}

    for row in rows:
        flops = 2.0 * row["macs"]
        row["train_peak_fraction"] = 3 * flops * row["train_ips"] / (peak[row["precision"]] * 1e9)
        row["infer_peak_fraction"] = flops * row["infer_ips"] / (peak[row["precision"]] * 1e9)
    if litert and not any(r.get("litert") for r in rows):
        notes.append("LiteRT latency: not measured (it is for keras_resnets' float32 rows; "
                     "this run has none)")
    for row in rows:
        for key, error in (row.get("litert") or {}).items():
            if key.endswith("_error"):
                notes.append(f"{row['model']}: LiteRT {key.split('_')[0]} failed: {error}")
    machine["load_average_after"] = list(os.getloadavg())
    return dict(
        machine=machine,
        settings=dict(models=models, peers=peers, precisions=precisions, image_size=image_size,
                      batch_size=batch_size, warmup=warmup, repeats=repeats,
                      matmul_size=matmul_size, classes=1000, torch_configs=torch_configs,
                      serving=serving),
        peak_gflops=peak, rows=rows, targets=evaluate_targets(rows), notes=notes,
        seconds=time.time() - start,
    )


def _peaks(matmul_size, repeats, gpu=False):
    """Matmul GFLOP/s per precision, in its compute dtype: the best of at
    least `max(3, repeats)` products and of 0.5 s of them (the best, not the
    median: a peak is what the machine reaches when nothing disturbs it; a
    small `matmul_size` needs many products to see it). On a CPU, float16 is
    not faster than float32 (no float16 arithmetic: mixed_float16 converts),
    so its peak is float32's."""
    from keras_resnets.benchmark.peak import matmul_peak_gflops

    dtypes = {"float32": "float32", "mixed_bfloat16": "bfloat16"}
    if gpu:
        dtypes["mixed_float16"] = "float16"
    peak = {p: matmul_peak_gflops(d, matmul_size, repeats=max(3, repeats), min_seconds=0.5)
            for p, d in dtypes.items()}
    peak.setdefault("mixed_float16", peak["float32"])
    return peak


def _label(row):
    """A row's model, with its configuration where it has one (torchvision's)."""
    return f"{row['model']} ({row['config']})" if row.get("config") else row["model"]


def evaluate_targets(rows):
    """Each target whose two sides were measured: value, target, met, and
    `against`: the denominator row's label (a peer measured in several
    configurations counts with its fastest in the target's metric)."""
    def find(model, precision, metric="train_ips"):
        found = [r for r in rows if r["model"] == model and r["precision"] == precision
                 and metric in r]
        return max(found, key=lambda r: r[metric]) if found else None

    results = []
    for what, (num, num_p), (den, den_p), metric, target in TARGETS:
        # One metric for both sides, or a pair (numerator's, denominator's).
        ours, theirs = (metric, metric) if isinstance(metric, str) else metric
        a = find(num, num_p, ours)
        if a is None:
            continue
        if den == "peak":
            value, against = a[ours.replace("_ips", "_peak_fraction")], "peak"
        else:
            b = find(den, den_p, theirs)
            if b is None:
                continue
            value, against = a[ours] / b[theirs], _label(b)
        results.append(dict(what=what, value=value, target=target, met=value >= target,
                            against=against))
    return results


def format_report(record):
    """The record as text: absolute figures, then ratios against the targets."""
    m, s = record["machine"], record["settings"]
    lines = [
        f"{m['cpu']} ({' '.join(m.get('cpu_flags', [])) or 'no listed flags'}), "
        f"{m['cores']} cores, {m['threads']} threads"
        + (f", models on {m['gpu']}" if m.get("gpu") else "") + "; load average "
        f"{m['load_average'][0]:.2f} before, {m['load_average_after'][0]:.2f} after; "
        f"TensorFlow {m['tensorflow']}, Keras {m['keras']}",
        f"{s['image_size']} px, batch {s['batch_size']}, median of {s['repeats']} after "
        f"{s['warmup']} warm-up; matmul peak {record['peak_gflops']['float32']:.0f} GFLOP/s "
        f"float32, {record['peak_gflops']['mixed_bfloat16']:.0f} bfloat16"
        + (f", {record['peak_gflops']['mixed_float16']:.0f} float16" if m.get("gpu") else ""),
        "",
    ]
    header = ["model", "precision", "GMACs", "train img/s", "train %peak", "infer img/s",
              "infer %peak", "batch-1 ms", "SavedModel img/s", "SavedModel b1 ms", "CPU busy",
              "train RSS MiB", "+RSS MiB", "LiteRT fp32 ms", "LiteRT int8 ms"]
    table = []
    for r in record["rows"]:
        lite = r.get("litert") or {}
        table.append([
            _label(r), r["precision"], f"{r['macs'] / 1e9:.3f}", f"{r['train_ips']:.2f}",
            f"{100 * r['train_peak_fraction']:.0f}%", f"{r['infer_ips']:.2f}",
            f"{100 * r['infer_peak_fraction']:.0f}%", f"{r['infer_b1_ms']:.1f}",
            f"{r['served_ips']:.2f}" if "served_ips" in r else "n/a",
            f"{r['served_b1_ms']:.1f}" if "served_b1_ms" in r else "n/a",
            f"{100 * r['train_cpu_busy']:.0f}%" if r.get("train_cpu_busy") else "n/a",
            f"{r['train_peak_rss_mib']:.0f}", f"{r['train_rss_increase_mib']:.0f}",
            f"{lite['float32_ms']:.1f}" if "float32_ms" in lite else "n/a",
            f"{lite['int8_ms']:.1f}" if "int8_ms" in lite else "n/a",
        ])
    lines += _columns(header, table)
    if record["targets"]:
        lines += ["", *_columns(["ratio", "against", "value", "target", "met"], [
            [t["what"], t.get("against", ""), f"{t['value']:.2f}", f">= {t['target']:g}",
             "yes" if t["met"] else "NO"]
            for t in record["targets"]])]
    lines += [f"note: {n}" for n in record["notes"]]
    return "\n".join(lines)


def _columns(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return [fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)]


def write_json(record, path):
    """Writes `record` to `path` atomically."""
    from keras_resnets.training.callbacks import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(record, f, indent=2)
