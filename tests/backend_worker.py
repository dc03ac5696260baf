"""The other side of tests/test_backends.py: one Keras backend in a process of its own.

    KERAS_BACKEND=jax python tests/backend_worker.py FOLDER tensorflow[,torch,...] [--save]

FOLDER holds what the TensorFlow side wrote: `cases.json`, `inputs.npz` and
`CASE.BACKEND.keras` files. For each case and each backend named, this loads
the `.keras` file that backend saved and runs it on the case's images in
inference and in training mode (in that order: a training-mode call moves
the batch-norm statistics); with `--save` it first saves the model loaded
from TensorFlow's file again, as `CASE.<this backend>.keras`, for the other
backends to load. It also builds the models of `cases.json`'s "weights"
from their weight files (`weights=`), and under PyTorch from a `.pth` it
writes with `torch.save` (when TensorFlow's files are among those loaded). Everything goes into `outputs.<this backend>.npz`,
keyed "case|saved by|mode|level" ("level": a feature level of a
`features_only` model, else empty).

A process of its own: a backend is chosen once per process, and PyTorch
crashes (through triton) when it is imported after TensorFlow.
"""

import json
import pathlib
import sys

import keras
import numpy as np

import keras_resnets

MODES = (("inference", False), ("training", True))


def flat(outputs):
    """`{level: array}` of a model's outputs (a tensor, or a dict of them)."""
    if isinstance(outputs, dict):
        return {level: keras.ops.convert_to_numpy(v) for level, v in outputs.items()}
    return {"": keras.ops.convert_to_numpy(outputs)}


def record(results, key, model, images):
    for mode, training in MODES:
        for level, value in flat(model(images, training=training)).items():
            results[f"{key}|{mode}|{level}"] = value


def main(folder, load_from, save):
    backend = keras.backend.backend()
    spec = json.loads((folder / "cases.json").read_text())
    inputs = np.load(folder / "inputs.npz")
    results = {}
    for case in spec["cases"]:
        for saved_by in load_from:
            model = keras.saving.load_model(folder / f"{case}.{saved_by}.keras")
            if save and saved_by == "tensorflow":
                model.save(folder / f"{case}.{backend}.keras")
            record(results, f"{case}|{saved_by}", model, inputs[case])
    for case, w in spec["weights"].items() if "tensorflow" in load_from else ():
        model = keras_resnets.get_model(w["name"], weights=str(folder / w["file"]), **w["kwargs"])
        record(results, f"{case}|{backend}", model, inputs[case])
        if backend == "torch" and w["file"].endswith(".safetensors"):
            import torch
            from safetensors.numpy import load_file

            # A PyTorch checkpoint as torchvision writes it: weights= reads it with torch.load.
            path = folder / f"{case}.pth"
            torch.save({k: torch.from_numpy(v) for k, v in load_file(folder / w["file"]).items()}, path)
            model = keras_resnets.get_model(w["name"], weights=str(path), **w["kwargs"])
            record(results, f"{case}-pth|{backend}", model, inputs[case])
    np.savez(folder / f"outputs.{backend}.npz", **results)


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]), sys.argv[2].split(","), "--save" in sys.argv[3:])
