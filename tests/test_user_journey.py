"""The user's journey, as typed: the installed `keras-resnets` command in fresh
processes, each step reading only what an earlier step wrote.

train (ResNet-20, 16 px digits, 6 epochs) -> export (float32 and int8 LiteRT
and a SavedModel, one command) -> predict on a folder of images -> train --weights THAT MODEL on
another folder (a new head: the finetune recipe) -> export that model to int8.
Then every kind of `.keras` file the package writes (classifier, fine-tuned
model with its preprocessing, `features_only` dilated backbone, tuned model)
is read by `keras.saving.load_model` in new processes that import
keras_resnets before Keras, after it, and before TensorFlow (which looks up
Keras before importing it).

Nothing here runs `cli_main` in the test process: a subcommand that forgot
to import what reading a model file needs (export did: "Could not locate
class 'ResNetModel'") passes in-process, where other tests have imported it.
The in-process CLI tests (test_cli_errors.py, test_export.py) keep the
argument checks.

The steps run in one module fixture (pytest.ini's `--dist loadfile` keeps the
module on one xdist worker), about 100 s on 2 cores.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import write_digit_folder

SIZE = 16
STEP_TIMEOUT = 300  # seconds; a bound on a hang, each step takes 5-30 s


def _command():
    """The installed console script of the Python that runs the tests."""
    path = shutil.which("keras-resnets", path=os.path.dirname(sys.executable))
    assert path is not None, (
        "the keras-resnets command is not installed beside this Python: pip install -e \".[test]\""
    )
    return path


def _env():
    """A user's environment: no PYTHONPATH (the installed package is used),
    no GPU, TensorFlow's own thread pools (conftest.py narrows the tests')."""
    test_settings = ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in test_settings}
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


class Journey:
    """Runs the steps in `folder`, in order; a step that fails stops the
    ones after it (they would read what it did not write)."""

    def __init__(self, folder):
        self.folder, self.steps, self.failed = folder, {}, None

    def run(self, name, argv, program=None):
        if self.failed is not None:
            self.steps[name] = None
            return None
        started = time.time()
        done = subprocess.run(
            [program or _command(), *argv], cwd=self.folder, env=_env(), capture_output=True, text=True,
            timeout=STEP_TIMEOUT, stdin=subprocess.DEVNULL,
        )
        self.steps[name] = dict(code=done.returncode, out=done.stdout, err=done.stderr,
                                seconds=round(time.time() - started, 1))
        if done.returncode != 0:
            self.failed = name
        return self.steps[name]

    def step(self, name):
        """The step's result; fails the test with what went wrong if it, or
        a step before it, failed."""
        result = self.steps[name]
        if result is None:
            pytest.fail(f"step {name!r} did not run: step {self.failed!r} failed before it:\n"
                        + self.steps[self.failed]["err"][-3000:])
        assert result["code"] == 0, f"{name} exited {result['code']}:\n{result['err'][-3000:]}"
        return result


def _write_backbone(folder):
    """A `features_only` dilated ResNet-18 and its outputs, as a user's
    script saves them (here, in the test process: what the journey checks is
    that new processes load it)."""
    import keras_resnets

    model = keras_resnets.ResNet18(features_only=True, output_stride=8, input_shape=(32, 32, 3))
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype="float32")
    np.savez(folder / "backbone_outputs.npz", x=x, **{k: np.asarray(v) for k, v in model(x).items()})
    model.save(folder / "backbone.keras")

LOAD = """
import json, sys
import numpy as np
{imports}
files = json.loads(sys.argv[1])
report = {{}}
for path in files:
    model = keras.saving.load_model(path)
    report[path] = {{"class": type(model).__name__, "optimizer": type(getattr(model, "optimizer", None)).__name__}}
    if path == "backbone.keras":
        saved = np.load("backbone_outputs.npz")
        out = model(saved["x"])
        report[path]["max_diff"] = max(float(np.max(np.abs(np.asarray(out[k]) - saved[k]))) for k in out)
print(json.dumps(report))
"""

IMPORT_ORDERS = {
    "keras_resnets, then keras": "import keras_resnets\nimport keras",
    "keras, then keras_resnets": "import keras\nimport keras_resnets",
    "keras_resnets, tensorflow, keras": "import keras_resnets\nimport tensorflow\nimport keras",
}

FILES = {
    "classifier": "runs/resnet20-digits/model.keras",
    "fine-tuned": "runs/finetuned/model.keras",
    "backbone": "backbone.keras",
    "tuned": "tune/best.keras",
}


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    folder = tmp_path_factory.mktemp("journey")
    # The user's own images: 3 of each digit to classify, 30 of each of 0-4
    # to fine-tune on.
    write_digit_folder(folder / "photos", size=SIZE, limit=3)
    write_digit_folder(folder / "more", digits=range(5), size=SIZE, limit=30)
    j = Journey(folder)
    model = "runs/resnet20-digits/model.keras"
    j.run("train", ["train", "--image-size", str(SIZE), "--epochs", "6", "--precision", "float32",
                    "--output", "runs"])
    j.run("export", ["export", model, "--format", "tflite", "saved_model", "--quantize", "none", "int8",
                     "--runs", "3"])
    j.run("predict", ["predict", model, "photos", "--format", "json", "--top", "3"])
    j.run("predict int8", ["predict", "runs/resnet20-digits/model_int8.tflite", "photos", "--format", "json",
                           "--top", "3"])
    j.run("fine-tune", ["train", "--weights", model, "--data", "more", "--epochs", "1", "--output", "runs",
                        "--run-name", "finetuned"])
    j.run("export fine-tuned", ["export", "runs/finetuned/model.keras", "--quantize", "int8", "--runs", "3"])
    j.run("tune", ["tune", "--tuner", "random", "--max-trials", "1", "--epochs", "1", "--image-size", str(SIZE),
                   "--families", "v1", "--depths", "20", "--directory", "tune"])
    _write_backbone(folder)
    for order, imports in IMPORT_ORDERS.items():
        j.run(f"load: {order}", ["-c", LOAD.format(imports=imports), json.dumps(list(FILES.values()))],
              program=sys.executable)
    print({name: step and step["seconds"] for name, step in j.steps.items()})
    return j


def _table(out):
    """The export table's rows: `{file name: (top-1 agreement, max |diff|)}`."""
    rows = {}
    for line in out.splitlines():
        cells = line.split()  # file, input, size, unit, size %, max |diff|, top-1 agree, (images), ...
        if cells and cells[0].endswith((".tflite", "_saved_model")):
            rows[cells[0]] = (float(cells[6]), float(cells[5]))
    return rows


