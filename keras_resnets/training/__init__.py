"""Training: recipes, mixed precision, callbacks and `train`."""

from keras_resnets.training.loop import train
from keras_resnets.training.precision import resolve_precision, set_precision
from keras_resnets.training.recipes import RECIPES, Recipe, get_recipe
