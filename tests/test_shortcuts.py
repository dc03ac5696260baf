import keras
import numpy as np
import pytest

from keras_resnets.layers import IdentityShortcut, ProjectionShortcut, shortcut_kind

from helpers import random_images, run_layer_test, trainable_count

# The layers run on every Keras backend.
pytestmark = pytest.mark.backends


@pytest.mark.parametrize(
    "option, c_in, c_out, strides, expected",
    [
        # Shapes agree: identity under every option but C.
        ("A", 64, 64, 1, "identity"),
        ("B", 64, 64, 1, "identity"),
        ("D", 64, 64, 1, "identity"),
        ("C", 64, 64, 1, "projection"),
        # Channels and resolution change.
        ("A", 16, 32, 2, "identity"),
        ("B", 64, 128, 2, "projection"),
        ("C", 64, 128, 2, "projection"),
        ("D", 64, 128, 2, "avg_projection"),
        # Only the resolution changes (keras.applications' v2 stage ends).
        ("B", 256, 256, 2, "identity"),
    ],
)
def test_shortcut_rule(option, c_in, c_out, strides, expected):
    assert shortcut_kind(option, c_in, c_out, strides) == expected


def test_unknown_option():
    with pytest.raises(ValueError, match=r"`shortcut` must be one of 'A', 'B', 'C', 'D'; received shortcut='E'"):
        shortcut_kind("E", 16, 32, 2)


def test_option_a_subsamples_and_zero_pads():
    x = random_images((2, 8, 8, 16))
    layer = IdentityShortcut(filters=32, strides=2)
    y = np.asarray(layer(x))
    assert y.shape == (2, 4, 4, 32)
    np.testing.assert_array_equal(y[..., :16], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 16:], 0.0)
    assert layer.weights == []


def test_option_a_odd_size_matches_strided_conv_size():
    layer = IdentityShortcut(strides=2)
    assert layer(random_images((1, 7, 7, 4))).shape == (1, 4, 4, 4)


def test_identity_cannot_reduce_channels():
    with pytest.raises(ValueError, match=r"filters=8 for an input with 16 channels"):
        IdentityShortcut(filters=8)(random_images((1, 4, 4, 16)))


def test_projection_parameters():
    layer = ProjectionShortcut(256, strides=2)
    layer(random_images((1, 8, 8, 64)))
    assert trainable_count(layer) == 64 * 256 + 2 * 256  # 1x1 kernel + BN gamma, beta
    pre = ProjectionShortcut(256, normalize=False, use_bias=True)
    pre(random_images((1, 8, 8, 64)))
    assert trainable_count(pre) == 64 * 256 + 256


def test_avg_down_pools_then_convolves():
    x = random_images((2, 8, 8, 16))
    layer = ProjectionShortcut(32, strides=2, avg_down=True, normalize=False)
    y = np.asarray(layer(x))
    pooled = x.reshape(2, 4, 2, 4, 2, 16).mean(axis=(2, 4))
    expected = np.einsum("nhwc,cd->nhwd", pooled, np.asarray(layer.conv.kernel)[0, 0])
    np.testing.assert_allclose(y, expected, atol=1e-5)


@pytest.mark.parametrize(
    "layer, shape, expected",
    [
        (IdentityShortcut(filters=32, strides=2), (2, 8, 8, 16), (2, 4, 4, 32)),
        (ProjectionShortcut(32, strides=2), (2, 8, 8, 16), (2, 4, 4, 32)),
        (ProjectionShortcut(32, strides=2, avg_down=True), (2, 8, 8, 16), (2, 4, 4, 32)),
    ],
    ids=["identity_A", "projection_B", "projection_D"],
)
def test_layer_contract(layer, shape, expected, tmp_path):
    if not layer.weights and isinstance(layer, IdentityShortcut):
        # A parameter-free layer: only the config and saving round trips apply.
        x = random_images(shape)
        y = layer(x)
        assert tuple(y.shape) == expected
        clone = IdentityShortcut.from_config(layer.get_config())
        np.testing.assert_array_equal(clone(x), y)
        inp = keras.Input(shape[1:])
        model = keras.Model(inp, layer(inp))
        model.save(tmp_path / "m.keras")
        loaded = keras.saving.load_model(tmp_path / "m.keras")
        np.testing.assert_array_equal(loaded(x), y)
        return
    run_layer_test(layer, random_images(shape), tmp_path, expected_shape=expected)
