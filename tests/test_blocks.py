import numpy as np
import pytest

from keras_resnets.layers import (
    BasicBlock,
    BottleneckBlock,
    GroupedConv2D,
    IdentityShortcut,
    ProjectionShortcut,
    Stem,
)

from helpers import random_images, run_layer_test, to_numpy

# The layers run on every Keras backend.
pytestmark = pytest.mark.backends


def conv_weight_count(block):
    return int(
        sum(
            np.prod(w.shape)
            for w in block.weights
            if w.path.endswith("kernel") and "shortcut" not in w.path
        )
    )


def test_textbook_weights_basic_versus_bottleneck():
    """He et al. 2015, Fig. 5: on a 256-channel input, two 3x3 convolutions
    hold 1,179,648 weights; the bottleneck 1x1-3x3-1x1 holds 69,632."""
    x = random_images((1, 8, 8, 256))
    basic = BasicBlock(256)
    basic(x)
    bottleneck = BottleneckBlock(64)
    bottleneck(x)
    assert conv_weight_count(basic) == 1_179_648
    assert conv_weight_count(bottleneck) == 69_632
    assert not basic.projects and not bottleneck.projects


@pytest.mark.parametrize(
    "kwargs, width",
    [
        (dict(filters=64), 64),  # ResNet-50
        (dict(filters=64, groups=32, width_per_group=4), 128),  # ResNeXt-50 32x4d
        (dict(filters=256, groups=32, width_per_group=8), 1024),  # ResNeXt-101 32x8d
        (dict(filters=128, width_per_group=128), 256),  # Wide ResNet-50-2
    ],
)
def test_bottleneck_width(kwargs, width):
    block = BottleneckBlock(**kwargs)
    block(random_images((1, 4, 4, 4 * kwargs["filters"])))
    assert block.width == width
    assert block.convs[1][-1].filters == width
    grouped = kwargs.get("groups", 1) > 1
    assert isinstance(block.convs[1][-1], GroupedConv2D) == grouped


@pytest.mark.parametrize("stride_in_1x1, strided", [(False, 1), (True, 0)])
def test_stride_placement(stride_in_1x1, strided):
    block = BottleneckBlock(16, strides=2, stride_in_1x1=stride_in_1x1)
    y = block(random_images((1, 8, 8, 32)))
    assert y.shape == (1, 4, 4, 64)
    strides = [conv[-1].strides for conv in block.convs]
    assert strides[strided] == (2, 2)
    assert sum(s == (2, 2) for s in strides) == 1


def test_shortcut_choice_follows_input():
    a = BasicBlock(32, strides=2, shortcut="A")
    a(random_images((1, 8, 8, 16)))
    assert isinstance(a.shortcut_layer, IdentityShortcut)
    b = BasicBlock(32, strides=2, shortcut="B")
    b(random_images((1, 8, 8, 16)))
    assert isinstance(b.shortcut_layer, ProjectionShortcut)
    assert b.shortcut_layer.bn is not None
    pre = BottleneckBlock(16, strides=2, preactivation=True)
    pre(random_images((1, 8, 8, 32)))
    assert pre.shortcut_layer.bn is None  # its input is already normalized


@pytest.mark.parametrize("preactivation", [False, True])
def test_zero_init_residual_gives_identity(preactivation):
    """With the residual branch at zero a block is its shortcut: the identity
    (pre-activation), or ReLU of it (original)."""
    x = random_images((2, 8, 8, 64))
    block = BottleneckBlock(16, preactivation=preactivation, zero_init_residual=True)
    y = np.asarray(block(x, training=False))
    np.testing.assert_allclose(y, x if preactivation else np.maximum(x, 0), atol=1e-6)


def test_preactivation_identity_carries_raw_input():
    """The identity path of a pre-activation block skips its BN-ReLU."""
    x = random_images((1, 4, 4, 16))
    block = BasicBlock(16, preactivation=True)
    block(x)
    block.convs[1][-1].kernel.assign(np.zeros_like(block.convs[1][-1].kernel))
    np.testing.assert_allclose(block(x, training=False), x, atol=1e-6)


def test_drop_path_drops_whole_samples_in_training_only():
    x = random_images((64, 4, 4, 16))
    block = BasicBlock(16, drop_path_rate=0.5, preactivation=True)
    block(x)
    reference = BasicBlock.from_config({**block.get_config(), "drop_path_rate": 0.0})
    reference(x)
    weights = {w.path.split("/", 1)[1]: w for w in block.weights}
    for w in reference.weights:
        w.assign(weights[w.path.split("/", 1)[1]])
    branch = np.asarray(block(x, training=True)) - x
    ref_branch = np.asarray(reference(x, training=True)) - x
    dropped = np.abs(branch).reshape(64, -1).max(axis=1) == 0.0
    assert 10 < dropped.sum() < 54  # about half of the samples
    # Kept samples are scaled by 1 / (1 - rate); inference keeps everything.
    np.testing.assert_allclose(branch[~dropped], 2.0 * ref_branch[~dropped], atol=1e-4)
    np.testing.assert_allclose(block(x, training=False), reference(x, training=False), atol=1e-6)


