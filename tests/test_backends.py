"""The same weights give the same logits on TensorFlow, JAX and PyTorch, and
`.keras` and weight files move between them.

The TensorFlow side (this process) builds one model of each family, with
random weights and batch-norm statistics, at a fixed input size, so that its
fast paths run: TensorFlow's native grouped convolution (`GroupedConv2D`),
the fused batch norm, the batch norm folded into the convolution before it
(inference, eager calls at known sizes) and the 1x1 convolutions as matrix
products (training). The other backends run Keras's own `keras.ops`
computation of the same layers. It saves each model as a `.keras` file and
writes weight files of torchvision, timm and keras.applications; then
`backend_worker.py` runs under each other backend in a process of its own
(jax, then torch where installed), loads the files, and saves them again
from there for the others to load.

Every output must be within `TOLERANCE[mode]` of TensorFlow's, relative to
the largest one: 1e-5 in inference (measured: 4e-7 to 1.6e-6 on JAX); 2e-4
in a training-mode forward pass (batch statistics), where no two float32
computations of a 50-layer network agree better (measured on JAX: 1e-6 for
ResNet-20, 4e-6 for ResNet-18, 1.4e-5 to 5.5e-5 for the 50-layer ones). Measured on ResNet-50 (64 px, batch 4, and 96 px, batch 8):
TensorFlow's fused batch norm, Keras's own batch-norm arithmetic on
TensorFlow and JAX each end 4e-5 to 7e-5 from the same network computed in
float64, because each training-mode batch norm divides by the spread of its
batch, which amplifies float32 rounding layer after layer. A wrong formula
shows far above that: the unbiased variance in place of the biased one moves
a stage-4 batch norm over 16 values by 3%. (All figures: docs/backends.md.)

The PyTorch items need torch; without it they are skipped with a reason
that gives their number and the command (conftest.py).
"""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from safetensors.numpy import save_file

import keras_resnets
from keras_resnets.weights.layouts import to_state_dict

from helpers import random_images, randomize_batchnorm, to_numpy, write_digit_folder

# The exchange fixture (a subprocess per backend, about 100 s) is
# session-scoped; pytest.ini's `--dist loadfile` keeps this module on one
# pytest-xdist worker, so it is computed once per suite run.

OTHER_BACKENDS = ("jax", "torch")
TOLERANCE = {"inference": 1e-5, "training": 2e-4}
WORKER = os.path.join(os.path.dirname(__file__), "backend_worker.py")
LOGITS = dict(classes=10, classifier_activation=None)

# case -> (registered model, builder arguments): one model of each family,
# and a dilated backbone returning its feature pyramid.
CASES = {
    "cifar_option_a": ("resnet20", dict(input_shape=(32, 32, 3), **LOGITS)),
    "basic": ("resnet18", dict(input_shape=(64, 64, 3), width_multiplier=0.5, **LOGITS)),
    "bottleneck": ("resnet50", dict(input_shape=(64, 64, 3), width_multiplier=0.25, **LOGITS)),
    "preactivation": ("resnet50v2", dict(input_shape=(64, 64, 3), width_multiplier=0.25, **LOGITS)),
    "grouped": ("resnext50_32x4d", dict(input_shape=(64, 64, 3), width_multiplier=0.5, **LOGITS)),
    "backbone_os8": ("resnet18", dict(input_shape=(64, 64, 3), width_multiplier=0.25, include_top=False,
                                      features_only=True, output_stride=8)),
}
# weight file -> (registered model, builder arguments): written here, loaded with weights= there.
WEIGHTS = {
    "torchvision_safetensors": ("resnet50", dict(input_shape=(64, 64, 3), width_multiplier=0.25, **LOGITS)),
    "timm_safetensors": ("resnet18", dict(input_shape=(32, 32, 3), stem="deep", shortcut="D",
                                          width_multiplier=0.25, **LOGITS)),
    "keras_applications_h5": ("resnet50", dict(input_shape=(32, 32, 3), layout="keras", include_top=False,
                                               pooling="avg")),
}
MODES = ("inference", "training")


def _outputs(model, images):
    """`{"mode|level": array}` of `model` on `images`, inference first."""
    found = {}
    for mode in MODES:
        outputs = model(images, training=mode == "training")
        for level, value in (outputs.items() if isinstance(outputs, dict) else [("", outputs)]):
            found[f"{mode}|{level}"] = to_numpy(value)
    return found


