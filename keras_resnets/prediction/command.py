"""`keras-resnets predict`: the command line of `keras_resnets.predict`.

`validate` checks every argument without TensorFlow (the model file or name,
the weights, the images); the run imports the prediction module. One line
per image, as the results come: the table's (the image, then each class with
its probability) or, with `--format json`, one JSON object.
"""

import argparse
import os
import sys
import warnings

from keras_resnets.models.registry import check_model_name
from keras_resnets.models.specs import check_image_size
from keras_resnets.utils import file_kinds
from keras_resnets.utils.validation import UsageError, check_existing_file, int_at_least

EXAMPLES = """examples:
  keras-resnets predict saved_models/resnet20-digits/model.keras digit.png   # a trained model: its classes
  keras-resnets predict saved_models/resnet20-digits/model.keras ./digits --format json > predictions.jsonl
  keras-resnets predict saved_models/resnet20-digits/model_int8.tflite ./digits   # a file export wrote
  keras-resnets predict resnet50 cat.jpg dog.jpg --top 3        # ImageNet weights (downloaded once)
  keras-resnets predict resnet50 --weights ./resnet50-0676ba61.pth ./photos
"""
FORMATS = ("table", "json")
CHECKPOINT_KINDS = ("hdf5", "torch", "safetensors")


def add_parser(subparsers):
    """Adds the `predict` subcommand to the `keras-resnets` parser."""
    p = subparsers.add_parser(
        "predict",
        help="classify images with a trained model or pretrained weights",
        description="Prints the top classes of each image with their probabilities, one line per image. "
        "MODEL is a .keras file saved by keras-resnets train or tune (its own class names), a .tflite "
        "file or SavedModel folder that keras-resnets export wrote from one (run by LiteRT or TensorFlow; "
        "class names from the summary.json beside it), or a registered model name with --weights (default "
        "imagenet: ImageNet's class names). Images of any size and of any format Pillow reads; a folder is "
        "searched for images recursively.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL",
                   help="a .keras file, an exported .tflite file or SavedModel folder, or a registered model name")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files or folders of images")
    p.add_argument("--weights", metavar="SOURCE",
                   help="with a model name: imagenet (default), torchvision:TAG, timm:NAME.TAG, keras:imagenet "
                   "or a checkpoint file with its classifier (.pth, .safetensors, keras.applications .h5)")
    p.add_argument("--top", type=int_at_least(1), help="classes per image (default: 5, or all if fewer)")
    p.add_argument("--format", default="table", choices=FORMATS,
                   help="table (default): the image, then each class and probability; json: one object per line")
    p.add_argument("--image-size", type=int_at_least(1),
                   help="the side images are brought to, for a model taking any size (default: its "
                   "architecture's, 224 or 32)")
    p.add_argument("--batch-size", type=int_at_least(1), default=32, help="images per forward pass (default: 32)")
    p.set_defaults(func=run, validate=validate)


def _is_keras_file(model):
    return model.lower().endswith(".keras") or (os.path.isfile(model) and not file_kinds.is_exported_model(model))


def validate(args):
    """Checks MODEL, --weights, IMAGE and --image-size without loading
    anything: a whole .keras or .tflite file, a SavedModel folder or a
    registered name; weights a name has
    a file for, or a whole checkpoint; images that exist (a folder holding
    some)."""
    exported = file_kinds.is_exported_model(args.model)
    if exported or _is_keras_file(args.model):
        if not os.path.isdir(args.model):
            check_existing_file("MODEL", args.model, ("tflite",) if exported else ("keras",))
        if args.weights is not None:
            raise UsageError(f"`--weights` is for a model name; received --weights={args.weights!r} with MODEL "
                             f"{args.model!r}, a model file with its own weights. Allowed: leave it out.")
    else:
        spec = check_model_name("MODEL", args.model)
        weights = "imagenet" if args.weights is None else args.weights
        from keras_resnets.weights.pretrained import get_source, is_source_name

        if is_source_name(weights):
            try:
                get_source(weights, spec.name)
            except ValueError as e:
                raise UsageError(f"`--weights`: {e}") from None
        else:
            check_existing_file("--weights", weights, CHECKPOINT_KINDS)
        if args.image_size is not None:
            check_image_size("--image-size", args.image_size, spec)
    for image in args.images:
        _check_image_argument(image)


def _check_image_argument(path):
    allowed = "an image file or a folder of images"
    if os.path.isdir(path):
        if not file_kinds.image_files(path):
            raise UsageError(f"`IMAGE` must be {allowed}; received IMAGE={path!r} (a folder with no image files: "
                             f"{' '.join(file_kinds.IMAGE_FILE_EXTENSIONS)}).")
        return
    if not os.path.exists(path):
        raise UsageError(f"`IMAGE` must be {allowed}; received IMAGE={path!r} (no such file or folder).")
    if not os.access(path, os.R_OK) or os.path.getsize(path) == 0:
        raise UsageError(f"`IMAGE` must be {allowed}; received IMAGE={path!r} (empty or unreadable).")
    if not path.lower().endswith(file_kinds.IMAGE_FILE_EXTENSIONS):
        from PIL import Image

        if not path.lower().endswith(tuple(Image.registered_extensions())):
            raise UsageError(f"`IMAGE` must be {allowed}; received IMAGE={path!r} (not a format Pillow reads).")


def run(args):
    """The `predict` handler: prints one line per image; exit status."""
    from keras_resnets.prediction.classify import (
        NoRunSummaryWarning,
        format_json,
        format_line,
        load_classifier,
        predict_batches,
    )
    from keras_resnets.utils.file_kinds import image_files

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoRunSummaryWarning)
        classifier = load_classifier(args.model, args.weights, args.image_size)
    for w in caught:  # ours as one line, as the command's errors; others as Python shows them
        if issubclass(w.category, NoRunSummaryWarning):
            print(f"keras-resnets predict: warning: {w.message}", file=sys.stderr, flush=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    paths = [p for item in args.images for p in (image_files(item) if os.path.isdir(item) else [item])]
    width = max(len(p) for p in paths)
    for result in predict_batches(classifier, paths, args.top, args.batch_size):
        print(format_json(result) if args.format == "json" else format_line(result, width), flush=True)
    return 0
