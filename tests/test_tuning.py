"""`keras_resnets.tuning` and `keras-resnets tune`: real KerasTuner searches on the digits."""

import csv
import json
import os
import subprocess
import sys
import time

import keras
import keras_tuner
import numpy as np
import pytest

import keras_resnets
from keras_resnets.cli import main as cli_main
from keras_resnets.tuning import ResNetHyperModel, tune
from keras_resnets.training.loop import one_hot_labels
from keras_resnets.tuning.search import HyperbandOracle, _claim_directory, trial_row

from helpers import reap, sigkill, subprocess_env, write_digit_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The smallest space: ResNet-20 at half width with the stride-4 stem on 16 px digits.
TINY = dict(image_size=16, families=["v1"], depths=[20], width_multipliers=[0.5], stems=["deep"],
            batch_sizes=[128], precisions=["float32"])
TINY_ARGS = ["--image-size", "16", "--families", "v1", "--depths", "20"]


def fixed(**values):
    hp = keras_tuner.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp


# RandomSearch runs in the tests below (rejected candidates, the time budget,
# the resumed search); these two are the tuners with an oracle of their own.
@pytest.mark.parametrize("tuner", ["hyperband", "bayesian"])
def test_each_tuner_runs_a_tiny_search(tuner, tmp_path):
    hypermodel = ResNetHyperModel("digits", epochs=1, shortcuts=["A", "B"], **TINY)
    common = dict(objective="val_accuracy", directory=str(tmp_path), project_name=tuner, seed=1)
    if tuner == "hyperband":
        # One epoch per trial: one trial per Hyperband iteration.
        search = keras_tuner.Hyperband(hypermodel, max_epochs=1, hyperband_iterations=2, **common)
    else:
        search = keras_tuner.BayesianOptimization(hypermodel, max_trials=2, num_initial_points=1, **common)
    search.search(verbose=0)
    trials = list(search.oracle.trials.values())
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials), [t.message for t in trials]
    for trial in trials:
        values = trial.hyperparameters.values
        assert values["family"] == "v1" and values["v1/depth"] == 20 and values["shortcut"] in ("A", "B")
        assert 0.0 <= trial.score <= 1.0
        assert trial.metrics.get_last_value("epochs") == 1
        # The recorded cost is the registered model's, built the same way.
        reference = keras_resnets.get_model("resnet20", input_shape=(16, 16, 3), classes=10,
                                            width_multiplier=0.5, stem="deep", shortcut=values["shortcut"])
        assert trial.metrics.get_last_value("params") == reference.count_params() - sum(
            int(np.prod(w.shape)) for w in reference.non_trainable_weights)
        assert trial.metrics.get_last_value("macs") == keras_resnets.count_macs(reference)
    best = search.get_best_models(1)[0]
    assert best.inputs[0].dtype == "uint8" and best.output_shape == (None, 10)


