"""Where a training step's time goes, kernel by kernel: keras_resnets on
TensorFlow against torchvision on PyTorch, both through oneDNN's verbose log.

Each (framework, model) runs in a process of its own with `ONEDNN_VERBOSE=1`
(torch must not share a process with TensorFlow): a few warm-up steps, then
`--steps` timed training steps (one SGD-with-momentum step on a batch already
in memory, as `keras-resnets benchmark` times it) whose oneDNN primitives are
summed by kind, direction, data type and implementation (the `impl` says
which kernels run: `brg_*:avx512_core_amx_bf16` on AMX, `*_bf16` on
AVX512-BF16, `jit:avx512_core` in float32, `ref` the slow reference). What
is left of the step's wall time ran outside oneDNN: TensorFlow's or PyTorch's
own kernels (element-wise operations, casts, the optimizer) and the
frameworks' overhead.

    python benchmarks/onednn_profile.py                      # ResNet-50, mixed_bfloat16, both frameworks
    python benchmarks/onednn_profile.py --models resnet50,resnext50_32x4d --precision float32
    python benchmarks/onednn_profile.py --frameworks tensorflow --top 30

torch: `pip install torch torchvision` (see README's parity tests); without
it the torch rows are left out with a note. State the CPU (printed first)
beside every figure. The log itself costs a little: the verbose steps run a
few percent slower than unlogged ones, alike for both frameworks.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import time

MARK = "=== onednn_profile "


def _tensorflow_steps(model_name, precision, image_size, batch_size, warmup, steps, inter_op=0,
                      mode="train"):
    import tensorflow as tf

    if inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    from keras_resnets.benchmark.measure import KerasCase
    from keras_resnets.benchmark.run import _ours

    case = KerasCase(model_name, _ours(model_name), precision, image_size, batch_size).prepare(warmup)
    if mode == "infer":
        return lambda: case.model.predict_on_batch(case.x)
    return lambda: case.model.train_on_batch(case.x, case.y)


def _torch_steps(model_name, precision, image_size, batch_size, warmup, steps, inter_op=0, mode="train"):
    import torch
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, model_name)(weights=None, num_classes=1000)
    model = model.to(memory_format=torch.channels_last).train(mode == "train")
    x = torch.randn(batch_size, 3, image_size, image_size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch_size,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    enabled = precision == "mixed_bfloat16"

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    def infer():  # as `keras-resnets benchmark` times torch's inference
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            return model(x)

    if mode == "infer":
        step = infer
    for _ in range(warmup):
        step()
    return step


def worker(args):
    """In the profiled process: warm up, then the timed steps between marks."""
    if args["framework"] == "torch":
        import torch

        torch.set_num_threads(args["threads"])
        step = _torch_steps(**args["model"])
    else:
        step = _tensorflow_steps(**args["model"])
    step()  # one more, untimed: the log of the first calls holds creation
    times = []
    print(f"{MARK}start", flush=True)
    for _ in range(args["model"]["steps"]):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    print(f"{MARK}end {json.dumps(times)}", flush=True)


def parse(lines):
    """Sums the `exec` lines of a oneDNN verbose log (v1 format):
    {(kind, direction, dtypes, impl): [calls, milliseconds]}."""
    totals = collections.defaultdict(lambda: [0, 0.0])
    for line in lines:
        if not line.startswith("onednn_verbose") or ",exec," not in line:
            continue
        parts = line.strip().split(",")
        i = parts.index("exec")
        kind, impl, direction, memory = parts[i + 2], parts[i + 3], parts[i + 4], parts[i + 5]
        try:
            ms = float(parts[-1])
        except ValueError:
            continue
        # "src:bf16::blocked:acdb::f0 wei:..." -> the source's type (and the
        # destination's, for a reorder: where the casts are).
        types = {d.split(":")[0]: d.split(":")[1] for d in memory.split() if d.count(":") >= 2}
        dtypes = types.get("src", types.get("diff_dst", "?"))
        if kind == "reorder":
            dtypes = f"{types.get('src', '?')}->{types.get('dst', '?')}"
        entry = totals[(kind, direction, dtypes, impl)]
        entry[0] += 1
        entry[1] += ms
    return dict(totals)


def profile(framework, model, precision, image_size, batch_size, warmup, steps, threads, inter_op=0,
            mode="train"):
    """Runs one (framework, model) in a subprocess; returns its kernels and step times."""
    env = dict(os.environ, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="3")
    args = dict(framework=framework, threads=threads,
                model=dict(model_name=model, precision=precision, image_size=image_size,
                           batch_size=batch_size, warmup=warmup, steps=steps, inter_op=inter_op,
                           mode=mode))
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(args)], env=env,
                         capture_output=True, text=True)
    lines = out.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(f"{MARK}start")]
    ends = [i for i, line in enumerate(lines) if line.startswith(f"{MARK}end")]
    if out.returncode != 0 or not starts or not ends:
        raise RuntimeError(f"{framework} {model} failed:\n{out.stderr[-2000:]}")
    times = json.loads(lines[ends[0]].split(" ", 3)[3])
    return parse(lines[starts[0] + 1:ends[0]]), times


def _group(kind, direction):
    direction = direction.replace("forward_training", "fwd").replace("forward_inference", "fwd")
    direction = direction.replace("backward_data", "bwd data").replace("backward_weights", "bwd weights")
    return f"{kind} {direction.replace('backward', 'bwd')}"


def report(name, kernels, times, steps, top):
    """Per step: each group of kernels (kind and direction), its share of the
    step, and the `top` single (kind, direction, types, impl) rows."""
    step_ms = 1e3 * sorted(times)[len(times) // 2]
    groups = collections.defaultdict(lambda: [0, 0.0, set()])
    for (kind, direction, dtypes, impl), (calls, ms) in kernels.items():
        g = groups[_group(kind, direction)]
        g[0] += calls
        g[1] += ms
        g[2].add(impl.split(":")[0] + (":" + impl.split(":")[1] if ":" in impl else ""))
    total = sum(ms for _, ms, _ in groups.values()) / steps
    lines = [f"## {name}: step {step_ms:.0f} ms (median of {len(times)}), oneDNN {total:.0f} ms "
             f"({100 * total / step_ms:.0f}%), outside oneDNN {step_ms - total:.0f} ms",
             f"{'kernels':28} {'calls':>6} {'ms':>8} {'% step':>7}  implementations"]
    for key, (calls, ms, impls) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        lines.append(f"{key:28} {calls / steps:6.0f} {ms / steps:8.1f} {100 * ms / steps / step_ms:6.1f}%  "
                     + ", ".join(sorted(impls)))
    lines.append(f"{'outside oneDNN':28} {'':>6} {step_ms - total:8.1f} {100 * (1 - total / step_ms):6.1f}%")
    lines.append("")
    lines.append(f"top {top}: kind, direction, types, implementation")
    rows = sorted(kernels.items(), key=lambda kv: -kv[1][1])[:top]
    for (kind, direction, dtypes, impl), (calls, ms) in rows:
        lines.append(f"  {ms / steps:8.1f} ms {calls / steps:5.0f}x  {kind} {direction} {dtypes} {impl}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--frameworks", default="tensorflow,torch")
    parser.add_argument("--models", default="resnet50")
    parser.add_argument("--precision", default="mixed_bfloat16", choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--tf-inter-op", type=int, default=0,
                        help="TensorFlow's inter-op threads (default: its own, one per core, "
                        "where two kernels may run at once and each one's time includes the "
                        "other's; 1 runs one at a time, so that the kernels add up to the step)")
    parser.add_argument("--mode", default="train", choices=["train", "infer"],
                        help="a training step (default) or an inference batch (Keras "
                        "`predict_on_batch`; torch `inference_mode`), as the benchmark times them")
    parser.add_argument("--json", help="also write the kernels to this file")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    for arg in ("image_size", "batch_size", "steps", "threads"):
        if getattr(args, arg) < 1:
            parser.error(f"--{arg.replace('_', '-')} must be >= 1; received {getattr(args, arg)}")
    frameworks = [f for f in args.frameworks.split(",") if f]
    bad = [f for f in frameworks if f not in ("tensorflow", "torch")]
    if bad or not frameworks:
        parser.error(f"--frameworks must be a comma-separated list of tensorflow, torch; received {args.frameworks!r}")

    with open("/proc/cpuinfo") as f:
        info = f.read()
    cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    wanted = ("avx512_bf16", "amx_bf16", "amx_int8")
    print(f"CPU: {cpu} ({' '.join(f for f in wanted if f in flags) or 'no bf16 hardware'}), "
          f"{args.threads} threads, load {os.getloadavg()[0]:.1f}; {args.image_size} px, batch "
          f"{args.batch_size}, {args.precision}, {args.mode}, {args.steps} logged steps after {args.warmup + 1} warm-up\n")
    record = {}
    for model in args.models.split(","):
        for framework in frameworks:
            name = f"{'keras_resnets' if framework == 'tensorflow' else 'torchvision (channels_last)'} {model}"
            try:
                kernels, times = profile(framework, model, args.precision, args.image_size,
                                         args.batch_size, args.warmup, args.steps, args.threads,
                                         args.tf_inter_op, args.mode)
            except RuntimeError as e:
                print(f"## {name}: not measured: {str(e).splitlines()[-1]}\n")
                continue
            print(report(name, kernels, times, args.steps, args.top), "\n", flush=True)
            record[name] = dict(times=times, kernels=[[*k, *v] for k, v in kernels.items()])
    if args.json:
        tmp = args.json + ".partial"
        with open(tmp, "w") as f:
            json.dump(dict(cpu=cpu, flags=flags, settings=vars(args), runs=record), f, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
