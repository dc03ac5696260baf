"""`keras_resnets.train` and `keras-resnets train`, end to end on real data."""

import csv
import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_resnets
from keras_resnets.cli import main as cli_main
from keras_resnets.training.precision import resolve_precision

from helpers import cifar_resnet_figures, reap, sigkill

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small and quick: 16 px digits, a few epochs.
QUICK = dict(image_size=16, batch_size=128, verbose=0)
# For what the image size does not change (the precision a run trains in):
# ResNet-20's stages at 8, 4 and 2 px.
TINY = {**QUICK, "image_size": 8}


def read_log(run_dir):
    with open(os.path.join(run_dir, "log.csv")) as f:
        return list(csv.DictReader(f))


# One run per precision, shared by the tests that read it (module-scoped:
# pytest.ini's `--dist loadfile` keeps the module on one worker).
PRECISION_RUN = dict(epochs=3, lr=0.05, **TINY)
# The mixed precisions train two epochs of a quarter-width ResNet-20 (a larger
# learning rate: enough for the loss to fall, 2.36 -> 2.32): on a CPU without
# float16 arithmetic, float16 convolutions are emulated, and a full-width
# mixed_float16 run took 50 s of CPU against 9 s (an AMX Xeon).
MIXED_RUN = dict(epochs=2, width_multiplier=0.25, lr=0.2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`trained(precision)`: `(model, summary, run folder, seconds)` of
    `PRECISION_RUN` in that precision (with `MIXED_RUN` in mixed precision),
    trained on first use."""
    runs = {}

    def get(precision):
        if precision not in runs:
            output = tmp_path_factory.mktemp(precision)
            started = time.perf_counter()
            run = {**PRECISION_RUN, **({} if precision == "float32" else MIXED_RUN)}
            model, summary = keras_resnets.train(output=str(output), precision=precision, **run)
            runs[precision] = (model, summary, output / "resnet20-digits", time.perf_counter() - started)
        return runs[precision]

    return get


def test_run_leaves_everything_behind(trained):
    model, summary, run_dir, elapsed = trained("float32")
    size = PRECISION_RUN["image_size"]
    assert summary["run_dir"] == str(run_dir)
    for name in ("model.keras", "best.keras", "log.csv", "history.png", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert not list(run_dir.glob(".partial*"))
    assert [r["epoch"] for r in read_log(run_dir)] == ["0", "1", "2"]
    with open(run_dir / "summary.json") as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(summary))
    for key in ("model", "data", "epochs", "test_accuracy", "test_loss", "params", "macs",
                "train_images_per_second", "wall_seconds", "precision", "seed", "versions"):
        assert key in saved, key
    assert saved["params"] == cifar_resnet_figures(3)[0]  # ResNet-20, counted by hand
    assert saved["epochs"] == 3 and not saved["resumed"]
    assert saved["splits"] == {"train": "70% (stratified, fixed)", "validation": "10% (stratified, fixed)",
                               "test": "20% (stratified, fixed)"}
    # The test accuracy, recounted here from the model's own predictions.
    hits = count = 0
    for images, labels in keras_resnets.data.load_data("digits", image_size=size).test:
        predicted = np.argmax(model.predict(images, verbose=0), axis=-1)
        hits += int(np.sum(predicted == np.reshape(labels, -1)))
        count += len(predicted)
    assert count == saved["test_images"]
    assert saved["test_accuracy"] == pytest.approx(hits / count, abs=1e-6)
    # One epoch of the training images took less than the whole run did, as
    # timed here: the rate is images per second, not per millisecond or step.
    assert saved["train_images"] / saved["train_images_per_second"] < elapsed
    with open(run_dir / "history.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # The saved model takes raw uint8 images and gives the same predictions.
    assert model.inputs[0].dtype == "uint8"
    images = next(iter(keras_resnets.data.load_data("digits", image_size=size).test))[0]
    loaded = keras.saving.load_model(run_dir / "model.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_precision_policies_train(precision, trained):
    model, summary, run_dir, _ = trained(precision)
    assert summary["precision"] == precision
    block = model.get_layer("stage1_block1")
    assert block.compute_dtype == ("float32" if precision == "float32" else precision.split("_")[1])
    assert all(w.dtype == "float32" for w in model.weights if "seed" not in w.path)
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert model.predict(np.zeros((1, 8, 8, 3), "uint8"), verbose=0).dtype == np.float32
    losses = [float(r["loss"]) for r in read_log(run_dir)]
    assert losses[-1] < losses[0], losses
    if precision == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_auto_precision_follows_the_cpu_features_numpy_detects():
    # A second detection of bfloat16 arithmetic: NumPy reads CPUID itself,
    # where keras_resnets reads /proc/cpuinfo (AMX CPUs have AVX512-BF16 too).
    features = pytest.importorskip("numpy._core._multiarray_umath").__cpu_features__
    if "AVX512BF16" not in features:
        pytest.skip("this NumPy does not report AVX512BF16")
    expected = "mixed_bfloat16" if features["AVX512BF16"] else "float32"
    if tf.config.list_physical_devices("GPU"):
        expected = "mixed_float16"
    assert resolve_precision("auto") == expected
    with pytest.raises(ValueError, match=r"received precision='half'"):
        resolve_precision("half")


def test_finetune_freezes_batchnorm(tmp_path):
    model, summary = keras_resnets.train(
        recipe="finetune", epochs=2, output=str(tmp_path), precision="float32", **TINY
    )
    bns = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
    assert bns and all(not bn.trainable for bn in bns)
    # Frozen BN keeps its initial statistics: mean 0, variance 1.
    assert all(np.all(np.asarray(bn.moving_mean) == 0.0) for bn in bns)
    # The head was fitted first (a linear probe, no epoch), then both epochs trained everything.
    assert (tmp_path / "resnet20-digits" / "head.weights.h5").is_file()
    assert len(read_log(tmp_path / "resnet20-digits")) == 2


def test_nan_loss_stops_with_a_clear_message(tmp_path):
    with pytest.raises(FloatingPointError, match=r"at epoch 1, step \d+: training stopped"):
        keras_resnets.train(epochs=2, lr=1e30, output=str(tmp_path), precision="float32", **TINY)
    assert not (tmp_path / "resnet20-digits" / "model.keras").exists()


def test_train_leaves_the_callers_dtype_policy(tmp_path, trained):
    """A run trains in its precision and leaves Keras's global policy as it
    found it, after a failure too: the next model the caller builds is not
    in mixed precision (it was, before `dtype_policy_restored`)."""
    with pytest.raises(FloatingPointError):
        keras_resnets.train(epochs=1, lr=1e30, output=str(tmp_path), precision="mixed_bfloat16", **TINY)
    assert keras.config.dtype_policy().name == "float32"
    model, summary, _, _ = trained("mixed_bfloat16")
    assert summary["precision"] == "mixed_bfloat16" and model.get_layer("stem").dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"


def test_tfds_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=64):
        _, summary = keras_resnets.train(
            data="tfds:mnist", epochs=1, output=str(tmp_path), precision="float32",
            image_size=16, batch_size=32, verbose=0,
        )
    assert summary["num_classes"] == 10 and summary["image_size"] == 16
    assert summary["data"] == "tfds:mnist"


def test_corrupt_image_stops_before_training(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(6):
            img = np.random.default_rng(i).integers(0, 255, (20, 20, 3), dtype=np.uint8)
            tf.io.write_file(str(tmp_path / "imgs" / cls / f"{i}.png"), tf.io.encode_png(img))
    bad = tmp_path / "imgs" / "b" / "broken.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="broken.jpg"):
        keras_resnets.train(data=str(tmp_path / "imgs"), epochs=1, output=str(tmp_path / "runs"), **QUICK)
    assert not (tmp_path / "runs" / "resnet20-imgs" / "log.csv").exists()
    _, summary = keras_resnets.train(
        data=str(tmp_path / "imgs"), epochs=1, output=str(tmp_path / "runs"),
        skip_bad_images=True, precision="float32", **QUICK
    )
    assert summary["skipped_images"] == 1 and summary["num_classes"] == 2


def _cli(*args, output):
    """`keras-resnets train ARGS` in a subprocess, its output to the file `output`."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    with open(output, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "keras_resnets.cli", "train", *args],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )


RESUME_EPOCHS = 4


def test_resume_after_sigkill(tmp_path):
    # 8 px: an epoch of ResNet-20 is mostly its fixed cost, as at 16 px.
    args = ["--epochs", str(RESUME_EPOCHS), "--image-size", "8", "--output", str(tmp_path), "--precision",
            "float32"]
    console = tmp_path / "console.txt"
    proc = _cli(*args, output=console)
    log = tmp_path / "resnet20-digits" / "log.csv"
    deadline = time.time() + 240
    try:
        # Kill it in the middle of the third epoch: half an epoch after the
        # second one is logged.
        seen = {}
        while time.time() < deadline and proc.poll() is None and len(seen) < 2:
            rows = len(read_log(log.parent)) if log.exists() else 0
            if rows and rows not in seen:
                seen[rows] = time.time()
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed:\n" + console.read_text()
        times = sorted(seen.values())
        time.sleep(0.5 * (times[-1] - times[0]))
        assert proc.poll() is None
        sigkill(proc)
    finally:
        reap(proc)
    done_before = len(read_log(log.parent))
    assert done_before < RESUME_EPOCHS and not (log.parent / "summary.json").exists()
    resumed = _cli(*args, "--resume", output=console)
    assert resumed.wait(timeout=400) == 0, console.read_text()
    with open(log.parent / "summary.json") as f:
        summary = json.load(f)
    assert summary["resumed"] and summary["epochs"] == RESUME_EPOCHS
    epochs = [int(r["epoch"]) for r in read_log(log.parent)]
    # Every epoch is there; at most the interrupted one is repeated.
    assert sorted(set(epochs)) == list(range(RESUME_EPOCHS))
    assert len(epochs) <= RESUME_EPOCHS + 1 and epochs[:done_before] == list(range(done_before))


def test_cli_help_and_errors(capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for option in ("--model", "--data", "--epochs", "--batch-size", "--lr", "--recipe", "--precision",
                   "--image-size", "--output", "--seed", "--resume", "--strategy", "--weights"):
        assert option in out
    assert cli_main(["train", "--model", "resnet5O"]) == 2
    assert "Did you mean" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli_main(["train", "--epochs", "0"])
    assert e.value.code == 2
    assert "argument --epochs: must be a positive integer; received '0'" in capsys.readouterr().err


def test_fit_creates_no_variable_inside_the_train_step():
    """`build_for_fit` creates the optimizer's and the metrics' variables
    before `fit`: on TensorFlow without a strategy Keras created them in the
    first trace of the train step, and `tf.function` then traced the step a
    second time (ResNet-20: 3-4 s and 250 MiB of a run). With it, `fit`
    creates no variable. It calls Keras's private `_symbolic_build` (what
    `fit` runs under a strategy), checked here to exist."""
    from keras_resnets.training.loop import build_for_fit
    from keras_resnets.training.recipes import get_recipe, make_optimizer

    net = keras_resnets.get_model("resnet20", input_shape=(8, 8, 3), classes=10)
    assert callable(getattr(net, "_symbolic_build", None))
    images = np.random.default_rng(0).random((16, 8, 8, 3), dtype="float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.eye(10, dtype="float32")[np.arange(16) % 10])).batch(8)
    net.compile(optimizer=make_optimizer(get_recipe("cifar"), 0.1, 2, 1), loss="categorical_crossentropy",
                metrics=["accuracy"])
    build_for_fit(net, data.element_spec)
    created = []

    def creator(next_creator, **kwargs):
        created.append(kwargs.get("name"))
        return next_creator(**kwargs)

    with tf.variable_creator_scope(creator):
        net.fit(data, epochs=1, verbose=0)
    assert created == []
    assert net.optimizer.iterations.numpy() == 2
