"""`keras-resnets models` and `keras-resnets info`: the catalog's precomputed
figures equal a fresh measurement of the real models (a consistency check:
their fidelity to published references is tests/test_fidelity.py's), the
per-stage table adds up to `count_macs` and `count_params`, and the commands
print them."""

import csv
import io
import json
import os
import re
import shutil

import pytest

import keras_resnets
from keras_resnets.cli import main
from keras_resnets.info import stage_table
from keras_resnets.models.catalog import FIGURES, catalog, measure
from keras_resnets.utils.backend import configured_backend

from helpers import cifar_resnet_figures, trainable_count

# Consistency of the precomputed FIGURES with a fresh measurement, on models
# that build and trace in a few seconds, of the kinds not checked elsewhere:
# tests/test_models.py checks every model's parameters (on the model it builds
# anyway) and tests/test_fidelity.py the parameters and MACs of the 10
# torchvision models. The deep ones take minutes.
QUICK = {"resnet34", "resnet18v2", "resnet32", "resnext29_8x64d", "wide_resnet16_8"}
FULL = os.environ.get("KERAS_RESNETS_FULL_CATALOG") == "1"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_model_has_figures():
    assert list(FIGURES) == keras_resnets.list_models()


# Counted on JAX and PyTorch too (the layer count), kept to the cheapest for CI's time.
ON_EVERY_BACKEND = {"resnet32", "wide_resnet16_8"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.backends] * (n in ON_EVERY_BACKEND))
                                  for n in sorted(QUICK)])
def test_figures_equal_a_fresh_measurement(name):
    # Off TensorFlow count_macs counts the layers; the figures were counted
    # on TensorFlow's graph.
    assert measure(name) == FIGURES[name]


@pytest.mark.skipif(not FULL, reason="builds every model (minutes): KERAS_RESNETS_FULL_CATALOG=1")
def test_figures_of_every_model():
    # On TensorFlow both ways of counting the MACs: the graph's operations and the layers.
    methods = ("graph", "layers") if configured_backend() == "tensorflow" else ("layers",)
    measured = {(name, method): measure(name, method) for name in FIGURES for method in methods}
    assert {k: m for k, m in measured.items() if m != FIGURES[k[0]]} == {}


def test_depth_is_the_one_in_the_name():
    for row in catalog():
        assert row["depth"] == int(re.search(r"\d+", row["name"]).group()), row["name"]


def test_models_json_and_csv(capsys):
    code, out, _ = run(capsys, "models", "--format", "json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert list(rows) == keras_resnets.list_models()
    assert list(rows.values()) == catalog()
    r50 = rows["resnet50"]
    assert (r50["parameters"], r50["macs"], r50["image_size"]) == (*FIGURES["resnet50"], 224)
    assert r50["builders"] == ["ResNet50"] and r50["depth"] == 50
    assert r50["imagenet"] == "torchvision:IMAGENET1K_V1"
    assert {"torchvision:IMAGENET1K_V2", "keras:imagenet", "timm:resnet50.a1_in1k"} <= set(r50["pretrained"])
    assert rows["resnet50v2"]["imagenet"] == "keras:imagenet"
    assert (rows["resnet20"]["imagenet"], rows["resnet20"]["pretrained"]) == (None, [])
    assert rows["resnext50_32x4d"]["builders"] == ["ResNeXt50", "ResNeXt50_32x4d"]
    assert (rows["resnet20"]["classes"], rows["resnet20"]["image_size"]) == (10, 32)

    code, out, _ = run(capsys, "models", "--format", "csv", "--family", "resnext")
    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in table] == keras_resnets.list_models("resnext")
    # Exact integers, as the catalog holds them.
    params, macs = FIGURES["resnext29_16x64d"]
    assert (table[-1]["parameters"], table[-1]["macs"]) == (str(params), str(macs))


