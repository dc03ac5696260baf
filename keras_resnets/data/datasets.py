"""`load_data`: train / validation / test `tf.data` pipelines from three sources.

- `"digits"`: scikit-learn's 1,797 real 8x8 handwritten digits (shipped with
  scikit-learn, no download), scaled to 0..255, resized to 32x32 and repeated
  to 3 channels; a fixed stratified 70 / 10 / 20 split.
- `"tfds:NAME"` or `"tfds:NAME:CONFIG"`: a TensorFlow Datasets image
  classification data set, with its own splits.
- a path to a folder of images with one sub-folder per class (optionally
  inside `train/`, `validation/` or `val/`, and `test/` sub-folders).

The test split is honest: where a source has no test split of its own, a
stratified part of its training data is held out, which neither training
nor the choice of the best epoch (on the validation split) ever sees; never
the validation split. `DataBundle.splits` says where each split came from.

The pipelines yield raw `uint8` images `[batch, size, size, 3]` and `int32`
labels; the per-channel `mean` and `std` of the training images (0..255
scale) come with them, for the model to normalize inside itself.
"""

import dataclasses
import logging
import numbers
import os
import re

import numpy as np
import tensorflow as tf

from keras_resnets.data import augment as augment_lib
from keras_resnets.utils.validation import (
    UsageError,
    check_bool,
    check_choice,
    check_data,
    check_positive_int,
    data_error,
)

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
"""The file name endings (any case) read from image folders."""

DEFAULT_FOLDER_IMAGE_SIZE = 224
CACHE_LIMIT_BYTES = 1 << 30
"""Decoded splits estimated under this many bytes of uint8 are cached in memory."""
SMALL_IMAGES = 64
"""`augment="auto"`: images up to this side get the "cifar" augmentation, larger ones "imagenet"."""
STATS_MAX_IMAGES = 2000
"""`mean` and `std` come from at most this many training images."""
MAX_LISTED_BAD_FILES = 20

_FIXED_SPLIT = (0.7, 0.1, 0.2)


