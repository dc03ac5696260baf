"""Training: recipes, mixed precision, callbacks and `train`.

`train` and the precision helpers load Keras and TensorFlow when first used
(`keras_resnets.utils.lazy`); the recipes and the command line's choices
(`keras_resnets.training.settings`) load without them.
"""

from keras_resnets.training.recipes import RECIPES, Recipe, get_recipe
from keras_resnets.utils.lazy import attach

__all__ = ["RECIPES", "Recipe", "get_recipe", "L2SGD", "resolve_precision", "set_precision", "train"]

__getattr__, __dir__ = attach(
    __name__,
    {
        "train": "keras_resnets.training.loop",
        "L2SGD": "keras_resnets.training.optimizers",
        "resolve_precision": "keras_resnets.training.precision",
        "set_precision": "keras_resnets.training.precision",
    },
    submodules=("callbacks", "distribute", "loop", "optimizers", "precision", "recipes", "settings"),
)
