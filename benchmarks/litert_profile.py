"""Where a LiteRT file's batch-1 time goes, kernel by kernel: the CPU time of
XNNPACK's microkernels, sampled by Linux `perf`, beside the MACs of the
operators that run them.

Each model (random weights) is exported by `keras_resnets.export.tflite`
(`--quantize`, default int8; `--group-width` as `keras-resnets export` takes
it), then timed in a process of its own: warm-up calls, then `perf record`
attached to that process for `--calls` calls at batch 1 with `--threads`
threads. The samples are summed by kernel family, as XNNPACK names its
microkernels: `gemm` runs the 1x1 stride-1 convolutions and the classifier
(one matrix product each), `igemm` every other convolution (3x3, grouped,
strided, the stem: an indirect matrix product), then the element-wise
kernels (`vadd` the residual additions) and the rest (the thread pool,
the interpreter). Figures are CPU milliseconds a call, summed over the
threads, and GMACs as the file computes them (a grouped convolution merged
by `--group-width` counts its zeros). The last line gives each family's
ratio, second model over first.

    python benchmarks/litert_profile.py            # ResNet-50 against ResNeXt-50 32x4d, int8, 224 px
    python benchmarks/litert_profile.py --group-width 64      # on an AMX CPU (see docs/performance.md)
    python benchmarks/litert_profile.py --models resnet18,resnet50 --quantize float32

Needs `perf` (Debian: `apt-get install linux-perf`) with the right to
sample its own processes (root, or `kernel.perf_event_paranoid` <= 1). The
sampling costs a few percent of speed, alike for every file. State the CPU
(printed first) beside every figure.
"""

import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

FREQUENCY = 4000  # samples a second a thread
FAMILIES = (  # (name, pattern on the symbol), first match wins
    ("igemm", r"_igemm_"),
    ("gemm", r"_gemm_"),
    ("dwconv", r"_dwconv_"),
    ("vadd", r"_vadd"),
    ("clamp", r"_vclamp_"),
    ("pad", r"_pad_"),
    ("pool", r"maxpool|avgpool|_rsum|_rdsum"),
    ("runtime", r"."),
)


