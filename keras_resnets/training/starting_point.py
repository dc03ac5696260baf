"""What a training run starts from, told without TensorFlow.

`train(weights=...)` and `keras-resnets train --weights` take everything the
builders' `weights=` takes, and an earlier run's model:

| `weights` | kind | the run |
|---|---|---|
| None | "random" | random weights; images normalized by the data's mean and std |
| "imagenet", "torchvision:...", "timm:...", "keras:imagenet", a `WeightSource` | "source" | the trunk loads the weights, a new head for the data's classes; images normalized as the weights expect |
| a checkpoint file (`.pth`, `.pt`, `.bin`, `.safetensors`, keras.applications `.h5`) | "checkpoint" | the same; the model is built as the file's keys say |
| a `.keras` model of an earlier run | "keras_model" | that model, its head kept if the classes are the same, else a new one; its own normalization (the data's if it has none) |
| a `.weights.h5` file (`model.save_weights`) | "keras_weights" | every weight loaded into the same model (same classes) |

The command line checks `--weights` with `starting_point` before any work:
the file exists and is whole (`keras_resnets.utils.validation`), a source
name has a file for the model, an earlier run's model is a registered
architecture and agrees with `--model`.
"""

import dataclasses
import importlib.util
import json
import os
import zipfile

from keras_resnets.models.registry import get_spec
from keras_resnets.utils import file_kinds
from keras_resnets.utils.validation import UsageError, check_existing_file

DEFAULT_MODEL = "resnet20"
WEIGHTS_KINDS = ("hdf5", "keras", "torch", "safetensors")
"""The files `train(weights=...)` takes (`keras_resnets.utils.file_kinds`)."""


@dataclasses.dataclass(frozen=True)
class StartingPoint:
    """What a run starts from.

    Attributes:
        kind: "random", "source", "checkpoint", "keras_model" or
            "keras_weights" (see the module docstring).
        weights: as given: None, a source name or `WeightSource`, or a path.
        model: the registry name of the model to train.
        image_size: an earlier run's input side (its model takes images of
            one size), else None.
    """

    kind: str
    weights: object
    model: str
    image_size: int = None

    @property
    def pretrained(self):
        """Whether the run starts from trained weights (the `finetune`
        recipe is then the default)."""
        return self.kind != "random"

    def describe(self):
        """The weights as `summary.json` records them."""
        if self.weights is None or isinstance(self.weights, (str, os.PathLike)):
            return None if self.weights is None else os.fspath(self.weights)
        return self.weights.name  # a WeightSource


def keras_model_config(path):
    """The model config stored in a `.keras` file (its `config.json`), read
    without Keras."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


def _input_side(config):
    """The square input side of a functional model config, or None."""
    layers = config.get("config", {}).get("layers") or [{}]
    shape = layers[0].get("config", {}).get("batch_shape") or []
    if len(shape) == 4 and shape[1] is not None and shape[1] == shape[2]:
        return int(shape[1])
    return None


def _is_source(weights):
    from keras_resnets.weights.pretrained import WeightSource, is_source_name

    return isinstance(weights, WeightSource) or is_source_name(weights)


def starting_point(weights, model=None, name="weights", model_name="model"):
    """Checks `weights` (and `model`, None for the default) and tells what
    the run starts from; reads files, writes nothing.

    Args:
        weights: None, a source name, a `WeightSource` or a file path.
        model: the registry name asked for, or None: "resnet20", or an
            earlier run's model.
        name, model_name: the arguments' names, for errors ("--weights",
            "--model" on the command line).

    Returns:
        A `StartingPoint`.

    Raises:
        UsageError: a missing, broken or unknown file; a source with no
            file for the model; an earlier run's model that is not the
            model asked for.
    """
    if weights is None:
        return StartingPoint("random", None, get_spec(model or DEFAULT_MODEL).name)
    if _is_source(weights):
        from keras_resnets.weights.pretrained import get_source

        spec = get_spec(model or DEFAULT_MODEL)
        if isinstance(weights, str):
            try:
                get_source(weights, spec.name)
            except ValueError as e:
                raise UsageError(f"`{name}`: {e}") from None
        elif weights.model != spec.name:
            raise UsageError(f"`{name}`: weights={weights.name!r} are for {weights.model!r}, "
                             f"not {model_name}={spec.name!r}.")
        return StartingPoint("source", weights, spec.name)
    path = check_existing_file(name, weights, WEIGHTS_KINDS)
    kind = file_kinds.kind_by_name(path)
    if kind == "keras":
        return _earlier_run(path, model, name, model_name)
    spec = get_spec(model or DEFAULT_MODEL)
    if path.lower().endswith(".weights.h5"):
        return StartingPoint("keras_weights", path, spec.name)
    if kind == "torch" and importlib.util.find_spec("torch") is None:
        raise UsageError(f"`{name}` {path!r} is a PyTorch checkpoint, which needs torch to read (pip install "
                         f"torch); received {name}={path!r}. Or convert it to .safetensors, which loads without "
                         "torch.")
    return StartingPoint("checkpoint", path, spec.name)


def _earlier_run(path, model, name, model_name):
    try:
        config = keras_model_config(path)
        found = config["config"]["name"]
    except (KeyError, TypeError, ValueError, zipfile.BadZipFile) as e:
        raise UsageError(f"`{name}` must be a .keras model saved by keras-resnets train; received "
                         f"{name}={path!r} (its config.json does not say which model it is: {e}).") from None
    try:
        spec = get_spec(found)
    except ValueError:
        if config.get("class_name") != "ResNetModel":
            raise UsageError(
                f"`{name}` must be a .keras keras_resnets model (saved by keras-resnets train or tune, or a "
                f"ResNetModel of your own); received {name}={path!r}, a {config.get('class_name')} named "
                f"{found!r}."
            ) from None
        # An architecture of the user's own (a ModelSpec, keras_hub.from_keras_hub): the file has it all.
        if model is not None:
            raise UsageError(
                f"`{name}` {path!r} is a model of its own architecture, {found!r}; received "
                f"{model_name}={model!r}. Allowed: leave {model_name} out."
            )
        return StartingPoint("keras_model", path, found, _input_side(config))
    if model is not None and get_spec(model).name != spec.name:
        raise UsageError(
            f"`{name}` {path!r} is a {spec.name} model; received {model_name}={model!r}. Allowed: "
            f"{model_name}={spec.name!r}, or leave it out."
        )
    return StartingPoint("keras_model", path, spec.name, _input_side(config))
