"""The model a run trains, from what it starts from (`starting_point`).

Every model here takes raw `uint8` images and normalizes them inside itself,
so that the saved `.keras` file, and what is exported from it, takes the
images as they are:

- random weights: the data's per-channel mean and std (`with_preprocessing`);
- pretrained weights (a named source or a checkpoint file): the
  normalization they were trained with (`ImagePreprocessing`), the trunk
  loaded, the classifier new and sized for the data (`pretrained_model`);
- an earlier run's model: its own normalization and weights, its head kept
  when its class names are the data's, else a new one (`continued_model`);
  a model of the user's own that takes float images and normalizes nothing
  (`keras_resnets.get_model(...)` saved as it is) gets the data's
  normalization in front, as a run from scratch does.
"""

import keras

from keras_resnets.layers.preprocessing import ImagePreprocessing
from keras_resnets.models.builder import build_model, weights_build_arguments
from keras_resnets.models.model import ResNetModel
from keras_resnets.models.registry import get_spec
from keras_resnets.models.saving import load_model
from keras_resnets.training.recipes import zero_classifier
from keras_resnets.utils.validation import UsageError
from keras_resnets.weights.pretrained import load_weights

ARCHITECTURE_ARGS = ("shortcut", "stem", "layout")


def image_transform(bundle):
    """How `keras_resnets.predict` brings an image to the model's size: as
    the data's evaluation pipeline does (see `ResNetModel.image_transform`)."""
    return "center_crop" if bundle.augment == "imagenet" else "resize"


def with_preprocessing(name, bundle, zero_head=False, zero_residual=False, **model_kwargs):
    """The model `name` taking raw uint8 images: normalization is inside it.
    `zero_head`: its classifier starts at zero (the recipes'
    `zero_init_head`, see `keras_resnets.training.recipes.zero_classifier`).
    `zero_residual`: a bottleneck network's residual branches start at zero
    (the recipes' `zero_init_residual`; the builders' argument of that name)."""
    inputs = keras.Input(bundle.image_shape, dtype="uint8", name="image")
    x = data_normalization(bundle)(inputs)
    if zero_residual and get_spec(name).block == "bottleneck":
        model_kwargs.setdefault("zero_init_residual", True)
    net = build_model(
        name, input_tensor=x, classes=bundle.num_classes, **model_kwargs
    )
    if zero_head:
        zero_classifier(net)
    return net


def data_normalization(bundle, name="normalize"):
    """A `Normalization` layer of the data's per-channel mean and std (a
    float32 layer, also under mixed precision)."""
    variance = [max(s * s, 1e-6) for s in bundle.std]
    return keras.layers.Normalization(mean=bundle.mean, variance=variance, dtype="float32", name=name)


def pretrained_model(name, weights, bundle, **model_kwargs):
    """The model `name` with `weights` (a source or a checkpoint file, as
    `build_model` takes them) in every layer but its classifier, which is
    new, with `bundle.num_classes` outputs; images normalized as the
    weights expect.

    Returns `(model, preprocessing mode)`.
    """
    chosen = {arg: model_kwargs.pop(arg, None) for arg in ARCHITECTURE_ARGS}
    source, chosen = weights_build_arguments(name, weights, **chosen)
    mode = source.preprocessing
    if mode is None:
        raise UsageError(f"weights={weights!r}: a Keras weights file says nothing of the images it was "
                         "trained on; it loads whole, onto the same model (see `starting_point`).")
    inputs = keras.Input(bundle.image_shape, dtype="uint8", name="image")
    x = ImagePreprocessing(mode, name="normalize")(inputs)
    net = build_model(name, input_tensor=x, classes=bundle.num_classes, **model_kwargs, **chosen)
    load_weights(net, source, classifier=False)
    return net, mode


