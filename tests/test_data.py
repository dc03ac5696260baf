"""The data layer: `load_data` sources, splits, pipelines and augmentation.

No downloads: `digits` ships with scikit-learn, tfds data sets are mocked with
`tfds.testing.mock_data` (or, for the splits they lack, built here as real
tfds data sets of a few images), image folders are written to `tmp_path`.
"""

import collections
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_resnets.data import (
    DataBundle,
    cifar_augment,
    imagenet_augment,
    imagenet_eval_transform,
    load_data,
    resize_shorter_side,
)
from keras_resnets.data import datasets as datasets_lib


def collect(ds):
    """All (images, labels) of a batched pipeline, as numpy arrays."""
    images, labels = [], []
    for x, y in ds.as_numpy_iterator():
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def keys(images, labels):
    return collections.Counter((x.tobytes(), int(y)) for x, y in zip(images, labels))


def shift(image, dy, dx):
    """`image` moved down dy and right dx pixels, zeros coming in."""
    h, w = image.shape[:2]
    out = np.zeros_like(image)
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = image[
        max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)
    ]
    return out


def padded_crop_of(augmented, original, padding=4, flips=(False, True)):
    """The (dy, dx, flipped) for which `augmented` is the zero-padded shift of
    `original` (then possibly mirrored), or None."""
    for flipped in flips:
        for dy in range(-padding, padding + 1):
            for dx in range(-padding, padding + 1):
                candidate = shift(original, dy, dx)
                if flipped:
                    candidate = candidate[:, ::-1]
                if np.array_equal(candidate, augmented):
                    return dy, dx, flipped
    return None


# --------------------------------------------------------------------------
# digits


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", batch_size=128, seed=0)


def test_digits_batches(digits):
    assert isinstance(digits, DataBundle)
    assert digits.name == "digits"
    assert digits.num_classes == 10
    assert digits.class_names == [str(d) for d in range(10)]
    assert digits.image_shape == (32, 32, 3)
    images, labels = next(iter(digits.train))
    assert images.shape == (128, 32, 32, 3) and images.dtype == tf.uint8
    assert labels.shape == (128,) and labels.dtype == tf.int32
    for split, size in [
        (digits.train, digits.train_size),
        (digits.validation, digits.validation_size),
        (digits.test, digits.test_size),
    ]:
        x, y = collect(split)
        assert len(x) == len(y) == size
        assert x.dtype == np.uint8 and y.dtype == np.int32
        assert set(np.unique(y)) == set(range(10))
        # Real scans scaled to 0..255: black background, white strokes.
        assert x.min() == 0 and x.max() >= 250
        # Grey repeated to 3 channels.
        np.testing.assert_array_equal(x[..., 0], x[..., 1])
        np.testing.assert_array_equal(x[..., 0], x[..., 2])
    assert digits.skipped == []


def test_digits_mean_std_are_those_of_the_training_images(digits):
    x, _ = collect(digits.train)
    pixels = x.reshape(-1, 3).astype("float64")
    np.testing.assert_allclose(digits.mean, pixels.mean(0), rtol=1e-9)
    np.testing.assert_allclose(digits.std, pixels.std(0), rtol=1e-9)
    assert 50 < digits.mean[0] < 110 and 60 < digits.std[0] < 110


def test_digits_split_is_fixed_stratified_and_disjoint(digits):
    other = load_data("digits", batch_size=64, seed=7)
    assert (digits.train_size, digits.validation_size, digits.test_size) == (1257, 180, 360)
    splits = []
    for bundle in (digits, other):
        sets = {}
        for role in ("train", "validation", "test"):
            x, y = collect(getattr(bundle, role))
            counts = keys(x, y)
            assert max(counts.values()) == 1  # the 1,797 scans are all different
            sets[role] = set(counts)
            per_class = np.bincount(y, minlength=10)
            total = len(y)
            # Stratified: every class in proportion (the full set has 174..183 per class).
            assert per_class.min() >= 0.09 * total and per_class.max() <= 0.11 * total
        splits.append(sets)
        assert not sets["train"] & sets["validation"]
        assert not sets["train"] & sets["test"]
        assert not sets["validation"] & sets["test"]
        assert len(sets["train"] | sets["validation"] | sets["test"]) == 1797
    first, second = splits
    assert first == second  # the same images in the same split, whatever the seed
    # ... but the seed does change the training order.
    a = next(iter(digits.train))[1].numpy()[:64]
    b = next(iter(other.train))[1].numpy()
    assert not np.array_equal(a, b)