@dataclasses.dataclass
class DataBundle:
    """The pipelines and facts about a data set, as `load_data` returns them.

    Attributes:
        train: batched, shuffled, augmented, prefetched `tf.data.Dataset` of
            `(images, labels)`: `uint8` `[batch, h, w, 3]` and `int32` `[batch]`.
        validation: the same, neither shuffled nor augmented.
        test: the same, neither shuffled nor augmented.
        train_unaugmented: the training images as validation's are (neither
            shuffled nor augmented): the `finetune` recipe's linear probe
            reads them. Lazy, as every pipeline: nothing is read until used.
        num_classes: the number of classes.
        class_names: the class names, `class_names[label]`.
        image_shape: `(h, w, 3)`, the shape of one image.
        train_size: the number of training images.
        validation_size: the number of validation images.
        test_size: the number of test images.
        mean: the per-channel mean of the training images, 0..255 scale.
        std: the per-channel standard deviation, 0..255 scale.
        name: `"digits"`, `"tfds:NAME"` or the folder path.
        skipped: the paths of unreadable files left out (folders with
            `skip_bad_images=True`), else empty.
        splits: which part of the source each pipeline reads, e.g.
            `{"train": "train[:90%]", "validation": "train[90%:]", "test": "test"}`.
        augment: the augmentation of the training pipeline (`None`,
            "cifar" or "imagenet"; "auto" resolved), which also says how
            evaluation resizes: "imagenet" resizes the shorter side and crops
            the centre, the others resize to the square.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    num_classes: int
    class_names: list
    image_shape: tuple
    train_size: int
    validation_size: int
    test_size: int
    mean: list
    std: list
    name: str
    skipped: list = dataclasses.field(default_factory=list)
    splits: dict = dataclasses.field(default_factory=dict)
    augment: str = None
    train_unaugmented: object = None


@dataclasses.dataclass
class _Split:
    elements: tf.data.Dataset  # what `decode` turns into (uint8 image, int32 label)
    size: int
    source: str  # a description, for `DataBundle.splits`


@dataclasses.dataclass
class _Source:
    name: str
    train: _Split
    validation: _Split
    test: _Split
    class_names: list
    natural_size: int  # None if the images vary in size
    decode: object = None  # element -> (uint8 [h, w, c] image, int32 label); None: identity
    flip: bool = True
    cheap_to_shuffle: bool = False  # elements are file paths: shuffle before decoding
    skipped: list = dataclasses.field(default_factory=list)


def load_data(
    data="digits",
    image_size=None,
    batch_size=128,
    augment=None,
    seed=0,
    skip_bad_images=False,
    validation_split=0.1,
    data_dir=None,
    test_split=0.1,
):
    """Loads an image classification data set as train / validation / test pipelines.

    Sources (`data`):

    - `"digits"`: scikit-learn's 1,797 real 8x8 handwritten digits, scaled to
      0..255, resized to 32x32 (bilinear) and repeated to 3 channels; a fixed
      stratified 70 / 10 / 20 split that does not depend on `seed`. Classes
      `"0"` to `"9"`. Never flipped (a mirrored digit is another symbol).
    - `"tfds:NAME"` / `"tfds:NAME:CONFIG"`: `tfds` data set `NAME`
      (`NAME/CONFIG`), downloaded into `data_dir` if needed. Its `"train"`
      split trains; `"validation"` validates, or, if it has none, the last
      `validation_split` of `"train"`; `"test"` tests, or, if it has none,
      `test_split` of `"train"` held out, stratified by class (then
      `validation_split` is stratified too; the labels are read once, the
      images not decoded).
    - a folder path: one sub-folder per class (sorted names give the labels)
      of `.jpg .jpeg .png .bmp .gif` files. If it has a `train/` sub-folder
      (and optionally `validation/` or `val/`, and `test/`), each holding the
      class folders, those are the splits; a missing validation or test
      folder is a stratified `validation_split` or `test_split` of train.
      Otherwise a fixed stratified 70 / 10 / 20 split. Every file is decoded
      once up front; an unreadable, empty or non-image file raises a
      `ValueError` naming its path, unless `skip_bad_images=True`.

    The training pipeline is shuffled (seeded) and augmented; validation and
    test get the deterministic evaluation transform. All yield `uint8`
    images: normalize inside the model with `bundle.mean` and `bundle.std`.

    Args:
        data: the source: `"digits"`, `"tfds:NAME[:CONFIG]"` or a folder path.
        image_size: the output side in pixels, or `None` for the data set's
            own size (digits: 32, folders: 224; an error for tfds data sets
            whose images vary in size).
        batch_size: images per batch.
        augment: `None`, `"cifar"` (pad 4, random crop, random flip),
            `"imagenet"` (random resized crop and flip; evaluation resizes the
            shorter side to `image_size / 0.875` and centre-crops) or
            `"auto"`: "cifar" for images up to `SMALL_IMAGES` (64) pixels,
            else "imagenet".
        seed: seeds the shuffling and the augmentation: same seed, same order
            and same augmented images (with the same global TensorFlow seed).
        skip_bad_images: folders only: leave unreadable files out (listed in
            `bundle.skipped`) instead of raising.
        validation_split: the fraction of the training data held out for
            validation where the source has no validation split; in (0, 1).
        data_dir: where `tfds` keeps its data sets (its default if `None`).
        test_split: the fraction of the training data held out for testing
            where the source has no test split; in (0, 1), and with
            `validation_split` below 1.

    Returns:
        A `DataBundle`.

    Example:

    >>> bundle = load_data("digits", batch_size=64, augment="cifar")
    >>> images, labels = next(iter(bundle.train))
    >>> images.shape, images.dtype, labels.dtype
    (TensorShape([64, 32, 32, 3]), tf.uint8, tf.int32)
    >>> bundle.train_size, bundle.validation_size, bundle.test_size
    (1257, 180, 360)
    """
    if image_size is not None:
        image_size = check_positive_int("image_size", image_size)
    batch_size = check_positive_int("batch_size", batch_size)
    check_choice("augment", augment, augment_lib.AUGMENTATIONS + ("auto",))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise UsageError(f"`seed` must be an integer; received seed={seed!r}.")
    seed = int(seed)
    if (
        isinstance(validation_split, bool)
        or not isinstance(validation_split, numbers.Real)
        or not 0.0 < validation_split < 1.0
    ):
        raise UsageError(
            "`validation_split` must be a number in (0, 1); "
            f"received validation_split={validation_split!r}."
        )
    validation_split = float(validation_split)
    if (
        isinstance(test_split, bool)
        or not isinstance(test_split, numbers.Real)
        or not 0.0 < test_split < 1.0 - validation_split
    ):
        raise UsageError(
            f"`test_split` must be a number in (0, 1 - validation_split) = (0, {1 - validation_split:g}); "
            f"received test_split={test_split!r}."
        )
    test_split = float(test_split)
    check_bool("skip_bad_images", skip_bad_images)

    data = check_data("data", data)
    if data == "digits":
        source = _digits_source()
    elif data.startswith("tfds:"):
        source = _tfds_source(data, validation_split, test_split, data_dir, seed, image_size, augment)
    else:
        source = _folder_source(data, validation_split, test_split, skip_bad_images)

    size = image_size or source.natural_size
    if size is None:
        raise UsageError(
            f"The images of data={data!r} vary in size: pass `image_size` "
            "(e.g. image_size=224) to resize them."
        )
    if augment == "auto":
        augment = "cifar" if size <= SMALL_IMAGES else "imagenet"
    train_fn, eval_fn = _base_transforms(size, augment)
    random_fn = _random_transform(size, augment, source.flip)

    base_train = _decoded(source, source.train.elements, train_fn)
    mean, std = _channel_stats(base_train, min(source.train.size, STATS_MAX_IMAGES))

    # The cached (pre-augmentation) training images; the imagenet recipe keeps
    # the aspect ratio there, up to about 4/3.
    train_side = augment_lib.resize_side(size) if augment == "imagenet" else size
    train_image_bytes = train_side * train_side * 3 * (4 / 3 if augment == "imagenet" else 1)
    pipelines = {}
    for role in ("train", "validation", "test", "train_unaugmented"):
        split = getattr(source, role.split("_")[0])
        training = role == "train"
        image_bytes = train_image_bytes if training else size * size * 3
        pipelines[role] = _pipeline(
            source,
            split,
            transform=train_fn if training else eval_fn,
            random_fn=random_fn if training else None,
            training=training,
            batch_size=batch_size,
            seed=seed,
            image_bytes=image_bytes,
        )
    return DataBundle(
        train=pipelines["train"],
        validation=pipelines["validation"],
        test=pipelines["test"],
        num_classes=len(source.class_names),
        class_names=list(source.class_names),
        image_shape=(size, size, 3),
        train_size=source.train.size,
        validation_size=source.validation.size,
        test_size=source.test.size,
        mean=mean,
        std=std,
        name=source.name,
        skipped=list(source.skipped),
        splits={r: getattr(source, r).source for r in ("train", "validation", "test")},
        augment=augment,
        train_unaugmented=pipelines["train_unaugmented"],
    )


def _data_error(data, reason=None):
    return data_error("data", data, reason)


# --------------------------------------------------------------------------
# The pipeline, common to all sources.


def _to_rgb(image):
    channels = image.shape[-1]
    if channels == 3:
        return image
    if channels in (1, 2):  # grey, grey + alpha
        return tf.image.grayscale_to_rgb(image[..., :1])
    if channels == 4:  # RGBA
        return image[..., :3]
    channels = tf.shape(image)[-1]
    rgb = tf.cond(
        channels < 3,
        lambda: tf.tile(image[..., :1], [1, 1, 3]),
        lambda: image[..., :3],
    )
    return tf.ensure_shape(rgb, [None, None, 3])


def _base_transforms(size, augment):
    """(training, evaluation) deterministic transforms of a decoded uint8
    image; their results are what gets cached."""

    def square(image):
        image = _to_rgb(image)
        if image.shape[0] == size and image.shape[1] == size:
            return image
        return augment_lib.resize_image(image, size)

    if augment != "imagenet":
        return square, square

    side = augment_lib.resize_side(size)

    def shorter_side(image):
        return augment_lib.resize_shorter_side(_to_rgb(image), side)

    def centre_crop(image):
        return augment_lib.imagenet_eval_transform(_to_rgb(image), size)

    return shorter_side, centre_crop


def _random_transform(size, augment, flip):
    if augment == "cifar":
        return lambda image, seed: augment_lib.cifar_augment(image, seed, flip=flip)
    if augment == "imagenet":
        return lambda image, seed: augment_lib.imagenet_augment(image, size, seed, flip=flip)
    return None


def _decoded(source, elements, transform):
    decode = source.decode or (lambda image, label: (image, label))

    def fn(*element):
        image, label = decode(*element)
        return transform(image), tf.cast(label, tf.int32)

    return elements.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _pipeline(source, split, *, transform, random_fn, training, batch_size, seed, image_bytes):
    ds = split.elements
    n = max(split.size, 1)
    cache = split.size * image_bytes < CACHE_LIMIT_BYTES
    if training and source.cheap_to_shuffle and not cache:
        # File names: shuffle them all before decoding.
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = _decoded(source, ds, transform)
    if cache:
        ds = ds.cache()
    if training and (cache or not source.cheap_to_shuffle):
        buffer = n if cache else max(1, min(n, int(CACHE_LIMIT_BYTES // image_bytes)))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if random_fn is not None:
        # One fresh seed per image and per epoch, reproducible from `seed`.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda example, s: (
                random_fn(example[0], tf.stack([s, tf.constant(seed, tf.int64)])),
                example[1],
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    ds = ds.batch(batch_size, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)


def _channel_stats(base_train, count):
    """Per-channel mean and (population) std of the first `count` images, in float64."""
    if count < 1:
        return [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]

    def moments(image, label):
        pixels = tf.reshape(tf.cast(image, tf.float64), [-1, 3])
        return (
            tf.reduce_sum(pixels, 0),
            tf.reduce_sum(tf.square(pixels), 0),
            tf.cast(tf.shape(pixels)[0], tf.float64),
        )

    total = np.zeros(3)
    total_sq = np.zeros(3)
    pixels = 0.0
    ds = base_train.take(count).map(moments, num_parallel_calls=tf.data.AUTOTUNE).batch(512)
    for s, sq, n in ds.as_numpy_iterator():
        total += s.sum(0)
        total_sq += sq.sum(0)
        pixels += n.sum()
    mean = total / pixels
    std = np.sqrt(np.maximum(total_sq / pixels - mean**2, 0.0))
    return [float(m) for m in mean], [float(s) for s in std]


def _stratified_split(labels, fractions, what):
    """Indices of a fixed (random_state=0) stratified split into
    train / validation / test of the given fractions (validation or test may
    be 0: that split is empty)."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    index = np.arange(len(labels))
    train_f, val_f, test_f = fractions

    def split(idx, test_size):
        try:
            return train_test_split(
                idx, test_size=test_size, stratify=labels[idx], random_state=0
            )
        except ValueError:  # classes too small to stratify
            try:
                return train_test_split(idx, test_size=test_size, random_state=0)
            except ValueError as error:
                raise UsageError(
                    f"{what} has too few images ({len(idx)}) to split into "
                    f"train / validation / test: {error}"
                ) from None

    if test_f > 0:
        rest, test = split(index, test_f)
    else:
        rest, test = index, index[:0]
    if val_f == 0:
        return rest, index[:0], test
    # Rounded: 0.1 / 0.8 is 0.12500000000000003, which sklearn rounds up.
    train, validation = split(rest, round(val_f / (train_f + val_f), 9))
    return train, validation, test


