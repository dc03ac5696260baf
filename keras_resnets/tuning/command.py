"""`keras-resnets tune`: the command line of `keras_resnets.tuning.tune`."""

import argparse

from keras_resnets.training.command import add_verbose, verbosity
from keras_resnets.tuning.settings import (
    DEFAULT_MAX_EPOCHS,
    FAMILIES,
    STRATEGIES,
    TUNER_NAMES,
    default_directory,
)
from keras_resnets.utils.validation import (
    UsageError,
    check_data,
    check_output_folder,
    int_at_least,
    positive_number,
    random_seed,
)

EXAMPLES = """examples:
  keras-resnets tune --data digits --tuner hyperband --time-budget 10
  keras-resnets tune --tuner random --max-trials 20 --families v1,resnext --max-depth 56
  keras-resnets tune --max-macs 20M --time-budget 10 --directory saved_models/tune-small
  (run the same command again to continue an interrupted search)
"""
_SUFFIXES = {"k": 1e3, "m": 1e6, "g": 1e9}


def _amount(text):
    """A positive number, optionally with a K, M or G suffix: "20M"."""
    scale = _SUFFIXES.get(text[-1:].lower(), 1)
    try:
        return positive_number(text[:-1] if scale != 1 else text) * scale
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a positive number such as 2e7 or 20M; received {text!r}") from None


def _family(text):
    if text not in FAMILIES:
        raise UsageError(text)
    return text


def _list(kind, what):
    """An `argparse` type: a non-empty comma-separated list of `what`."""
    def parse(text):
        try:
            values = [kind(x.strip()) for x in text.split(",") if x.strip()]
        except (ValueError, argparse.ArgumentTypeError):
            values = []
        if not values:
            raise argparse.ArgumentTypeError(
                f"must be a comma-separated list of {what}; received {text!r}") from None
        return values
    return parse


def add_parser(subparsers):
    p = subparsers.add_parser(
        "tune",
        help="search architectures and hyperparameters with KerasTuner",
        description="Search the ResNet family and its training with KerasTuner. Prints a line per "
        "trial and a results table; writes DIRECTORY/results.csv, accuracy_vs_macs.png, best.keras "
        "and summary.json. Running the same command again continues the search.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", default="digits", help="digits (default), tfds:NAME or an image folder")
    p.add_argument("--tuner", default="hyperband", choices=sorted(TUNER_NAMES))
    p.add_argument("--max-trials", type=int_at_least(1),
                   help="default: 10 for random/bayesian without --time-budget")
    p.add_argument("--time-budget", type=positive_number, metavar="MINUTES",
                   help="no trial starts after it; the running one stops training at it")
    p.add_argument("--epochs", type=int_at_least(1), help="epochs per trial, random/bayesian (default: 10)")
    p.add_argument("--max-epochs", type=int_at_least(1), default=DEFAULT_MAX_EPOCHS,
                   help=f"hyperband's longest training (default: {DEFAULT_MAX_EPOCHS})")
    p.add_argument("--final-epochs", type=int_at_least(0),
                   help="continue the best trial for this many epochs after the search (0: keep its "
                   "checkpoint; default: with --time-budget, the epochs that fit in at most its last 30%%)")
    p.add_argument("--families", type=_list(_family, ", ".join(FAMILIES)),
                   help=f"comma-separated, of {', '.join(FAMILIES)}")
    p.add_argument("--depths", type=_list(int_at_least(1), "positive integers"),
                   help="comma-separated depths from the variant table")
    p.add_argument("--min-depth", type=int_at_least(1))
    p.add_argument("--max-depth", type=int_at_least(1))
    p.add_argument("--max-params", type=_amount, help="reject larger candidates before training")
    p.add_argument("--max-macs", type=_amount, help="multiply-accumulates per image, e.g. 20M")
    p.add_argument("--max-latency-ms", type=positive_number, help="TFLite latency, batch 1, one thread")
    p.add_argument("--image-size", type=int_at_least(1), help="default: the data's own size")
    p.add_argument("--directory", help="default: saved_models/tune-DATA")
    p.add_argument("--overwrite", action="store_true", help="replace a different search in --directory")
    p.add_argument("--seed", type=random_seed, default=0)
    p.add_argument("--strategy", default="auto", choices=STRATEGIES,
                   help="mirrored: each trial trains on every GPU of this host (global batch, batch norm "
                   "synchronized); auto (default): mirrored if several GPUs are visible, else none")
    add_verbose(p)
    p.set_defaults(func=_tune, validate=validate, requires="tensorflow-backend")


def validate(args):
    """Checks the arguments before any work: the data exists and the
    search's directory can be written. (Whether it holds another search, and
    the space's depths at the data's image size, are checked by `tune`
    before it writes anything.)"""
    check_data("--data", args.data)
    check_output_folder("--directory", args.directory or default_directory(args.data))


def _tune(args):
    from keras_resnets.tuning.search import tune

    summary = tune(
        data=args.data, tuner=args.tuner, directory=args.directory, max_trials=args.max_trials,
        time_budget=args.time_budget, epochs=args.epochs, max_epochs=args.max_epochs,
        final_epochs=args.final_epochs,
        overwrite=args.overwrite, seed=args.seed, image_size=args.image_size,
        families=args.families, depths=args.depths, min_depth=args.min_depth,
        max_depth=args.max_depth, max_params=args.max_params, max_macs=args.max_macs,
        max_latency_ms=args.max_latency_ms, verbose=verbosity(args), strategy=args.strategy,
    )
    print(
        f"best: trial {summary['best_trial']}, {summary['best_architecture']}: validation accuracy "
        f"{summary['val_accuracy']:.4f}, test accuracy {summary['test_accuracy']:.4f}, "
        f"{summary['params']:,} params, {summary['macs'] / 1e6:.1f}M MACs; "
        f"{summary['trials']} trials ({summary['trials_rejected']} rejected, "
        f"{summary['trials_failed']} failed), {summary['wall_seconds']:.0f} s, "
        f"stopped by {summary['stopped_by']}; saved to {summary['directory']}"
    )
    return 0
