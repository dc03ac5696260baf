"""`keras-resnets benchmark --backend`: its argument check, and one real
worker process on JAX (ResNet-20 at 32 px: seconds)."""

import importlib.util

import pytest

from keras_resnets.benchmark.backends import compare_backends, format_table
from keras_resnets.cli import main


def test_bad_backend_is_refused_before_anything_runs(capsys):
    assert main(["benchmark", "--backend", "jax,mxnet"]) == 2
    err = capsys.readouterr().err
    assert "`--backend` must be a non-empty list of tensorflow, jax, torch; received --backend=['jax', 'mxnet']" in err


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason='jax is not installed: pip install ".[test]"')
def test_one_process_per_backend_and_the_table():
    records = compare_backends(["jax"], ["resnet20"], image_size=32, batch_size=2, warmup=1, repeats=1,
                               log=lambda line: None)
    record = records["jax"]
    assert record["backend"] == "jax" and record["image_size"] == 32 and record["batch_size"] == 2
    figures = record["models"]["resnet20"]
    assert figures["train_ips"] > 0 and figures["infer_ips"] > 0 and figures["jit_compile"] == "True"
    # The ratio column needs both ResNet-50 and ResNeXt-50.
    table = format_table(dict(records, torch={"error": "No module named 'torch'"})).splitlines()
    assert table[0].split() == ["backend", "resnet20", "train", "resnet20", "infer"]
    assert table[1].startswith(f"jax {record['version']}")
    assert table[2].split(None, 1) == ["torch", "failed: No module named 'torch'"]
