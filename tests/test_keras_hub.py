"""keras-hub interop, both ways.

keras-hub's ResNets converted (`from_keras_hub`): a `ResNetBackbone` of each
block type (v1 basic and bottleneck, the vd presets' two, v2's two) with
random weights and batch-norm statistics gives keras-hub's own feature maps
and output, at an even and an odd image size, with the same parameter count;
a `ResNetImageClassifier` saved as a preset on disk and read back converts
with its head, and the converted model saves and loads as `.keras`.

keras-hub's task models on keras_resnets backbones: DeepLabV3 (at output
stride 32, and 16 through `as_image_encoder`) and RetinaNet build, train a
step, and save and load as `.keras` with equal outputs. keras-hub is in the
test extras; without it these tests are skipped."""

import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets.keras_hub import as_image_encoder, from_keras_hub
from keras_resnets.training.starting_point import starting_point

keras_hub = pytest.importorskip("keras_hub", reason='keras-hub is not installed: pip install ".[keras-hub]"')

SIZE = 64


def _encoder(**kwargs):
    # A narrow ResNet-18: the plumbing is what is tested, not the capacity.
    return keras_resnets.ResNet18(include_top=False, width_multiplier=0.25, **kwargs)


def _assert_saves(model, x, tmp_path):
    before = model.predict(x, verbose=0)
    model.save(tmp_path / "task.keras")
    after = keras.saving.load_model(tmp_path / "task.keras").predict(x, verbose=0)
    for key in before if isinstance(before, dict) else [None]:
        np.testing.assert_array_equal(*(np.asarray(o if key is None else o[key]) for o in (before, after)))


def _segmenter(encoder, **kwargs):
    backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder, dilation_rates=[2, 4, 6], low_level_feature_key="P2",
        image_shape=(SIZE, SIZE, 3), **kwargs,
    )
    segmenter = keras_hub.models.DeepLabV3ImageSegmenter(backbone=backbone, num_classes=3)
    segmenter.compile(optimizer=keras.optimizers.SGD(0.01),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return segmenter


@pytest.mark.parametrize("output_stride, kwargs", [
    (32, dict(spatial_pyramid_pooling_key="P5", upsampling_size=8)),
    # The dilated last stage, at stride 16, is keras-hub's "P4".
    (16, dict(spatial_pyramid_pooling_key="P4", upsampling_size=4)),
])
def test_deeplab_v3(output_stride, kwargs, tmp_path):
    encoder = as_image_encoder(_encoder(output_stride=output_stride))
    segmenter = _segmenter(encoder, **kwargs)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (2, SIZE, SIZE, 3)).astype("float32")
    masks = rng.integers(0, 3, (2, SIZE, SIZE, 1))
    assert segmenter(x).shape == (2, SIZE, SIZE, 3)  # the image's size: the strides add up
    weights = [w.numpy().copy() for w in encoder.trainable_weights]
    loss = segmenter.fit(x, masks, epochs=1, verbose=0).history["loss"][0]
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(weights, encoder.trainable_weights))
    _assert_saves(segmenter, x, tmp_path)


def test_as_image_encoder_names_levels_by_stride():
    dense = _encoder()
    assert as_image_encoder(dense) is dense  # the names are keras-hub's already
    dilated = _encoder(output_stride=8)
    view = as_image_encoder(dilated)
    assert view.feature_strides == {"P1": 2, "P2": 4, "P3": 8}
    # "P3": the deepest map at stride 8, the model's last stage.
    assert view.pyramid_outputs["P3"] is dilated.pyramid_outputs["P5"]
    assert {id(w) for w in view.weights} == {id(w) for w in dilated.weights}
    with pytest.raises(ValueError, match=r"`model` must be a keras_resnets model .* received Sequential"):
        as_image_encoder(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))


def test_retinanet(tmp_path):
    from keras_hub.src.layers.modeling.anchor_generator import AnchorGenerator
    from keras_hub.src.models.retinanet.retinanet_image_converter import RetinaNetImageConverter
    from keras_hub.src.models.retinanet.retinanet_label_encoder import RetinaNetLabelEncoder

    size = 128
    backbone = keras_hub.models.RetinaNetBackbone(image_encoder=_encoder(), min_level=3, max_level=5, use_p5=False)
    anchors = AnchorGenerator(bounding_box_format="yxyx", min_level=3, max_level=5, num_scales=3,
                              aspect_ratios=[0.5, 1.0, 2.0], anchor_size=4)
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, anchor_generator=anchors, num_classes=4, bounding_box_format="yxyx",
        label_encoder=RetinaNetLabelEncoder(bounding_box_format="yxyx", anchor_generator=anchors),
        preprocessor=keras_hub.models.RetinaNetObjectDetectorPreprocessor(image_converter=RetinaNetImageConverter(
            bounding_box_format="yxyx", scale=1.0, image_size=(size, size))),
    )
    detector.compile(optimizer=keras.optimizers.SGD(0.01))
    x = np.random.default_rng(0).uniform(0, 1, (2, size, size, 3)).astype("float32")
    boxes = {"boxes": np.array([[[20.0, 10.0, 60.0, 50.0], [30.0, 20.0, 90.0, 80.0]]] * 2),
             "labels": np.array([[0, 2]] * 2)}
    losses = detector.fit(x, boxes, epochs=1, batch_size=2, verbose=0).history
    assert np.isfinite(losses["loss"][0]) and losses["cls_logits_loss"][0] > 0
    out = detector.predict(x, verbose=0)
    assert out["boxes"].shape == (2, 100, 4)
    _assert_saves(detector, x, tmp_path)


