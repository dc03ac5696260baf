"""The choices and defaults of a training run, readable without TensorFlow.

`keras-resnets train --help` lists them, and the command line checks its
arguments against them, before anything heavy is imported; the modules that
run the training take them from here.
"""

DEFAULT_OUTPUT = "saved_models"
"""The folder of runs (and of searches: `saved_models/tune-DATA`)."""

DIGITS_EPOCHS = 20
"""The default run: ResNet-20 on the digits in about 100 seconds on 2 CPU
cores (the paper's CIFAR recipe, shortened)."""

STRATEGIES = ("auto", "none", "mirrored", "multiworker", "tpu")
"""`strategy` values of `train` (see `keras_resnets.training.distribute`)."""
