"""`keras-resnets train`: the command line of `keras_resnets.train`.

The parser reads its choices from modules that load without TensorFlow
(`keras_resnets.training.settings`, `recipes`, `precision`); the run imports
the training loop.
"""

import argparse
import sys

from keras_resnets.training.precision import PRECISIONS
from keras_resnets.training.recipes import RECIPES
from keras_resnets.training.settings import DEFAULT_OUTPUT, STRATEGIES

EXAMPLES = """examples:
  keras-resnets train                                  # ResNet-20 on the bundled digits
  keras-resnets train --model resnet56 --data tfds:cifar10 --epochs 164
  keras-resnets train --model resnet50 --data ./photos --recipe imagenet --image-size 224
  keras-resnets train --resume                         # continue an interrupted run
  keras-resnets train --model resnet50 --data ./photos --strategy mirrored   # every local GPU
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
    p.add_argument("--model", default="resnet20", help="registered model name (default: resnet20)")
    p.add_argument("--data", default="digits",
                   help="digits (default, no download), tfds:NAME, or a folder with one sub-folder per class")
    p.add_argument("--epochs", type=int, help="default: 20 on digits, else the recipe's")
    p.add_argument("--batch-size", type=int, help="default: the recipe's")
    p.add_argument("--lr", type=float, help="default: the recipe's, scaled with the batch size")
    p.add_argument("--recipe", default="cifar", choices=sorted(RECIPES))
    p.add_argument("--precision", default="auto", choices=PRECISIONS)
    p.add_argument("--image-size", type=int, help="default: the data's own size")
    p.add_argument("--output", default=DEFAULT_OUTPUT, help=f"folder of runs (default: {DEFAULT_OUTPUT})")
    p.add_argument("--run-name", help="default: MODEL-DATA")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deterministic", action="store_true", help="deterministic TensorFlow ops")
    p.add_argument("--resume", action="store_true", help="continue the run from its last completed epoch")
    p.add_argument("--strategy", default="auto", choices=STRATEGIES,
                   help="auto (default): tpu with --tpu, multiworker when TF_CONFIG names several tasks, "
                   "mirrored with several GPUs, else none; --batch-size is then the global batch")
    p.add_argument("--tpu", help="TPU address or name for --strategy tpu (grpc://HOST:8470, a Cloud TPU name, local)")
    p.add_argument("--local-batchnorm", dest="sync_batchnorm", action="store_false",
                   help="distributed: batch norm statistics per replica instead of over the global batch")
    p.add_argument("--weights", help="a weights file for the model (model.save_weights)")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="image folders: skip unreadable files instead of stopping")
    p.set_defaults(func=run)


def run(args):
    """The `train` handler: trains, prints the result line; exit status."""
    from keras_resnets.training.distribute import WorkerLostError
    from keras_resnets.training.loop import train

    try:
        _, summary = train(
            model=args.model, data=args.data, epochs=args.epochs, batch_size=args.batch_size,
            lr=args.lr, recipe=args.recipe, precision=args.precision, image_size=args.image_size,
            output=args.output, run_name=args.run_name, seed=args.seed, resume=args.resume,
            deterministic=args.deterministic, strategy=args.strategy, weights=args.weights,
            skip_bad_images=args.skip_bad_images, tpu=args.tpu, sync_batchnorm=args.sync_batchnorm,
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
