"""Fidelity to the references: parameter counts, MACs and outputs."""

import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets.models.catalog import FIGURES, measure
from keras_resnets.weights import load_keras_applications_model

from helpers import cifar_resnet_figures, randomize_batchnorm, shapes_only, trainable_count

# torchvision's published figures for its ImageNet weights, typed from its
# documentation: https://pytorch.org/vision/stable/models.html, "Table of all
# available classification weights" (the GFLOPS column, printed with two
# decimals), and each builder's page, e.g.
# https://pytorch.org/vision/stable/models/generated/torchvision.models.resnet50.html
# (num_params). Its GFLOPS are the multiply-accumulates of the convolutions
# and linear layers of one 224 x 224 image, what `count_macs` counts.
TORCHVISION = {
    # name: (num_params, GFLOPS as printed)
    "resnet18": (11_689_512, "1.81"),
    "resnet34": (21_797_672, "3.66"),
    "resnet50": (25_557_032, "4.09"),
    "resnet101": (44_549_160, "7.80"),
    "resnet152": (60_192_808, "11.51"),
    "resnext50_32x4d": (25_028_904, "4.23"),
    "resnext101_32x8d": (88_791_336, "16.41"),
    "resnext101_64x4d": (83_455_272, "15.46"),
    "wide_resnet50_2": (68_883_240, "11.40"),
    "wide_resnet101_2": (126_886_696, "22.75"),
}


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_parameters_and_macs_equal_torchvision(name):
    published_params, published_gflops = TORCHVISION[name]
    params, macs = measure(name)  # built now: 1000 classes, counted at 224 px
    assert params == published_params
    assert f"{macs / 1e9:.2f}" == published_gflops, macs
    # A consistency check, not fidelity: the table `keras-resnets models`
    # prints without building anything holds this fresh measurement.
    assert FIGURES[name] == (params, macs), "catalog.FIGURES is stale: regenerate it"


# The papers' tables (10 classes), at the precision they print, and whether
# their totals include batch normalization's scale and shift: He et al. 2015's
# do (ResNet-1202: 19.42M with them, 19.33M without); the Identity Mappings and
# ResNeXt papers' do not (ResNet-1001: 10.33M with, 10.19M without; ResNeXt-29
# 16x64d: 68.16M with, 68.06M without).
PAPER_PARAMS_MILLIONS = {
    # He et al. 2015, Table 6
    "resnet20": (0.27, True), "resnet32": (0.46, True), "resnet44": (0.66, True),
    "resnet56": (0.85, True), "resnet110": (1.7, True), "resnet1202": (19.4, True),
    # He et al. 2016, Identity Mappings (CIFAR-10)
    "preact_resnet164": (1.7, False), "preact_resnet1001": (10.2, False),
    # Xie et al. 2017, Table 7
    "resnext29_8x64d": (34.4, False), "resnext29_16x64d": (68.1, False),
    # Zagoruyko & Komodakis 2016 (equal either way)
    "wide_resnet16_8": (11.0, True), "wide_resnet28_10": (36.5, True),
}


@pytest.mark.parametrize("name", list(PAPER_PARAMS_MILLIONS))
def test_parameter_count_equals_paper(name):
    expected, with_bn = PAPER_PARAMS_MILLIONS[name]
    with shapes_only():
        model = keras_resnets.get_model(name, input_shape=(32, 32, 3), classes=10)
    count = sum(
        int(np.prod(w.shape))
        for w in model.trainable_weights
        if with_bn or w.path.split("/")[-1] not in ("gamma", "beta")
    )
    decimals = len(str(expected).split(".")[1])
    assert round(count / 1e6, decimals) == expected, count


@pytest.mark.parametrize("name, blocks_per_stage", [("resnet20", 3), ("resnet56", 9)])
def test_cifar_figures_equal_a_hand_count(name, blocks_per_stage):
    """He et al.'s CIFAR ResNets count as the paper describes them (see
    `helpers.cifar_resnet_figures`), at the default 32 px."""
    model = keras_resnets.get_model(name, classes=10)
    assert (trainable_count(model), keras_resnets.count_macs(model)) == cifar_resnet_figures(
        blocks_per_stage
    )


# The 50-layer ones are compared output by output; the deeper ones stack the
# same blocks, and are compared by their parameters.
KERAS_APPLICATIONS = [
    ("ResNet50", "resnet50"),
    ("ResNet50V2", "resnet50v2"),
]
KERAS_APPLICATIONS_DEEPER = [
    ("ResNet101", "resnet101"),
    ("ResNet152", "resnet152"),
    ("ResNet101V2", "resnet101v2"),
    ("ResNet152V2", "resnet152v2"),
]


@pytest.mark.parametrize("reference, name", KERAS_APPLICATIONS)
def test_outputs_equal_keras_applications(reference, name, tmp_path):
    """keras.applications' model and ours in its layout: same weights, same
    logits (random weights and BN statistics; 64 px to stay quick). The
    weights go through an HDF5 file, the format of keras.applications'
    downloads, loaded with `weights=path`. (tests/test_references.py checks
    recorded outputs of keras.applications' own code at narrow widths.)"""
    shape = (64, 64, 3)
    source = getattr(keras.applications, reference)(
        weights=None, input_shape=shape, classifier_activation=None
    )
    randomize_batchnorm(source)
    source.save(tmp_path / f"{name}.h5")
    ours = keras_resnets.get_model(
        name, layout="keras", input_shape=shape, classifier_activation=None,
        weights=str(tmp_path / f"{name}.h5"),
    )
    assert ours.count_params() == source.count_params()
    x = np.random.default_rng(1).uniform(0, 1, (2, *shape)).astype("float32")
    expected = np.asarray(source(x, training=False))
    actual = np.asarray(ours(x, training=False))
    assert np.abs(expected).max() > 1e-3  # a meaningful comparison
    np.testing.assert_allclose(actual, expected, atol=1e-4)


@pytest.mark.parametrize("reference, name", KERAS_APPLICATIONS_DEEPER)
def test_parameters_equal_keras_applications(reference, name):
    """keras.applications' deeper ResNets and ours in its layout: the same
    parameters (their blocks are the 50-layer ones', compared above)."""
    shape = (64, 64, 3)
    with shapes_only():
        source = getattr(keras.applications, reference)(weights=None, input_shape=shape, classifier_activation=None)
        ours = keras_resnets.get_model(name, layout="keras", input_shape=shape, classifier_activation=None)
    assert ours.count_params() == source.count_params()


def test_keras_applications_mismatch_is_reported():
    source = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    ours = keras_resnets.ResNet101(layout="keras", input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match=r"Missing keys \(306\): \['conv4_block7_1_conv/kernel'"):
        load_keras_applications_model(ours, source)
    torch_layout = keras_resnets.ResNet50(input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match=r"stride on the 3x3 convolution; the checkpoint's is on the first 1x1"):
        load_keras_applications_model(torch_layout, source)
