"""The `keras-resnets benchmark` subcommand."""

import argparse

from keras_resnets.benchmark.peers import DEFAULT_TORCH_CONFIGS, TORCH_CONFIGS, TORCH_PEERS
from keras_resnets.benchmark.run import DEFAULT_MODELS, DEFAULT_PEERS, MINIMUMS, PEERS, PRECISIONS, check_list
from keras_resnets.models.registry import check_model_name
from keras_resnets.utils.validation import UsageError, check_new_file, int_at_least

IMAGE_SIZE = 128  # the training benchmark's default; --litert's is its own (224)
BATCH_SIZE, WARMUP, MATMUL_SIZE = 16, 1, 4096  # the defaults of --batch-size, --warmup, --matmul-size

EXAMPLES = """examples:
  keras-resnets benchmark                                   # ResNet-50, ResNeXt-50, ResNet-50 v2 vs every peer
  keras-resnets benchmark --models resnet50 --peers keras-resnet50 --precision float32
  keras-resnets benchmark --repeats 7 --json benchmark.json
  keras-resnets benchmark --models resnet50 --peers torch-resnet50 --torch-configs channels_last,compile
  keras-resnets benchmark --models resnet50,resnext50_32x4d --peers none --by-layer   # where the time goes
  keras-resnets benchmark --litert                          # LiteRT float32/float16/dynamic/int8, batch 1, 224 px

columns: train img/s (one SGD step per batch, compiled, data in memory), infer img/s (batch)
and batch-1 ms, each as a fraction of the measured matmul peak of its precision
(2 x MACs x img/s, x3 for training); train RSS: peak resident memory during the training
steps, +RSS: that minus the memory before the model was built; CPU busy: process CPU time
over wall time x threads during the training steps (well below 100%: other processes
took the cores, the figures are disturbed). torchvision runs in each of --torch-configs;
a ratio against it takes its fastest configuration (the "against" column).
"""


def _names(text):
    return [] if text.strip().lower() == "none" else [t.strip() for t in text.split(",") if t.strip()]


def add_parser(subparsers):
    """Adds `benchmark` to the `keras-resnets` subcommands."""
    p = subparsers.add_parser(
        "benchmark",
        help="training and inference speed against the peers and the machine's peak",
        description="Measures keras_resnets models and their alternatives side by side in one "
        "run: images/second, fraction of the matmul peak, memory; prints tables, writes JSON.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--models", type=_names, default=list(DEFAULT_MODELS),
                   help=f"comma-separated registered names (default: {','.join(DEFAULT_MODELS)})")
    p.add_argument("--peers", type=_names, default=list(DEFAULT_PEERS),
                   help=f"comma-separated, or none (default: {','.join(DEFAULT_PEERS)})")
    p.add_argument("--precision", type=_names, default=None,
                   help="comma-separated dtype policies (default: float32,mixed_bfloat16, "
                   "and mixed_float16 on a GPU)")
    p.add_argument("--image-size", type=int_at_least(MINIMUMS["image_size"]), default=None,
                   help=f"default: {IMAGE_SIZE} (224 with --litert)")
    p.add_argument("--batch-size", type=int_at_least(MINIMUMS["batch_size"]), default=BATCH_SIZE,
                   help=f"default: {BATCH_SIZE}")
    p.add_argument("--warmup", type=int_at_least(MINIMUMS["warmup"]), default=WARMUP,
                   help=f"untimed calls first (default: {WARMUP})")
    p.add_argument("--repeats", type=int_at_least(MINIMUMS["repeats"]), default=5,
                   help="timed calls, median (default: 5)")
    p.add_argument("--matmul-size", type=int_at_least(MINIMUMS["matmul_size"]), default=MATMUL_SIZE,
                   help=f"peak measurement (default: {MATMUL_SIZE})")
    p.add_argument("--torch-configs", type=_names, default=list(DEFAULT_TORCH_CONFIGS),
                   help="how the torchvision peers run, comma-separated from "
                   f"{','.join(TORCH_CONFIGS)} (default: {','.join(DEFAULT_TORCH_CONFIGS)}; "
                   "compile: channels_last + torch.compile, minutes of compilation per model)")
    p.add_argument("--no-litert", action="store_true", help="skip the LiteRT latency")
    p.add_argument("--no-saved-model", action="store_true",
                   help="skip the SavedModel timing (keras_resnets' models exported by `export.saved_model`, "
                   "frozen, in each precision, and loaded back)")
    p.add_argument("--litert", action="store_true",
                   help="instead, the LiteRT batch-1 latency of --models (default: "
                   "resnet18,resnet50,resnext50_32x4d,seresnext50_32x4d) exported as float32, float16, "
                   "dynamic and int8, timed in the same rounds, with the int8 speed-up and the time per MAC "
                   "against ResNet-50 (--repeats rounds; keras_resnets.benchmark.litert)")
    p.add_argument("--group-width", type=int_at_least(1),
                   help="--litert: export the int8 and dynamic files with grouped convolutions merged to "
                   "this many channels a group, as `export --group-width` does (default: export's, 8 for int8)")
    p.add_argument("--by-layer", action="store_true",
                   help="also time each model's convolutions alone, by shape (float32)")
    p.add_argument("--json", help="also write the record to this JSON file")
    p.add_argument("--backend", type=_names, default=None,
                   help="comma-separated Keras backends (tensorflow, jax, torch): instead, time --models "
                   "(default: resnet50,resnext50_32x4d) on each, one process per backend and --precision "
                   "(default: float32), on its first device (a GPU where it sees one); with --peers "
                   "torch-resnet50,torch-resnext50, beside torchvision in channels_last with autocast "
                   "(keras_resnets.benchmark.backends)")
    p.set_defaults(func=_benchmark, validate=validate)


