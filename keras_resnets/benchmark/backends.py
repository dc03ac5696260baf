"""The same models timed on each Keras backend, one process per backend.

    keras-resnets benchmark --backend tensorflow,jax,torch
    python -m keras_resnets.benchmark.backends --backend jax,tensorflow --json speed.json
    # issue 32, item 4: JAX mixed precision against torchvision AMP channels_last (on a GPU where one is seen)
    python -m keras_resnets.benchmark.backends --backend jax --precision mixed_bfloat16 \
        --peers torch-resnet50,torch-resnext50 --image-size 224 --batch-size 64

A Keras backend is chosen once per process (and PyTorch must not load
after TensorFlow in one), so `compare_backends` runs `python -m
keras_resnets.benchmark.backends --worker` under each `KERAS_BACKEND` in
turn and puts the figures side by side. Each worker builds the models in
float32, compiles them as Keras does by default on its backend (XLA
`jax.jit` on JAX; TensorFlow's graph without XLA, as `keras-resnets
benchmark` times it; PyTorch eager), and times `train_on_batch` (one SGD
step) and `predict_on_batch` on random images already in memory: the
median of `repeats` calls after `warmup`, in each of `precisions` (a Keras
dtype policy; `mixed_float16` scales the loss, as `compile` does by
default). The workers import neither TensorFlow (off the TensorFlow backend)
nor torch (off PyTorch), and each runs on its backend's first device (a GPU
where the backend sees one). `peers` (`torch-resnet50`, `torch-resnext50`)
adds torchvision's model of the same name, timed by `torch_peer.py` in
channels_last with autocast in the same precision (float16 with a gradient
scaler), on the GPU where torch sees one: PyTorch's usual fast
configuration, and the ratios against it.
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
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
PEER_CONFIG = "channels_last"


def device_name(backend):
    """"cpu", or "gpu: NAME" for the device `backend` computes on first."""
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return "cpu" if device.platform == "cpu" else f"{device.platform}: {device.device_kind}"
    if backend == "torch":
        import torch

        return f"gpu: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"gpu: {tf.config.experimental.get_device_details(gpus[0]).get('device_name', 'GPU')}" if gpus else "cpu"


def measure(models=DEFAULT_MODELS, image_size=128, batch_size=16, warmup=2, repeats=5, precision="float32"):
    """Times `models` on this process's Keras backend under the dtype
    policy `precision`; returns a dict of the backend, its version, the
    device and `{model: {train_ips, infer_ips, ...}}`."""
    import importlib.metadata

    import keras

    backend = keras.backend.backend()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        figures = {name: _time_model(name, image_size, batch_size, warmup, repeats) for name in models}
    finally:
        keras.config.set_dtype_policy(previous)
    return dict(backend=backend, version=importlib.metadata.version(backend if backend != "torch" else "torch"),
                keras=keras.__version__, device=device_name(backend), precision=precision,
                image_size=image_size, batch_size=batch_size, repeats=repeats, models=figures)


def _time_model(name, image_size, batch_size, warmup, repeats):
    import statistics

    import keras
    import numpy as np

    import keras_resnets

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    # On the device once, as torch_peer.py holds its batch: no host-to-device copy is timed.
    x = keras.ops.convert_to_tensor(rng.standard_normal((batch_size, image_size, image_size, 3)), "float32")
    y = keras.ops.convert_to_tensor(rng.integers(0, 1000, batch_size), "int32")
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
        model.train_on_batch(x, y)  # returns the loss as a number: waits for the device
        train.append(time.perf_counter() - start)
        start = time.perf_counter()
        np.asarray(model.predict_on_batch(x))
        infer.append(time.perf_counter() - start)
    figures = dict(train_ips=batch_size / statistics.median(train), infer_ips=batch_size / statistics.median(infer),
                   warmup_s=compile_s, jit_compile=str(model.jit_compile), policy=model.dtype_policy.name,
                   loss_scaled=type(model.optimizer).__name__ == "LossScaleOptimizer")
    del model
    keras.backend.clear_session()
    return figures


def compare_backends(backends=BACKENDS, models=DEFAULT_MODELS, image_size=128, batch_size=16,
                     warmup=2, repeats=5, precisions=("float32",), peers=(), log=print):
    """Runs `measure` under each of `backends` and `precisions`, one process
    each, in turn, then each of `peers` (names from `peers.TORCH_PEERS`) in
    each precision; returns `{"BACKEND PRECISION": record}`, the peers'
    backend "torchvision" (or "timm"); a record is `{"error": ...}` where a
    run failed (a backend not installed, say)."""
    from keras_resnets.benchmark.peers import TORCH_PEERS
    from keras_resnets.benchmark.run import check_list

    check_list("--backend", backends, BACKENDS)
    check_list("--precision", precisions, PRECISIONS)
    if peers:
        check_list("--peers", peers, tuple(TORCH_PEERS))
    records = {}
    for backend in backends:
        for precision in precisions:
            log(f"timing {', '.join(models)} on {backend}, {precision} ({image_size} px, batch {batch_size}) ...")
            command = [sys.executable, "-m", "keras_resnets.benchmark.backends", "--worker",
                       "--models", ",".join(models), "--image-size", str(image_size),
                       "--batch-size", str(batch_size), "--warmup", str(warmup), "--repeats", str(repeats),
                       "--precision", precision]
            env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                record = {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
            else:
                record = json.loads(lines[-1])
            records[f"{backend} {precision}"] = record
            log(_summary(record))
    for peer in peers:
        _measure_peer(peer, TORCH_PEERS[peer], records, image_size, batch_size, warmup, repeats, precisions, log)
    return records


def _measure_peer(peer, label_and_name, records, image_size, batch_size, warmup, repeats, precisions, log):
    """Adds `peer`'s records, one a precision, to `records` (`PEER_CONFIG`, on
    the GPU where torch sees one): each in a `torch_peer.py` process."""
    from keras_resnets.benchmark.peers import measure_torchvision, peer_library

    label, name = label_and_name
    library = peer_library(label)
    for precision in precisions:
        log(f"timing {label} ({PEER_CONFIG}), {precision} ...")
        key = f"{library} {precision}"
        record = records.setdefault(key, dict(backend=library, precision=precision, models={}))
        try:
            result, = measure_torchvision(name, [precision], image_size, batch_size, warmup, repeats,
                                          threads=len(os.sched_getaffinity(0)), gpu=True,
                                          configs=[PEER_CONFIG], library=library)
        except (RuntimeError, ValueError) as e:
            record.setdefault("errors", {})[name] = str(e).strip().splitlines()[-1][:300]
            log(f"{peer}: failed: {record['errors'][name]}")
            continue
        record.update(version=f"(torch {result.get('torch_version', '?')})",
                      device=result.get("device_name", result["device"]))
        record["models"][name] = dict(train_ips=result["train_ips"], infer_ips=result["infer_ips"])
        log(f"  {label}: train {result['train_ips']:.1f} img/s, infer {result['infer_ips']:.1f} img/s")


def _summary(record):
    if "error" in record:
        return f"  failed: {record['error']}"
    return "  " + "; ".join(f"{m}: train {f['train_ips']:.1f} img/s, infer {f['infer_ips']:.1f} img/s"
                            for m, f in record["models"].items()) + f" ({record['device']})"


def _render(rows):
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def format_table(records):
    """One row per backend and precision: train and inference img/s of each
    model, ResNeXt-50 / ResNet-50 (training) where both ran, and the device;
    then, where torchvision peers ran, each Keras row over torchvision's row
    of the same precision, model by model."""
    models = []
    for record in records.values():
        models += [m for m in record.get("models", {}) if m not in models]
    header = ["backend"] + [f"{m} {what}" for m in models for what in ("train", "infer")]
    both = {"resnet50", "resnext50_32x4d"} <= set(models)
    if both:
        header.append("ResNeXt/ResNet train")
    header.append("device")
    rows = [header]
    for key, record in records.items():
        if "error" in record or not record["models"]:
            rows.append([key, f"failed: {record.get('error') or next(iter(record['errors'].values()))}"])
            continue
        figures = record["models"]
        row = [f"{record['backend']} {record.get('version', '?')} {record['precision']}"]
        for m in models:
            row += [f"{figures[m][what]:.1f}" if m in figures else "-" for what in ("train_ips", "infer_ips")]
        if both:
            ratio = (figures["resnext50_32x4d"]["train_ips"] / figures["resnet50"]["train_ips"]
                     if {"resnet50", "resnext50_32x4d"} <= set(figures) else None)
            row.append("-" if ratio is None else f"{ratio:.2f}")
        row.append(record.get("device", "?"))
        rows.append(row)
    text = _render(rows)
    peers = {r["precision"]: r for r in records.values() if r.get("backend") in ("torchvision", "timm") and r["models"]}
    ratios = [["ours / torchvision " + PEER_CONFIG] + [f"{m} {what}" for m in models for what in ("train", "infer")]]
    for record in records.values():
        peer = peers.get(record.get("precision"))
        if "error" in record or record.get("backend") in ("torchvision", "timm") or peer is None:
            continue
        row = [f"{record['backend']} {record['precision']}"]
        for m in models:
            ours, theirs = record["models"].get(m), peer["models"].get(m)
            row += [f"{ours[what] / theirs[what]:.2f}" if ours and theirs else "-"
                    for what in ("train_ips", "infer_ips")]
        ratios.append(row)
    if len(ratios) > 1:
        text += "\n\n" + _render(ratios)
    return text


def _parser():
    p = argparse.ArgumentParser(prog="python -m keras_resnets.benchmark.backends", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default=",".join(BACKENDS), help="comma-separated (default: all three)")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--precision", default="float32", help=f"comma-separated from {', '.join(PRECISIONS)} "
                   "(default: float32)")
    p.add_argument("--peers", default="", help="comma-separated torchvision peers (torch-resnet50, "
                   "torch-resnext50), each timed in channels_last with autocast (default: none)")
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
    precisions = [p for p in args.precision.split(",") if p]
    if args.worker:
        print(json.dumps(measure(precision=precisions[0], **settings)), flush=True)
        return 0
    try:
        records = compare_backends([b for b in args.backend.split(",") if b], precisions=precisions,
                                   peers=[p for p in args.peers.split(",") if p], **settings)
    except UsageError as e:
        _parser().error(str(e))
    print()
    print(format_table(records))
    if args.json:
        write_json(records, args.json)
    return 0 if all("error" not in r and "errors" not in r for r in records.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