def _percent(fraction):
    return f"{round(100 * fraction, 6):g}%"


# --------------------------------------------------------------------------
# digits


def _digits_source():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype("uint8")[..., None]  # [n, 8, 8, 1]
    labels = digits.target.astype("int32")
    train, validation, test = _stratified_split(labels, _FIXED_SPLIT, "digits")

    def split(index, description):
        ds = tf.data.Dataset.from_tensor_slices((images[index], labels[index]))
        return _Split(ds, len(index), description)

    return _Source(
        name="digits",
        train=split(train, "70% (stratified, fixed)"),
        validation=split(validation, "10% (stratified, fixed)"),
        test=split(test, "20% (stratified, fixed)"),
        class_names=[str(d) for d in range(10)],
        natural_size=32,
        flip=False,
    )


# --------------------------------------------------------------------------
# TensorFlow Datasets


def _tfds_split_names(available, validation_split):
    """Which tfds split (or slice) serves as train, validation and test;
    `None` for a test split the data set lacks (then `_tfds_source` holds
    out a stratified part of "train" for it, and for validation if it has
    none either).

    `available` is the set of the data set's split names; empty when unknown
    (no metadata), in which case the usual `train` + `test` are assumed.
    """
    available = set(available) or {"train", "test"}
    if "train" not in available:
        raise UsageError(f"the data set has no 'train' split (it has {sorted(available)})")
    if "test" not in available:
        return {"train": "train", "validation": "validation" if "validation" in available else None,
                "test": None}
    if "validation" in available:
        train, validation = "train", "validation"
    else:
        cut = f"{round(100 * (1 - validation_split), 6):g}"
        train, validation = f"train[:{cut}%]", f"train[{cut}%:]"
    return {"train": train, "validation": validation, "test": "test"}


