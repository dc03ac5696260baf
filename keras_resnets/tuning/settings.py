"""The choices and defaults of a search, readable without TensorFlow or
KerasTuner: `keras-resnets tune --help` lists them and the command line
checks its arguments against them before anything heavy is imported."""

import os

from keras_resnets.training.settings import DEFAULT_OUTPUT

TUNER_NAMES = ("random", "hyperband", "bayesian")
"""`tuner` values of `tune` (the classes are `keras_resnets.tuning.search.TUNERS`)."""

STRATEGIES = ("auto", "none", "mirrored")
"""`strategy` values of `tune`: "auto" is "mirrored" where this host has several GPUs."""

FAMILIES = {"v1": "resnet", "v2": "resnet_v2", "resnext": "resnext", "wide": "wide_resnet"}
"""Search family -> the model table's family."""

DEFAULT_EPOCHS = 10  # per trial (random and bayesian)
DEFAULT_MAX_EPOCHS = 8  # Hyperband's longest training: first rounds of 3 epochs, then 8
DEFAULT_MAX_TRIALS = 10  # without a time budget (random and bayesian)


def default_directory(data):
    """The search's folder for `data` without `directory`: saved_models/tune-DATA."""
    return os.path.join(DEFAULT_OUTPUT, f"tune-{data.replace(':', '_').strip('/')}")
