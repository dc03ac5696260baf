"""`keras-resnets export`: write SavedModel / TFLite files next to a model and verify them."""

import argparse
import importlib.util
import json
import os

from keras_resnets.utils.validation import (
    UsageError,
    check_data,
    check_existing_file,
    check_output_folder,
    int_at_least,
    positive_number,
)

EXAMPLES = """examples:
  keras-resnets export saved_models/resnet20-digits/model.keras            # float32 .tflite
  keras-resnets export saved_models/resnet20-digits/model.keras --quantize none float16 dynamic int8
  keras-resnets export saved_models/resnet20-digits/model.keras --format saved_model
  keras-resnets export my_bf16_model.keras --format saved_model --keep-precision  # AMX / AVX512-BF16 CPUs
  keras-resnets export saved_models/resnet20-digits/model.keras --format tflite saved_model --quantize none int8
  keras-resnets export my_model.keras --quantize int8 --data ./photos --overwrite
  keras-resnets export saved_models/resnet20-digits/model.keras --format onnx   # onnxruntime
"""
QUANTIZE_CHOICES = ("none", "float16", "dynamic", "int8")
# The files --group-width applies to (`convert.INT8_KERNEL_QUANTIZATIONS`,
# named here so that checking the arguments imports no TensorFlow).
GROUP_WIDTH_QUANTIZE = ("int8", "dynamic")
RANDOM_IMAGES = 64


