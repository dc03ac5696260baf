"""Reading checkpoint files into `{key: array}` without running their code.

- `.safetensors`: `safetensors.numpy` (no torch needed).
- `.pth`, `.pt`, `.bin`: `torch.load(path, weights_only=True)`, which refuses
  pickles that would run code; torch is needed.
- `.h5`, `.hdf5` (keras.applications' weight files, Keras 2's
  `save_weights` format): read with h5py as `{"conv1_conv/kernel": array,
  ...}`.

Our own `.weights.h5` files (Keras 3's `model.save_weights`) are not read
here: `keras.Model.load_weights` reads them.
"""

import os
import sys

import numpy as np

from keras_resnets.utils.validation import UsageError

TORCH_SUFFIXES = (".pth", ".pt", ".bin")
SAFETENSORS_SUFFIXES = (".safetensors",)
H5_SUFFIXES = (".h5", ".hdf5")
KERAS_WEIGHTS_SUFFIX = ".weights.h5"


def checkpoint_format(path):
    """"keras" (our `.weights.h5`), "h5", "torch" or "safetensors"; a
    ValueError for any other file name."""
    name = os.fspath(path).lower()
    if name.endswith(KERAS_WEIGHTS_SUFFIX):
        return "keras"
    for kind, suffixes in (("h5", H5_SUFFIXES), ("torch", TORCH_SUFFIXES),
                           ("safetensors", SAFETENSORS_SUFFIXES)):
        if name.endswith(suffixes):
            return kind
    raise UsageError(
        f"`weights` file {os.fspath(path)!r} has an unknown type. Allowed: "
        f"{KERAS_WEIGHTS_SUFFIX} (model.save_weights), .h5 (keras.applications), "
        ".pth / .pt / .bin (PyTorch state dict), .safetensors."
    )


def _import_torch(path):
    # Triton (imported by torch._dynamo) segfaults when it loads after
    # TensorFlow; reading a state dict on the CPU does not need it.
    if "tensorflow" in sys.modules and "triton" not in sys.modules:
        sys.modules["triton"] = None
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"Reading the PyTorch checkpoint {os.fspath(path)!r} needs torch "
            "(pip install torch). Or convert it to .safetensors, which loads "
            "without torch."
        ) from None
    return torch


def _read_torch(path):
    import pickle

    torch = _import_torch(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower():
            raise UsageError(
                f"torch.load(weights_only=True) refused {os.fspath(path)!r}: the "
                "file is a pickle that holds more than tensors (objects whose "
                "loading would run code). keras_resnets does not unpickle such "
                "files; load it yourself if you trust it and pass "
                "`model.state_dict()`, or save a plain state dict.\n"
                f"torch said: {str(e).splitlines()[0]}"
            ) from None
        raise UsageError(
            f"{os.fspath(path)!r} is not a readable PyTorch checkpoint (corrupt or "
            f"not a checkpoint): {e}"
        ) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise UsageError(
            f"{os.fspath(path)!r} is not a readable PyTorch checkpoint (truncated "
            f"or corrupt): {str(e).splitlines()[0]}"
        ) from None
    # Training checkpoints wrap the weights (timm: "state_dict", others: "model").
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    if not isinstance(state, dict):
        raise UsageError(
            f"{os.fspath(path)!r} holds a {type(state).__name__}, not a state dict "
            "(a mapping from names to tensors)."
        )
    return {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "detach")}


def _read_safetensors(path):
    from safetensors.numpy import load_file

    try:
        return load_file(os.fspath(path))
    except Exception as e:  # safetensors raises its own SafetensorError
        raise UsageError(
            f"{os.fspath(path)!r} is not a readable .safetensors file (truncated "
            f"or corrupt): {e}"
        ) from None


def _read_h5(path):
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise UsageError(
            f"{os.fspath(path)!r} is not a readable HDF5 file (truncated or "
            f"corrupt): {e}"
        ) from None
    with f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group.attrs:
            raise UsageError(
                f"{os.fspath(path)!r} is not a keras.applications weights file "
                "(no 'layer_names'). Weights saved by Keras 3's "
                f"model.save_weights end in {KERAS_WEIGHTS_SUFFIX}."
            )
        state = {}
        for layer in group.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else str(layer)
            layer_group = group[layer]
            for weight in layer_group.attrs.get("weight_names", []):
                weight = weight.decode() if isinstance(weight, bytes) else str(weight)
                # Keras 2 names "conv1_conv/kernel:0", Keras 3 "conv1_conv/kernel".
                leaf = weight.split("/")[-1].split(":")[0]
                state[f"{layer}/{leaf}"] = np.asarray(layer_group[weight])
    return state


def read_checkpoint(path):
    """`{key: numpy array}` of a `.pth`/`.pt`/`.bin`, `.safetensors` or
    keras.applications `.h5` file.

    Args:
        path: the file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unknown file type, a truncated or corrupt file, a pickle
            that `torch.load(weights_only=True)` refuses.
        ImportError: a PyTorch file and no torch.

    Example:

    >>> state = read_checkpoint("resnet50-0676ba61.pth")  # doctest: +SKIP
    >>> state["conv1.weight"].shape  # doctest: +SKIP
    (64, 3, 7, 7)
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file at {os.fspath(path)!r}.")
    kind = checkpoint_format(path)
    if kind == "keras":
        raise UsageError(
            f"{os.fspath(path)!r} is a Keras 3 weights file: load it with "
            "model.load_weights (or weights=path when building)."
        )
    return {"torch": _read_torch, "safetensors": _read_safetensors, "h5": _read_h5}[kind](path)
