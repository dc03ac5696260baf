"""Reading `.keras` files of keras_resnets models.

A `.keras` file names its classes by their registered names
("keras_resnets>ResNetModel", "keras_resnets>BasicBlock", ...), which Keras
finds only once the modules that define them have run their
`keras.saving.register_keras_serializable`. `register()` imports them all;
`load_model` does so before it reads a file, so the package's readers (every
subcommand that takes a model file) do not depend on the order in which a
process imported Keras, TensorFlow and this package.

`import keras_resnets` also calls `register()` as soon as Keras is imported
(`keras_resnets.utils.lazy.when_imported`), so that a user's own
`keras.saving.load_model` reads these files too.

>>> import keras_resnets
>>> model = keras_resnets.load_model("saved_models/resnet20-digits/model.keras")  # doctest: +SKIP
"""

REGISTERING_MODULES = (
    "keras_resnets.layers",  # the blocks, shortcuts, stems, convolutions, normalizations
    "keras_resnets.models.model",  # ResNetModel
    "keras_resnets.training.optimizers",  # L2SGD: a compiled model's optimizer
)


def register():
    """Registers every serializable class of the package with Keras
    (imports Keras); idempotent."""
    import importlib

    for module in REGISTERING_MODULES:
        importlib.import_module(module)


def load_model(path, compile=True, safe_mode=True):
    """`keras.saving.load_model(path, ...)` after `register()`: reads a
    `.keras` file of a keras_resnets model (a classifier, a fine-tuned model
    with its preprocessing, a `features_only` or dilated backbone, a tuned
    model) in any process.

    Args:
        path: str or `os.PathLike`, the `.keras` file.
        compile: bool, whether to restore the optimizer, loss and metrics the
            file was saved with. Defaults to True (as Keras's).
        safe_mode: bool, as `keras.saving.load_model`'s. Defaults to True.

    Returns:
        The Keras model.
    """
    register()
    import keras

    return keras.saving.load_model(path, compile=compile, safe_mode=safe_mode)