def test_tune_rejects_over_budget_and_saves_results(tmp_path, capsys):
    # Two candidates: x0.5 (about 0.19M MACs) fits max_macs, x2 (about 2.3M) does not.
    directory = str(tmp_path / "search")
    kw = dict(tuner="random", directory=directory, max_trials=2, epochs=1, max_macs=1e6, final_epochs=1,
              hyperparameters=fixed(learning_rate=0.1, weight_decay=1e-4, label_smoothing=0.0,
                                    drop_path_rate=0.0, dropout_rate=0.0, shortcut="A"),
              **{**TINY, "width_multipliers": [0.5, 2.0]})
    summary = tune(**kw)
    out = capsys.readouterr().out
    with open(os.path.join(directory, "results.csv")) as f:
        rows = {r["v1/width_multiplier"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"0.5", "2.0"}
    rejected, trained = rows["2.0"], rows["0.5"]
    assert rejected["status"] == "rejected" and rejected["val_accuracy"] == ""
    assert int(rejected["macs"]) > 1e6 and "M MACs > max_macs 1M MACs" in rejected["reason"]
    # Rejected before training: no checkpoint, no metrics.
    trial_dir = os.path.join(directory, "trials", f"trial_{rejected['trial']}")
    assert not os.path.exists(os.path.join(trial_dir, "checkpoint.weights.h5"))
    assert trained["status"] == "completed" and int(trained["macs"]) <= 1e6
    assert f"trial {rejected['trial']} (epochs 0): resnet20 x2 A/deep" in out and "rejected:" in out
    assert summary["best_trial"] == trained["trial"] and summary["trials_rejected"] == 1
    assert summary["macs"] == int(trained["macs"])
    # The best trial's model went on for one more epoch; best.keras is the
    # better of it and the trial's checkpoint.
    final = summary["final_training"]
    assert final["epochs"] == 1 and "final training: trial" in out
    assert summary["trial_val_accuracy"] == pytest.approx(float(trained["val_accuracy"]))
    assert summary["val_accuracy"] == max(summary["trial_val_accuracy"], final["val_accuracy"])
    assert final["kept"] == ("retrained" if final["val_accuracy"] > summary["trial_val_accuracy"] else "checkpoint")
    with open(os.path.join(directory, "summary.json")) as f:
        assert json.load(f)["test_accuracy"] == summary["test_accuracy"]
    with open(os.path.join(directory, "accuracy_vs_macs.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # best.keras is the best trial's checkpoint, taking raw uint8 images.
    best = keras.saving.load_model(os.path.join(directory, "best.keras"))
    bundle = keras_resnets.data.load_data("digits", image_size=16)
    images = next(iter(bundle.test))[0]
    assert best.predict(images, verbose=0).shape == (images.shape[0], 10)
    best.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    accuracy = best.evaluate(one_hot_labels(bundle.validation, 10), verbose=0)[1]
    assert accuracy == pytest.approx(summary["val_accuracy"], abs=1e-6)
    assert not [p for p in os.listdir(directory) if p.startswith(".partial")]

    # The same search again: nothing left to run, the same results.
    again = tune(**kw)
    assert again["trials"] == 2 and again["best_trial"] == summary["best_trial"]
    # A different search in the same directory is refused, unless overwrite.
    with pytest.raises(ValueError, match=r"holds a different search \(budgets: .*max_macs.*Allowed: .*overwrite"):
        tune(**{**kw, "max_macs": 2e6})
    (tmp_path / "search" / "notes.txt").write_text("mine")
    _claim_directory(directory, {"other": "search"}, overwrite=True)
    assert sorted(os.listdir(directory)) == ["notes.txt", "search.json"]


@pytest.mark.slow
def test_test_accuracy_comes_from_images_no_trial_saw(tmp_path):
    """A folder with train/ and val/ but no test/: the tuner's test accuracy
    is best.keras's accuracy on the stratified part of train/ that
    load_data held out, which neither the trials nor the final training
    (train split) nor their selection (validation split) saw."""
    data = tmp_path / "digits"
    write_digit_folder(data / "train", digits=range(3), size=16, limit=40)
    write_digit_folder(data / "val", digits=range(3), size=16, limit=50)
    for digit in range(3):  # val/ keeps other images than train/'s: the next 10 of each digit
        for path in sorted((data / "val" / str(digit)).iterdir())[:40]:
            path.unlink()
    summary = tune(data=str(data), tuner="random", directory=str(tmp_path / "search"), max_trials=1,
                   epochs=1, final_epochs=1, **{**TINY, "batch_sizes": [16]})
    train_dir = os.path.join(str(data), "train")
    assert summary["splits"] == {"train": f"{train_dir} (90%, stratified)",
                                 "validation": os.path.join(str(data), "val"),
                                 "test": f"{train_dir} (10%, stratified)"}
    bundle = keras_resnets.data.load_data(str(data), image_size=16, batch_size=16)
    seen = {x.tobytes() for role in ("train", "validation")
            for batch, _ in getattr(bundle, role).as_numpy_iterator() for x in batch}
    test_images, test_labels = [np.concatenate(a) for a in zip(*bundle.test.as_numpy_iterator())]
    assert summary["test_images"] == len(test_images) == 12
    assert not {x.tobytes() for x in test_images} & seen
    best = keras.saving.load_model(tmp_path / "search" / "best.keras")
    predicted = np.argmax(best.predict(test_images, verbose=0), axis=-1)
    assert summary["test_accuracy"] == pytest.approx(float(np.mean(predicted == test_labels)), abs=1e-6)


def test_time_budget_stops_the_running_trial(tmp_path):
    started = time.time()
    summary = tune(tuner="random", directory=str(tmp_path), max_trials=5, epochs=100, time_budget=0.3,
                   **TINY)
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert summary["stopped_by"] == "time budget" and len(rows) == 1
    assert 1 <= float(rows[0]["epochs_trained"]) < 100
    assert time.time() - started < 0.3 * 60 + 120


def test_failed_trial_is_recorded_with_its_reason(tmp_path):
    hypermodel = ResNetHyperModel("digits", epochs=1, **TINY)
    search = keras_tuner.RandomSearch(
        hypermodel, objective="val_accuracy", max_trials=1, directory=str(tmp_path),
        hyperparameters=fixed(learning_rate=1e30, weight_decay=1e-4, label_smoothing=0.0),
    )
    search.search(verbose=0)
    (trial,) = search.oracle.trials.values()
    row = trial_row(search, trial)
    assert trial.status == "FAILED" and row["status"] == "failed"
    assert row["reason"].startswith("the loss became nan at epoch 1, step")


def test_a_search_that_raises_leaves_the_callers_dtype_policy(tmp_path):
    """The trials train in mixed precision and all fail; `tune` raises, and
    the global policy is the caller's again."""
    with pytest.raises(ValueError, match="No trial of the search"):
        tune(directory=str(tmp_path), tuner="random", max_trials=1, epochs=1,
             hyperparameters=fixed(learning_rate=1e30, weight_decay=1e-4, label_smoothing=0.0),
             **{**TINY, "precisions": ["mixed_bfloat16"]})
    assert keras.config.dtype_policy().name == "float32"


def _cli(*args, output):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    with open(output, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "keras_resnets.cli", "tune", *args],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_resume_after_sigkill(tmp_path):
    args = ["--tuner", "random", "--max-trials", "2", "--epochs", "1", *TINY_ARGS,
            "--directory", str(tmp_path / "search")]
    trials = tmp_path / "search" / "trials"
    console = tmp_path / "first.txt"
    proc = _cli(*args, output=console)

    def status(trial_id):
        path = trials / f"trial_{trial_id}" / "trial.json"
        return json.loads(path.read_text())["status"] if path.exists() else None

    try:
        # Kill it while the second trial trains.
        deadline = time.time() + 400
        while time.time() < deadline and proc.poll() is None and status(1) != "RUNNING":
            time.sleep(0.05)
        assert proc.poll() is None, "the search ended before it could be killed:\n" + console.read_text()
        time.sleep(1.0)
        sigkill(proc)
    finally:
        reap(proc)
    assert status(0) == "COMPLETED" and status(1) == "RUNNING"
    first = (trials / "trial_0" / "trial.json").read_text()
    assert not (tmp_path / "search" / "summary.json").exists()

    console = tmp_path / "second.txt"
    assert _cli(*args, output=console).wait(timeout=600) == 0, console.read_text()
    out = console.read_text()
    # The finished trial is not run again; the interrupted one is.
    assert "trial 0 (" not in out
    assert "trial 1 (epochs 1)" in out
    assert (trials / "trial_0" / "trial.json").read_text() == first
    summary = json.loads((tmp_path / "search" / "summary.json").read_text())
    assert summary["trials"] == 2 and summary["trials_completed"] == 2


def test_bad_inputs(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"`families` must hold one of 'v1', 'v2', 'resnext', 'wide'; received families=\['v1', 'v3'\]"):
        ResNetHyperModel("digits", families=["v1", "v3"])
    with pytest.raises(ValueError, match=r"Unknown depth .*received depths=\[21\]. Allowed: \[16, 20,"):
        ResNetHyperModel("digits", depths=[21])
    with pytest.raises(ValueError, match=r"No depth left .*max_depth=10"):
        ResNetHyperModel("digits", families=["v1"], max_depth=10)
    with pytest.raises(ValueError, match=r"received depth=56. Allowed: \[20\]"):
        keras_tuner.RandomSearch(ResNetHyperModel("digits", **TINY), objective="val_accuracy",
                                 hyperparameters=fixed(**{"v1/depth": 56}), directory=str(tmp_path))
    # A budget no candidate meets fails before anything is written.
    with pytest.raises(ValueError, match=r"No model in the search space meets the budget max_macs=1,000: "
                                         r"the cheapest, resnet20 x0.5 A/deep, has 0.\d+M MACs > max_macs"):
        tune(directory=str(tmp_path / "none"), max_macs=1000, **TINY)
    assert not (tmp_path / "none").exists()
    # The latency budget measures the TFLite model in the LiteRT interpreter.
    with pytest.raises(ValueError, match=r"the cheapest, resnet20 x0.5 A/deep, has 0.\d+ ms > max_latency_ms 1e-06 ms"):
        ResNetHyperModel("digits", max_latency_ms=1e-6, **TINY).check_feasible()
    with pytest.raises(ValueError, match=r"`final_epochs` must be a non-negative integer; received final_epochs=-1"):
        tune(directory=str(tmp_path / "t"), final_epochs=-1, **TINY)
    for budget in (0, -1, float("nan")):
        with pytest.raises(ValueError, match=r"`time_budget` must be a positive number of minutes"):
            tune(directory=str(tmp_path / "t"), time_budget=budget, **TINY)
    # (The command line refuses --time-budget 0 and --families v1,v3 as it
    # parses them: tests/test_cli_errors.py.)
    assert cli_main(["tune", "--max-macs", "1K", *TINY_ARGS, "--image-size", "16",
                     "--directory", str(tmp_path / "t")]) == 2
    assert "No model in the search space meets the budget max_macs=1,000" in capsys.readouterr().err


def test_hyperband_replaces_failed_first_round_trials(tmp_path):
    """A bracket of 3 one-epoch trials promotes 1 to 3 epochs once more than
    2 have completed. The first trial fails (as a rejected candidate does):
    a new candidate takes its place, and the best of the three completed
    trials, by the scores the test gave them, goes on to 3 epochs."""
    hp = keras_tuner.HyperParameters()
    hp.Int("x", 0, 10_000)
    oracle = HyperbandOracle(objective=keras_tuner.Objective("score", "max"), max_epochs=3, seed=1,
                             hyperparameters=hp, max_consecutive_failed_trials=100)
    oracle._set_project_dir(str(tmp_path), "search")
    scores, promoted = {}, []
    for i in range(10):
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        values = trial.hyperparameters.values
        if "tuner/trial_id" in values:
            promoted.append(values)
        if i == 0:
            trial.status, trial.message = "FAILED", "BudgetExceeded: over budget"
        else:
            scores[trial.trial_id] = values["x"]
            oracle.update_trial(trial.trial_id, {"score": values["x"]}, step=values["tuner/epochs"])
            trial.status = "COMPLETED"
        oracle.end_trial(trial)
    first_round = [t for t, v in scores.items()
                   if oracle.trials[t].hyperparameters.values["tuner/epochs"] == 1][:3]
    assert len(first_round) == 3
    assert promoted and promoted[0]["tuner/epochs"] == 3 and promoted[0]["tuner/initial_epoch"] == 1
    assert promoted[0]["tuner/trial_id"] == max(first_round, key=scores.get)


TWO_DEVICES = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from keras_resnets.cli import main
from keras_resnets.tuning.hypermodel import ResNetHyperModel

# Each trial's model, read after its training (the real `fit`, observed).
seen = []
fit = ResNetHyperModel.fit
def observed_fit(self, hp, model, *args, **kwargs):
    result = fit(self, hp, model, *args, **kwargs)
    strategy = model.distribute_strategy
    copies = {v.path: strategy.experimental_local_results(v.value) for v in model.variables + model.optimizer.variables}
    norms = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
    seen.append({"replicas": strategy.num_replicas_in_sync, "norms": len(norms),
                 "synchronized": sum("_moments" in vars(l) for l in norms),
                 "single": [p for p, c in copies.items() if len(c) != 2],
                 "gaps": {p: float(np.max(np.abs(np.subtract(*[np.asarray(x) for x in c])))) for p, c in copies.items()
                          if len(c) == 2},
                 "steps": int(model.optimizer.iterations.numpy())})
    return result
ResNetHyperModel.fit = observed_fit
code = main(["tune", "--strategy", "mirrored", "--tuner", "random", "--max-trials", "1", "--epochs", "1",
             "--image-size", "16", "--families", "v1", "--depths", "20", "--directory", sys.argv[1]])
print(json.dumps({"command": code, "trials": seen}))
"""


def test_trials_train_on_several_devices(tmp_path):
    """`tune --strategy mirrored` on two logical CPUs (two GPUs' stand-in):
    each trial's model is built in the strategy's scope (KerasTuner's
    `distribution_strategy`), and so are its optimizer's variables; its
    batch norm is synchronized as `train`'s; after its epoch every model and
    optimizer variable is equal on both replicas. The search ends with the
    best model evaluated on the test split and a summary naming two
    replicas. (Compiled outside the scope, as the trials were until
    2026-12-07, the optimizer's slots were not mirrored and the replicas
    drifted: the classifier's kernels 0.03 apart after one epoch.)"""
    out = subprocess.run([sys.executable, "-c", TWO_DEVICES, str(tmp_path / "search")], cwd=REPO,
                         env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["command"] == 0 and len(result["trials"]) == 1
    trial = result["trials"][0]
    assert trial["replicas"] == 2 and trial["single"] == [] and trial["steps"] > 0
    assert trial["norms"] > 10 and trial["synchronized"] == trial["norms"]
    assert any("momentum" in path for path in trial["gaps"])
    worst = max(trial["gaps"], key=trial["gaps"].get)
    assert trial["gaps"][worst] <= 1e-6, (worst, trial["gaps"][worst])
    summary = json.loads((tmp_path / "search" / "summary.json").read_text())
    assert summary["strategy"] == "mirrored" and summary["replicas"] == 2
    assert summary["trials_completed"] == 1 and 0.0 <= summary["test_accuracy"] <= 1.0
    assert (tmp_path / "search" / "best.keras").is_file()