def continued_model(path, bundle, **model_kwargs):
    """The model of an earlier run (`path`, a `.keras` file) for `bundle`:
    its weights and normalization; its classifier kept when its class names
    (or, where it has none, its number of classes) are the data's, else a
    new one; rebuilt for the data's image size if its input has another, or
    any.

    A model that takes float images and has no normalizing layer
    (`NORMALIZING_LAYERS`), such as `keras_resnets.get_model(...)` saved as
    it is, would receive pixel values of 0-255: it gets the data's mean and
    std in front of it, as a run from scratch does (`with_preprocessing`).

    Returns `(model, whether the head was kept, normalization)`:
    "earlier model" (its own) or "data" (added).
    """
    if model_kwargs:
        raise UsageError(
            f"weights={path!r} is the model of an earlier run, whose architecture is fixed; received "
            f"builder arguments {sorted(model_kwargs)}. Allowed: none with a .keras model."
        )
    earlier = load_model(path, compile=False)
    # What trains is the recipe's to say: a model saved with frozen layers
    # (batch norm, after `finetune`) keeps them frozen in its file. (Each
    # layer: `earlier.trainable = True` leaves them be when the model's
    # own flag is True already.)
    for layer in earlier._flatten_layers(include_self=True):
        layer.trainable = True
    normalization = "earlier model" if normalizes_images(earlier) else "data"
    earlier = _for_data(earlier, bundle, normalize=normalization == "data")
    names = getattr(earlier, "class_names", None)
    head = earlier.get_layer("predictions")
    if names is not None:
        keep = list(names) == list(bundle.class_names)
    else:
        keep = head.units == bundle.num_classes
    if keep:
        return earlier, True, normalization
    dtype = "float32" if keras.mixed_precision.global_policy().name.startswith("mixed") else None
    outputs = keras.layers.Dense(bundle.num_classes, activation=head.activation, name="predictions",
                                 dtype=dtype)(head.input)
    net = ResNetModel(earlier.inputs, outputs, name=earlier.name)
    if isinstance(earlier, ResNetModel):
        net.set_pyramid(earlier.pyramid_outputs, earlier.feature_strides)
    return net, False, normalization


NORMALIZING_LAYERS = (keras.layers.Normalization, keras.layers.Rescaling, ImagePreprocessing)
"""Layers that bring pixel values to a network's range: a model with one
takes images as they are."""


def normalizes_images(model):
    """Whether `model` takes images as they are: its input is uint8 (every
    model a run saves) or it has a layer of `NORMALIZING_LAYERS`."""
    if model.inputs[0].dtype == "uint8":
        return True
    return any(isinstance(layer, NORMALIZING_LAYERS) for layer in model.layers)