# Each block is built in its test (a factory here), after conftest.py seeds
# the test: blocks built once at import drew their seed generators in the
# order the tests happened to run.
BLOCKS = {
    "basic": (lambda: BasicBlock(16), (2, 8, 8, 16), (2, 8, 8, 16)),
    "basic_A": (lambda: BasicBlock(32, strides=2, shortcut="A"), (2, 8, 8, 16), (2, 4, 4, 32)),
    "basic_preact_C": (lambda: BasicBlock(16, preactivation=True, shortcut="C"), (2, 8, 8, 16), (2, 8, 8, 16)),
    "bottleneck_B": (lambda: BottleneckBlock(8, strides=2), (2, 8, 8, 16), (2, 4, 4, 32)),
    "bottleneck_D": (lambda: BottleneckBlock(8, strides=2, shortcut="D"), (2, 8, 8, 16), (2, 4, 4, 32)),
    "resnext": (lambda: BottleneckBlock(16, groups=4, width_per_group=8, strides=2), (2, 8, 8, 32), (2, 4, 4, 64)),
    # channel attention on the branch (SE-ResNeXt, ResNet-RS's ratio; ECA)
    "resnext_se": (lambda: BottleneckBlock(16, groups=4, attention="se", se_ratio=0.25, strides=2,
                                           shortcut="D"), (2, 8, 8, 32), (2, 4, 4, 64)),
    "basic_eca": (lambda: BasicBlock(32, attention="eca"), (2, 8, 8, 16), (2, 8, 8, 32)),
    "resnext_preact_keras": (
        lambda: BottleneckBlock(16, groups=4, preactivation=True, use_bias=False, output_bias=True,
                                stride_in_1x1=True, strides=2, drop_path_rate=0.1),
        # batch 8: with drop path at 0.1, a batch of 2 dropped the residual
        # branch of both samples (no gradient reaches it) once in 100 calls,
        # which failed the gradient check on JAX; 8 samples: 1e-8
        (8, 8, 8, 32), (8, 4, 4, 64),
    ),
}


@pytest.mark.parametrize("name", list(BLOCKS))
def test_layer_contract(name, tmp_path):
    build, shape, expected = BLOCKS[name]
    run_layer_test(build(), random_images(shape), tmp_path, expected_shape=expected)


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (BasicBlock, dict(filters=0), r"`filters` must be a positive integer; received filters=0"),
        (BasicBlock, dict(filters=8, shortcut="X"), r"received shortcut='X'"),
        (BasicBlock, dict(filters=8, drop_path_rate=1.0), r"`drop_path_rate` must be a number in \[0, 1\); received drop_path_rate=1.0"),
        (BasicBlock, dict(filters=8, drop_path_rate=-0.1), r"received drop_path_rate=-0.1"),
        (BottleneckBlock, dict(filters=8, groups=3), None),
        (BottleneckBlock, dict(filters=8, width_per_group=0), r"received width_per_group=0"),
        (BasicBlock, dict(filters=8, attention="cbam"), r"`attention` must be one of None, 'se', 'eca'; received attention='cbam'"),
        (BasicBlock, dict(filters=8, attention="se", se_ratio=0), r"`se_ratio` must be a number in \(0, 1\]; received se_ratio=0"),
    ],
)
def test_bad_arguments(cls, kwargs, match):
    if match is None:
        # width = int(8 * 64 / 64) * 3 = 24 channels in 3 groups: valid.
        block = cls(**kwargs)
        block(random_images((1, 4, 4, 32)))
        assert block.convs[1][-1].groups == 3
        return
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_he_normal_fan_out_draws_he_et_al_normals():
    """torchvision's `kaiming_normal_(mode="fan_out")`: mean 0, standard
    deviation sqrt(2 / (kernel_h * kernel_w * filters)), in the kernel's
    shape, seeded draws repeat; it serializes by name and by config."""
    import keras

    from keras_resnets.layers.common import HeNormalFanOut, conv_initializer

    init = conv_initializer("he_normal_fan_out")
    assert isinstance(init, HeNormalFanOut)
    for shape in [(3, 3, 64, 128), (1, 1, 100, 300), (3, 3, 4, 7)]:
        values = to_numpy(init(shape, dtype="float32"))
        assert values.shape == shape and values.dtype == np.float32
        if values.size > 10_000:
            expected = np.sqrt(2.0 / (shape[0] * shape[1] * shape[3]))
            assert values.std() == pytest.approx(expected, rel=0.03)
            assert abs(values.mean()) < 0.03 * expected
    # (An unseeded initializer draws its seed once, as Keras's do: each
    # layer gets one of its own.)
    a, b = to_numpy(init((3, 3, 4, 7))), to_numpy(conv_initializer("he_normal_fan_out")((3, 3, 4, 7)))
    assert not np.array_equal(a, b)
    seeded = HeNormalFanOut(seed=5)
    np.testing.assert_array_equal(to_numpy(seeded((3, 3, 4, 7))), to_numpy(HeNormalFanOut(seed=5)((3, 3, 4, 7))))
    again = keras.initializers.deserialize(keras.initializers.serialize(seeded))
    assert isinstance(again, HeNormalFanOut) and again.get_config() == {"seed": 5}


