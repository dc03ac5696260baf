"""Which Keras backend runs, and the clear errors of the parts that need TensorFlow.

The models, the layers, `count_macs` and the weight loaders run on every
Keras backend (TensorFlow, JAX, PyTorch) and import without TensorFlow
installed. The data pipelines (`tf.data`), `tf.distribute`, the exporters
(SavedModel, LiteRT, ONNX through TensorFlow) and the tuner are
TensorFlow's: they call `require_tensorflow` (TensorFlow must be
installed; any backend) or `require_tensorflow_backend` (Keras must run on
TensorFlow), which say what needs it and what to do instead of failing
deep inside with a bare `ModuleNotFoundError` or a foreign tensor.

Nothing here imports Keras or TensorFlow at import time:
`configured_backend()` reads the backend the way Keras will, so that the
command line can decide before it loads anything.
"""

import importlib.util
import json
import os
import sys

from keras_resnets.utils.validation import UsageError

BACKENDS = ("tensorflow", "jax", "torch")
"""The Keras backends keras_resnets is tested on."""

TENSORFLOW_ONLY = (
    "tf.data pipelines (keras_resnets.data, and so `train`), tf.distribute strategies, "
    "`export` (SavedModel, LiteRT, ONNX), `tune` and `benchmark --by-layer`"
)
"""What needs TensorFlow, for the error messages."""


class TensorFlowNeededError(ImportError):
    """A part of keras_resnets that needs TensorFlow was used where TensorFlow
    is not installed."""


class BackendError(UsageError):
    """A TensorFlow-only part of keras_resnets was used while Keras runs on
    another backend (a `UsageError`, so a `ValueError`: the command line
    prints it as one line)."""


def configured_backend():
    """The Keras backend of this process, read without importing Keras.

    Keras' own `keras.backend.backend()` once Keras is imported; before, what
    Keras will choose: the `KERAS_BACKEND` environment variable, else the
    "backend" of `$KERAS_HOME/keras.json` (default `~/.keras/keras.json`),
    else "tensorflow".
    """
    if "keras" in sys.modules and hasattr(sys.modules["keras"], "backend"):
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def torch_before_tensorflow():
    """Where Keras runs on PyTorch, loads what of PyTorch must come before
    TensorFlow (`import keras_resnets` calls it just before TensorFlow is
    first imported; the command line imports TensorFlow first, for its log
    lines and its `tf.data` pipelines). Nothing happens on the other backends.

    - `triton` (a dependency of the Linux `torch` wheels, which Keras's
      PyTorch backend imports through `torch._dynamo`) crashes the process (a
      segmentation fault in `triton._C.libtriton`) when it is loaded after
      TensorFlow: `KERAS_BACKEND=torch keras-resnets train` died at once.
    - torch itself: imported after TensorFlow had failed its own CUDA start
      (a machine without a GPU), a CUDA build of torch warned "CUDA
      initialization: Unexpected error from cudaGetDeviceCount()" at the
      CUDA check that Keras's PyTorch backend makes, on every command.
      Imported first, it answers quietly.
    """
    if configured_backend() != "torch":
        return
    if "triton" not in sys.modules and importlib.util.find_spec("triton") is not None:
        import triton  # noqa: F401
    if importlib.util.find_spec("torch") is not None:
        import torch  # noqa: F401


def tensorflow_installed():
    """Whether TensorFlow can be imported here (found, not imported)."""
    return importlib.util.find_spec("tensorflow") is not None


def require_tensorflow(what, load=True):
    """Imports TensorFlow for `what` (a phrase naming the feature) and
    returns it (with `load=False`, only checks that it is installed); a
    `TensorFlowNeededError` naming `what`, the backend and what to do where
    TensorFlow is not installed."""
    if not tensorflow_installed():
        raise TensorFlowNeededError(
            f"{what} needs TensorFlow, which is not installed in this environment (Keras backend: "
            f"{configured_backend()!r}). Install it (pip install tensorflow, or the package's own "
            "requirements: pip install keras_resnets). Without TensorFlow, the models, layers, "
            "count_macs and weight loaders work on JAX and PyTorch."
        )
    if not load:
        return None
    from keras_resnets.utils.tf_logs import import_tensorflow

    return import_tensorflow()


def require_tensorflow_backend(what, instead=None):
    """Raises a `BackendError` unless Keras runs on TensorFlow: `what` (a
    phrase naming the feature) runs on TensorFlow only. `instead`: a
    sentence on what to do on the other backends, added to the message."""
    backend = configured_backend()
    if backend == "tensorflow":
        return
    message = (
        f"{what} runs on TensorFlow only, and Keras runs on the {backend!r} backend here "
        f"(KERAS_BACKEND={backend}). Run it with KERAS_BACKEND=tensorflow: a .keras file saved "
        "on any backend loads there."
    )
    raise BackendError(f"{message} {instead}" if instead else message)