def _tfds_labels(builder, split, image_key, read_config):
    """The labels of `split` in the order `as_dataset` reads it (files in
    order), the images left encoded."""
    import tensorflow_datasets as tfds

    ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False, read_config=read_config,
                            decoders={image_key: tfds.decode.SkipDecoding()})
    batches = ds.map(lambda image, label: label).batch(8192).as_numpy_iterator()
    return np.concatenate([np.zeros([0], "int64"), *batches])


def _tfds_source(data, validation_split, test_split, data_dir, seed, image_size, augment):
    import tensorflow_datasets as tfds

    tfds_name = "/".join(data[len("tfds:"):].split(":"))  # (its form checked by check_data)
    try:
        builder = tfds.builder(tfds_name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        first = str(error).strip().splitlines()[0].rstrip(".")
        raise UsageError(_data_error(data, f"tfds: {first}")) from None
    builder.download_and_prepare()
    info = builder.info

    keys = info.supervised_keys
    if not keys or len(keys) != 2 or not isinstance(keys[0], str):
        raise UsageError(_data_error(data, "not an (image, label) classification data set"))
    image_key, label_key = keys
    label_feature = info.features[label_key]
    if not isinstance(label_feature, tfds.features.ClassLabel):
        raise UsageError(_data_error(data, f"its label {label_key!r} is not a class label"))
    image_shape = tuple(info.features[image_key].shape)
    if len(image_shape) != 3:
        raise UsageError(_data_error(data, f"its images have shape {image_shape}, not (h, w, c)"))
    h, w = image_shape[:2]
    natural_size = h if (h is not None and h == w) else None
    if natural_size is None and image_size is None:
        raise UsageError(
            f"The images of data={data!r} are "
            + ("of varying size" if h is None or w is None else f"{h}x{w}, not square")
            + ": pass `image_size` (e.g. image_size=224) to resize them."
        )

    try:
        names = _tfds_split_names(info.splits.keys(), validation_split)
    except ValueError as error:
        raise UsageError(_data_error(data, str(error))) from None

    side = augment_lib.resize_side(image_size or natural_size) if augment == "imagenet" else None
    image_bytes = (side or image_size or natural_size) ** 2 * 3
    read_config = tfds.ReadConfig(shuffle_seed=seed)

    def read(split, shuffle_files=False):
        ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=shuffle_files,
                                read_config=read_config)
        if ds.element_spec[0].dtype != tf.uint8:
            raise UsageError(
                _data_error(data, f"its images are {ds.element_spec[0].dtype.name}, not uint8")
            )
        return ds

    def load(role, shuffle_files=False):
        split = names[role]
        ds = read(split, shuffle_files)
        size = int(ds.cardinality())
        if size < 0:  # unknown
            size = int(info.splits[split].num_examples)
        return _Split(ds, size, split)

    if names["test"] is None:
        # No test split: hold out a stratified part of train (and of it the
        # validation, where there is no validation split either). The
        # examples are told apart by their position in file order.
        labels = _tfds_labels(builder, "train", image_key, read_config)
        carve_validation = names["validation"] is None
        fractions = (1 - test_split - (validation_split if carve_validation else 0),
                     validation_split if carve_validation else 0.0, test_split)
        parts = _stratified_split(labels, fractions, f"data={data!r}'s train split")
        role_of = np.zeros(len(labels), "int32")
        for role, index in enumerate(parts):
            role_of[index] = role
        table = tf.constant(role_of)

        def part(role, fraction):
            ds = read("train").enumerate().filter(lambda i, example: tf.gather(table, i) == role)
            return _Split(ds.map(lambda i, example: example), len(parts[role]),
                          f"train ({_percent(fraction)}, stratified)")

        # In file order: the shuffle buffer (the whole split when it is
        # cached) does the shuffling.
        return _Source(
            name=data,
            train=part(0, fractions[0]),
            validation=part(1, fractions[1]) if carve_validation else load("validation"),
            test=part(2, fractions[2]),
            class_names=list(label_feature.names),
            natural_size=natural_size,
        )
    train = load("train")
    if train.size * image_bytes >= CACHE_LIMIT_BYTES:
        # Too big to cache and shuffle whole: read the files in a seeded
        # random order too (the shuffle buffer then mixes within a window).
        train = load("train", shuffle_files=True)
    return _Source(
        name=data,
        train=train,
        validation=load("validation"),
        test=load("test"),
        class_names=list(label_feature.names),
        natural_size=natural_size,
    )