def _for_data(model, bundle, normalize=False):
    """`model` taking images of `bundle.image_shape` (and, with `normalize`,
    raw uint8 images normalized by `bundle`'s mean and std): itself, or a
    copy built so from its config, its weights copied.

    A copy for the size when its input has another size or takes any size:
    the run's model then takes the images it was trained on, as a run from
    scratch's does; `predict` and `export` read that side from it (a model
    of any size sent them to the architecture's 224 px)."""
    resize = tuple(model.inputs[0].shape[1:]) != tuple(bundle.image_shape)
    if not (resize or normalize):
        return model
    config = model.get_config()
    config["layers"][0]["config"]["batch_shape"] = [None, *bundle.image_shape]
    if normalize:
        _insert_normalization(config, bundle)
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def _insert_normalization(config, bundle):
    """Edits a functional model's `config`: its input takes uint8 images,
    and a `Normalization` layer (the data's mean and std, as
    `with_preprocessing`'s) feeds every layer that read the input."""
    layers = config["layers"]
    image = layers[0]["name"]
    taken = {layer["name"] for layer in layers}
    name = next(n for n in ("normalize", *(f"normalize_{i}" for i in range(1, len(taken) + 2)))
                if n not in taken)
    layers[0]["config"]["dtype"] = "uint8"

    def rewire(value):
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__" and value["config"]["keras_history"][0] == image:
                value["config"]["keras_history"] = [name, 0, 0]
                value["config"]["dtype"] = "float32"
                return
            for item in value.values():
                rewire(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                rewire(item)

    for layer in layers[1:]:
        rewire(layer["inbound_nodes"])
    entry = keras.saving.serialize_keras_object(data_normalization(bundle, name))
    entry["name"] = name
    entry["inbound_nodes"] = [{"args": [{"class_name": "__keras_tensor__", "config": {
        "shape": [None, *bundle.image_shape], "dtype": "uint8", "keras_history": [image, 0, 0]}}],
        "kwargs": {}}]
    layers.insert(1, entry)


PROBE_STEPS = 500
"""The linear probe's optimizer steps (batches of up to `PROBE_BATCH` features)."""
PROBE_BATCH = 256
PROBE_L2 = 1e-3
PROBE_MAX_IMAGES = 20_000
"""The most training images whose features the linear probe holds: a
stratified sample, `ceil(PROBE_MAX_IMAGES / classes)` images of each class
at most (all of the digits; 20 an ImageNet class). ResNet-50's 2,048
float32 features make it 160 MiB at most, whatever the folder's size."""


def probe_features(trunk, images, num_classes, max_images=PROBE_MAX_IMAGES):
    """`(features, labels)` of a stratified sample of `images` (a
    `tf.data.Dataset` of `(images, labels)` batches): the first
    `ceil(max_images / num_classes)` images of each class in the data's
    order (a fixed shuffle for folders), each through `trunk` in inference
    mode. Only the images kept go through the trunk, and the reading stops
    once every class has its share: memory and time are bounded by
    `max_images`, not by the size of the data."""
    import numpy as np

    per_class = -(-max_images // num_classes)
    counts = np.zeros(num_classes, dtype="int64")
    features, labels = [], []
    for batch, batch_labels in images:
        batch_labels = np.asarray(batch_labels)
        keep = np.zeros(len(batch_labels), dtype=bool)
        for i, label in enumerate(batch_labels):
            if counts[label] < per_class:
                counts[label] += 1
                keep[i] = True
        if keep.any():
            kept = batch if keep.all() else np.asarray(batch)[keep]
            features.append(np.asarray(trunk(kept, training=False), dtype="float32"))
            labels.append(batch_labels[keep])
        if (counts >= per_class).all():
            break
    return np.concatenate(features), np.concatenate(labels)


class _ProbeBatches(keras.utils.PyDataset):
    """`epochs` passes over `(features, labels)` in batches of `batch`, each
    pass in an order of its own (seeded), as one sequence of batches: the
    probe's steps in a single `fit` epoch, on any backend."""

    def __init__(self, features, labels, batch, epochs, seed):
        super().__init__()
        self.features, self.labels, self.batch, self.epochs, self.seed = features, labels, batch, epochs, seed
        self.per_epoch = -(-len(features) // batch)

    def __len__(self):
        return self.per_epoch * self.epochs

    def __getitem__(self, index):
        import numpy as np

        epoch, step = divmod(index, self.per_epoch)
        order = np.random.default_rng((self.seed, epoch)).permutation(len(self.features))
        rows = order[step * self.batch:(step + 1) * self.batch]
        return self.features[rows], self.labels[rows]


def fit_linear_probe(net, images, seed=0, strategy=None, max_images=PROBE_MAX_IMAGES):
    """Fits `net`'s classifier (the layer "predictions") alone on the
    features of the frozen network below it: the first phase of the
    `finetune` recipe (linear probing, then fine-tuning; Kumar et al. 2022).

    The features of a stratified sample of `images` (a `tf.data.Dataset` of
    `(images, labels)`, unaugmented; at most `max_images` of them, see
    `probe_features`) are computed once, in inference mode; a logistic
    regression on them, standardized (a Dense layer of the classifier's
    size, softmax cross-entropy, an L2 penalty of `PROBE_L2` on the kernel as
    scikit-learn's default logistic regression has one, so that separable
    classes do not drive the logits to infinity; Adam at 0.01 decayed to 0
    over `PROBE_STEPS` steps), gives the classifier's kernel and bias, the
    standardization folded in.

    Under a distribution `strategy` every worker fits the probe on the same
    images with the same seed, and the head of the cluster's first replica
    is then broadcast (`distribute.broadcast_from_first_replica`): the
    workers start fine-tuning from the same head even where their kernels
    are not bit-for-bit alike (GPUs).

    Returns the probe's accuracy on those images (the fit, not a test).
    """
    import numpy as np

    head = net.get_layer("predictions")
    trunk = keras.Model(net.inputs, head.input)
    features, labels = probe_features(trunk, images, head.units, max_images)
    # Standardized features: the same optimum, reached in far fewer steps. A
    # feature that hardly varies (a ReLU that never fires) is only centred:
    # divided by its spread it would blow up the folded kernel.
    mean, std = features.mean(0), features.std(0)
    std = np.where(std > 1e-3 * max(float(std.max()), 1e-12), std, 1.0)
    features -= mean  # in place: the sample is the probe's largest array
    features /= std
    batch = min(PROBE_BATCH, len(features))
    epochs = max(1, -(-PROBE_STEPS * batch // len(features)))
    batches = _ProbeBatches(features, labels, batch, epochs, seed)
    keras.utils.set_random_seed(seed)
    probe = keras.Sequential([keras.Input(features.shape[1:]), keras.layers.Dense(
        head.units, kernel_regularizer=keras.regularizers.L2(PROBE_L2), dtype="float32")])
    probe.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.01, len(batches))),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # One `fit` epoch of all the steps: 500 epochs of a few batches each (a
    # small folder) spent 45 ms each in Keras's per-epoch work, 23 s in all.
    probe.fit(batches, epochs=1, verbose=0)
    kernel, bias = probe.layers[-1].get_weights()
    kernel, bias = kernel / std[:, None], bias - (mean / std) @ kernel
    if strategy is not None:
        from keras_resnets.training.distribute import broadcast_from_first_replica

        kernel, bias = broadcast_from_first_replica(strategy, [kernel, bias])
    head.kernel.assign(kernel.astype(head.kernel.dtype))
    head.bias.assign(bias.astype(head.bias.dtype))
    return float(probe.evaluate(features, labels, batch_size=batch, verbose=0)[1])
