"""The example scripts run as their docstrings say (on mock data here)."""

import json
import os
import re
import runpy
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def test_train_cifar10_example(tmp_path, monkeypatch, capsys):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train_cifar10.py", "--epochs", "1", "--precision", "float32"])
    with tfds.testing.mock_data(num_examples=64):
        runpy.run_path(os.path.join(EXAMPLES, "train_cifar10.py"), run_name="__main__")
    out = capsys.readouterr().out
    with open(tmp_path / "saved_models" / "resnet20-tfds_cifar10" / "summary.json") as f:
        summary = json.load(f)
    # The error it prints is the run's: 1 - its test accuracy.
    error = re.search(r"resnet20: test error (\d+\.\d\d)%", out)
    assert error, out
    assert float(error.group(1)) == pytest.approx(100 * (1 - summary["test_accuracy"]), abs=0.005)
    # The paper's recipe (He et al. 2015, section 4.2): CIFAR-10, a learning
    # rate of 0.1, mini-batches of 128.
    assert summary["data"] == "tfds:cifar10" and summary["recipe"] == "cifar"
    assert (summary["lr"], summary["batch_size"]) == (0.1, 128)