# --------------------------------------------------------------------------
# Image folders


def _is_hidden(name):
    return name.startswith(".")


def _class_folders(folder):
    return sorted(
        e.name for e in os.scandir(folder) if e.is_dir() and not _is_hidden(e.name)
    )


def _files_of(class_dir):
    """(image files, other files) under `class_dir`, recursively, sorted."""
    images, others = [], []
    for root, dirs, files in os.walk(class_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not _is_hidden(d))
        for name in sorted(files):
            if _is_hidden(name):
                continue
            path = os.path.join(root, name)
            (images if name.lower().endswith(IMAGE_EXTENSIONS) else others).append(path)
    return images, others


def _decode_file(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def _undecodable(paths):
    """The subset of `paths` that `tf.io.decode_image` cannot decode, found in parallel."""
    if not paths:
        return set()

    def check(i, path):
        image = _decode_file(path)
        shape = tf.shape(image)
        with tf.control_dependencies(
            [tf.debugging.assert_positive(shape[0] * shape[1], message="empty image")]
        ):
            return tf.identity(i)

    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), paths))
    ds = ds.map(check, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors().batch(4096)
    good = set()
    for batch in ds.as_numpy_iterator():
        good.update(int(i) for i in batch)
    return {p for i, p in enumerate(paths) if i not in good}


def _file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:  # e.g. a broken link
        return 0


def _why_bad(path):
    if not path.lower().endswith(IMAGE_EXTENSIONS):
        return "not an image file (allowed: " + " ".join(IMAGE_EXTENSIONS) + ")"
    try:
        if os.path.getsize(path) == 0:
            return "empty file"
        _decode_file(path)
    except tf.errors.OpError as error:
        message = re.sub(r"\{\{[^}]*\}\}|\[Op:\w+\].*", "", error.message or "").strip()
        return message.splitlines()[0] if message else type(error).__name__
    except OSError as error:
        return str(error)
    return "decodes to an empty image"


def _folder_source(data, validation_split, test_split, skip_bad_images):
    folder = os.path.normpath(data)
    sub = {name.lower(): name for name in _class_folders(folder)}
    split_dirs = {}
    # A lone `train/` is the split layout too: one class would be no classification.
    if "train" in sub and ("test" in sub or "validation" in sub or "val" in sub or len(sub) == 1):
        split_dirs["train"] = sub["train"]
        for role, names in (("validation", ("validation", "val")), ("test", ("test",))):
            for n in names:
                if n in sub:
                    split_dirs[role] = sub[n]
                    break
        class_names = _class_folders(os.path.join(folder, split_dirs["train"]))
        for role, dirname in split_dirs.items():
            extra = set(_class_folders(os.path.join(folder, dirname))) - set(class_names)
            if extra:
                raise UsageError(
                    _data_error(
                        folder,
                        f"{os.path.join(folder, dirname)} has class folders that "
                        f"{os.path.join(folder, split_dirs['train'])} lacks: {sorted(extra)}",
                    )
                )
    else:
        class_names = _class_folders(folder)
        split_dirs[None] = ""
    if not class_names:
        raise UsageError(_data_error(folder, "it has no class sub-folders"))

    # Every file of every class folder, and the ones that fail to decode.
    files = {}  # split dir role -> (paths, labels)
    candidates, bad = [], []
    for role, dirname in split_dirs.items():
        paths, labels = [], []
        for label, name in enumerate(class_names):
            class_dir = os.path.join(folder, dirname, name)
            if not os.path.isdir(class_dir):
                continue
            images, others = _files_of(class_dir)
            bad.extend(others)
            paths.extend(images)
            labels.extend([label] * len(images))
        files[role] = (paths, labels)
        candidates.extend(paths)
    empty = {p for p in candidates if _file_size(p) == 0}  # 0 also for unreadable
    bad_set = set(bad) | empty | _undecodable([p for p in candidates if p not in empty])
    bad = sorted(bad_set)
    if bad and not skip_bad_images:
        listed = bad[:MAX_LISTED_BAD_FILES]
        lines = [f"  {p}: {_why_bad(p)}" for p in listed]
        if len(bad) > len(listed):
            lines.append(f"  ... and {len(bad) - len(listed)} more.")
        raise UsageError(
            f"{len(bad)} file(s) in the image folder data={folder!r} cannot be read as "
            "images (pass skip_bad_images=True to leave them out):\n" + "\n".join(lines)
        )
    if bad:
        logger.warning("Skipping %d unreadable file(s) in %s.", len(bad), folder)
    for role, (paths, labels) in files.items():
        keep = [i for i, p in enumerate(paths) if p not in bad_set]
        files[role] = ([paths[i] for i in keep], [labels[i] for i in keep])

    rng_order = np.random.default_rng(0)

    def make(paths, labels, description):
        order = rng_order.permutation(len(paths))  # fixed, and not sorted by class
        paths = np.array(paths, dtype=str).reshape([-1])[order]
        labels = np.array(labels, dtype="int32").reshape([-1])[order]
        ds = tf.data.Dataset.from_tensor_slices((paths, labels))
        return _Split(ds, len(order), description)

    def pick(paths, labels, index):
        return [paths[i] for i in index], [labels[i] for i in index]

    if None in files:
        paths, labels = files[None]
        if not paths:
            raise UsageError(_data_error(folder, "it has no readable images"))
        tr, va, te = _stratified_split(labels, _FIXED_SPLIT, f"The folder {folder!r}")
        splits = {
            "train": make(*pick(paths, labels, tr), "70% (stratified, fixed)"),
            "validation": make(*pick(paths, labels, va), "10% (stratified, fixed)"),
            "test": make(*pick(paths, labels, te), "20% (stratified, fixed)"),
        }
    else:
        paths, labels = files["train"]
        if not paths:
            raise UsageError(_data_error(folder, f"{split_dirs['train']}/ has no readable images"))
        train_dir = os.path.join(folder, split_dirs["train"])
        # What the folder lacks comes from train/, stratified: the test split
        # is held out from everything that training and validation see.
        carve = {role: 0.0 if role in files else fraction
                 for role, fraction in (("validation", validation_split), ("test", test_split))}
        kept = 1 - carve["validation"] - carve["test"]
        index = dict(zip(("train", "validation", "test"), _stratified_split(
            labels, (kept, carve["validation"], carve["test"]), f"The folder {train_dir!r}")))
        splits = {}
        for role in ("train", "validation", "test"):
            share = kept if role == "train" else carve[role]
            if share:
                where = train_dir if share == 1 else f"{train_dir} ({_percent(share)}, stratified)"
                splits[role] = make(*pick(paths, labels, index[role]), where)
            else:
                splits[role] = make(*files[role], os.path.join(folder, split_dirs[role]))

    def decode(path, label):
        return _decode_file(path), label

    return _Source(
        name=data,
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        class_names=class_names,
        natural_size=DEFAULT_FOLDER_IMAGE_SIZE,
        decode=decode,
        cheap_to_shuffle=True,
        skipped=bad,
    )
