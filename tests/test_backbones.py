"""Backbones: output stride by dilation, the feature pyramid, features-only
models. The torchvision and timm parity of the dilated features is in
test_torchvision_parity.py (where torch is installed); here, without torch:
the shapes and strides of every model's features, unchanged parameter
counts, weights that load onto dilated and features-only models, and the
`.keras` round trip."""

import math

import keras
import numpy as np
import pytest
from safetensors.numpy import save_file

import keras_resnets
from keras_resnets.layers import BasicBlock, BottleneckBlock
from keras_resnets.models.builder import block_schedule
from keras_resnets.models.catalog import FIGURES, reference_classes
from keras_resnets.models.specs import STEM_STRIDES, total_stride
from keras_resnets.weights.layouts import to_state_dict

from helpers import assert_config_round_trip, random_images, randomize_batchnorm, representative_models, trainable_count
from test_models import HEAVY


def expected_strides(spec, output_stride):
    """Each level's stride, by the rule: "Pn" is the last feature map at
    stride 2**n of the undilated network; dilation stops a stride at
    `output_stride`."""
    # "P1" is the stem before its pool; the CIFAR stem does not downsample,
    # its first stage is "P0".
    first = 1 if STEM_STRIDES[spec.stem] > 1 else 0
    levels = range(first, int(math.log2(total_stride(spec))) + 1)
    return {f"P{n}": min(2 ** n, output_stride) for n in levels}


