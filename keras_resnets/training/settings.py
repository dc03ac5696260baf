"""The choices and defaults of a training run, readable without TensorFlow.

`keras-resnets train --help` lists them, and the command line checks its
arguments against them, before anything heavy is imported; the modules that
run the training take them from here.
"""

import sys

from keras_resnets.utils.validation import UsageError

DEFAULT_OUTPUT = "saved_models"
"""The folder of runs (and of searches: `saved_models/tune-DATA`)."""

DIGITS_EPOCHS = 20
"""The default run: ResNet-20 on the digits in about 100 seconds on 2 CPU
cores (the paper's CIFAR recipe, shortened)."""

STRATEGIES = ("auto", "none", "mirrored", "multiworker", "tpu")
"""`strategy` values of `train` (see `keras_resnets.training.distribute`)."""


def check_strategy_backend(strategy, tpu=None, name="strategy"):
    """Refuses a tf.distribute strategy (or a `tpu`) where Keras runs on JAX
    or PyTorch: a `BackendError` naming the argument (`name`), the backend
    and what to do. "auto" and "none" pass (one device there)."""
    from keras_resnets.utils.backend import configured_backend, require_tensorflow_backend

    if configured_backend() == "tensorflow" or (strategy in ("auto", "none") and tpu is None):
        return
    require_tensorflow_backend(
        f"{name}={('tpu' if strategy == 'auto' else strategy)!r} (tf.distribute)",
        instead=f"On this backend train on one device ({name}=none); on JAX, Keras's own "
        "keras.distribution.DataParallel spreads a model over several devices.",
    )

VERBOSITIES = ("auto", 0, 1, 2)
"""Keras `fit` verbosity: 0 silent, 1 the live progress bar, 2 one line per
epoch; "auto" is 1 when standard output is a terminal, else 2."""


def resolve_verbose(verbose):
    """The Keras verbosity (0, 1 or 2) that `verbose` stands for: "auto" is
    the live progress bar (1) on a terminal and one line per epoch (2) when
    the output goes to a file or a pipe (a log, `tee`, CI), where the bar's
    carriage returns and colour codes would fill it with escape codes."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    if isinstance(verbose, bool) or verbose not in VERBOSITIES:
        raise UsageError(
            f"`verbose` must be one of {', '.join(map(repr, VERBOSITIES))}; received verbose={verbose!r}."
        )
    return int(verbose)
