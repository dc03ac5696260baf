"""`ResNetModel`: the functional model every builder returns, with its
multi-scale features."""

import keras

from keras_resnets.utils.validation import UsageError


@keras.saving.register_keras_serializable(package="keras_resnets")
class ResNetModel(keras.Model):
    """A functional `keras.Model` that knows its feature pyramid.

    `pyramid_outputs` maps a level to a tensor of the network, as keras-hub's
    backbones do (its `DeepLabV3Backbone` and `RetinaNetBackbone` read it):
    "Pn" is the last feature map at stride 2**n of the network without
    dilation. For the ImageNet stems: "P1" the stem before its max-pool
    (stride 2), "P2".."P5" the outputs of the four stages (4 to 32). For the
    CIFAR nets, whose stem does not downsample: "P0", "P1", "P2", their
    three stages (strides 1, 2, 4). A stage that trades its stride for
    dilation (`output_stride`) keeps its name; `feature_strides` gives each
    level's actual stride.

    Both survive `get_config`/`from_config` and `.keras` files: the config
    names the layer whose output each level is.

    A trained model also knows what it classifies and how its images are
    prepared, so that a `.keras` file alone can be used
    (`keras_resnets.predict`): `class_names`, the name of each output
    (`class_names[i]` for output `i`; None where unknown), and
    `image_transform`, how an image of another size is brought to the
    input's: "resize" (to the square, the aspect ratio not kept) or
    "center_crop" (the shorter side resized to size / 0.875, then the centre
    cropped; see `keras_resnets.data.augment`); None where unknown. Both go
    into the config and the `.keras` file; `keras_resnets.train` sets them.

    Args:
        inputs, outputs, name: as `keras.Model`'s functional constructor.
        **kwargs: the other `keras.Model` arguments.

    Example:

    >>> model = keras_resnets.ResNet50(weights=None, include_top=False)  # doctest: +SKIP
    >>> {k: v.shape for k, v in model.pyramid_outputs.items()}  # doctest: +SKIP
    {'P1': (None, None, None, 64), 'P2': (None, None, None, 256), ...}
    """

    def __init__(self, inputs, outputs, name=None, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.pyramid_outputs = {}
        self.feature_strides = {}
        self.class_names = None
        self.image_transform = None

    def set_labels(self, class_names=None, image_transform=None):
        """Records the class names of the outputs and the image transform
        (see the class docstring); returns the model."""
        if class_names is not None:
            class_names = tuple(str(name) for name in class_names)  # (a tuple: Keras tracks lists)
        if image_transform not in (None, "resize", "center_crop"):
            raise UsageError("`image_transform` must be None, 'resize' or 'center_crop'; received "
                             f"image_transform={image_transform!r}.")
        self.class_names, self.image_transform = class_names, image_transform
        return self

    def set_pyramid(self, pyramid_outputs, feature_strides):
        """Records the levels: `{level: tensor}` (each the output of one
        layer of this model) and `{level: actual stride}`."""
        self.pyramid_outputs = dict(pyramid_outputs)
        self.feature_strides = {k: int(feature_strides[k]) for k in self.pyramid_outputs}
        return self

    def get_config(self):
        config = super().get_config()
        config["pyramid_layers"] = {
            level: tensor._keras_history.operation.name for level, tensor in self.pyramid_outputs.items()
        }
        config["feature_strides"] = dict(self.feature_strides)
        if self.class_names is not None:
            config["class_names"] = list(self.class_names)
        if self.image_transform is not None:
            config["image_transform"] = self.image_transform
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        layers = config.pop("pyramid_layers", {})
        strides = config.pop("feature_strides", {})
        class_names = config.pop("class_names", None)
        image_transform = config.pop("image_transform", None)
        model = super().from_config(config, custom_objects=custom_objects)
        model.set_labels(class_names, image_transform)
        return model.set_pyramid({k: model.get_layer(name).output for k, name in layers.items()}, strides)
