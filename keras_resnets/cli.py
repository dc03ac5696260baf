"""The `keras-resnets` command.

Building the parser and answering `--help` import neither TensorFlow nor
Keras: each subcommand's parser reads its choices from light modules, and
its handler imports what it uses when it runs. TensorFlow's C++ start-up log
lines are left out unless `TF_CPP_MIN_LOG_LEVEL` asks for them
(`keras_resnets.utils.tf_logs`).
"""

import argparse
import os
import sys

from keras_resnets import __version__

GETTING_STARTED = """examples:
  keras-resnets models                   # the models: parameters, MACs, reference, weights
  keras-resnets info resnet50            # one model stage by stage
  keras-resnets train                    # ResNet-20 on the bundled digits (~2 min on a CPU)
  keras-resnets train --help             # every command has --help with examples
"""


def build_parser():
    """The `keras-resnets` parser with every subcommand (no heavy imports)."""
    from keras_resnets import info
    from keras_resnets.benchmark import command as benchmark_command
    from keras_resnets.export import command as export_command
    from keras_resnets.training import command as train_command
    from keras_resnets.tuning import command as tune_command

    parser = argparse.ArgumentParser(
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
    export_command.add_parser(subparsers)
    tune_command.add_parser(subparsers)
    benchmark_command.add_parser(subparsers)
    return parser


def main(argv=None):
    """Runs `keras-resnets ARGV`; returns the exit status."""
    from keras_resnets.utils.tf_logs import import_tensorflow, min_log_level

    level = min_log_level(os.environ)  # before TensorFlow is imported
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if getattr(args, "uses_tensorflow", True):
            import_tensorflow(level)
        return args.func(args)
    except (ValueError, FloatingPointError) as e:
        print(f"keras-resnets {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
