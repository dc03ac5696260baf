"""Model table, registry and builder."""

from keras_resnets.models.builder import LAYOUTS, build_model, get_model, min_input_size
from keras_resnets.models.registry import get_spec, list_models, register
from keras_resnets.models.specs import SPECS, ModelSpec
