import numpy as np
import pytest

from keras_resnets.layers import Stem

from helpers import random_images, run_layer_test, trainable_count

# The layers run on every Keras backend.
pytestmark = pytest.mark.backends


@pytest.mark.parametrize(
    "kind, preactivation, shape, expected, pool_type",
    [
        ("imagenet", False, (2, 32, 32, 3), (2, 8, 8, 64), "max"),
        ("imagenet", True, (2, 33, 33, 3), (2, 9, 9, 64), "max"),
        ("cifar", False, (2, 16, 16, 3), (2, 16, 16, 16), "max"),
        ("deep", False, (2, 32, 32, 3), (2, 8, 8, 64), "max"),
        ("deep", True, (2, 32, 32, 3), (2, 8, 8, 64), "max"),
        ("deep", False, (2, 33, 33, 3), (2, 9, 9, 64), "conv"),  # ResNet-RS
    ],
)
def test_layer_contract(kind, preactivation, shape, expected, pool_type, tmp_path):
    filters = 16 if kind == "cifar" else 64
    stem = Stem(kind, filters=filters, preactivation=preactivation, pool_type=pool_type)
    run_layer_test(stem, random_images(shape), tmp_path, expected_shape=expected)


def test_parameters():
    stem = Stem("imagenet")
    stem(random_images((1, 32, 32, 3)))
    assert trainable_count(stem) == 7 * 7 * 3 * 64 + 2 * 64
    deep = Stem("deep")
    deep(random_images((1, 32, 32, 3)))
    assert trainable_count(deep) == 9 * (3 * 32 + 32 * 32 + 32 * 64) + 2 * (32 + 32 + 64)


def test_pool_padding_min_never_wins_the_max():
    """Without a ReLU before the pool, PyTorch's -inf padding and zero padding
    differ at the border; "min" is PyTorch's."""
    x = -np.abs(random_images((1, 16, 16, 3))) - 1.0
    outs = {}
    for padding in ("min", "zeros"):
        stem = Stem("imagenet", preactivation=True, pool_padding=padding)
        stem.build(x.shape)
        k = np.zeros((7, 7, 3, 64), "float32")
        k[3, 3, 0, :] = 1.0  # copies channel 0: all values negative
        stem.convs[0][-1].kernel.assign(k)
        outs[padding] = np.asarray(stem(x))
    assert outs["zeros"][0, 0, 0, 0] == 0.0
    assert outs["min"][0, 0, 0, 0] < 0.0
    np.testing.assert_array_equal(outs["min"][:, 1:, 1:], outs["zeros"][:, 1:, 1:])


def test_unknown_stem():
    with pytest.raises(ValueError, match=r"`stem` must be one of 'imagenet', 'cifar', 'deep'; received stem='tiny'"):
        Stem("tiny")