def add_parser(subparsers):
    """Adds the `export` subcommand to the `keras-resnets` parser."""
    p = subparsers.add_parser(
        "export",
        help="export a .keras model to a SavedModel or TFLite files and verify them",
        description="Writes MODEL_saved_model/, MODEL[_QUANT].tflite or MODEL.onnx next to "
        "MODEL.keras, runs each in TensorFlow, the LiteRT interpreter (XNNPACK) or onnxruntime "
        "against the Keras model and prints "
        "the differences, top-1 agreement, accuracy, size and batch-1 latency. Verification and "
        "int8 calibration use --data (default: the data of the training run whose summary.json "
        "sits beside the model): calibration images from its training split, verification on "
        "its test split.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="a .keras file (e.g. saved_models/resnet20-digits/model.keras)")
    p.add_argument("--format", nargs="+", default=["tflite"], choices=["tflite", "saved_model", "onnx"],
                   help="one or more (default: tflite); onnx needs the onnx extra "
                   "(pip install \"keras_resnets[onnx]\")")
    p.add_argument("--quantize", nargs="+", default=["none"], choices=QUANTIZE_CHOICES,
                   help="tflite: one file per choice (default: none, i.e. float32)")
    p.add_argument("--data", help="digits, tfds:NAME or an image folder (default: the training "
                   "run's, from summary.json beside the model; else random images, no int8)")
    p.add_argument("--output", help="folder of the exported files (default: the model's folder)")
    p.add_argument("--overwrite", action="store_true", help="replace existing exported files")
    p.add_argument("--calibration-images", type=int_at_least(1), default=200,
                   help="int8: training images that calibrate (default: 200)")
    p.add_argument("--group-width", type=int_at_least(1),
                   help="int8 and dynamic tflite files: write grouped convolutions with groups merged to "
                   "at least this many input channels, the same outputs: the int8 kernels' tile of the CPU "
                   "that will run the file is fastest (8 AVX2, 16 AVX-512, 64 AMX; default: 8 for int8, "
                   "the groups as they are otherwise)")
    p.add_argument("--keep-precision", action="store_true",
                   help="saved_model: compute in the model's own precision (a mixed_bfloat16 model in "
                   "bfloat16: fast on CPUs with AMX or AVX512-BF16 and on GPUs, slow elsewhere) instead "
                   "of float32")
    p.add_argument("--threads", type=int_at_least(1), help="LiteRT threads (default: every core)")
    p.add_argument("--runs", type=int_at_least(1), default=100, help="timed batch-1 runs (default: 100)")
    p.add_argument("--mean", type=float, nargs="+",
                   help="a float model, every format: subtracted from the 0..255 pixels inside "
                   "the exported file, which then takes uint8 images")
    p.add_argument("--std", type=positive_number, nargs="+",
                   help="a float model, every format: divides them")
    p.set_defaults(func=run, validate=validate, requires="tensorflow-backend")


def _training_data(model_path):
    """The `data` of the training run that wrote `model_path`, if any."""
    summary = os.path.join(os.path.dirname(os.path.abspath(model_path)), "summary.json")
    if not os.path.isfile(summary):
        return None
    try:
        with open(summary) as f:
            return json.load(f).get("data")
    except (OSError, ValueError, AttributeError) as e:
        raise UsageError(f"{summary}, beside MODEL, is not a readable training summary ({e}); "
                         "pass --data to name the data.") from None


def _targets(args):
    """`{kind: path}` of the files to write, in the order of --format: into
    --output, by default the model's folder."""
    output = args.output or os.path.dirname(os.path.abspath(args.model))
    stem = os.path.splitext(os.path.basename(args.model))[0]
    targets = {}
    for kind in dict.fromkeys(args.format):
        if kind == "saved_model":
            targets["saved_model"] = os.path.join(output, f"{stem}_saved_model")
        elif kind == "onnx":
            targets["onnx"] = os.path.join(output, f"{stem}.onnx")
        else:
            targets.update({q: os.path.join(output, stem + ("" if q == "none" else f"_{q}") + ".tflite")
                            for q in dict.fromkeys(args.quantize)})
    return targets


def validate(args):
    """Checks every argument before any work: MODEL is a whole .keras file,
    the options fit the format, the data exists, the output folder can be
    written and no file there is replaced without --overwrite."""
    check_existing_file("MODEL", args.model, ("keras",))
    if "tflite" not in args.format and args.quantize != ["none"]:
        raise UsageError(f"--quantize is for --format tflite; received --format {' '.join(args.format)} "
                         f"--quantize {' '.join(args.quantize)}.")
    if args.group_width is not None and ("tflite" not in args.format
                                         or not set(GROUP_WIDTH_QUANTIZE) & set(args.quantize)):
        raise UsageError(f"--group-width is for the int8 and dynamic tflite files; received --format "
                         f"{' '.join(args.format)} --quantize {' '.join(args.quantize)} "
                         f"--group-width {args.group_width}.")
    if args.keep_precision and "saved_model" not in args.format:
        raise UsageError(f"--keep-precision is for --format saved_model; received --format "
                         f"{' '.join(args.format)} --keep-precision.")
    if "onnx" in args.format:
        missing = [m for m in ("onnxruntime", "tf2onnx") if importlib.util.find_spec(m) is None]
        if missing:
            raise UsageError(f"--format onnx needs the onnx extra: pip install \"keras_resnets[onnx]\" "
                             f"({', '.join(missing)} not installed).")
    if args.data is not None:
        check_data("--data", args.data)
    else:
        data = _training_data(args.model)
        if data is not None:
            check_data("data (from the summary.json beside MODEL)", data)
        elif "int8" in args.quantize and "tflite" in args.format:
            raise UsageError(
                "--quantize int8 needs --data (e.g. --data digits): its training images calibrate "
                "the int8 ranges; received no --data and no summary.json beside MODEL."
            )
    check_output_folder("--output", args.output or os.path.dirname(os.path.abspath(args.model)))
    existing = [p for p in _targets(args).values() if os.path.lexists(p)]
    if existing and not args.overwrite:
        raise UsageError(f"{', '.join(existing)} exist(s); pass --overwrite to replace.")


def run(args):
    """The `export` handler (its arguments checked by `validate`)."""
    import numpy as np

    from keras_resnets.data import load_data
    from keras_resnets.export.common import model_input
    from keras_resnets.export.convert import tflite
    from keras_resnets.export.onnx_format import onnx
    from keras_resnets.export.runtime import format_table, verify
    from keras_resnets.export.serving import saved_model
    from keras_resnets.models.saving import load_model

    targets = _targets(args)
    model = load_model(args.model, compile=False)  # (its optimizer is not needed)
    shape, dtype = model_input(model)
    if dtype == "uint8" and (args.mean or args.std):
        given = " ".join(f"--{name} {' '.join(f'{v:g}' for v in values)}"
                         for name, values in (("mean", args.mean), ("std", args.std)) if values)
        raise UsageError(
            f"--mean and --std are for a model taking float images; {args.model} takes uint8 "
            f"images and normalizes them inside itself. Received {given}."
        )
    data = args.data or _training_data(args.model)
    if data is None:
        size = [RANDOM_IMAGES] + [d or 224 for d in shape[1:]]
        train, test = None, np.random.default_rng(0).integers(0, 256, size).astype("uint8")
        print(f"No --data: verifying on {RANDOM_IMAGES} random images.")
    else:
        bundle = load_data(data, image_size=shape[1], batch_size=64)
        train, test = bundle.train, bundle.test
        calibration = "int8 calibration on the training split, " if "int8" in targets else ""
        print(f"Data {bundle.name}: {calibration}verification on the test split "
              f"({bundle.test_size} images).")

    results = {}
    for kind, path in targets.items():
        if kind == "saved_model":
            saved_model(model, path, mean=args.mean, std=args.std, overwrite=args.overwrite,
                        keep_precision=args.keep_precision)
        elif kind == "onnx":
            onnx(model, path, overwrite=args.overwrite, mean=args.mean, std=args.std)
        else:
            quantize = None if kind == "none" else kind
            tflite(model, path, quantize=quantize, overwrite=args.overwrite,
                   representative_data=train if quantize == "int8" else None,
                   calibration_images=args.calibration_images, mean=args.mean, std=args.std,
                   group_width=args.group_width if quantize in GROUP_WIDTH_QUANTIZE else None)
        results[kind] = verify(path, model, test, num_threads=args.threads, runs=args.runs,
                               mean=args.mean, std=args.std)
        print(f"wrote {path}")
    print(format_table(list(results.values()), baseline=results.get("none")))
    runtimes = dict.fromkeys(r.runtime for r in results.values())
    print(f"runtime: {'; '.join(runtimes)}; latency: batch 1, {args.runs} runs")
    return 0
