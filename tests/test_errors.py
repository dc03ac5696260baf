"""Bad input: a ValueError naming the argument, the value and what is allowed."""

import pytest

import keras_resnets


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("resnet5O", {}, r"Unknown model: received name='resnet5O'\. Did you mean .*'resnet50'"),
        ("resnext_50", {}, r"Did you mean 'resnext50'"),
        ("vgg16", {}, r"received name='vgg16'\. Allowed: resnet18, resnet34"),
        ("resnet50", dict(input_shape=(16, 16, 3)),
         r"`input_shape` is too small.*total stride 32.*received input_shape=\(16, 16, 3\).*>= 32"),
        ("resnet20", dict(input_shape=(3, 32, 3)), r"too small.*total stride 4.*>= 4"),
        ("resnet50", dict(input_shape=(224, 224)), r"`input_shape` must be \(height, width, channels\).*received input_shape=\(224, 224\)"),
        ("resnet50", dict(weights="imagenet", input_shape=(224, 224, 1)),
         r"weights='imagenet' take 3-channel RGB images; received input_shape=\(224, 224, 1\) with 1 channels"),
        ("resnet50", dict(weights="imagenet", classes=10),
         r"weights='imagenet' with include_top=True has 1000 classes; received classes=10"),
        ("resnet50", dict(weights="/nonexistent/file.weights.h5"),
         r"`weights` must be None, 'imagenet', a named source .*or the path of an existing weights file; received weights='/nonexistent"),
        ("resnet20", dict(weights="imagenet"), r"weights='imagenet': no ImageNet weights for 'resnet20'"),
        ("resnet50", dict(weights="torchvision:IMAGENET1K_V9"),
         r"weights='torchvision:IMAGENET1K_V9' has no file for model 'resnet50'\. Allowed for 'resnet50': .*'torchvision:IMAGENET1K_V2'"),
        ("resnet50", dict(weights="keras:imagenet", layout="torchvision"),
         r"weights='keras:imagenet' need layout='keras'; received layout='torchvision'"),
        ("resnet50", dict(shortcut="E"), r"`shortcut` must be one of 'A', 'B', 'C', 'D'; received shortcut='E'"),
        ("resnet50", dict(stem="tiny"), r"`stem` must be one of 'imagenet', 'cifar', 'deep'; received stem='tiny'"),
        ("resnet50", dict(layout="caffe"), r"`layout` must be one of 'torchvision', 'keras'; received layout='caffe'"),
        ("resnet50", dict(drop_path_rate=-0.1), r"`drop_path_rate` must be a number in \[0, 1\); received drop_path_rate=-0.1"),
        ("resnet50", dict(drop_path_rate=1.0), r"received drop_path_rate=1.0"),
        ("resnet50", dict(dropout_rate=1.5), r"`dropout_rate` must be a number in \[0, 1\); received dropout_rate=1.5"),
        ("resnet50", dict(classes=0), r"`classes` must be a positive integer; received classes=0"),
        ("resnet50", dict(include_top=1), r"`include_top` must be True or False; received include_top=1"),
        ("resnet50", dict(include_top=False, pooling="mean"), r"`pooling` must be None, 'avg' or 'max'; received pooling='mean'"),
        ("resnet50", dict(width_multiplier=0), r"`width_multiplier` must be a positive number; received width_multiplier=0"),
        ("resnext50", dict(groups=0), r"`groups` must be a positive integer; received groups=0"),
        ("resnet18", dict(groups=32), r"resnet18 has basic blocks, which take no `groups`.*received groups=32"),
    ],
)
def test_builder_errors(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_resnets.get_model(name, **kwargs)


def test_errors_come_before_building():
    """Validation is up front: a bad late argument fails fast, whatever the model."""
    with pytest.raises(ValueError, match="drop_path_rate"):
        keras_resnets.ResNet1202(drop_path_rate=2.0)


def test_public_builders_name_the_argument():
    with pytest.raises(ValueError, match=r"received shortcut='Z'"):
        keras_resnets.ResNeXt50(shortcut="Z")
    with pytest.raises(TypeError):
        keras_resnets.ResNet50(3)  # keyword-only, like keras.applications' usage
