"""Parity with torchvision, timm and keras.applications in CI, without torch:
their recorded outputs.

`tests/references/make.py` (run where torch, torchvision and timm are
installed) and `make_keras.py` (keras.applications) built each reference
implementation's own model at narrow widths with random weights and
batch-norm statistics, and recorded its weights file, random images (an even
and an odd size) and its outputs on them. Here each
state dict is loaded through the public loader (`weights=PATH`, the layout
detected from the file's keys) onto the keras_resnets model it claims to be,
and the logits and dilated feature maps must equal the recorded ones. Nothing
here was written by keras_resnets: a name mapped wrongly, a transpose or a
batch-norm statistic swapped in a loader changes the outputs.

The live comparisons (full-width models, more architectures) stay in
tests/test_torchvision_parity.py for machines with torch.
"""

import json
import os

import keras
import numpy as np
import pytest

import keras_resnets

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "references")
with open(os.path.join(HERE, "manifest.json")) as _f:
    MANIFEST = json.load(_f)

# Which keras_resnets model each reference is, and how it is built: the claim
# under test. (The checkpoints' layouts, stems and shortcuts are detected
# from their keys; `width_multiplier` is the reference's narrow `scale`.)
MODELS = {
    "torchvision_resnet18": ("resnet18", {}),
    "torchvision_resnet50": ("resnet50", {}),
    "torchvision_resnext50": ("resnext50_32x4d", dict(groups=4, width_per_group=32)),
    "torchvision_wide_resnet50_2": ("wide_resnet50_2", {}),
    "timm_resnet50d": ("resnet50", dict(stem="deep", shortcut="D")),
    "timm_resnetv2_50": ("resnet50v2", dict(layout="torchvision")),
    "timm_resnet18d": ("resnet18", dict(stem="deep", shortcut="D")),
    # timm's SE-ResNeXt built with the deep stem and average-pool shortcut
    # (its plain stem does not narrow), at 4 groups of 2 channels.
    "timm_seresnext50d": ("seresnext50_32x4d", dict(stem="deep", shortcut="D", groups=4, width_per_group=32)),
    "timm_ecaresnet50d": ("ecaresnet50d", {}),
    "timm_resnetrs50": ("resnetrs50", {}),
    "keras_resnet50": ("resnet50", dict(layout="keras")),
    "keras_resnet50v2": ("resnet50v2", {}),
}
# Each reference's file: the state dicts of torchvision and timm, or
# keras.applications' HDF5 weights (tests/references/make_keras.py).
SUFFIX = {"keras_resnet50": ".h5", "keras_resnet50v2": ".h5"}
RTOL = 1e-5  # of the largest recorded value of each output


def _build_arguments(name):
    model_name, build = MODELS[name]
    return model_name, {**build, "width_multiplier": MANIFEST["references"][name]["scale"]}


def _recorded(name):
    with np.load(os.path.join(HERE, f"{name}.npz")) as arrays:
        return dict(arrays)


def _assert_close(label, actual, expected):
    actual = np.asarray(keras.ops.convert_to_numpy(actual))
    assert actual.shape == expected.shape, (label, actual.shape, expected.shape)
    # The comparison means something: outputs of order 1 that differ between images.
    scale = float(np.abs(expected).max())
    assert 0.05 < scale < 1000, (label, scale)
    assert np.abs(expected[0] - expected[1]).max() > 100 * RTOL * scale, label
    np.testing.assert_allclose(actual, expected, rtol=0, atol=RTOL * scale, err_msg=label)


def test_every_reference_is_checked():
    assert set(MODELS) == set(MANIFEST["references"])
    assert MANIFEST["classes"] == 10 and len(MANIFEST["sizes"]) == 2


@pytest.mark.parametrize("name", sorted(MODELS))
def test_logits_equal_the_reference(name):
    model_name, build = _build_arguments(name)
    path = os.path.join(HERE, name + SUFFIX.get(name, ".safetensors"))
    model = keras_resnets.get_model(model_name, classes=MANIFEST["classes"], classifier_activation=None,
                                    weights=path, **build)
    assert model.count_params() == MANIFEST["references"][name]["parameters"] + _batch_norm_statistics(model)
    recorded = _recorded(name)
    for size in MANIFEST["sizes"]:
        images = recorded[f"images_{size}"]  # NCHW, as the reference took them
        logits = model(images.transpose(0, 2, 3, 1), training=False)
        _assert_close(f"{name} logits at {size} px", logits, recorded[f"logits_{size}"])


def _batch_norm_statistics(model):
    """The batch-norm moving means and variances (Keras counts them as
    parameters, PyTorch as buffers)."""
    return sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)


@pytest.mark.parametrize("output_stride", [16, 8])
@pytest.mark.parametrize("name", sorted(n for n in MODELS if any(
    a.startswith("features_") for a in MANIFEST["references"][n]["arrays"])))
def test_dilated_features_equal_the_reference(name, output_stride):
    """torchvision's `replace_stride_with_dilation` and timm's
    `output_stride` against `features_only=True, output_stride=...`, the
    classifier's checkpoint loaded onto the backbone (its classifier keys
    left over)."""
    model_name, build = _build_arguments(name)
    path = os.path.join(HERE, name + SUFFIX.get(name, ".safetensors"))
    recorded = _recorded(name)
    prefix = f"features_os{output_stride}_"
    per_size = [sorted(k.split("_")[-1] for k in recorded if k.startswith(f"{prefix}{size}_"))
                for size in MANIFEST["sizes"]]
    levels = per_size[0]
    assert levels and all(v == levels for v in per_size), (name, per_size)
    # One backbone (it takes any image size) for both sizes.
    model = keras_resnets.get_model(model_name, features_only=True, output_stride=output_stride,
                                    levels=tuple(levels), weights=path, **build)
    for size in MANIFEST["sizes"]:
        features = model(recorded[f"images_{size}"].transpose(0, 2, 3, 1), training=False)
        assert sorted(features) == levels
        for level in levels:
            got = np.asarray(keras.ops.convert_to_numpy(features[level])).transpose(0, 3, 1, 2)
            _assert_close(f"{name} {level} at output stride {output_stride}, {size} px", got,
                          recorded[f"{prefix}{size}_{level}"])
