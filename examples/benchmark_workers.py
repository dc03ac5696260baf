"""Training throughput on one worker and on two worker processes of one host.

    python examples/benchmark_workers.py                 # ResNet-20, digits at 32 px, batch 128, 3 epochs

Runs `keras-resnets train` three ways on the digits and prints the training
images per second of each (the median epoch after the first, without
validation, as `summary.json` reports it):

- `fit`: one process, `--strategy none` (`model.fit`);
- `1 worker`: one process, `--strategy multiworker` with a one-worker
  `TF_CONFIG` (the `strategy.run` training step, no peer);
- `2 workers`: two processes on 127.0.0.1, each training half of every global
  batch, batch norm synchronized;
- `2 workers, local BN` (with `--local-batchnorm`): the same with batch norm
  per worker (`train --local-batchnorm`: one all-reduce a layer, of the
  moving statistics, instead of two).

The global batch is the same in all three. On a 2-core machine the two
workers share the cores, so no speed-up is expected: the numbers record the
cost of the distributed step and of the all-reduces between processes.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run(workers, strategy, args, output, timeout, extra=()):
    """Images per second of one training run with `workers` processes."""
    hosts = [f"127.0.0.1:{p}" for p in free_ports(workers)]
    train = [sys.executable, "-m", "keras_resnets.cli", "train", "--model", args.model,
             "--image-size", str(args.image_size), "--batch-size", str(args.batch_size),
             "--epochs", str(args.epochs), "--precision", args.precision, "--strategy", strategy,
             "--output", output, "--run-name", "run", *extra]
    procs = []
    try:
        for index in range(workers):
            env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
            if strategy == "multiworker":
                env["TF_CONFIG"] = json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})
            log = open(os.path.join(output, f"worker{index}.txt"), "w")
            procs.append(subprocess.Popen(train, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
            log.close()
        deadline = time.time() + timeout
        for p in procs:
            if p.wait(timeout=max(1, deadline - time.time())) != 0:
                with open(os.path.join(output, "worker0.txt")) as f:
                    raise RuntimeError(f"a worker failed:\n{f.read()[-2000:]}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    with open(os.path.join(output, "run", "summary.json")) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch")
    parser.add_argument("--epochs", type=int, default=3, help="at least 2: the first epoch (tracing) is not timed")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per run")
    parser.add_argument("--local-batchnorm", action="store_true",
                        help="also two workers with `train --local-batchnorm`")
    args = parser.parse_args()

    runs = [("fit", 1, "none", ()), ("1 worker", 1, "multiworker", ()), ("2 workers", 2, "multiworker", ())]
    if args.local_batchnorm:
        runs.append(("2 workers, local BN", 2, "multiworker", ("--local-batchnorm",)))
    rows = []
    for label, workers, strategy, extra in runs:
        with tempfile.TemporaryDirectory() as output:
            summary = run(workers, strategy, args, output, args.timeout, extra)
        rows.append((label, workers, summary["replicas"], summary["train_images_per_second"]))
        print(f"{label:10s} done: {summary['train_images_per_second']} images/s", flush=True)
    base = rows[0][3]
    print(f"\n{args.model}, digits at {args.image_size} px, global batch {args.batch_size}, "
          f"{args.precision}, {os.cpu_count()} CPU cores")
    print(f"{'run':20s} {'processes':>9s} {'replicas':>8s} {'images/s':>9s} {'vs fit':>7s}")
    for label, workers, replicas, ips in rows:
        print(f"{label:20s} {workers:9d} {replicas:8d} {ips:9.1f} {ips / base:7.2f}")


if __name__ == "__main__":
    main()
