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
                               precisions=["mixed_bfloat16"], log=lambda line: None)
    record = records["jax mixed_bfloat16"]
    assert record["backend"] == "jax" and record["image_size"] == 32 and record["batch_size"] == 2
    assert record["precision"] == "mixed_bfloat16" and record["device"] == "cpu"
    figures = record["models"]["resnet20"]
    assert figures["train_ips"] > 0 and figures["infer_ips"] > 0 and figures["jit_compile"] == "True"
    # The worker built and trained the model under the policy asked for.
    assert figures["policy"] == "mixed_bfloat16" and figures["loss_scaled"] is False
    # The ratio column needs both ResNet-50 and ResNeXt-50.
    table = format_table(dict(records, torch={"error": "No module named 'torch'"})).splitlines()
    assert table[0].split() == ["backend", "resnet20", "train", "resnet20", "infer", "device"]
    assert table[1].startswith(f"jax {record['version']} mixed_bfloat16")
    assert table[2].split(None, 1) == ["torch", "failed: No module named 'torch'"]


def test_ratios_against_torchvision_of_the_same_precision():
    def record(backend, precision, **ips):
        return dict(backend=backend, version="v", precision=precision, device="gpu: X",
                    models={m: dict(train_ips=t, infer_ips=i) for m, (t, i) in ips.items()})

    records = {
        "jax mixed_bfloat16": record("jax", "mixed_bfloat16", resnet50=(300.0, 900.0), resnext50_32x4d=(240.0, 700.0)),
        "jax float32": record("jax", "float32", resnet50=(100.0, 400.0), resnext50_32x4d=(80.0, 300.0)),
        "torchvision mixed_bfloat16": record("torchvision", "mixed_bfloat16", resnet50=(250.0, 1000.0)),
    }
    table = format_table(records).split("\n\n")
    rows = [line.split() for line in table[0].splitlines()]
    assert rows[1] == ["jax", "v", "mixed_bfloat16", "300.0", "900.0", "240.0", "700.0", "0.80", "gpu:", "X"]
    assert rows[3] == ["torchvision", "v", "mixed_bfloat16", "250.0", "1000.0", "-", "-", "-", "gpu:", "X"]
    # Only the precision that torchvision ran has ratios; a model it did not run has none.
    ratios = [line.split() for line in table[1].splitlines()]
    assert ratios[1:] == [["jax", "mixed_bfloat16", "1.20", "0.90", "-", "-"]]


def test_backend_peers_are_refused_unless_pytorch(capsys):
    assert main(["benchmark", "--backend", "jax", "--peers", "torch-resnet50,stock-resnext50"]) == 2
    err = capsys.readouterr().err
    assert "`--peers` with --backend takes the PyTorch peers (torch-resnet50, torch-resnext50, timm-seresnext50)" in err