def test_train_writes_the_run(journey):
    journey.step("train")
    run = journey.folder / "runs" / "resnet20-digits"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_logged"] == 6 and summary["image_size"] == SIZE
    # A 6-epoch ResNet-20 from a zero classifier: 0.71 when this was written (chance: 0.10).
    assert summary["test_accuracy"] > 0.4


def test_export_reads_the_trained_model_and_its_files_agree(journey):
    out, err = journey.step("export")["out"], journey.step("export")["err"]
    # Neither TensorFlow's warning on the converter we chose (frozen graph)
    # nor the int8 quantizer's settings, which its C++ prints.
    assert "deprecated" not in err and "fully_quantize" not in err, err
    run = journey.folder / "runs" / "resnet20-digits"
    assert (run / "model.tflite").is_file() and (run / "model_int8.tflite").is_file()
    rows = _table(out)
    assert list(rows) == ["model.tflite", "model_int8.tflite", "model_saved_model"]  # in --format's order
    assert rows["model.tflite"] == (1.0, pytest.approx(0, abs=1e-4))
    assert rows["model_int8.tflite"][0] >= 0.97  # 0.98 when written: a 6-epoch model has near-ties
    assert rows["model_saved_model"] == (1.0, pytest.approx(0, abs=1e-5))
    assert "runtime: LiteRT" in out and "; TensorFlow" in out
    assert (run / "model_saved_model" / "saved_model.pb").is_file()


def test_predict_gives_the_models_own_classes(journey):
    """`predict`'s classes and probabilities, from a fresh process, equal the
    trained model's on the same files (the images are 16 px, the model's
    size, so its "resize" transform leaves them as they are)."""
    from PIL import Image

    import keras_resnets

    lines = journey.step("predict")["out"].strip().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 30
    model = keras_resnets.load_model(journey.folder / "runs" / "resnet20-digits" / "model.keras")
    images = np.stack([np.asarray(Image.open(journey.folder / r["image"]).convert("RGB")) for r in records])
    probabilities = model.predict(images, verbose=0)
    for record, p in zip(records, probabilities):
        assert [t["index"] for t in record["top"]] == list(np.argsort(-p)[:3]), record["image"]
        np.testing.assert_allclose([t["probability"] for t in record["top"]], np.sort(p)[::-1][:3], atol=1e-5)
        assert record["top"][0]["class"] == str(record["top"][0]["index"])


def test_predict_runs_the_exported_int8_file(journey):
    """`predict` on the int8 file export wrote, in a fresh process: the
    run's class names, the .keras model's top class (the int8 file agreed
    on 0.97 or more at export), and probabilities close to the model's."""
    keras_records = [json.loads(line) for line in journey.step("predict")["out"].strip().splitlines()]
    records = [json.loads(line) for line in journey.step("predict int8")["out"].strip().splitlines()]
    assert [r["image"] for r in records] == [r["image"] for r in keras_records]
    same = [r["top"][0]["class"] == k["top"][0]["class"] for r, k in zip(records, keras_records)]
    assert np.mean(same) >= 0.9
    for record, reference, agree in zip(records, keras_records, same):
        if agree:
            assert abs(record["top"][0]["probability"] - reference["top"][0]["probability"]) < 0.05, record


def test_fine_tune_starts_from_the_trained_model_and_exports(journey):
    journey.step("fine-tune")
    summary = json.loads((journey.folder / "runs" / "finetuned" / "summary.json").read_text())
    assert summary["starting_point"] == "keras_model" and summary["recipe"] == "finetune"
    assert summary["weights"] == "runs/resnet20-digits/model.keras"
    assert summary["class_names"] == ["0", "1", "2", "3", "4"] and summary["train_images"] > 0
    rows = _table(journey.step("export fine-tuned")["out"])
    assert set(rows) == {"model_int8.tflite"}
    assert rows["model_int8.tflite"][0] >= 0.9  # calibrated and verified on the folder (30 test images)
    assert (journey.folder / "runs" / "finetuned" / "model_int8.tflite").is_file()


@pytest.mark.parametrize("order", sorted(IMPORT_ORDERS))
def test_every_model_file_loads_in_a_new_process(journey, order):
    journey.step("tune")
    report = json.loads(journey.step(f"load: {order}")["out"].strip().splitlines()[-1])
    assert {path: r["class"] for path, r in report.items()} == dict.fromkeys(FILES.values(), "ResNetModel")
    # The files of `train` keep their compiled optimizer.
    assert report[FILES["classifier"]]["optimizer"] == report[FILES["fine-tuned"]]["optimizer"] == "L2SGD"
    assert report[FILES["backbone"]]["max_diff"] <= 1e-5
