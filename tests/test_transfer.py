"""`train(weights=...)` and `keras-resnets train --weights`: transfer learning.

The pretrained weights are torchvision's own file: a ResNet-18 at 1/8 width
with random weights and batch-norm statistics, recorded by torchvision
(tests/references/make.py; its loading is checked against torchvision's
outputs in test_references.py). It is served by a local HTTP server for the
named sources, as in test_weights.py; nothing is downloaded. Small: narrow
models, 32 px (16 px digits), one or two epochs.
"""

import dataclasses
import hashlib
import http.server
import json
import pathlib
import re
import shutil
import threading
import warnings

import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets.cli import main as cli_main
from keras_resnets.data import load_data
from keras_resnets.layers import ImagePreprocessing
from keras_resnets.training.transfer import continued_model, pretrained_model
from keras_resnets.weights import pretrained as pretrained_lib
from keras_resnets.weights import preprocess_input

from helpers import run_layer_test, write_digit_folder

REFERENCE = pathlib.Path(__file__).parent / "references" / "torchvision_resnet18.safetensors"
NARROW = dict(width_multiplier=1 / 8)  # the reference's width
QUICK = dict(batch_size=16, verbose=0, precision="float32")  # (images: 32 px, digits 16 px)


def _colour_folder(root, classes=("red", "green", "blue"), per_class=10, size=32):
    """An image folder whose class is the dominant colour of its images."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            image[..., c] += 180
            Image.fromarray(image).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """torchvision's narrow ResNet-18 file (standing in for ImageNet's
    weights), copied to a folder of its own, and the keras_resnets model
    that file loads onto; (model, path)."""
    path = tmp_path_factory.mktemp("ckpt") / "resnet18-narrow.safetensors"
    shutil.copyfile(REFERENCE, path)
    model = keras_resnets.get_model("resnet18", input_shape=(32, 32, 3), classes=10, weights=str(path), **NARROW)
    return model, path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return _colour_folder(tmp_path_factory.mktemp("photos") / "photos")


def _trunk(model):
    """{layer name: weights} of every layer but the classifier and the
    input normalization, of a model or a model's layers by name."""
    skip = {"predictions", "normalize", "image"}
    return {layer.name: [np.asarray(w) for w in layer.get_weights()]
            for layer in model.layers if layer.name not in skip and layer.get_weights()}


def _assert_same_trunk(ours, reference):
    expected = _trunk(reference)
    found = _trunk(ours)
    assert set(found) == set(expected)
    for name, weights in expected.items():
        for a, b in zip(found[name], weights):
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_image_preprocessing_is_preprocess_input(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype("float32")
    for mode in ("torch", "caffe", "tf"):
        ours = run_layer_test(ImagePreprocessing(mode), images, tmp_path, expected_shape=(2, 8, 8, 3))
        expected = keras.applications.imagenet_utils.preprocess_input(images.copy(), mode=mode)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), expected, rtol=1e-6, atol=1e-4)
    with pytest.raises(ValueError, match=r"`mode`.*received mode='bgr'"):
        ImagePreprocessing("bgr")


def test_pretrained_model_loads_the_trunk_and_a_new_head(checkpoint, photos):
    reference, path = checkpoint
    bundle = load_data(str(photos), image_size=32, batch_size=8)
    net, mode = pretrained_model("resnet18", str(path), bundle, **NARROW)
    # Before any step: every weight but the classifier's is the checkpoint's.
    _assert_same_trunk(net, reference)
    assert mode == "torch" and net.get_layer("normalize").mode == "torch"
    assert net.output_shape == (None, 3) and net.inputs[0].dtype == "uint8"
    # The images are normalized as torchvision's were: the trunk of `net` on
    # uint8 images is the reference's on preprocess_input's output.
    images = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    trunk = keras.Model(net.inputs, net.get_layer("avg_pool").output)
    expected = keras.Model(reference.inputs, reference.get_layer("avg_pool").output)(
        preprocess_input(images, weights="torchvision:IMAGENET1K_V1"), training=False)
    np.testing.assert_allclose(trunk(images, training=False), expected, atol=1e-4)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def local_source(checkpoint, monkeypatch, tmp_path):
    """torchvision:IMAGENET1K_V1 of resnet18 served by a local HTTP server
    (the checkpoint fixture's file, its hash pinned), with an empty cache."""
    _, path = checkpoint
    folder = str(path.parent)
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        lambda *a: _QuietHandler(*a, directory=folder))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    key = ("resnet18", "torchvision:IMAGENET1K_V1")
    source = dataclasses.replace(
        pretrained_lib.SOURCES[key], url=f"http://127.0.0.1:{httpd.server_address[1]}/{path.name}",
        file_hash=hashlib.sha256(path.read_bytes()).hexdigest())
    monkeypatch.setitem(pretrained_lib.SOURCES, key, source)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    yield source
    httpd.shutdown()
    httpd.server_close()