def _child(path, out, calls, threads, image_size):
    """Times `calls` invokes of `path` with perf attached; prints the wall ms a call."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], [1, image_size, image_size, 3])
    interpreter.allocate_tensors()
    x = np.random.default_rng(0).uniform(0, 255, (1, image_size, image_size, 3)).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], x)
    for _ in range(10):
        interpreter.invoke()
    perf = subprocess.Popen(["perf", "record", "-q", "-F", str(FREQUENCY), "-p", str(os.getpid()), "-o", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # perf attaches; an idle process gives no samples
    started = time.perf_counter()
    for _ in range(calls):
        interpreter.invoke()
    wall = time.perf_counter() - started
    perf.send_signal(signal.SIGINT)
    perf.wait()
    print(f"WALL_MS {wall / calls * 1e3:.4f}")


def kernel_ms(data, calls):
    """{family: CPU ms a call} from a `perf record` file."""
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "-n", "--sort", "symbol", "--stdio",
                             "-g", "none"], capture_output=True, text=True, check=True).stdout
    totals = collections.Counter()
    for line in report.splitlines():
        fields = line.split()
        if line.startswith("#") or len(fields) < 4 or not fields[0].endswith("%"):
            continue
        family = next(name for name, pattern in FAMILIES if re.search(pattern, fields[3]))
        totals[family] += int(fields[1]) / FREQUENCY / calls * 1e3
    return totals


def file_gmacs(path):
    """{family: GMACs} of the file's convolutions and fully connected layers, by the kernel that runs them."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    shapes = {t["index"]: t["shape"] for t in interpreter.get_tensor_details()}
    macs = collections.Counter()
    for op in interpreter._get_ops_details():
        name = op["op_name"]
        if name not in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D"):
            continue
        source, kernel = shapes[op["inputs"][0]], shapes[op["inputs"][1]]
        output = shapes[op["outputs"][0]]
        if name == "FULLY_CONNECTED":
            macs["gemm"] += np.prod(output) * kernel[-1]
        elif name == "DEPTHWISE_CONV_2D":
            macs["dwconv"] += np.prod(output) * kernel[1] * kernel[2]
        else:
            pointwise = kernel[1] == kernel[2] == 1 and tuple(source[1:3]) == tuple(output[1:3])
            macs["gemm" if pointwise else "igemm"] += np.prod(output) * np.prod(kernel[1:])
    return {family: float(value) / 1e9 for family, value in macs.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,resnext50_32x4d")
    parser.add_argument("--quantize", default="int8", choices=("float32", "float16", "dynamic", "int8"))
    parser.add_argument("--group-width", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--child", nargs=2, metavar=("TFLITE", "PERF_DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(*args.child, args.calls, args.threads, args.image_size)
    if not shutil.which("perf"):
        sys.exit("litert_profile needs Linux `perf` (Debian: apt-get install linux-perf).")

    import keras_resnets
    from keras_resnets.benchmark.run import machine_info
    from keras_resnets.export import tflite

    machine = machine_info()
    print(f"CPU: {machine['cpu']}, flags {' '.join(machine['cpu_flags'])}; {args.quantize}, {args.image_size} px, batch 1, "
          f"{args.threads} threads, {args.calls} calls, group width {args.group_width}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            model = keras_resnets.get_model(name, input_shape=(args.image_size, args.image_size, 3))
            images = np.random.default_rng(0).uniform(-1, 1, (8, args.image_size, args.image_size, 3))
            path = os.path.join(folder, f"{name}.tflite")
            quantized = args.quantize in ("int8", "dynamic")
            tflite(model, path, quantize=None if args.quantize == "float32" else args.quantize,
                   representative_data=images.astype("float32") if args.quantize == "int8" else None,
                   calibration_images=8, group_width=args.group_width if quantized else None)
            data = os.path.join(folder, f"{name}.perf")
            child = subprocess.run([sys.executable, __file__, "--child", path, data, "--calls", str(args.calls),
                                    "--threads", str(args.threads), "--image-size", str(args.image_size)],
                                   capture_output=True, text=True)
            wall = re.search(r"WALL_MS (\S+)", child.stdout)
            if child.returncode or not wall:
                sys.exit(f"{name}: the timed process failed:\n{child.stderr[-2000:]}")
            if not os.path.exists(data):
                sys.exit("perf recorded nothing: it needs the right to sample this user's processes "
                         "(root, or `sysctl kernel.perf_event_paranoid=1`).")
            rows.append((name, float(wall.group(1)), kernel_ms(data, args.calls), file_gmacs(path)))

    families = [name for name, _ in FAMILIES if any(row[2].get(name, 0) >= 0.01 for row in rows)]
    print(f"\n{'model':<20}{'wall ms':>9}{'CPU ms':>8}" + "".join(f"{f:>9}" for f in families)
          + "   GMACs: " + " ".join(f"{f}" for f in ("gemm", "igemm")))
    for name, wall, ms, gmacs in rows:
        print(f"{name:<20}{wall:>9.2f}{sum(ms.values()):>8.2f}" + "".join(f"{ms.get(f, 0):>9.3f}" for f in families)
              + f"   {gmacs.get('gemm', 0):.2f} {gmacs.get('igemm', 0):.2f}")
    if len(rows) >= 2:
        (_, wall0, ms0, _), (_, wall1, ms1, _) = rows[0], rows[1]
        print(f"{'second / first':<20}{wall1 / wall0:>9.3f}{sum(ms1.values()) / sum(ms0.values()):>8.3f}"
              + "".join(f"{ms1.get(f, 0) / ms0[f]:>9.3f}" if ms0.get(f) else f"{'':>9}" for f in families))


if __name__ == "__main__":
    main()
