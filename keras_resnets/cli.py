"""The `keras-resnets` command.

Building the parser and answering `--help` import neither TensorFlow nor
Keras: each subcommand's parser reads its choices from light modules, and
its handler imports what it uses when it runs. TensorFlow's C++ start-up log
lines are left out unless `TF_CPP_MIN_LOG_LEVEL` asks for them
(`keras_resnets.utils.tf_logs`).

Keras's backend is the one `KERAS_BACKEND` (or `~/.keras/keras.json`)
names. `models`, `info` and `benchmark` run on any backend, and without
TensorFlow installed; `train` runs on any backend but needs TensorFlow for
its `tf.data` pipelines; `export` and `tune` need the TensorFlow backend.
Each subcommand says which (`requires`: None, "tensorflow" or
"tensorflow-backend"; `uses_keras=False`: not even Keras), and one that
cannot run ends with one line naming the backend and what to do, before it
loads anything.

A bad argument ends with one line on stderr, `keras-resnets COMMAND: error:
...`, naming the argument, the value received and what is allowed, and exit
status 2 (argparse's convention), before anything is loaded or written:
numbers are `argparse` types, and each subcommand's `validate` checks files,
folders and names. A bug still shows its traceback.
"""

import argparse
import os
import sys

from keras_resnets import __version__
from keras_resnets.utils.validation import DownloadError, UsageError

GETTING_STARTED = """examples:
  keras-resnets models                   # the models: parameters, MACs, reference, weights
  keras-resnets info resnet50            # one model stage by stage
  keras-resnets train                    # ResNet-20 on the bundled digits (~2 min on a CPU)
  keras-resnets predict resnet50 cat.jpg # ImageNet classes of an image
  keras-resnets train --help             # every command has --help with examples
"""


class Parser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose errors are one line (no usage block):
    `keras-resnets train: error: argument --epochs: must be a positive integer; received '0'`."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser():
    """The `keras-resnets` parser with every subcommand (no heavy imports)."""
    from keras_resnets import info
    from keras_resnets.benchmark import command as benchmark_command
    from keras_resnets.export import command as export_command
    from keras_resnets.prediction import command as predict_command
    from keras_resnets.training import command as train_command
    from keras_resnets.tuning import command as tune_command

    parser = Parser(
        prog="keras-resnets",
        description="ResNet, ResNetV2, ResNeXt and wide ResNets for Keras 3. TensorFlow's own "
        "log lines are hidden unless TF_CPP_MIN_LOG_LEVEL is set (0 shows them all).",
        epilog=GETTING_STARTED,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    info.add_parsers(subparsers)
    train_command.add_parser(subparsers)
    predict_command.add_parser(subparsers)
    export_command.add_parser(subparsers)
    tune_command.add_parser(subparsers)
    benchmark_command.add_parser(subparsers)
    return parser


def _refuse(command, error, status=2):
    message = " ".join(str(error).split("\n"))
    print(f"keras-resnets {command}: error: {message}", file=sys.stderr)
    return status


def enable_onednn(environ=os.environ):
    """Asks TensorFlow for its oneDNN CPU kernels unless the user chose
    (`TF_ENABLE_ONEDNN_OPTS` set) or TensorFlow is already imported (it
    reads the variable once, at import).

    TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI,
    AVX512-BF16 or AMX. Elsewhere its other CPU kernels train ResNet-50
    2.3x and ResNeXt-50 1.6x slower (AMD EPYC Zen 3, AVX2, 64 px, batch 16:
    20.1 against 47.0 and 25.4 against 41.6 images/s) and have no gradient
    for a grouped convolution (`GroupedConv2D` then splits it by group).
    """
    if "tensorflow" not in sys.modules:
        environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def main(argv=None):
    """Runs `keras-resnets ARGV`; returns the exit status (argparse exits
    with 2 itself on a bad number or choice, and with 0 after --help).

    Usage errors, one line and status 2: a `UsageError`, which every
    argument and data check of the package raises (in a subcommand's
    `validate`, which only reads the file system, or while it runs: an
    unreadable image in a data folder, an unknown tfds name, ...), a
    non-finite loss (`FloatingPointError`), and TensorFlow missing. A
    download that failed (`DownloadError`: offline, the server down) is one
    line too, with status 1: it says which file to place where. Any other
    exception keeps its traceback: it is a bug, not a bad argument. That
    includes a plain ValueError raised in keras_resnets' own code (a tuple
    unpacked from the wrong number of values, `int("x")`), which a rule by
    the raising module took for a bad argument.
    """
    from keras_resnets.utils.backend import (
        TensorFlowNeededError,
        configured_backend,
        require_tensorflow,
        require_tensorflow_backend,
    )
    from keras_resnets.utils.tf_logs import import_tensorflow, min_log_level

    level = min_log_level(os.environ)  # before TensorFlow is imported
    enable_onednn()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    requires = getattr(args, "requires", None)
    try:
        if requires == "tensorflow-backend":
            require_tensorflow_backend(f"keras-resnets {args.command}")
        if requires is not None:
            require_tensorflow(f"keras-resnets {args.command}", load=False)
        if getattr(args, "validate", None) is not None:
            args.validate(args)
    except (UsageError, TensorFlowNeededError) as e:  # (the checks read files and names only)
        return _refuse(args.command, e)
    try:
        if requires is not None or (configured_backend() == "tensorflow" and getattr(args, "uses_keras", True)):
            import_tensorflow(level)
        return args.func(args)
    except (UsageError, FloatingPointError, TensorFlowNeededError) as e:
        return _refuse(args.command, e)
    except DownloadError as e:  # not a bad argument: offline, or the server down
        return _refuse(args.command, e, status=1)


if __name__ == "__main__":
    sys.exit(main())
