"""`keras-resnets train`: the command line of `keras_resnets.train`.

The parser reads its choices from modules that load without TensorFlow
(`keras_resnets.training.settings`, `recipes`, `precision`); `validate`
checks every argument without TensorFlow either; the run imports the
training loop.
"""

import argparse
import os
import sys

from keras_resnets.models.registry import check_model_name, list_models
from keras_resnets.models.specs import check_image_size
from keras_resnets.training.precision import PRECISIONS
from keras_resnets.training.recipes import RECIPES
from keras_resnets.training.run_folder import check_run_folder, default_run_name
from keras_resnets.training.settings import DEFAULT_OUTPUT, STRATEGIES, check_strategy_backend
from keras_resnets.training.starting_point import starting_point
from keras_resnets.utils.validation import (
    check_data,
    int_at_least,
    positive_number,
    random_seed,
)

EXAMPLES = """examples:
  keras-resnets train                                  # ResNet-20 on the bundled digits
  keras-resnets train --model resnet56 --data tfds:cifar10 --epochs 164
  keras-resnets train --model resnet50 --data ./photos --recipe imagenet --image-size 224
  keras-resnets train --resume                         # continue an interrupted run
  keras-resnets train --overwrite                      # a new run replacing the earlier one
  keras-resnets train --model resnet50 --data ./photos --strategy mirrored   # every local GPU
  keras-resnets train --model resnet50 --weights imagenet --data ./photos   # fine-tune ImageNet weights
  keras-resnets train --weights saved_models/resnet20-digits/model.keras --data ./more_digits
"""


def add_parser(subparsers):
    """Adds the `train` subcommand to the `keras-resnets` parser."""
    p = subparsers.add_parser(
        "train",
        help="train a model and save it with its logs",
        description="Train a registered model; everything lands in OUTPUT/RUN-NAME/: "
        "model.keras (final), best.keras, log.csv, history.png, tensorboard/, summary.json.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", help="registered model name (default: resnet20, or the model of --weights "
                   "FILE.keras)")
    p.add_argument("--data", default="digits",
                   help="digits (default, no download), tfds:NAME, or a folder with one sub-folder per class")
    p.add_argument("--epochs", type=int_at_least(1), help="default: 20 on digits, else the recipe's")
    p.add_argument("--batch-size", type=int_at_least(1), help="default: the recipe's")
    p.add_argument("--lr", type=positive_number, help="default: the recipe's, scaled with the batch size")
    p.add_argument("--recipe", choices=sorted(RECIPES),
                   help="default: finetune with --weights (a linear probe fits the new head, then everything trains, batch norm frozen), "
                   "else cifar")
    p.add_argument("--precision", default="auto", choices=PRECISIONS)
    p.add_argument("--image-size", type=int_at_least(1), help="default: the data's own size")
    p.add_argument("--output", default=DEFAULT_OUTPUT, help=f"folder of runs (default: {DEFAULT_OUTPUT})")
    p.add_argument("--run-name", help="default: MODEL-DATA")
    p.add_argument("--seed", type=random_seed, default=0)
    p.add_argument("--deterministic", action="store_true", help="deterministic TensorFlow ops")
    p.add_argument("--resume", action="store_true",
                   help="continue the run from its last completed epoch (refused where there is no backup)")
    p.add_argument("--overwrite", action="store_true",
                   help="let a new run replace an earlier one in OUTPUT/RUN-NAME, which is otherwise refused")
    p.add_argument("--strategy", default="auto", choices=STRATEGIES,
                   help="auto (default): tpu with --tpu, multiworker when TF_CONFIG names several tasks, "
                   "mirrored with several GPUs, else none; --batch-size is then the global batch. "
                   "tf.distribute: on the JAX and PyTorch backends only auto (one device) and none")
    p.add_argument("--tpu", help="TPU address or name for --strategy tpu (grpc://HOST:8470, a Cloud TPU name, local)")
    p.add_argument("--local-batchnorm", dest="sync_batchnorm", action="store_false",
                   help="distributed: batch norm statistics per replica instead of over the global batch")
    p.add_argument("--collective-timeout", type=positive_number, metavar="SECONDS",
                   help="multiworker: the longest a worker may go without finishing a step (a peer "
                   "stuck or gone) before training stops with an error (default: 300)")
    p.add_argument("--weights", metavar="SOURCE",
                   help="start from pretrained weights: imagenet, torchvision:TAG, timm:NAME.TAG, keras:imagenet, "
                   "a checkpoint file (.pth, .safetensors, keras.applications .h5): the trunk loads them, the "
                   "classifier is new, images are normalized as the weights expect; or an earlier run's "
                   ".keras model (its head kept when the classes are the same), or a .weights.h5 file of the "
                   "same model")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="image folders: skip unreadable files instead of stopping")
    add_verbose(p)
    p.set_defaults(func=run, validate=validate, requires="tensorflow")


def add_verbose(parser):
    """`--verbose 0|1|2` (Keras' fit verbosity), for `train` and `tune`."""
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2),
                        help="0: silent, 1: the live progress bar, 2: one line per epoch (default: 1 "
                        "when the output is a terminal, 2 when it goes to a file or a pipe)")


def verbosity(args):
    """`--verbose`, or "auto" where it was not given."""
    return "auto" if args.verbose is None else args.verbose


def validate(args):
    """Checks every argument before any work: the model and data names, the
    image size, the weights (a file that exists and is whole, a source with
    a file for the model, an earlier run's model that agrees with --model;
    `starting_point`), a tf.distribute `--strategy` only on the TensorFlow
    backend, and that the run folder can be written and holds no run this
    one would lose (`run_folder.check_run_folder`)."""
    if args.model is not None:
        check_model_name("--model", args.model)
    start = starting_point(args.weights, args.model, name="--weights", model_name="--model")
    check_data("--data", args.data)
    if args.image_size is not None and start.model in list_models():
        # (a .keras model of an architecture of the user's own has no registered minimum size)
        check_image_size("--image-size", args.image_size, check_model_name("--model", start.model))
    check_strategy_backend(args.strategy, args.tpu, name="--strategy")
    # A worker of a cluster (TF_CONFIG) may not see the chief's folder: the
    # chief checks it in `train`, before it loads anything.
    if "TF_CONFIG" not in os.environ:
        run_name = args.run_name or default_run_name(start.model, args.data)
        check_run_folder(args.output, run_name, args.resume, args.overwrite, output_name="--output")


def run(args):
    """The `train` handler: trains, prints the result line; exit status."""
    from keras_resnets.training.distribute import WorkerLostError
    from keras_resnets.training.loop import train

    options = {} if args.collective_timeout is None else {"collective_timeout": args.collective_timeout}
    try:
        _, summary = train(
            model=args.model, data=args.data, epochs=args.epochs, batch_size=args.batch_size,
            lr=args.lr, recipe=args.recipe, precision=args.precision, image_size=args.image_size,
            output=args.output, run_name=args.run_name, seed=args.seed, resume=args.resume,
            deterministic=args.deterministic, strategy=args.strategy, weights=args.weights,
            skip_bad_images=args.skip_bad_images, tpu=args.tpu, sync_batchnorm=args.sync_batchnorm,
            verbose=verbosity(args), overwrite=args.overwrite, **options,
        )
    except WorkerLostError as e:
        print(f"keras-resnets train: error: {e}", file=sys.stderr)
        return 1
    print(
        f"test accuracy {summary['test_accuracy']:.4f}, test loss {summary['test_loss']:.4f}, "
        f"{summary['train_images_per_second']} train images/s, {summary['wall_seconds']} s; "
        f"saved to {summary['run_dir']}"
    )
    return 0