# The options that only the training benchmark reads, with their defaults
# (those of add_parser): given to --litert or --backend, they would be
# ignored, so they are refused.
TRAINING_ONLY = {"--peers": ("peers", list(DEFAULT_PEERS)), "--precision": ("precision", None),
                 "--matmul-size": ("matmul_size", MATMUL_SIZE),
                 "--torch-configs": ("torch_configs", list(DEFAULT_TORCH_CONFIGS)),
                 "--no-litert": ("no_litert", False), "--by-layer": ("by_layer", False),
                 "--no-saved-model": ("no_saved_model", False)}
BATCHED = {"--batch-size": ("batch_size", BATCH_SIZE), "--warmup": ("warmup", WARMUP)}  # --backend reads them
BACKEND_READS = ("--peers", "--precision")  # --backend reads these too (PyTorch peers only)


def _check_mode(args):
    """--litert and --backend are benchmarks of their own: refuses them
    together, and the options of the training benchmark that they would
    ignore."""
    if args.litert and args.backend:
        raise UsageError(f"`--litert` and `--backend` are two benchmarks: give one; received --litert and "
                         f"--backend={','.join(args.backend)}.")
    if args.group_width is not None and not args.litert:
        raise UsageError(f"`--group-width` is an option of --litert (the exported files); received "
                         f"--group-width={args.group_width} without --litert.")
    mode = "--litert" if args.litert else "--backend" if args.backend else None
    if mode is None:
        return
    ignored = {option: value for option, value in TRAINING_ONLY.items()
               if args.litert or option not in BACKEND_READS}
    ignored.update(BATCHED if args.litert else {})
    reads = ("--models, --image-size, --repeats, --group-width and --json (batch 1)" if args.litert else
             "--models, --image-size, --batch-size, --warmup, --repeats, --precision, --peers (PyTorch) "
             "and --json")
    for option, (dest, default) in ignored.items():
        value = getattr(args, dest)
        if value != default:
            shown = "" if isinstance(value, bool) else "=" + (",".join(value) if isinstance(value, list) else str(value))
            raise UsageError(f"`{option}` is an option of the training benchmark, which {mode} does not run; "
                             f"received {option}{shown} with {mode}, which reads {reads}.")