def _weights_file(case, folder, images):
    """Writes the weight file of `case`; returns (file name, TensorFlow's outputs of its source)."""
    name, kwargs = WEIGHTS[case]
    if case == "keras_applications_h5":
        source = keras.applications.ResNet50(weights=None, include_top=False, pooling="avg",
                                             input_shape=kwargs["input_shape"])
        randomize_batchnorm(source)
        source.save(folder / "keras_applications.h5")  # the weights in "model_weights", as the loader reads
        return "keras_applications.h5", _outputs(source, images)
    source = keras_resnets.get_model(name, **kwargs)
    randomize_batchnorm(source)
    file = f"{case}.safetensors"
    save_file(to_state_dict(source, case.split("_")[0]), str(folder / file))
    return file, _outputs(source, images)


def _run_worker(backend, folder, load_from, save):
    env = dict(os.environ, KERAS_BACKEND=backend)
    command = [sys.executable, WORKER, str(folder), ",".join(load_from)] + ["--save"] * save
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{backend} worker failed:\n{done.stderr[-3000:]}"
    return dict(np.load(folder / f"outputs.{backend}.npz"))


def _installed(backend):
    # KERAS_RESNETS_TEST_BACKENDS=jax (comma-separated) limits the run to those, e.g. to time CI's.
    chosen = os.environ.get("KERAS_RESNETS_TEST_BACKENDS")
    if chosen is not None and backend not in chosen.split(","):
        return False
    probe = f"import importlib.util as u; print(u.find_spec({backend!r}) is not None)"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "True"


@pytest.fixture(scope="session")
def exchange(tmp_path_factory):
    """Everything each backend computed: `{backend: {"case|saved by|mode|level": array}}`
    (TensorFlow's own outputs under "case|tensorflow|..."), and the folder."""
    folder = tmp_path_factory.mktemp("backends")
    inputs, results = {}, {"tensorflow": {}}
    for i, (case, (name, kwargs)) in enumerate({**CASES, **WEIGHTS}.items()):
        inputs[case] = random_images((8, *kwargs["input_shape"]), seed=i)
    for case, (name, kwargs) in CASES.items():
        model = keras_resnets.get_model(name, **kwargs)
        randomize_batchnorm(model)
        model.save(folder / f"{case}.tensorflow.keras")
        for key, value in _outputs(model, inputs[case]).items():
            results["tensorflow"][f"{case}|tensorflow|{key}"] = value
    files = {}
    for case, (name, kwargs) in WEIGHTS.items():
        files[case], outputs = _weights_file(case, folder, inputs[case])
        for key, value in outputs.items():
            results["tensorflow"][f"{case}|tensorflow|{key}"] = value
    np.savez(folder / "inputs.npz", **inputs)
    weights = {case: dict(name=name, kwargs=kwargs, file=files[case]) for case, (name, kwargs) in WEIGHTS.items()}
    (folder / "cases.json").write_text(json.dumps(dict(cases=list(CASES), weights=weights)))

    available = [b for b in OTHER_BACKENDS if _installed(b)]
    for i, backend in enumerate(available):
        # Each loads TensorFlow's files and those of the backends before it, and saves its own.
        results[backend] = _run_worker(backend, folder, ["tensorflow", *available[:i]], save=True)
    if len(available) > 1:  # the first one loads the files of the others
        later = _run_worker(available[0], folder, available[1:], save=False)
        results[available[0]].update({k: v for k, v in later.items() if k.split("|")[0] in CASES})
    # TensorFlow loads the files the others saved.
    for backend in available:
        for case in CASES:
            model = keras.saving.load_model(folder / f"{case}.{backend}.keras")
            for key, value in _outputs(model, inputs[case]).items():
                results["tensorflow"][f"{case}|{backend}|{key}"] = value
    return results, available


def _needs(exchange, *backends):
    missing = [b for b in backends if b != "tensorflow" and b not in exchange[1]]
    if missing:
        pytest.skip(f"{', '.join(missing)} is not installed")


def _difference(ours, reference):
    """Largest difference over the outputs, relative to the largest output."""
    worst = 0.0
    for key, ref in reference.items():
        worst = max(worst, float(np.abs(ours[key] - ref).max() / max(1.0, np.abs(ref).max())))
    return worst


def _within_tolerance(ours, reference):
    """Each mode's outputs within its tolerance; returns the differences."""
    found = {}
    for mode in MODES:
        found[mode] = _difference(ours, {k: v for k, v in reference.items() if k.startswith(mode)})
    assert all(found[mode] <= TOLERANCE[mode] for mode in MODES), found
    return found