def test_models_table(capsys):
    code, out, _ = run(capsys, "models")
    lines = out.splitlines()
    assert lines[0].split() == ["name", "family", "depth", "params", "GMACs", "pretrained", "reference"]
    assert len(lines) == 1 + len(keras_resnets.list_models())
    params, macs = FIGURES["resnet1202"]
    row = next(line for line in lines if line.startswith("resnet1202 "))
    assert row.split()[:7] == [
        "resnet1202", "resnet", "1202", f"{params:,}", f"{macs / 1e9:.3f}", "@32px", "-"]
    params, macs = FIGURES["resnet152v2"]
    row = next(line for line in lines if line.startswith("resnet152v2 "))
    assert row.split()[3:8] == [f"{params:,}", f"{macs / 1e9:.3f}", "@224px", "keras", "(1)"]
    with pytest.raises(SystemExit):
        main(["models", "--format", "xml"])
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_stage_table_adds_up_to_count_macs_and_count_params():
    # keras.applications' v2 layout: stride at a stage's last block, a final
    # batch norm in the head.
    model = keras_resnets.get_model("resnet50v2", input_shape=(224, 224, 3))
    rows = stage_table(model)
    assert [r["stage"] for r in rows] == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    assert [r["blocks"] for r in rows[1:5]] == [3, 4, 6, 3]
    assert [r["output_shape"] for r in rows] == [
        (56, 56, 64), (28, 28, 256), (14, 14, 512), (7, 7, 1024), (7, 7, 2048), (1000,),
    ]
    params = sum(r["parameters"] for r in rows)
    macs = sum(r["macs"] for r in rows)
    assert params == trainable_count(model)
    assert params + sum(r["non_trainable"] for r in rows) == model.count_params()
    assert macs == keras_resnets.count_macs(model)
    assert rows[-1]["macs"] == 2048 * 1000  # the classifier
    assert all(r["macs"] > 0 for r in rows)


@pytest.mark.backends
def test_info_command(capsys):
    # ResNet-20 at 64 px: 4x the 32 px convolutions; the classifier stays.
    code, out, _ = run(capsys, "info", "resnet20", "--image-size", "64")
    assert code == 0
    assert out.startswith("resnet20: ResNet-20 (CIFAR), family resnet, depth 20, input 64x64x3, 10 classes")
    stages = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("stage", "total"))}
    assert stages["stage1"][1:3] == ["3", "64x64x16"]
    assert stages["stage3"][1:3] == ["3", "16x16x64"]
    params, macs = cifar_resnet_figures(3, image_size=64)  # counted by hand
    assert stages["total"][1:3] == ["9", f"{params:,}"]
    assert stages["total"][4] == f"{macs:,}"
    assert "parameters: 269,722 trainable + 1,376 non-trainable" in out
    assert "weights='imagenet': none" in out


def test_info_errors(capsys):
    code, _, err = run(capsys, "info", "resnet50", "--image-size", "16")
    assert code == 2
    assert "`--image-size` must be at least 32 for resnet50" in err and "received --image-size=16" in err
    code, _, err = run(capsys, "info", "resnet51")
    assert code == 2 and "received name='resnet51'. Did you mean" in err and "'resnet50'" in err


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_info_plot(capsys, tmp_path):
    pytest.importorskip("pydot")
    path = tmp_path / "resnet20.png"
    code, out, _ = run(capsys, "info", "resnet20", "--plot", str(path))
    assert code == 0 and f"block diagram: {path}" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path) == ["resnet20.png"]


def test_info_plot_names_what_is_missing(capsys, tmp_path, monkeypatch):
    path = tmp_path / "model.png"
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` there
    code, _, err = run(capsys, "info", "resnet20", "--plot", str(path))
    assert code == 2 and "install graphviz" in err
    monkeypatch.setitem(__import__("sys").modules, "pydot", None)
    code, _, err = run(capsys, "info", "resnet20", "--plot", str(path))
    assert code == 2 and "pip install 'keras_resnets[plot]'" in err
    assert not path.exists()



def test_a_model_registered_later_is_measured(monkeypatch):
    import dataclasses

    from keras_resnets.models import registry

    spec = dataclasses.replace(keras_resnets.get_spec("resnet20"), name="resnet8", depths=(1, 1, 1))
    monkeypatch.setitem(registry._REGISTRY, "resnet8", spec)
    row = catalog("resnet")[-1]
    assert (row["name"], row["depth"]) == ("resnet8", 8)
    assert (row["parameters"], row["macs"]) == measure("resnet8")
    # one block per stage, counted by hand
    assert (row["parameters"], row["macs"]) == cifar_resnet_figures(1)
