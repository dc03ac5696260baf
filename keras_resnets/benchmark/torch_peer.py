"""Measures one torchvision (or timm) model, in its own process (no TensorFlow here).

Run by `peers.measure_torchvision`: `python torch_peer.py '{"name": ...}'`;
prints one JSON list on its last line, one dict per configuration and
precision.

The configurations: "eager" (torchvision as written: NCHW tensors, eager
mode), "channels_last" (NHWC memory, what PyTorch's performance guide
advises for convolutions on CPUs and GPUs; with bfloat16 autocast, its usual
fast configuration) and "compile" (channels_last and `torch.compile`'s
default inductor backend; the compilation is in the warm-up, not timed).
"""

import json
import sys
import time

import torch
import torchvision

from timing import PeakRss, median_seconds, release_memory, rss_mib  # this folder is on sys.path


# Keras dtype policy -> torch autocast dtype (None: float32, no autocast).
AUTOCAST = {"float32": None, "mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}
CONFIGS = ("eager", "channels_last", "compile")


def measure(model_name, precision, image_size, batch_size, warmup, repeats, classes,
            device="cpu", config="eager", library="torchvision"):
    release_memory()
    base = rss_mib()
    torch.manual_seed(0)
    if library == "timm":
        import timm

        model = timm.create_model(model_name, pretrained=False, num_classes=classes).to(device)
    else:
        model = getattr(torchvision.models, model_name)(weights=None, num_classes=classes).to(device)
    x = torch.randn(batch_size, 3, image_size, image_size).to(device)
    if config != "eager":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if config == "compile":
        model = torch.compile(model)
        warmup = max(warmup, 1)  # the compilation happens in the first call
    y = torch.randint(0, classes, (batch_size,)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    dtype = AUTOCAST[precision]
    # float16 training scales the loss, as Keras's mixed_float16 does.
    scaler = torch.amp.GradScaler(device, enabled=dtype == torch.float16)

    def autocast():
        return torch.autocast(device, dtype=dtype or torch.bfloat16, enabled=dtype is not None)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = torch.nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.item()  # waits for the device

    def infer(images):
        with torch.inference_mode(), autocast():
            return model(images).float().cpu().numpy()

    model.train()
    with PeakRss() as gauge:
        cpu, wall = time.process_time(), time.perf_counter()
        train_s, train_times = median_seconds(train_step, warmup, repeats)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    model.eval()
    infer_s, _ = median_seconds(lambda: infer(x), warmup, repeats)
    b1_s, _ = median_seconds(lambda: infer(x[:1]), warmup, repeats)
    return dict(
        precision=precision, config=config, train_ips=batch_size / train_s, train_step_times=train_times,
        infer_ips=batch_size / infer_s, infer_b1_ms=1e3 * b1_s,
        train_peak_rss_mib=gauge.peak, train_rss_increase_mib=gauge.peak - base,
        train_cpu_busy=cpu / wall / torch.get_num_threads(),  # warm-up included
    )


def main(args):
    torch.set_num_threads(args["threads"])
    device = "cuda" if args.get("gpu") and torch.cuda.is_available() else "cpu"
    results = [
        dict(measure(args["name"], p, args["image_size"], args["batch_size"], args["warmup"],
                     args["repeats"], args["classes"], device, config, args.get("library", "torchvision")),
             device="gpu" if device == "cuda" else "cpu", torch_version=torch.__version__,
             device_name=f"gpu: {torch.cuda.get_device_name(0)}" if device == "cuda" else "cpu")
        for config in args.get("configs", ["eager"])
        for p in args["precisions"]
    ]
    print(json.dumps(results))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