def _outputs_of(results, backend, case, saved_by):
    prefix = f"{case}|{saved_by}|"
    found = {k[len(prefix):]: v for k, v in results[backend].items() if k.startswith(prefix)}
    assert found, f"{backend} computed nothing for {prefix!r}"
    return found


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_same_logits_as_tensorflow(exchange, backend, case, mode, record_property):
    """The file TensorFlow saved, run on `backend`: the logits of TensorFlow's fast paths."""
    _needs(exchange, backend)
    results, _ = exchange
    reference = {k: v for k, v in _outputs_of(results, "tensorflow", case, "tensorflow").items()
                 if k.startswith(mode)}
    ours = _outputs_of(results, backend, case, "tensorflow")
    assert set(reference) <= set(ours)
    assert max(np.abs(v).max() for v in reference.values()) > 1e-2  # a real signal
    difference = _difference(ours, reference)
    record_property("max_difference", difference)  # (the parity table: --junitxml)
    assert difference <= TOLERANCE[mode]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("saved_by, loaded_by", [
    ("jax", "tensorflow"), ("torch", "tensorflow"), ("jax", "torch"), ("torch", "jax"),
])
def test_keras_file_saved_on_one_backend_loads_on_another(exchange, saved_by, loaded_by, case):
    _needs(exchange, saved_by, loaded_by)
    results, _ = exchange
    reference = _outputs_of(results, "tensorflow", case, "tensorflow")
    _within_tolerance(_outputs_of(results, loaded_by, case, saved_by), reference)


@pytest.mark.parametrize("case", list(WEIGHTS))
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_weights_files_load_on_every_backend(exchange, backend, case):
    """torchvision and timm `.safetensors`, keras.applications `.h5` (and,
    under PyTorch, a torchvision `.pth`): `weights=` gives the outputs that
    the model they were written from gives on TensorFlow, in inference (the
    training-mode pass of a different network, keras.applications', on 4
    images of 32 px normalizes stage 4 over 4 values: no test of the weights)."""
    _needs(exchange, backend)
    results, _ = exchange
    reference = {k: v for k, v in _outputs_of(results, "tensorflow", case, "tensorflow").items()
                 if k.startswith("inference")}
    for loaded in [case] + [f"{case}-pth"] * (backend == "torch" and case.endswith("safetensors")):
        ours = _outputs_of(results, backend, loaded, backend)
        assert _difference(ours, reference) <= TOLERANCE["inference"], loaded


@pytest.mark.parametrize("backend", ["torch"])
def test_the_command_line_trains_on_the_backend(backend, tmp_path):
    """`KERAS_BACKEND=torch keras-resnets train`, as typed, then `predict` on
    TensorFlow from the file it wrote, each in a process of its own. On
    PyTorch the first died at once (a segmentation fault: torch's triton
    loaded after TensorFlow) until `import keras_resnets` loaded triton first."""
    command = shutil.which("keras-resnets", path=os.path.dirname(sys.executable))
    assert command, 'the keras-resnets command is not installed beside this Python: pip install -e ".[test]"'
    runs = tmp_path / "runs"
    train = subprocess.run(
        [command, "train", "--image-size", "16", "--epochs", "2", "--output", str(runs), "--run-name", "r",
         "--verbose", "2"],
        env=dict(os.environ, KERAS_BACKEND=backend), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, f"exit status {train.returncode}:\n{train.stdout[-2000:]}\n{train.stderr[-3000:]}"
    assert "CUDA initialization" not in train.stderr, train.stderr  # torch imported after TensorFlow's failed CUDA start
    summary = json.loads((runs / "r" / "summary.json").read_text())
    assert summary["versions"]["backend"] == backend and summary["epochs_logged"] == 2
    assert f"test accuracy {summary['test_accuracy']:.4f}" in train.stdout
    write_digit_folder(tmp_path / "digits", size=16, limit=3)
    predict = subprocess.run(
        [command, "predict", str(runs / "r" / "model.keras"), str(tmp_path / "digits"), "--format", "json"],
        env=dict(os.environ, KERAS_BACKEND="tensorflow"), cwd=tmp_path, capture_output=True, text=True,
        timeout=600)
    assert predict.returncode == 0, predict.stderr[-3000:]
    results = [json.loads(line) for line in predict.stdout.splitlines()]
    paths = sorted(str(p) for p in (tmp_path / "digits").rglob("*.png"))
    assert [r["image"] for r in results] == paths and len(paths) == 30
    model = keras_resnets.load_model(runs / "r" / "model.keras")
    images = np.stack([np.asarray(keras.utils.load_img(p)) for p in paths])
    expected = to_numpy(model.predict(images, verbose=0))
    assert [r["top"][0]["index"] for r in results] == list(expected.argmax(-1))
    np.testing.assert_allclose([r["top"][0]["probability"] for r in results], expected.max(-1), atol=1e-5)
