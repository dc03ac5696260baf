"""Every architecture of the registry (one model of each kind): build,
forward, gradients, serialization."""

import dataclasses

import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets.models import min_input_size
from keras_resnets.models.catalog import FIGURES, reference_classes

from helpers import (
    assert_config_round_trip,
    assert_gradients,
    assert_saving_round_trip,
    random_images,
    randomize_batchnorm,
    representative_models,
    trainable_count,
)

# Deep or very wide: building and tracing them takes tens of seconds.
HEAVY = {"resnet1202", "preact_resnet1001", "wide_resnet101_2", "resnext101_32x8d", "resnext29_16x64d"}
# One model also runs on JAX and PyTorch (the `backends` mark), for CI's
# time (a 50-layer network's gradients take 20-60 s on JAX without jit):
# tests/test_blocks.py runs every block kind there, and
# tests/test_backends.py compares the logits of every family across backends.
BACKEND_MODELS = ("resnet20",)


def registry_params():
    """One model of each architecture (`representative_models`): the others
    differ only in their numbers, which tests/test_fidelity.py checks."""
    def marks(name):
        return [pytest.mark.slow] * (name in HEAVY) + [pytest.mark.backends] * (name in BACKEND_MODELS)

    return [pytest.param(name, marks=marks(name)) for name in representative_models()]


def small_model(name, shallow=False, **kwargs):
    """`name` with 7 classes at the smallest input whose last stage still has
    a few pixels (training-mode batch norm over a 1x1 map of 2 images can
    divide by a near-zero variance). `shallow`: at most two blocks a stage
    (a stage's first block and one after it) at a quarter of the width: a
    deeper or wider model repeats the same layers with other numbers, and
    its config is the same list of layer configs (the serialization of the
    14 models: 60 s alone at full size, 21 s so)."""
    spec = keras_resnets.get_spec(name)
    if shallow:
        spec = dataclasses.replace(spec, depths=tuple(min(depth, 2) for depth in spec.depths))
        kwargs["width_multiplier"] = 0.25
    size = max(min_input_size(spec), 16)
    return keras_resnets.build_model(spec if shallow else name, input_shape=(size, size, 3), classes=7,
                                     **kwargs), size


@pytest.mark.parametrize("name", registry_params())
def test_forward_and_gradients(name):
    model, size = small_model(name)
    y = assert_gradients(model, random_images((2, size, size, 3)))
    assert y.shape == (2, 7)
    np.testing.assert_allclose(np.asarray(y).sum(axis=1), 1.0, atol=1e-5)
    # Consistency of the precomputed table (its fidelity is test_fidelity.py's):
    # `keras-resnets models` lists the reference's classes; this head has 7.
    features = model.get_layer("predictions").kernel.shape[0]
    classes = reference_classes(keras_resnets.get_spec(name))
    assert trainable_count(model) == FIGURES[name][0] - (features + 1) * (classes - 7)


@pytest.mark.parametrize("name", registry_params())
def test_serialization(name, tmp_path):
    model, size = small_model(name, shallow=True, classifier_activation=None)
    assert model.name == name
    randomize_batchnorm(model)
    x = random_images((2, size, size, 3))
    assert_config_round_trip(model, x)
    assert_saving_round_trip(model, x, tmp_path)


@pytest.mark.backends
def test_registry_lists_every_builder():
    names = keras_resnets.list_models()
    assert len(names) == len(set(names))
    for public, builder in keras_resnets.BUILDERS.items():
        assert builder.__name__ == public
        assert "include_top" in str(builder.__signature__)
    assert {"resnet50", "resnext50_32x4d", "resnet20", "resnet50v2", "wide_resnet50_2"} <= set(names)


@pytest.mark.backends
def test_builder_is_a_registry_lookup():
    model = keras_resnets.ResNeXt50(input_shape=(32, 32, 3), width_multiplier=0.5, name="mine")
    assert model.name == "mine"
    assert keras_resnets.get_spec("resnext50").name == "resnext50_32x4d"
    again = keras_resnets.get_model("resnext50_32x4d", input_shape=(32, 32, 3), width_multiplier=0.5, name="again")
    assert again.count_params() == model.count_params()
    assert again.name == "again"


@pytest.mark.backends
def test_families():
    assert keras_resnets.list_models("resnext") == [
        "resnext50_32x4d", "resnext101_32x4d", "resnext101_32x8d",
        "resnext101_64x4d", "resnext29_8x64d", "resnext29_16x64d",
    ]
    with pytest.raises(ValueError, match=r"received family='vgg'"):
        keras_resnets.list_models("vgg")


@pytest.mark.backends
def test_duplicate_registration_refused():
    from keras_resnets.models import register

    spec = keras_resnets.get_spec("resnet50")
    with pytest.raises(ValueError, match=r"'resnet50' is already registered"):
        register(spec)


