"""`count_macs` and `macs_by_layer` count what runs, checked against hand
computations: a convolution costs H x W x C_out x k x k x C_in / groups
multiply-accumulates per image, a dense layer C_in x C_out. Two ways of
counting, which must agree: the operations of TensorFlow's graph
(`method="graph"`, TensorFlow only) and the convolution and dense layers
with the shapes they see (`method="layers"`, every backend)."""

import keras
import pytest

import keras_resnets
from keras_resnets.layers import GroupedConv2D
from keras_resnets.utils.macs import macs_by_layer

from helpers import cifar_resnet_figures

BACKEND = keras.backend.backend()
on_tensorflow = pytest.mark.skipif(BACKEND != "tensorflow", reason="counts TensorFlow's graph")


def _single_layer_model(layer, shape):
    x = keras.Input(shape)
    return keras.Model(x, layer(x))


@on_tensorflow
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


@on_tensorflow
def test_nested_functions_are_counted_per_call_and_recursively():
    import tensorflow as tf

    @tf.function
    def product(a, b):
        return tf.matmul(a, b)

    @tf.function
    def two_products(a, b):
        return product(a, b) + product(a, b)

    class TwoNestedProducts(keras.layers.Layer):
        """x @ w twice, through a tf.function that calls another tf.function."""

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 5), name="w")

        def call(self, x):
            return two_products(x, tf.convert_to_tensor(self.w))

        def compute_output_shape(self, input_shape):
            return (*input_shape[:-1], 5)

    model = _single_layer_model(TwoNestedProducts(name="twice"), (7,))
    # Two calls of a product [1, 7] x [7, 5], inside a call.
    assert keras_resnets.count_macs(model) == 2 * 7 * 5
    assert macs_by_layer(model) == {"twice": 2 * 7 * 5}


@pytest.mark.backends
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


@pytest.mark.backends
def test_layer_count_by_hand():
    """Each kind of layer that method="layers" counts, on whichever backend runs."""
    model = keras.Sequential([
        keras.Input((8, 8, 64)),
        keras.layers.Conv2D(64, 3, groups=32, padding="same", name="stock_grouped"),
        GroupedConv2D(32, 3, groups=4, strides=2, name="ours"),
        keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="depthwise"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(5, name="dense"),
    ])
    hand = {
        "stock_grouped": 8 * 8 * 64 * 3 * 3 * 2,
        "ours": 3 * 3 * 32 * 3 * 3 * 16,
        "depthwise": 3 * 3 * 64 * 3 * 3,
        "dense": 3 * 3 * 64 * 5,
    }
    assert keras_resnets.count_macs(model, method="layers") == sum(hand.values())
    assert macs_by_layer(model, method="layers") == hand


@pytest.mark.backends
def test_layer_count_of_resnet20_equals_the_hand_count():
    model = keras_resnets.ResNet20(classes=10)
    assert keras_resnets.count_macs(model, method="layers") == cifar_resnet_figures(3)[1] == 40_551_040
    by_layer = macs_by_layer(model, method="layers")
    assert sum(by_layer.values()) == 40_551_040 and by_layer["predictions"] == 640


@pytest.mark.backends
def test_layer_count_refuses_what_it_cannot_count():
    model = keras.Sequential([keras.Input((4, 6)), keras.layers.EinsumDense("abc,cd->abd", (4, 3), name="mix")])
    with pytest.raises(ValueError, match=r"the layer 'mix' \(EinsumDense\) has a kernel that it cannot count"):
        keras_resnets.count_macs(model, method="layers")
    with pytest.raises(ValueError, match=r"`method` must be one of 'auto', 'graph', 'layers'; received method='ops'"):
        keras_resnets.count_macs(model, method="ops")


@pytest.mark.backends
@pytest.mark.skipif(BACKEND == "tensorflow", reason="the graph count's error off TensorFlow")
def test_graph_count_needs_tensorflow():
    with pytest.raises(ValueError, match=rf"needs the TensorFlow backend, and Keras runs on '{BACKEND}' here"):
        keras_resnets.count_macs(keras_resnets.ResNet20(), method="graph")


@on_tensorflow
@pytest.mark.parametrize("name", ["resnet20", "resnet50", "resnext50_32x4d", "resnet50v2", "wide_resnet16_8",
                                  "ecaresnet50d"])  # ECA: a Conv1D, whose call bypasses convolution_op
def test_graph_and_layer_counts_agree(name):
    """On a model of each kind (all registered models: tests/test_catalog.py's
    full run), and per layer; and on stock keras.applications. A quarter of
    the width at 64 px: the same layers, a fifth of the time."""
    model = keras_resnets.get_model(name, input_shape=(64, 64, 3), width_multiplier=0.25)
    assert keras_resnets.count_macs(model, method="layers") == keras_resnets.count_macs(model, method="graph")
    assert macs_by_layer(model, method="layers") == macs_by_layer(model, method="graph")
    if name == "resnet50":
        stock = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
        assert keras_resnets.count_macs(stock, method="layers") == keras_resnets.count_macs(stock, method="graph")
