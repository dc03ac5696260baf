"""The same models timed on each Keras backend, one process per backend.

    keras-resnets benchmark --backend tensorflow,jax,torch
    python -m keras_resnets.benchmark.backends --backend jax,tensorflow --json speed.json

A Keras backend is chosen once per process (and PyTorch must not load
after TensorFlow in one), so `compare_backends` runs `python -m
keras_resnets.benchmark.backends --worker` under each `KERAS_BACKEND` in
turn and puts the figures side by side. Each worker builds the models in
float32, compiles them as Keras does by default on its backend (XLA
`jax.jit` on JAX; TensorFlow's graph without XLA, as `keras-resnets
benchmark` times it; PyTorch eager), and times `train_on_batch` (one SGD
step) and `predict_on_batch` on random images already in memory: the
median of `repeats` calls after `warmup`. The workers import neither
TensorFlow (off the TensorFlow backend) nor torch (off PyTorch).
"""

import argparse
import json
import os
import subprocess
import sys
import time

from keras_resnets.utils.validation import UsageError

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_MODELS = ("resnet50", "resnext50_32x4d")


def measure(models=DEFAULT_MODELS, image_size=128, batch_size=16, warmup=2, repeats=5):
    """Times `models` on this process's Keras backend; returns a dict of
    the backend, its version and `{model: {train_ips, infer_ips, ...}}`."""
    import importlib.metadata
    import statistics

    import keras
    import numpy as np

    import keras_resnets

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch_size, image_size, image_size, 3)).astype("float32")
    y = rng.integers(0, 1000, batch_size)
    figures = {}
    for name in models:
        model = keras_resnets.get_model(name, input_shape=(image_size, image_size, 3), classes=1000)
        # "auto": XLA on JAX; on TensorFlow the graph without XLA, as the main benchmark times it.
        jit = False if backend == "tensorflow" else "auto"
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      loss="sparse_categorical_crossentropy", jit_compile=jit)
        start = time.perf_counter()
        for _ in range(max(1, warmup)):
            model.train_on_batch(x, y)
            model.predict_on_batch(x)
        compile_s = time.perf_counter() - start
        train, infer = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            model.train_on_batch(x, y)
            train.append(time.perf_counter() - start)
            start = time.perf_counter()
            np.asarray(model.predict_on_batch(x))
            infer.append(time.perf_counter() - start)
        figures[name] = dict(train_ips=batch_size / statistics.median(train),
                             infer_ips=batch_size / statistics.median(infer),
                             warmup_s=compile_s, jit_compile=str(model.jit_compile))
        del model
        keras.backend.clear_session()
    return dict(backend=backend, version=importlib.metadata.version(backend if backend != "torch" else "torch"),
                keras=keras.__version__, image_size=image_size, batch_size=batch_size,
                repeats=repeats, models=figures)


def compare_backends(backends=BACKENDS, models=DEFAULT_MODELS, image_size=128, batch_size=16,
                     warmup=2, repeats=5, log=print):
    """Runs `measure` under each of `backends`, one process each, in turn;
    returns `{backend: record}` (a record `{"error": ...}` where a backend
    failed, e.g. is not installed)."""
    bad = [b for b in backends if b not in BACKENDS]
    if bad or not backends:
        raise UsageError(f"`--backend` must be a non-empty list of {', '.join(BACKENDS)}; "
                         f"received --backend={','.join(backends)}.")
    records = {}
    for backend in backends:
        log(f"timing {', '.join(models)} on {backend} ({image_size} px, batch {batch_size}) ...")
        command = [sys.executable, "-m", "keras_resnets.benchmark.backends", "--worker",
                   "--models", ",".join(models), "--image-size", str(image_size),
                   "--batch-size", str(batch_size), "--warmup", str(warmup), "--repeats", str(repeats)]
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            records[backend] = {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
        else:
            records[backend] = json.loads(lines[-1])
    return records


def format_table(records):
    """One row per backend: train and inference img/s of each model, and
    ResNeXt-50 / ResNet-50 (training) where both ran."""
    models = next((list(r["models"]) for r in records.values() if "models" in r), [])
    header = ["backend"] + [f"{m} {what}" for m in models for what in ("train", "infer")]
    both = {"resnet50", "resnext50_32x4d"} <= set(models)
    if both:
        header.append("ResNeXt/ResNet train")
    rows = [header]
    for backend, record in records.items():
        if "error" in record:
            rows.append([backend, f"failed: {record['error']}"])
            continue
        row = [f"{backend} {record['version']}"]
        for m in models:
            row += [f"{record['models'][m]['train_ips']:.1f}", f"{record['models'][m]['infer_ips']:.1f}"]
        if both:
            ratio = record["models"]["resnext50_32x4d"]["train_ips"] / record["models"]["resnet50"]["train_ips"]
            row.append(f"{ratio:.2f}")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _parser():
    p = argparse.ArgumentParser(prog="python -m keras_resnets.benchmark.backends", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default=",".join(BACKENDS), help="comma-separated (default: all three)")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="also write the records to this JSON file")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p


def write_json(records, path):
    """Writes `records` to `path` atomically (a temporary file, then a rename)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(records, f, indent=2)
    os.replace(tmp, path)


def main(argv=None):
    args = _parser().parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    settings = dict(models=models, image_size=args.image_size, batch_size=args.batch_size,
                    warmup=args.warmup, repeats=args.repeats)
    if args.worker:
        print(json.dumps(measure(**settings)), flush=True)
        return 0
    records = compare_backends([b for b in args.backend.split(",") if b], **settings)
    print(format_table(records))
    if args.json:
        write_json(records, args.json)
    return 0 if all("error" not in r for r in records.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
