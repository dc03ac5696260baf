"""Channel attention (SE, ECA) and ResNet-RS's convolutional stem pool: the
papers' formulas computed in numpy from the layers' own weights, the widths
and kernel sizes timm derives from the channel count, and the layer contract.
(Their loading from timm's checkpoints is checked against timm's recorded
outputs in test_references.py.)"""

import keras
import numpy as np
import pytest

from keras_resnets.layers import EfficientChannelAttention, SqueezeExcite, StemConvPool
from keras_resnets.layers.attention import eca_kernel_size, make_divisible

from helpers import random_images, run_layer_test

pytestmark = pytest.mark.backends


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _randomize(layer, seed):
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32") * 0.5)


@pytest.mark.parametrize(
    "channels, ratio, reduced",
    # timm's make_divisible(channels * ratio, 8, round_limit=0): SE-ResNet's
    # first and last stage, ResNet-RS's ratio, and the floor of 8.
    [(256, 1 / 16, 16), (2048, 1 / 16, 128), (2048, 0.25, 512), (64, 1 / 16, 8), (200, 1 / 16, 16)],
)
def test_squeeze_width(channels, ratio, reduced):
    assert make_divisible(channels * ratio) == reduced
    layer = SqueezeExcite(ratio)
    layer.build((None, 3, 3, channels))
    assert tuple(layer.fc1.kernel.shape) == (1, 1, channels, reduced)
    assert tuple(layer.fc2.kernel.shape) == (1, 1, reduced, channels)


def test_squeeze_excite_is_the_papers_gate():
    x = random_images((2, 5, 6, 32))
    layer = SqueezeExcite()
    layer(x)
    _randomize(layer, 0)
    w1, b1 = (np.asarray(keras.ops.convert_to_numpy(w)) for w in (layer.fc1.kernel, layer.fc1.bias))
    w2, b2 = (np.asarray(keras.ops.convert_to_numpy(w)) for w in (layer.fc2.kernel, layer.fc2.bias))
    xs = np.asarray(keras.ops.convert_to_numpy(x))
    squeezed = xs.mean(axis=(1, 2))  # (2, 32)
    gate = _sigmoid(np.maximum(squeezed @ w1[0, 0] + b1, 0) @ w2[0, 0] + b2)
    assert gate.std() > 0.05  # the gates differ between channels and images
    expected = xs * gate[:, None, None, :]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels, size", [(64, 3), (256, 5), (512, 5), (1024, 5), (2048, 7), (16, 3)])
def test_eca_kernel_size_grows_with_the_channels(channels, size):
    # Wang et al. 2020, eq. 12 with gamma=2, b=1, as timm's EcaModule.
    assert eca_kernel_size(channels) == size
    layer = EfficientChannelAttention()
    layer.build((None, 2, 2, channels))
    assert tuple(layer.conv.kernel.shape) == (size, 1, 1)


def test_eca_is_a_convolution_across_channels():
    channels = 24
    x = random_images((2, 4, 3, channels))
    layer = EfficientChannelAttention(kernel_size=5)
    layer(x)
    _randomize(layer, 1)
    taps = np.asarray(keras.ops.convert_to_numpy(layer.conv.kernel))[:, 0, 0]
    xs = np.asarray(keras.ops.convert_to_numpy(x))
    pooled = np.pad(xs.mean(axis=(1, 2)), ((0, 0), (2, 2)))  # zero padding, (k - 1) / 2 a side
    conv = np.stack([pooled[:, c:c + 5] @ taps for c in range(channels)], axis=1)
    expected = xs * _sigmoid(conv)[:, None, None, :]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "build, shape",
    [
        (lambda: SqueezeExcite(0.25), (2, 4, 4, 32)),
        (lambda: EfficientChannelAttention(), (2, 4, 4, 32)),
        (lambda: StemConvPool(), (2, 9, 9, 8)),
    ],
    ids=["se", "eca", "stem_conv_pool"],
)
def test_layer_contract(build, shape, tmp_path):
    layer = build()
    expected = (2, 5, 5, 8) if isinstance(layer, StemConvPool) else shape
    run_layer_test(layer, random_images(shape), tmp_path, expected_shape=expected)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: SqueezeExcite(1.5), r"`se_ratio` must be a number in \(0, 1\]; received se_ratio=1.5"),
        (lambda: EfficientChannelAttention(kernel_size=4), r"`kernel_size` must be odd; received kernel_size=4"),
    ],
    ids=["se_ratio", "eca_kernel_size"],
)
def test_bad_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_build_model_takes_a_spec_of_your_own():
    """A registry row changed by `dataclasses.replace` builds as given: every
    block of a ResNet-18 with ECA, the parameters those of ResNet-18 and
    one kernel a block: 3 taps at 64 channels, 5 at 128-512."""
    import dataclasses

    import keras_resnets
    from keras_resnets.models.catalog import FIGURES

    spec = dataclasses.replace(keras_resnets.get_spec("resnet18"), name="eca_resnet18", attention="eca")
    model = keras_resnets.build_model(spec, input_shape=(32, 32, 3))
    blocks = [layer for layer in model.layers if layer.name.startswith("stage")]
    assert model.name == "eca_resnet18" and len(blocks) == 8
    assert all(isinstance(b.attention_layer, EfficientChannelAttention) for b in blocks)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == FIGURES["resnet18"][0] + 2 * (3 + 5 + 5 + 5)


@pytest.mark.parametrize(
    "field, value",
    [("attention", "cbam"), ("stem_pool", "avg"), ("block", "dense"), ("shortcut", "E")],
)
def test_model_spec_names_a_bad_field(field, value):
    import dataclasses

    import keras_resnets

    with pytest.raises(ValueError, match=rf"ModelSpec `{field}` must be one of .*received {field}={value!r}"):
        dataclasses.replace(keras_resnets.get_spec("resnet50"), **{field: value})