def test_digits_cifar_augmentation_shifts_without_flipping():
    plain = load_data("digits", batch_size=64, seed=3)
    augmented = load_data("digits", batch_size=64, augment="cifar", seed=3)
    # Same seed, same shuffle: the augmented batch is the plain batch, shifted.
    x, y = next(iter(plain.train))
    xa, ya = next(iter(augmented.train))
    np.testing.assert_array_equal(y, ya)
    shifts = []
    for original, moved in zip(x.numpy(), xa.numpy()):
        found = padded_crop_of(moved, original, flips=(False,))
        assert found is not None, "not an unflipped padded crop of the original"
        shifts.append(found[:2])
    assert len(set(shifts)) > 10  # random offsets, not one fixed shift
    # Validation and test are not augmented.
    np.testing.assert_array_equal(collect(plain.test)[0], collect(augmented.test)[0])


def test_training_pipeline_is_reproducible_and_reshuffled_each_epoch():
    a = load_data("digits", batch_size=256, augment="cifar", seed=5)
    b = load_data("digits", batch_size=256, augment="cifar", seed=5)
    epoch_a1 = next(iter(a.train))
    epoch_a2 = next(iter(a.train))
    epoch_b1 = next(iter(b.train))
    np.testing.assert_array_equal(epoch_a1[0], epoch_b1[0])
    np.testing.assert_array_equal(epoch_a1[1], epoch_b1[1])
    assert not np.array_equal(epoch_a1[1], epoch_a2[1])  # new order each epoch


# --------------------------------------------------------------------------
# augment.py


def test_cifar_augment_is_a_zero_padded_random_crop_and_flip():
    rng = np.random.default_rng(0)
    image = rng.integers(1, 256, (32, 32, 3)).astype("uint8")  # no zeros of its own
    seen = set()
    for seed in range(24):
        out = cifar_augment(image, seed=seed)
        assert out.shape == (32, 32, 3) and out.dtype == tf.uint8
        np.testing.assert_array_equal(out, cifar_augment(image, seed=seed))
        found = padded_crop_of(out.numpy(), image)
        assert found is not None, f"seed {seed}: not a padded crop"
        seen.add(found)
        # The pixels it keeps are the original's (same multiset, minus the padding).
        kept = out.numpy()[out.numpy().sum(-1) > 0]
        assert len(kept) >= 28 * 28
    assert {flipped for _, _, flipped in seen} == {False, True}
    assert len({(dy, dx) for dy, dx, _ in seen}) > 8
    assert any((dy, dx) != (0, 0) for dy, dx, _ in seen)


def test_cifar_augment_on_a_batch_draws_per_image():
    image = np.random.default_rng(1).integers(1, 256, (16, 16, 3)).astype("uint8")
    batch = np.repeat(image[None], 8, axis=0)
    out = cifar_augment(batch, seed=[3, 4], padding=2, flip=False).numpy()
    assert out.shape == batch.shape and out.dtype == np.uint8
    found = [padded_crop_of(o, image, padding=2, flips=(False,)) for o in out]
    assert all(f is not None for f in found)
    assert len(set(found)) > 1