@pytest.mark.backends
def test_feature_extractor_and_pooling():
    x = random_images((1, 64, 64, 3))
    narrow = dict(include_top=False, input_shape=(64, 64, 3), width_multiplier=0.25)
    features = keras_resnets.ResNet18(**narrow)
    assert features(x).shape == (1, 2, 2, 128)
    pooled = keras_resnets.ResNet18(pooling="avg", **narrow)
    pooled.set_weights(features.get_weights())
    np.testing.assert_allclose(pooled(x), np.asarray(features(x)).mean(axis=(1, 2)), atol=1e-5)
    maxed = keras_resnets.ResNet18(pooling="max", **narrow)
    assert maxed(x).shape == (1, 128)


@pytest.mark.backends
def test_any_input_size_by_default():
    model = keras_resnets.ResNet20(classes=10)
    assert model.input_shape == (None, None, None, 3)
    assert model(random_images((1, 32, 32, 3))).shape == (1, 10)
    assert model(random_images((1, 48, 40, 3))).shape == (1, 10)


@pytest.mark.backends
def test_input_tensor():
    inputs = keras.Input((32, 32, 1))
    model = keras_resnets.ResNet20(input_tensor=inputs, classes=10)
    assert model.inputs[0] is inputs
    assert model.input_shape == (None, 32, 32, 1)


def test_width_multiplier_scales_every_stage():
    base = keras_resnets.ResNet20(classes=10, include_top=False)
    wide = keras_resnets.ResNet20(classes=10, include_top=False, width_multiplier=2)
    assert base.output_shape[-1] * 2 == wide.output_shape[-1]
    assert wide.get_layer("stem").filters == 32
    # 3x3 convolutions dominate: about 4x the parameters.
    assert 3.9 < wide.count_params() / base.count_params() < 4.1


def test_drop_path_rate_rises_linearly():
    model = keras_resnets.ResNet56(classes=10, drop_path_rate=0.2)
    rates = [layer.drop_path_rate for layer in model.layers if layer.name.startswith("stage")]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2)
    np.testing.assert_allclose(np.diff(rates), 0.2 / 26)


def test_dropout_and_shortcut_and_stem_options():
    model = keras_resnets.ResNet50(
        input_shape=(64, 64, 3), shortcut="D", stem="deep", dropout_rate=0.3, zero_init_residual=True
    )
    assert model.get_layer("dropout").rate == 0.3
    assert model.get_layer("stem").kind == "deep"
    block = model.get_layer("stage2_block1")
    assert block.shortcut_layer.pool is not None
    assert np.all(np.asarray(block.norms[-1].gamma) == 0.0)
    c_option = keras_resnets.ResNet18(input_shape=(64, 64, 3), shortcut="C")
    assert all(
        layer.projects for layer in c_option.layers if layer.name.startswith("stage")
    )


def test_keras_layout_of_v2_puts_stride_at_stage_end():
    model = keras_resnets.ResNet50V2(input_shape=(64, 64, 3))
    strides = {
        layer.name: layer.strides for layer in model.layers if layer.name.startswith("stage")
    }
    assert strides["stage1_block3"] == 2 and strides["stage1_block1"] == 1
    assert strides["stage4_block3"] == 1
    torch_layout = keras_resnets.ResNet50V2(input_shape=(64, 64, 3), layout="torchvision")
    assert torch_layout.get_layer("stage2_block1").strides == 2


@pytest.mark.backends
def test_mixed_precision_head_is_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = keras_resnets.ResNet20(classes=10)
    y = model(random_images((2, 32, 32, 3)))
    assert y.dtype == "float32"
    assert model.get_layer("stage1_block1").compute_dtype == "bfloat16"
    assert_gradients(model, random_images((2, 32, 32, 3)))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "float64"])
def test_saved_model_keeps_its_precision_inside_blocks(policy, tmp_path):
    # The layers inside the stem, blocks and shortcuts take their policy from
    # the composite layer, not from the global policy at load time.
    keras.config.set_dtype_policy(policy)
    model = keras_resnets.get_model("resnet18", input_shape=(32, 32, 3), classes=10, shortcut="D")
    x = random_images((2, 32, 32, 3))
    expected = np.asarray(model(x))
    model.save(tmp_path / "model.keras")
    keras.config.set_dtype_policy("float32")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    inner = [layer for layer in loaded._flatten_layers(include_self=False)
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization))]
    assert len(inner) == 40  # stem 2, blocks 8 x 4, projections 3 x 2
    assert {layer.dtype_policy.name for layer in inner} == {policy}
    assert {w.dtype for w in loaded.weights} == {"float64" if policy == "float64" else "float32"}
    np.testing.assert_array_equal(np.asarray(loaded(x)), expected)


@pytest.mark.backends
def test_weights_file_round_trip(tmp_path):
    model = keras_resnets.ResNet20(classes=10)
    randomize_batchnorm(model)
    path = tmp_path / "resnet20.weights.h5"
    model.save_weights(path)
    loaded = keras_resnets.ResNet20(classes=10, weights=str(path))
    x = random_images((2, 32, 32, 3))
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)
