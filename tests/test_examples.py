"""The example scripts run as their docstrings say (on mock data here)."""

import json
import os
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
    assert "resnet20: test error" in out and "(paper: 8.75%)" in out
    with open(tmp_path / "saved_models" / "resnet20-tfds_cifar10" / "summary.json") as f:
        summary = json.load(f)
    assert summary["data"] == "tfds:cifar10" and summary["recipe"] == "cifar"