# keras-hub's configurations, narrow: its first stage must be 64 wide, the
# others change the width (as every preset's do).
HUB_STEMS = {False: dict(input_conv_filters=[64], input_conv_kernel_sizes=[7]),
             True: dict(input_conv_filters=[32, 32, 64], input_conv_kernel_sizes=[3, 3, 3])}


def _hub_backbone(block_type, v2=False, blocks=(2, 1, 1, 1)):
    backbone = keras_hub.models.ResNetBackbone(
        stackwise_num_filters=[64, 16, 32, 48], stackwise_num_blocks=list(blocks),
        stackwise_num_strides=[1, 2, 2, 2], block_type=block_type, use_pre_activation=v2,
        **HUB_STEMS[block_type.endswith("_vd")])
    rng = np.random.default_rng(1)
    for weight in backbone.weights:  # batch-norm statistics and affine terms far from their initial values
        leaf = weight.path.split("/")[-1]
        if leaf == "moving_variance":
            weight.assign(rng.uniform(0.5, 2.0, weight.shape))
        elif leaf in ("moving_mean", "beta"):
            weight.assign(rng.normal(0.0, 0.3, weight.shape))
        elif leaf == "gamma":
            weight.assign(rng.uniform(0.5, 1.5, weight.shape))
    return backbone


@pytest.mark.parametrize("block_type, v2", [
    ("basic_block", False), ("bottleneck_block", False),
    ("basic_block_vd", False),  # projects at stage 1's first block, 64 -> 64
    ("bottleneck_block_vd", False),
    ("basic_block", True), ("bottleneck_block", True),
])
def test_from_keras_hub_gives_the_backbones_features(block_type, v2):
    backbone = _hub_backbone(block_type, v2)
    features = from_keras_hub(backbone, features_only=True)
    trunk = from_keras_hub(backbone)
    assert trunk.count_params() == backbone.count_params()
    theirs = keras.Model(backbone.inputs, [backbone.output, backbone.pyramid_outputs])
    # P5 of a v2 model here is after the final norm and ReLU (timm's), keras-hub's before them.
    levels = ["P2", "P3", "P4"] + ([] if v2 else ["P5"])
    for size in (64, 67):  # 67: the odd sizes of the strided convolutions and average-pool shortcuts
        x = np.random.default_rng(size).uniform(-1, 1, (2, size, size, 3)).astype("float32")
        output, pyramid = theirs(x)
        ours = features(x)
        for level in levels:
            np.testing.assert_allclose(np.asarray(ours[level]), np.asarray(pyramid[level]), atol=2e-5, rtol=1e-5,
                                       err_msg=f"{level} at {size} px")
        np.testing.assert_allclose(np.asarray(trunk(x)), np.asarray(output), atol=2e-5, rtol=1e-5)


def test_from_keras_hub_classifier_from_a_preset_on_disk(tmp_path):
    classifier = keras_hub.models.ResNetImageClassifier(
        backbone=_hub_backbone("bottleneck_block_vd", blocks=(1, 1, 1, 1)), num_classes=5, activation="softmax")
    classifier.save_to_preset(str(tmp_path / "preset"))
    loaded = keras_hub.models.ImageClassifier.from_preset(str(tmp_path / "preset"))
    model = from_keras_hub(loaded)
    assert model.output.shape == (None, 5) and model.get_layer("predictions").activation.__name__ == "softmax"
    x = np.random.default_rng(0).uniform(-1, 1, (2, 40, 40, 3)).astype("float32")
    expected = np.asarray(classifier(x))
    np.testing.assert_allclose(np.asarray(model(x)), expected, atol=1e-6)
    model.save(tmp_path / "converted.keras")
    np.testing.assert_allclose(np.asarray(keras.saving.load_model(tmp_path / "converted.keras")(x)), expected,
                               atol=1e-6)
    # A new head of another size on the same trunk.
    assert from_keras_hub(loaded, classes=3).output.shape == (None, 3)
    # `keras-resnets train --weights converted.keras` starts from it, although its architecture is not
    # a registered name (the user journey runs that command on a model of a registered one).
    start = starting_point(str(tmp_path / "converted.keras"))
    assert (start.kind, start.model) == ("keras_model", model.name)
    with pytest.raises(ValueError, match=r"is a model of its own architecture, 'keras_hub_resnet_vd_14'; "
                                         r"received model='resnet18'"):
        starting_point(str(tmp_path / "converted.keras"), model="resnet18")


def test_from_keras_hub_refuses_what_it_cannot_convert():
    backbone = _hub_backbone("basic_block", blocks=(1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"received layout \(the architecture is the backbone's\)"):
        from_keras_hub(backbone, layout="keras")
    with pytest.raises(ValueError, match=r"`backbone` must be a keras_hub.models.ResNetBackbone .* received Sequential"):
        from_keras_hub(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    channels_first = keras_hub.models.ResNetBackbone(
        stackwise_num_filters=[64, 16, 32, 48], stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block", data_format="channels_first", image_shape=(3, None, None), **HUB_STEMS[False])
    with pytest.raises(ValueError, match=r"`data_format` must be 'channels_last' .* received data_format='channels_first'"):
        from_keras_hub(channels_first)
    same = keras_hub.models.ResNetBackbone(
        stackwise_num_filters=[64, 64, 32, 48], stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block", **HUB_STEMS[False])
    with pytest.raises(ValueError, match=r"`stackwise_num_filters` must be .* received stackwise_num_filters=\[64, 64, 32, 48\]"):
        from_keras_hub(same)