def test_train_from_a_named_source(checkpoint, photos, local_source, tmp_path):
    reference, _ = checkpoint
    net, summary = keras_resnets.train(
        "resnet18", data=str(photos), weights="torchvision:IMAGENET1K_V1", epochs=2, image_size=32,
        output=str(tmp_path), **QUICK, **NARROW)
    assert summary["recipe"] == "finetune" and summary["starting_point"] == "source"
    assert summary["weights"] == "torchvision:IMAGENET1K_V1" and summary["normalization"] == "torch"
    assert net.output_shape == (None, 3)
    assert summary["class_names"] == ["blue", "green", "red"] == list(net.class_names)
    # The finetune recipe froze batch norm: the checkpoint's statistics stay.
    for name in ("stem", "stage4_block2"):
        np.testing.assert_array_equal(net.get_layer(name).norms[0].moving_mean.numpy(),
                                      reference.get_layer(name).norms[0].moving_mean.numpy())
    # The saved model takes raw uint8 images, normalizes them itself and
    # knows its classes.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saved = keras.saving.load_model(tmp_path / "resnet18-photos" / "model.keras")
    assert saved.inputs[0].dtype == "uint8" and list(saved.class_names) == ["blue", "green", "red"]
    # Its batch norm comes back frozen, so the saved optimizer state fits
    # (Keras dropped it, with a warning, when the blocks' batch norm came
    # back trainable); a run that starts from the file trains what its recipe says.
    assert not [str(w.message) for w in caught if "optimizer" in str(w.message)]
    norms = [l for l in saved._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
    assert len(norms) == 20 and not any(n.trainable for n in norms)
    assert len(saved.trainable_variables) == len(net.trainable_variables) == 22  # 20 convs, the classifier
    bundle = load_data(str(photos), image_size=32, batch_size=8)
    again, _, _ = continued_model(str(tmp_path / "resnet18-photos" / "model.keras"), bundle)
    assert all(n.trainable for n in again._flatten_layers() if isinstance(n, keras.layers.BatchNormalization))
    images = np.random.default_rng(3).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    np.testing.assert_allclose(saved.predict(images, verbose=0), net.predict(images, verbose=0), atol=1e-5)


def test_command_line_checkpoint_file_and_its_errors(checkpoint, photos, tmp_path, capsys):
    _, path = checkpoint
    # A checkpoint of a narrow network on a full-width resnet18: the file's
    # shapes do not fit, said before any training.
    code = cli_main(["train", "--model", "resnet18", "--weights", str(path), "--data", str(photos),
                     "--epochs", "1", "--image-size", "32", "--output", str(tmp_path), "--verbose", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "Cannot load the torchvision or timm ResNet checkpoint onto model 'resnet18'" in err
    assert "conv1.weight: checkpoint shape (8, 3, 7, 7), model shape (64, 3, 7, 7)" in err
    assert not (tmp_path / "resnet18-photos" / "model.keras").exists()
    for argv, expected in [
        (["--model", "resnet18", "--weights", "timm:nonesuch.tag"], r"`--weights`.*'timm:nonesuch.tag'"),
        (["--model", "resnet18", "--weights", str(tmp_path / "missing.pth")], r"`--weights`.*missing\.pth"),
        (["--model", "resnet32", "--weights", "imagenet"], r"`--weights`.*'imagenet'.*'resnet32'"),
    ]:
        code = cli_main(["train", "--data", str(photos), "--output", str(tmp_path), *argv])
        assert code == 2
        assert re.search(expected, capsys.readouterr().err), argv


def test_continuing_a_model_of_any_size_fixes_the_data_size(tmp_path):
    """A `.keras` model taking any image size (a converted keras-hub model, a
    ModelSpec of one's own) continues at the data's size: its run's model
    takes those images, as a run from scratch's does, so that `predict` and
    `export` read the side from it (they fell back to 224 px before)."""
    images = keras.Input((None, None, 3), dtype="uint8", name="image")
    x = ImagePreprocessing("torch", name="normalize")(images)
    model = keras_resnets.ResNet18(input_tensor=x, classes=10, width_multiplier=0.25)
    model.save(tmp_path / "any_size.keras")
    bundle = load_data("digits", image_size=16, batch_size=8)
    net, kept, normalization = continued_model(str(tmp_path / "any_size.keras"), bundle)
    assert kept and normalization == "earlier model" and tuple(net.inputs[0].shape) == (None, 16, 16, 3)
    x = next(iter(bundle.test))[0].numpy()
    np.testing.assert_allclose(net.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_continuing_a_model_that_normalizes_nothing_adds_the_data_normalization(tmp_path):
    """`keras_resnets.get_model(...)` saved as it is takes float images and
    normalizes nothing: `train(weights=...)` puts the data's mean and std in
    front of it, as a run from scratch does. (It received pixel values of
    0-255 before, and its loss became NaN in the first epoch.)"""
    plain = keras_resnets.get_model("resnet20", input_shape=(16, 16, 3), classes=3)
    plain.save(tmp_path / "plain.keras")
    digits = tmp_path / "digits"
    write_digit_folder(digits, digits=range(3), size=16, limit=30)
    bundle = load_data(str(digits), image_size=16, batch_size=8)
    net, kept, normalization = continued_model(str(tmp_path / "plain.keras"), bundle)
    assert kept and normalization == "data"
    assert net.inputs[0].dtype == "uint8" and isinstance(net.get_layer("normalize"), keras.layers.Normalization)
    assert net.pyramid_outputs.keys() == plain.pyramid_outputs.keys()
    x = next(iter(bundle.test))[0].numpy()
    standardized = (x.astype("float32") - np.float32(bundle.mean)) / np.float32(bundle.std)
    np.testing.assert_allclose(net.predict(x, verbose=0), plain.predict(standardized, verbose=0), atol=1e-5)
    # A run from it trains, and its model takes raw images as every run's does.
    # (the finetune recipe: its batch norm frozen at the initial statistics)
    trained, summary = keras_resnets.train(weights=str(tmp_path / "plain.keras"), data=str(digits), epochs=1,
                                           image_size=16, output=str(tmp_path / "runs"), **QUICK)
    assert summary["normalization"] == "data" and summary["recipe"] == "finetune"
    assert np.isfinite(summary["test_loss"])
    assert trained.inputs[0].dtype == "uint8"


def test_continue_an_earlier_run(tmp_path):
    digits = tmp_path / "digits"
    write_digit_folder(digits / "first", digits=range(3), size=16, limit=30)
    write_digit_folder(digits / "same", digits=range(3), size=16, limit=30)
    write_digit_folder(digits / "other", digits=range(3, 6), size=16, limit=30)
    first, summary = keras_resnets.train(data=str(digits / "first"), epochs=1, image_size=16,
                                         output=str(tmp_path / "runs"), **QUICK)
    assert summary["starting_point"] == "random" and summary["recipe"] == "cifar"
    saved = tmp_path / "runs" / "resnet20-first" / "model.keras"
    # The same classes: the model goes on, its head kept.
    same = load_data(str(digits / "same"), image_size=16, batch_size=8)
    net, kept, normalization = continued_model(str(saved), same)
    assert kept and normalization == "earlier model"
    np.testing.assert_array_equal(net.get_layer("predictions").kernel.numpy(),
                                  first.get_layer("predictions").kernel.numpy())
    # Other classes: a new head, everything else (normalization too) the
    # earlier model's.
    other = load_data(str(digits / "other"), image_size=16, batch_size=8)
    net, kept, _ = continued_model(str(saved), other)
    assert not kept and net.output_shape == (None, 3)
    assert not np.array_equal(net.get_layer("predictions").kernel.numpy(),
                              first.get_layer("predictions").kernel.numpy())
    for layer in ("normalize", "stem", "stage3_block3"):
        for a, b in zip(net.get_layer(layer).get_weights(), first.get_layer(layer).get_weights()):
            np.testing.assert_array_equal(a, b)
    # The command line: the model is the file's, the recipe finetune.
    code = cli_main(["train", "--weights", str(saved), "--data", str(digits / "other"), "--epochs", "2",
                     "--batch-size", "16", "--output", str(tmp_path / "runs"), "--verbose", "0"])
    assert code == 0
    with open(tmp_path / "runs" / "resnet20-other" / "summary.json") as f:
        summary = json.load(f)
    assert summary["model"] == "resnet20" and summary["recipe"] == "finetune"
    assert summary["starting_point"] == "keras_model" and summary["class_names"] == ["3", "4", "5"]
    # A model that is not the file's is refused, naming both.
    code = cli_main(["train", "--model", "resnet32", "--weights", str(saved), "--data", str(digits / "other"),
                     "--output", str(tmp_path / "runs")])
    assert code == 2


def test_linear_probe_fits_the_head_on_frozen_features():
    """The finetune recipe's first phase: the head alone, a logistic
    regression on the frozen network's features of the unaugmented images."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from keras_resnets.training.transfer import fit_linear_probe, with_preprocessing

    keras.utils.set_random_seed(0)
    bundle = load_data("digits", image_size=16, batch_size=64)
    net = with_preprocessing("resnet20", bundle)
    head = net.get_layer("predictions")
    trunk = keras.Model(net.inputs, head.input)
    frozen = [np.array(w) for w in trunk.weights]
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in bundle.train_unaugmented])
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert len(images) == bundle.train_size
    features = np.asarray(trunk(images, training=False))
    chance = np.mean(np.argmax(net.predict(images, verbose=0), -1) == labels)

    accuracy = fit_linear_probe(net, bundle.train_unaugmented, seed=0)

    # The trunk is untouched, and the network is now the probe: the softmax of
    # the features through the fitted kernel and bias, as accurate as it says.
    assert all(np.array_equal(a, np.array(w)) for a, w in zip(frozen, trunk.weights))
    logits = features @ np.asarray(head.kernel) + np.asarray(head.bias)
    probabilities = net.predict(images, verbose=0)
    np.testing.assert_allclose(probabilities, keras.ops.convert_to_numpy(keras.ops.softmax(logits)),
                               atol=1e-5)
    assert np.mean(np.argmax(probabilities, -1) == labels) == pytest.approx(accuracy, abs=1e-6)
    # Random features, but a linear classifier on them does far better than
    # the random head, and about as well as scikit-learn's logistic regression
    # on the same standardized features (0.98 measured; on the raw features
    # L-BFGS took 2,000 iterations and 21 CPU-seconds to reach 0.97).
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    reference = reference.fit(features, labels).score(features, labels)
    assert chance < 0.3 and accuracy > 0.9 * reference, (chance, accuracy, reference)


def test_linear_probe_holds_a_stratified_sample_of_bounded_size():
    """The probe keeps at most `max_images` images' features, an equal share
    of each class, runs the trunk on those alone, and stops reading once
    every class has its share (an ImageNet folder's features would be 10 GB)."""
    import tensorflow as tf

    from keras_resnets.training.transfer import PROBE_MAX_IMAGES, probe_features

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 4000).astype("int32")  # 4 classes, about 1,000 images each
    images = np.arange(4000, dtype="float32")[:, None]  # an image is its index
    seen = []

    def trunk(batch, training):
        assert training is False
        seen.append(np.asarray(batch)[:, 0].astype(int))
        return np.concatenate([np.asarray(batch), np.asarray(batch) * 2], axis=1)

    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(64)
    features, kept = probe_features(trunk, data, num_classes=4, max_images=40)

    assert np.bincount(kept, minlength=4).tolist() == [10, 10, 10, 10]
    index = features[:, 0].astype(int)
    np.testing.assert_array_equal(features[:, 1], 2 * features[:, 0])
    np.testing.assert_array_equal(labels[index], kept)  # each feature row with its own label
    for c in range(4):  # the first 10 of each class, in the data's order
        np.testing.assert_array_equal(np.sort(index[kept == c]), np.flatnonzero(labels == c)[:10])
    seen = np.concatenate(seen)
    np.testing.assert_array_equal(np.sort(seen), np.sort(index))  # only the kept images went through
    assert seen.max() < 64 * 2  # reading stopped after the batch that filled the last class
    # The default share: all of the digits (10 classes, 1,257 training images); 20 an ImageNet class.
    assert -(-PROBE_MAX_IMAGES // 10) >= 1257 and -(-PROBE_MAX_IMAGES // 1000) == 20


def test_probe_batches_cover_every_feature_once_a_pass_in_orders_of_their_own():
    """The linear probe's steps, one `fit` epoch: `epochs` passes over the
    features, each row once a pass (the last batch of a pass short, as
    `fit(batch_size=...)` has it), each pass in another seeded order."""
    from keras_resnets.training.transfer import _ProbeBatches

    features = np.arange(10, dtype="float32")[:, None] * np.ones((1, 3), "float32")
    labels = np.arange(10) % 3
    batches = _ProbeBatches(features, labels, batch=4, epochs=3, seed=7)
    assert len(batches) == 9  # 3 passes of ceil(10 / 4) batches
    passes = []
    for start in range(0, 9, 3):
        rows = [batches[i] for i in range(start, start + 3)]
        assert [len(x) for x, _ in rows] == [4, 4, 2]
        order = np.concatenate([x[:, 0] for x, _ in rows]).astype(int)
        np.testing.assert_array_equal(np.concatenate([y for _, y in rows]), order % 3)  # rows stay paired
        assert sorted(order) == list(range(10))
        passes.append(tuple(order))
    assert len(set(passes)) == 3
    again = _ProbeBatches(features, labels, batch=4, epochs=3, seed=7)
    np.testing.assert_array_equal(again[4][0], batches[4][0])  # seeded: the same in another run