def test_he_normal_fan_out_compiles_once_for_many_kernel_shapes_on_jax():
    """On JAX a random draw compiles an XLA program for each shape (about
    0.1 s each): kernels of six shapes whose sizes share a power of two draw
    from one compiled program (loading six small models took 100 s, of which
    48 in these compilations, before; 50 s after)."""
    import keras

    if keras.backend.backend() != "jax":
        pytest.skip("a count of JAX's compilations")
    import logging

    import jax

    from keras_resnets.layers.common import HeNormalFanOut

    compiled = []

    class Count(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("Compiling"):
                compiled.append(record.getMessage()[:160])

    init, handler, logger = HeNormalFanOut(), Count(), logging.getLogger("jax")
    init((3, 3, 8, 64))  # 4,608 values: the program of 8,192 is compiled here
    logger.addHandler(handler)
    try:
        with jax.log_compiles():
            for channels in range(9, 15):  # 5,184 to 8,064 values
                assert to_numpy(init((3, 3, channels, 64))).shape == (3, 3, channels, 64)
    finally:
        logger.removeHandler(handler)
    assert compiled == []
    # Inside jax.jit the draw is traced, and cut by the backend's ops.
    seeded = HeNormalFanOut(seed=3)
    np.testing.assert_allclose(to_numpy(jax.jit(lambda: seeded((3, 3, 5, 7)))()), to_numpy(seeded((3, 3, 5, 7))),
                               atol=1e-6)


FROZEN_CASES = {
    # layer, its input shape, the layers with weights inside it to freeze
    "bottleneck_se": (lambda: BottleneckBlock(16, strides=2, groups=2, width_per_group=32, attention="se"),
                      (2, 16, 16, 8), ["bn1", "shortcut/bn", "attention/fc2"]),
    "basic_eca_C": (lambda: BasicBlock(8, attention="eca", shortcut="C"), (2, 16, 16, 8), ["bn2", "attention"]),
    "preact_D": (lambda: BasicBlock(8, strides=2, preactivation=True, shortcut="D"), (2, 16, 16, 4),
                 ["preact_bn", "shortcut/conv"]),
    "stem_deep": (lambda: Stem("deep", filters=8), (2, 32, 32, 3), None),
}


@pytest.mark.parametrize("case", list(FROZEN_CASES))
def test_frozen_sublayers_survive_config_and_keras_file(case, tmp_path):
    """Keras saves a layer's own `trainable`, not that of the layers it
    makes: batch norm frozen inside a block came back trainable from a
    `.keras` file (in training mode, with the optimizer's saved state
    dropped). The paths in the config freeze them again."""
    import keras

    make, shape, paths = FROZEN_CASES[case]
    layer = make()
    layer.build(shape)
    if paths is None:  # the batch norms of the stem
        paths = [p for p, sub in layer._sublayers_by_path().items() if isinstance(sub, keras.layers.BatchNormalization)]
        assert len(paths) == 3
    for path in paths:
        layer._sublayers_by_path()[path].trainable = False
    frozen = {p for p, sub in layer._sublayers_by_path().items() if not sub.trainable}
    assert sorted(layer.get_config()["frozen_sublayers"]) == sorted(paths)
    trainable = [v.path for v in layer.trainable_variables]
    # get_config / from_config
    copy = type(layer).from_config(layer.get_config())
    copy.build(shape)
    assert {p for p, sub in copy._sublayers_by_path().items() if not sub.trainable} == frozen
    assert len(copy.trainable_variables) == len(trainable) < len(copy.weights)
    # a .keras file: the same trainable variables, and the frozen batch norms
    # in inference mode in a training step, as before saving
    x = random_images(shape)
    inputs = keras.Input(shape[1:])
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert [v.path for v in loaded.trainable_variables] == [v.path for v in model.trainable_variables]
    np.testing.assert_allclose(to_numpy(loaded(x, training=True)), to_numpy(model(x, training=True)), atol=1e-5)
    # unfrozen, nothing is left in the config
    for path in paths:
        layer._sublayers_by_path()[path].trainable = True
    assert "frozen_sublayers" not in layer.get_config()
    with pytest.raises(ValueError, match=r"`frozen_sublayers` names layers that .* does not have: \['bn9'\]"):
        type(layer).from_config({**layer.get_config(), "frozen_sublayers": ["bn9"]}).build(shape)