def validate(args):
    """Checks every argument before the benchmark runs: the model, peer and
    precision names, that the --json file can be written, and that --litert
    or --backend is not given options it would ignore."""
    _check_mode(args)
    if not args.models:
        raise UsageError(f"`--models` must be a non-empty list of registered names; received --models={args.models}.")
    for name in args.models:
        check_model_name("--models", name)
    if args.peers:
        check_list("--peers", args.peers, PEERS)
    if args.precision is not None:
        check_list("--precision", args.precision, PRECISIONS)
    check_list("--torch-configs", args.torch_configs, TORCH_CONFIGS)
    if args.json:
        check_new_file("--json", args.json)
    if args.backend:
        from keras_resnets.benchmark.backends import BACKENDS

        check_list("--backend", args.backend, BACKENDS)
        others = [p for p in _backend_peers(args) if p not in TORCH_PEERS]
        if others:
            raise UsageError(f"`--peers` with --backend takes the PyTorch peers ({', '.join(TORCH_PEERS)}), "
                             f"which run in processes of their own; received --peers={','.join(args.peers)}.")


def _backend_peers(args):
    """--backend's peers: none unless --peers is given (the training
    benchmark's default peers are Keras models on TensorFlow)."""
    return [] if args.peers == list(DEFAULT_PEERS) else args.peers


def _benchmark(args):
    if args.backend:
        return _by_backend(args)
    if args.litert:
        return _litert(args)
    from keras_resnets.benchmark.run import format_report, run_benchmark, write_json

    record = run_benchmark(
        models=args.models, peers=args.peers, precisions=args.precision,
        image_size=args.image_size or IMAGE_SIZE, batch_size=args.batch_size, warmup=args.warmup,
        repeats=args.repeats, matmul_size=args.matmul_size, litert=not args.no_litert,
        torch_configs=args.torch_configs, serving=not args.no_saved_model,
        log=lambda line: print(line, flush=True),
    )
    if args.by_layer:
        record["by_layer"] = _by_layer(record, args.repeats)
    print()
    print(format_report(record))
    if args.json:
        write_json(record, args.json)
        print(f"written to {args.json}")
    return 0


def _by_layer(record, repeats):
    import keras_resnets
    from keras_resnets.benchmark.layers import format_conv_table, time_conv_layers

    size, batch = record["settings"]["image_size"], record["settings"]["batch_size"]
    tables = {}
    for name in record["settings"]["models"]:
        model = keras_resnets.get_model(name, input_shape=(size, size, 3))
        tables[name] = time_conv_layers(model, size, batch, repeats)
        print()
        print(format_conv_table(name, tables[name]))
    return tables


def _by_backend(args):
    from keras_resnets.benchmark import backends

    # ResNet-50 and ResNeXt-50 unless --models names others.
    models = backends.DEFAULT_MODELS if args.models == list(DEFAULT_MODELS) else args.models
    records = backends.compare_backends(args.backend, models, args.image_size or IMAGE_SIZE, args.batch_size,
                                        max(1, args.warmup), args.repeats, precisions=args.precision or ["float32"],
                                        peers=_backend_peers(args), log=lambda line: print(line, flush=True))
    print()
    print(backends.format_table(records))
    if args.json:
        backends.write_json(records, args.json)
        print(f"written to {args.json}")
    return 0 if all("error" not in r and "errors" not in r for r in records.values()) else 1


def _litert(args):
    from keras_resnets.benchmark import litert
    from keras_resnets.benchmark.run import machine_info, write_json

    models = litert.DEFAULT_MODELS if args.models == list(DEFAULT_MODELS) else args.models
    record = litert.litert_table(models, args.image_size or litert.DEFAULT_IMAGE_SIZE, rounds=args.repeats,
                                 log=lambda line: print(line, flush=True), group_width=args.group_width)
    record["machine"] = machine_info()
    print()
    machine = record["machine"]
    print(litert.format_litert_table(record, cpu=f"{machine['cpu']} ({' '.join(machine['cpu_flags']) or 'no listed flags'})"))
    if args.json:
        write_json(record, args.json)
        print(f"written to {args.json}")
    return 0
