"""`count_macs` and `macs_by_layer` count what runs, checked against hand
computations: a convolution costs H x W x C_out x k x k x C_in / groups
multiply-accumulates per image, a dense layer C_in x C_out."""

import keras
import pytest
import tensorflow as tf

import keras_resnets
from keras_resnets.layers import GroupedConv2D
from keras_resnets.utils.macs import macs_by_layer


def _single_layer_model(layer, shape):
    x = keras.Input(shape)
    return keras.Model(x, layer(x))


def test_stock_grouped_conv2d_counts_its_nested_function():
    # On TensorFlow, keras.layers.Conv2D(groups=...) runs its convolution in
    # a tf.function of its own: a call in the traced graph, whose body holds
    # the Conv2D operation.
    hand = 8 * 8 * 64 * 3 * 3 * (64 // 32)
    stock = _single_layer_model(keras.layers.Conv2D(64, 3, groups=32, padding="same"), (8, 8, 64))
    ours = _single_layer_model(GroupedConv2D(64, 3, groups=32, padding="same"), (8, 8, 64))
    assert keras_resnets.count_macs(stock) == hand == 73_728
    assert keras_resnets.count_macs(ours) == hand
    assert macs_by_layer(stock) == {stock.layers[-1].name: hand}


@tf.function
def _product(a, b):
    return tf.matmul(a, b)


@tf.function
def _two_products(a, b):
    return _product(a, b) + _product(a, b)


class _TwoNestedProducts(keras.layers.Layer):
    """x @ w twice, through a tf.function that calls another tf.function."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 5), name="w")

    def call(self, x):
        return _two_products(x, tf.convert_to_tensor(self.w))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 5)


def test_nested_functions_are_counted_per_call_and_recursively():
    model = _single_layer_model(_TwoNestedProducts(name="twice"), (7,))
    # Two calls of a product [1, 7] x [7, 5], inside a call.
    assert keras_resnets.count_macs(model) == 2 * 7 * 5
    assert macs_by_layer(model) == {"twice": 2 * 7 * 5}


def test_macs_at_given_size_and_of_grouped_convolutions():
    model = keras_resnets.ResNet18()
    double = keras_resnets.count_macs(model, (448, 448, 3))
    full = keras_resnets.count_macs(model, (224, 224, 3))
    # Everything but the classifier scales with the pixel count.
    assert (double - 512 * 1000) == 4 * (full - 512 * 1000)
    grouped = _single_layer_model(GroupedConv2D(64, 3, groups=32, padding="same"), (8, 8, 64))
    assert keras_resnets.count_macs(grouped) == 8 * 8 * 64 * 3 * 3 * 2
    with pytest.raises(ValueError, match=r"received input_shape=\(16, 16, 64\)"):
        keras_resnets.count_macs(grouped, (16, 16, 64))
