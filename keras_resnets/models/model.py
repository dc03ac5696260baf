"""`ResNetModel`: the functional model every builder returns, with its
multi-scale features."""

import keras


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
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        layers = config.pop("pyramid_layers", {})
        strides = config.pop("feature_strides", {})
        model = super().from_config(config, custom_objects=custom_objects)
        return model.set_pyramid({k: model.get_layer(name).output for k, name in layers.items()}, strides)