def registry_params():
    """One model of each architecture: the others differ in their numbers only."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in representative_models()]


@pytest.mark.parametrize("name", registry_params())
def test_every_model_features_at_the_densest_output_stride(name):
    """Every architecture at a quarter of its total stride (two stages dilated):
    each level's shape and stride as the rule says, and the same parameters
    as the undilated network (dilation adds none)."""
    spec = keras_resnets.get_spec(name)
    output_stride = total_stride(spec) // 4
    size = 2 * total_stride(spec)
    model = keras_resnets.get_model(
        name, include_top=False, features_only=True, output_stride=output_stride, input_shape=(size, size, 3),
    )
    strides = expected_strides(spec, output_stride)
    assert model.feature_strides == strides
    assert list(model.output) == list(strides) == list(model.pyramid_outputs)
    for level, stride in strides.items():
        assert tuple(model.output[level].shape[1:3]) == (size // stride, size // stride), level
    # FIGURES (checked against torchvision's and the papers' counts in
    # test_fidelity.py) counts the classifier too.
    features = model.output[max(strides, key=lambda k: int(k[1:]))].shape[-1]
    head = (features + 1) * reference_classes(spec)
    assert trainable_count(model) + head == FIGURES[name][0]


@pytest.mark.parametrize("output_stride", [32, 16, 8])
@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d", "resnet50v2"])
def test_output_strides(name, output_stride):
    spec = keras_resnets.get_spec(name)
    model = keras_resnets.get_model(name, include_top=False, output_stride=output_stride, input_shape=(64, 64, 3))
    assert model.feature_strides == expected_strides(spec, output_stride)
    assert tuple(model.output.shape[1:3]) == (64 // output_stride,) * 2
    assert model.pyramid_outputs["P5"] is model.output  # the trunk's last feature map


def test_block_schedule_follows_torchvision():
    """torchvision's `_make_layer(dilate=True)`: the stage's first block keeps
    the previous dilation in its strided convolution and gets a stride-1
    projection; the rest use the new dilation. ResNet-50's stages at output
    stride 8 (replace_stride_with_dilation=[False, True, True])."""
    strides = [[1, 1, 1], [2, 1, 1, 1], [2] + [1] * 5, [2, 1, 1]]
    schedule = block_schedule(strides, 4, 8)
    assert schedule[0] == [(1, 1, 1)] * 3
    assert schedule[1] == [(2, 1, 1)] + [(1, 1, 1)] * 3
    assert schedule[2] == [(1, 1, 2)] + [(1, 2, 2)] * 5
    assert schedule[3] == [(1, 2, 4)] + [(1, 4, 4)] * 2
    # keras.applications' v2 layout strides at a stage's last block: the
    # dilation starts after it.
    v2 = block_schedule([[1, 1, 2], [1, 1, 1, 2], [1] * 5 + [2], [1, 1, 1]], 4, 16)
    assert v2[2][-1] == (1, 1, 2) and v2[3] == [(1, 2, 2)] * 3


@pytest.mark.parametrize("block_cls, convs", [(BasicBlock, 2), (BottleneckBlock, 3)])
def test_dilated_block(block_cls, convs):
    block = block_cls(16, dilation_rate=4, first_dilation_rate=2, name="b")
    x = random_images((2, 9, 9, 64))
    y = block(x)
    assert y.shape == (2, 9, 9, block.out_channels)
    rates = [conv[-1].dilation_rate for conv in block.convs]
    # The first 3x3 keeps the previous dilation (timm: `first_dilation`);
    # a basic block's second 3x3 and 1x1 convolutions take the new one.
    assert rates == ([(2, 2), (4, 4)] if convs == 2 else [(1, 1), (2, 2), (1, 1)])
    assert_config_round_trip(block, x)
    with pytest.raises(ValueError, match=r"strided or dilated, not both; received strides=2, dilation_rate=2"):
        block_cls(16, strides=2, first_dilation_rate=2)


def test_features_of_a_classifier_and_of_a_features_only_model_agree(tmp_path, caplog):
    """`pyramid_outputs` of a classifier, a features-only model and a dilated
    features-only model loaded from the classifier's (torchvision-layout)
    checkpoint: the levels the dilation does not touch are equal, the
    classifier's keys are left over, not an error."""
    classifier = keras_resnets.ResNet18(input_shape=(64, 64, 3), classes=5)
    randomize_batchnorm(classifier)
    x = random_images((2, 64, 64, 3))
    trunk = keras.Model(classifier.input, classifier.pyramid_outputs)(x)
    assert set(trunk) == {"P1", "P2", "P3", "P4", "P5"}

    checkpoint = str(tmp_path / "resnet18_5.safetensors")
    save_file(to_state_dict(classifier, "torchvision"), checkpoint)
    with caplog.at_level("INFO", logger="keras_resnets.weights.layouts"):
        dense = keras_resnets.ResNet18(include_top=False, features_only=True, input_shape=(64, 64, 3),
                                       weights=checkpoint)
    assert "without its classifier (the model has no head): 2 keys unused: fc.bias, fc.weight" in caplog.text
    # features_only alone: no head (include_top defaults to False with it)
    dilated = keras_resnets.ResNet18(features_only=True, output_stride=16,
                                     levels=("P3", "P4", "P5"), input_shape=(64, 64, 3), weights=checkpoint)
    for level, value in dense(x).items():
        np.testing.assert_allclose(value, trunk[level], rtol=1e-5, atol=1e-5)
    out = dilated(x)
    assert list(out) == ["P3", "P4", "P5"]
    np.testing.assert_allclose(out["P3"], trunk["P3"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["P4"], trunk["P4"], rtol=1e-5, atol=1e-5)
    assert out["P5"].shape == (2, 4, 4, 512) and trunk["P5"].shape == (2, 2, 2, 512)


@pytest.mark.parametrize("name, kwargs", [
    ("resnet18", dict(output_stride=16, levels=("P2", "P5"))),
    ("resnet50v2", dict(output_stride=8)),
    ("resnet20", dict(output_stride=2)),
])
def test_features_only_saving_round_trip(name, kwargs, tmp_path):
    spec = keras_resnets.get_spec(name)
    size = 2 * total_stride(spec)
    model = keras_resnets.get_model(name, include_top=False, features_only=True, input_shape=(size, size, 3),
                                    **kwargs)
    randomize_batchnorm(model)
    x = random_images((2, size, size, 3))
    before = model(x)
    model.save(tmp_path / "features.keras")
    loaded = keras.saving.load_model(tmp_path / "features.keras")
    assert type(loaded) is type(model) and loaded.feature_strides == model.feature_strides
    assert list(loaded.pyramid_outputs) == list(model.pyramid_outputs)
    after = loaded(x)
    for level in before:
        np.testing.assert_array_equal(before[level], after[level])
    # The restored pyramid is the loaded model's own tensors.
    again = keras.Model(loaded.input, loaded.pyramid_outputs)(x)
    for level in before:
        np.testing.assert_array_equal(before[level], again[level])


def test_classifier_pyramid_survives_saving(tmp_path):
    model = keras_resnets.ResNeXt50(input_shape=(64, 64, 3), classes=3, output_stride=16)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.feature_strides == {"P1": 2, "P2": 4, "P3": 8, "P4": 16, "P5": 16}
    assert {k: tuple(v.shape) for k, v in loaded.pyramid_outputs.items()} == {
        k: tuple(v.shape) for k, v in model.pyramid_outputs.items()
    }


@pytest.mark.parametrize("kwargs, match", [
    (dict(output_stride=4), r"`output_stride` must be one of \[32, 16, 8\] for resnet50 with the 'imagenet' stem.*received output_stride=4"),
    (dict(output_stride=True), r"received output_stride=True"),
    (dict(output_stride=16, stem="cifar"), r"must be one of \[8, 4, 2\] for resnet50 with the 'cifar' stem"),
    (dict(features_only=True, include_top=True), r"features_only=True builds .* leave include_top out \(or pass False\) and pooling=None; received include_top=True"),
    (dict(features_only=True, pooling="max"), r"received include_top=False, pooling='max'"),
    (dict(include_top=False, features_only=True, pooling="avg"), r"received include_top=False, pooling='avg'"),
    (dict(include_top=False, levels=("P3",)), r"`levels` needs features_only=True; received levels=\('P3',\)"),
    (dict(include_top=False, features_only=True, levels=("P6",)), r"`levels` must be distinct levels of this model, some of \('P1', 'P2', 'P3', 'P4', 'P5'\); received levels=\('P6',\)"),
    (dict(include_top=False, features_only=True, levels=()), r"received levels=\(\)"),
    (dict(include_top=False, features_only="yes"), r"`features_only` must be True or False"),
])
def test_backbone_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_resnets.get_model("resnet50", **kwargs)


def test_dilation_makes_small_inputs_possible():
    with pytest.raises(ValueError, match=r"total stride 32"):
        keras_resnets.ResNet50(input_shape=(16, 16, 3))
    model = keras_resnets.ResNet50(input_shape=(16, 16, 3), include_top=False, output_stride=8)
    assert tuple(model.output.shape[1:]) == (2, 2, 2048)


def test_info_shows_the_features(capsys):
    from keras_resnets.cli import main

    assert main(["info", "resnet18", "--output-stride", "8", "--image-size", "64"]) == 0
    out = capsys.readouterr().out
    table = out.split("features (pyramid_outputs), output stride 8:\n")[1].splitlines()
    assert [line.split() for line in table] == [
        ["level", "layer", "shape", "stride"],
        ["P1", "stem", "32x32x64", "2"],
        ["P2", "stage1_block2", "16x16x64", "4"],
        ["P3", "stage2_block2", "8x8x128", "8"],
        ["P4", "stage3_block2", "8x8x256", "8"],
        ["P5", "stage4_block2", "8x8x512", "8"],
    ]