def test_imagenet_augment_shapes_determinism_and_randomness():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (48, 64, 3)).astype("uint8")
    outputs = [imagenet_augment(image, 24, seed=s).numpy() for s in range(6)]
    for out in outputs:
        assert out.shape == (24, 24, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(outputs[0], imagenet_augment(image, 24, seed=0))
    assert len({o.tobytes() for o in outputs}) == 6
    # A crop of a flat image is that flat image.
    flat = np.full((40, 30, 3), [10, 120, 240], "uint8")
    np.testing.assert_array_equal(
        imagenet_augment(flat, 16, seed=9), np.full((16, 16, 3), [10, 120, 240])
    )
    batch = imagenet_augment(np.stack([image, image]), 24, seed=1)
    assert batch.shape == (2, 24, 24, 3)
    assert not np.array_equal(batch[0], batch[1])


def test_imagenet_eval_transform_resizes_shorter_side_and_centre_crops():
    rng = np.random.default_rng(3)
    # Shorter side already 32 / 0.875 -> 36: no resize, only the centre crop.
    image = rng.integers(0, 256, (36, 72, 3)).astype("uint8")
    out = imagenet_eval_transform(image, 32)
    assert out.dtype == tf.uint8
    np.testing.assert_array_equal(out, image[2:34, 20:52])
    np.testing.assert_array_equal(out, imagenet_eval_transform(image, 32))  # deterministic
    tall = rng.integers(0, 256, (256, 300, 3)).astype("uint8").transpose(1, 0, 2)
    np.testing.assert_array_equal(imagenet_eval_transform(tall, 224), tall[38:262, 16:240])
    # Bigger images: shorter side to 36 first (keeping the aspect ratio), then the crop.
    big = rng.integers(0, 256, (72, 144, 3)).astype("uint8")
    assert resize_shorter_side(big, 36).shape == (36, 72, 3)
    np.testing.assert_array_equal(
        imagenet_eval_transform(big, 32), resize_shorter_side(big, 36)[2:34, 20:52]
    )
    batch = imagenet_eval_transform(np.stack([image, image[:, ::-1]]), 32)
    np.testing.assert_array_equal(batch[1], image[:, ::-1][2:34, 20:52])


# --------------------------------------------------------------------------
# TensorFlow Datasets (mocked: random examples, no download)


def test_tfds_cifar10():
    with tfds.testing.mock_data(num_examples=20):
        bundle = load_data("tfds:cifar10", batch_size=8, augment="cifar", seed=1)
        plain = load_data("tfds:cifar10", batch_size=8, seed=1)
    assert bundle.name == "tfds:cifar10"
    assert bundle.num_classes == 10 and len(bundle.class_names) == 10
    assert all(isinstance(name, str) for name in bundle.class_names)
    assert bundle.image_shape == (32, 32, 3)
    # cifar10 has no validation split: the last 10% of train.
    assert bundle.splits == {"train": "train[:90%]", "validation": "train[90%:]", "test": "test"}
    assert bundle.train_size == bundle.test_size == 20  # the mock's size
    for role in ("train", "validation", "test"):
        x, y = collect(getattr(bundle, role))
        assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8
        assert y.dtype == np.int32 and y.min() >= 0 and y.max() < 10
    x, _ = collect(plain.train)
    pixels = x.reshape(-1, 3).astype("float64")
    np.testing.assert_allclose(bundle.mean, pixels.mean(0), rtol=1e-9)
    np.testing.assert_allclose(bundle.std, pixels.std(0), rtol=1e-9)
    # The augmented training images are padded crops of the plain ones.
    xa, ya = next(iter(bundle.train))
    xp, yp = next(iter(plain.train))
    np.testing.assert_array_equal(ya, yp)
    assert all(padded_crop_of(a, p) is not None for a, p in zip(xa.numpy(), xp.numpy()))
    assert not np.array_equal(xa, xp)


def test_tfds_mnist_grayscale_becomes_rgb_and_resizes():
    with tfds.testing.mock_data(num_examples=10):
        bundle = load_data("tfds:mnist", batch_size=4, validation_split=0.25)
        resized = load_data("tfds:mnist", image_size=32, batch_size=4, augment="imagenet")
    assert bundle.image_shape == (28, 28, 3) and bundle.num_classes == 10
    assert bundle.splits["train"] == "train[:75%]" and bundle.splits["validation"] == "train[75%:]"
    x, _ = collect(bundle.test)
    assert x.shape == (10, 28, 28, 3)
    np.testing.assert_array_equal(x[..., 0], x[..., 2])
    assert len(set(bundle.mean)) == 1
    assert resized.image_shape == (32, 32, 3)
    for role in ("train", "test"):
        assert next(iter(getattr(resized, role)))[0].shape == (4, 32, 32, 3)


def test_tfds_variable_size_images_need_image_size():
    with tfds.testing.mock_data(num_examples=4):
        with pytest.raises(ValueError, match="image_size"):
            load_data("tfds:oxford_flowers102")
        bundle = load_data("tfds:oxford_flowers102", image_size=24, batch_size=4)
    assert bundle.num_classes == 102
    assert next(iter(bundle.validation))[0].shape == (4, 24, 24, 3)


def test_tfds_split_choice():
    choose = datasets_lib._tfds_split_names
    assert choose({"train", "validation", "test"}, 0.1) == {
        "train": "train", "validation": "validation", "test": "test"
    }
    assert choose({"train", "test"}, 0.15) == {
        "train": "train[:85%]", "validation": "train[85%:]", "test": "test"
    }
    # No test split: never the validation split; None: held out of train.
    assert choose({"train", "validation"}, 0.1) == {"train": "train", "validation": "validation", "test": None}
    assert choose({"train"}, 0.15) == {"train": "train", "validation": None, "test": None}
    with pytest.raises(ValueError, match="no 'train' split"):
        choose({"test"}, 0.1)


class TinyFlowers(tfds.core.GeneratorBasedBuilder):
    """A real tfds data set (prepared into tmp_path, no download) of 60
    distinct 8x8 images in 3 classes (30, 20, 10), with only the splits
    `SPLITS` names: what mock_data cannot stand in for (it serves every split)."""

    VERSION = tfds.core.Version("1.0.0")
    SPLITS = ("train",)

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 3)),
                "label": tfds.features.ClassLabel(names=["a", "b", "c"]),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {name: self._generate_examples(name) for name in self.SPLITS}

    def _generate_examples(self, split):
        offset = 0 if split == "train" else 1000
        for i in range(60 if split == "train" else 9):
            image = np.full((8, 8, 3), 0, np.uint8)
            image.reshape(-1)[: 3] = [(offset + i) % 256, (offset + i) // 256, 7]
            label = (0 if i % 6 < 3 else 1 if i % 6 < 5 else 2) if split == "train" else i % 3
            yield i, {"image": image, "label": label}


class TinyFlowersWithValidation(TinyFlowers):
    SPLITS = ("train", "validation")


@pytest.mark.parametrize("builder, val_from_train", [(TinyFlowers, True), (TinyFlowersWithValidation, False)])
def test_tfds_without_test_split_holds_out_a_stratified_test(tmp_path, builder, val_from_train):
    """The test images are train images that neither the training split nor
    the validation split holds; the classes keep their 3:2:1 proportions."""
    builder(data_dir=str(tmp_path)).download_and_prepare()
    bundle = load_data(f"tfds:{builder.name}", data_dir=str(tmp_path), batch_size=8,
                       validation_split=0.2, test_split=0.2)
    splits = {role: collect(getattr(bundle, role)) for role in ("train", "validation", "test")}
    assert bundle.splits["test"] == "train (20%, stratified)"
    assert bundle.splits["validation"] == ("train (20%, stratified)" if val_from_train else "validation")
    test = keys(*splits["test"])
    assert len(test) == bundle.test_size == 12
    assert np.bincount(splits["test"][1]).tolist() == [6, 4, 2]
    assert not test & keys(*splits["train"]) and not test & keys(*splits["validation"])
    seen = keys(*splits["train"]) + test + (keys(*splits["validation"]) if val_from_train else collections.Counter())
    assert sum(seen.values()) == 60 and len(seen) == 60  # every train image once
    assert bundle.train_size == len(splits["train"][1]) == (36 if val_from_train else 48)


# --------------------------------------------------------------------------
# Image folders


def write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(str(path), tf.io.encode_png(image))


def make_folder(root, classes=("cat", "dog"), per_class=10, shape=(12, 10), seed=0):
    rng = np.random.default_rng(seed)
    images = {}
    for name in classes:
        for i in range(per_class):
            image = rng.integers(0, 256, (*shape, 3)).astype("uint8")
            path = os.path.join(root, name, f"{i:03d}.png")
            write_png(path, image)
            images[path] = image
    return images


def test_folder_split_and_batches(tmp_path):
    make_folder(tmp_path, classes=("b", "a", "c"), per_class=10)
    bundle = load_data(str(tmp_path), image_size=16, batch_size=8, augment="cifar")
    assert bundle.class_names == ["a", "b", "c"]
    assert bundle.image_shape == (16, 16, 3)
    assert (bundle.train_size, bundle.validation_size, bundle.test_size) == (21, 3, 6)
    seen = collections.Counter()
    for role in ("train", "validation", "test"):
        x, y = collect(getattr(bundle, role))
        assert x.shape[1:] == (16, 16, 3) and x.dtype == np.uint8 and y.dtype == np.int32
        assert len(x) == getattr(bundle, f"{role}_size")
        assert set(y) == {0, 1, 2}  # stratified
        if role != "train":
            seen += keys(x, y)
    assert max(seen.values()) == 1  # validation and test do not overlap
    # The default size for folders is 224.
    assert load_data(str(tmp_path), batch_size=4).image_shape == (224, 224, 3)


def test_folder_bad_files_raise_or_are_skipped(tmp_path):
    make_folder(tmp_path, per_class=5)
    # Good files in other formats: a JPEG and a one-channel PNG.
    rng = np.random.default_rng(1)
    tf.io.write_file(
        os.path.join(tmp_path, "cat", "photo.JPEG"),
        tf.io.encode_jpeg(rng.integers(0, 256, (9, 7, 3)).astype("uint8")),
    )
    write_png(os.path.join(tmp_path, "dog", "grey.png"), np.full((5, 6, 1), 90, "uint8"))
    corrupt = os.path.join(tmp_path, "dog", "corrupt.jpg")
    with open(corrupt, "wb") as f:
        f.write(np.random.default_rng(0).bytes(300))
    with pytest.raises(ValueError, match="skip_bad_images") as error:
        load_data(str(tmp_path), image_size=8)
    assert corrupt in str(error.value)
    assert "000.png" not in str(error.value)

    empty = os.path.join(tmp_path, "cat", "empty.png")
    open(empty, "wb").close()
    text = os.path.join(tmp_path, "cat", "notes.txt")
    with open(text, "w") as f:
        f.write("not an image")
    with pytest.raises(ValueError) as error:
        load_data(str(tmp_path), image_size=8)
    for path in (corrupt, empty, text):
        assert path in str(error.value)

    bundle = load_data(str(tmp_path), image_size=8, skip_bad_images=True, batch_size=4)
    assert sorted(bundle.skipped) == sorted([corrupt, empty, text])
    assert bundle.train_size + bundle.validation_size + bundle.test_size == 12
    images = [collect(getattr(bundle, r))[0] for r in ("train", "validation", "test")]
    assert sum(len(x) for x in images) == 12
    grey = np.full((8, 8, 3), 90, "uint8")
    assert sum(int(np.array_equal(x, grey)) for split in images for x in split) == 1


def test_folder_with_train_and_test_subfolders(tmp_path):
    train = make_folder(tmp_path / "train", per_class=5, shape=(8, 8), seed=1)
    test = make_folder(tmp_path / "test", per_class=3, shape=(8, 8), seed=2)
    bundle = load_data(str(tmp_path), image_size=8, batch_size=4, validation_split=0.2)
    assert bundle.class_names == ["cat", "dog"]
    assert (bundle.train_size, bundle.validation_size, bundle.test_size) == (8, 2, 6)
    label = {"cat": 0, "dog": 1}

    def expected(images):
        return collections.Counter(
            (im.tobytes(), label[os.path.basename(os.path.dirname(p))]) for p, im in images.items()
        )

    assert keys(*collect(bundle.test)) == expected(test)
    from_train = keys(*collect(bundle.train)) + keys(*collect(bundle.validation))
    assert from_train == expected(train)
    # A `val/` folder is the validation split.
    val = make_folder(tmp_path / "val", per_class=1, shape=(8, 8), seed=3)
    bundle = load_data(str(tmp_path), image_size=8, batch_size=4)
    assert (bundle.train_size, bundle.validation_size, bundle.test_size) == (10, 2, 6)
    assert keys(*collect(bundle.validation)) == expected(val)


def test_folder_without_test_holds_out_a_stratified_part_of_train(tmp_path):
    """train/ and val/ (or train/ alone): the test split comes from train/,
    stratified, and neither training nor validation sees it; never val/."""
    train = make_folder(tmp_path / "train", per_class=10, shape=(8, 8), seed=1)
    val = make_folder(tmp_path / "val", per_class=2, shape=(8, 8), seed=3)
    label = {"cat": 0, "dog": 1}
    train_keys = collections.Counter((im.tobytes(), label[os.path.basename(os.path.dirname(p))])
                                     for p, im in train.items())
    bundle = load_data(str(tmp_path), image_size=8, batch_size=4, test_split=0.2)
    train_dir = os.path.join(str(tmp_path), "train")
    assert bundle.splits == {"train": f"{train_dir} (80%, stratified)",
                             "validation": os.path.join(str(tmp_path), "val"),
                             "test": f"{train_dir} (20%, stratified)"}
    test_x, test_y = collect(bundle.test)
    assert np.bincount(test_y).tolist() == [2, 2]
    assert keys(*collect(bundle.validation)) == collections.Counter(
        (im.tobytes(), label[os.path.basename(os.path.dirname(p))]) for p, im in val.items())
    assert keys(*collect(bundle.train)) + keys(test_x, test_y) == train_keys
    # A lone train/: validation and test both held out of it.
    os.rename(tmp_path / "val", tmp_path.parent / f"{tmp_path.name}-val")
    bundle = load_data(str(tmp_path), image_size=8, batch_size=4, validation_split=0.1, test_split=0.2)
    assert bundle.class_names == ["cat", "dog"]
    assert (bundle.train_size, bundle.validation_size, bundle.test_size) == (14, 2, 4)
    parts = [keys(*collect(getattr(bundle, role))) for role in ("train", "validation", "test")]
    assert sum(parts, collections.Counter()) == train_keys


def test_folder_mean_std_on_known_images(tmp_path):
    write_png(tmp_path / "train" / "a" / "x.png", np.full((4, 4, 3), [0, 100, 200], "uint8"))
    write_png(tmp_path / "train" / "b" / "y.png", np.full((4, 4, 3), [50, 100, 250], "uint8"))
    write_png(tmp_path / "validation" / "a" / "z.png", np.full((4, 4, 3), 255, "uint8"))
    write_png(tmp_path / "test" / "b" / "w.png", np.full((4, 4, 3), 7, "uint8"))
    bundle = load_data(str(tmp_path), image_size=4, batch_size=2)
    np.testing.assert_allclose(bundle.mean, [25, 100, 225])
    np.testing.assert_allclose(bundle.std, [25, 0, 25])
    x, y = collect(bundle.test)
    np.testing.assert_array_equal(x, np.full((1, 4, 4, 3), 7))
    np.testing.assert_array_equal(y, [1])


def test_folder_without_cache_yields_the_same_images(tmp_path, monkeypatch):
    make_folder(tmp_path, per_class=6, shape=(9, 11))
    cached = load_data(str(tmp_path), image_size=8, batch_size=4, augment="imagenet", seed=2)
    monkeypatch.setattr(datasets_lib, "CACHE_LIMIT_BYTES", 0)
    streamed = load_data(str(tmp_path), image_size=8, batch_size=4, augment="imagenet", seed=2)
    for role in ("validation", "test"):
        a, b = collect(getattr(cached, role)), collect(getattr(streamed, role))
        np.testing.assert_array_equal(a[0], b[0])
    x, y = collect(streamed.train)
    assert x.shape == (cached.train_size, 8, 8, 3)
    assert sorted(y) == sorted(collect(cached.train)[1])


# --------------------------------------------------------------------------
# Argument errors


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"data": "no-such-data"}, "data"),
        ({"data": 3}, "data"),
        ({"data": "tfds:"}, "data"),
        ({"image_size": 0}, "image_size"),
        ({"image_size": 2.5}, "image_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": "64"}, "batch_size"),
        ({"augment": "autoaugment"}, "augment"),
        ({"validation_split": 0}, "validation_split"),
        ({"validation_split": 1.0}, "validation_split"),
        ({"validation_split": "0.1"}, "validation_split"),
        ({"test_split": 0}, "test_split"),
        ({"validation_split": 0.5, "test_split": 0.5}, "test_split"),
        ({"seed": "zero"}, "seed"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(kwargs, name):
    with pytest.raises(ValueError) as error:
        load_data(**kwargs)
    message = str(error.value)
    assert f"`{name}`" in message
    assert f"{name}={kwargs[name]!r}" in message


def test_data_error_says_what_is_allowed(tmp_path):
    with pytest.raises(ValueError, match="'digits'.*'tfds:NAME'.*folder"):
        load_data(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_data(str(tmp_path))
