"""`keras_resnets.predict` and `keras-resnets predict`: a trained model's
classes, or ImageNet's with pretrained weights, of image files and folders.

A digits model is trained here for one epoch (its accuracy does not matter:
what `predict` says is checked against what Keras computes on the same
images); the pretrained weights are a generated checkpoint (no download).
"""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file

import keras_resnets
from keras_resnets.cli import main as cli_main
from keras_resnets.data.augment import imagenet_eval_transform, resize_image
from keras_resnets.weights import preprocess_input
from keras_resnets.weights.layouts import to_state_dict
from keras_resnets.weights.preprocessing import imagenet_classes

from helpers import randomize_batchnorm, write_digit_folder


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A resnet20 trained on a 16 px digit folder: (model path, folder)."""
    root = tmp_path_factory.mktemp("digits")
    write_digit_folder(root / "digits", size=16, limit=12)
    keras_resnets.train(data=str(root / "digits"), epochs=1, image_size=16, batch_size=32,
                        output=str(root / "runs"), verbose=0, precision="float32")
    return root / "runs" / "resnet20-digits" / "model.keras", root / "digits"


def _folder_images(folder):
    """(paths, uint8 images, labels) of a digit folder, read with Pillow."""
    paths = sorted(str(p) for p in folder.rglob("*.png"))
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    labels = np.array([int(os.path.basename(os.path.dirname(p))) for p in paths])
    return paths, images, labels


def test_predict_command_agrees_with_keras(digits_run, capsys):
    path, folder = digits_run
    code = cli_main(["predict", str(path), str(folder), "--format", "json", "--top", "3"])
    assert code == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    paths, images, labels = _folder_images(folder)
    assert [r["image"] for r in results] == paths
    model = keras.saving.load_model(path)
    assert list(model.class_names) == [str(d) for d in range(10)]
    # Top-1 accuracy: what the command says == Keras' accuracy on the images.
    predicted = np.array([int(r["top"][0]["class"]) for r in results])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _, accuracy = model.evaluate(images, labels, verbose=0)
    assert np.mean(predicted == labels) == pytest.approx(accuracy, abs=1e-6)
    # The probabilities are the model's, best first.
    probabilities = model.predict(images, verbose=0)
    for r, row in zip(results, probabilities):
        assert [e["index"] for e in r["top"]] == list(np.argsort(-row, kind="stable")[:3])
        np.testing.assert_allclose([e["probability"] for e in r["top"]], np.sort(row)[::-1][:3], atol=1e-5)


def test_predict_table_other_sizes_and_arrays(digits_run, tmp_path, capsys):
    path, folder = digits_run
    # Images of another size and format are resized as the evaluation data
    # was (to the square, antialiased).
    big = tmp_path / "big"
    big.mkdir()
    _, images, _ = _folder_images(folder)
    for i in range(3):
        Image.fromarray(np.kron(images[i * 40], np.ones((3, 2, 1), "uint8"))).save(big / f"{i}.jpg", quality=95)
    code = cli_main(["predict", str(path), str(big / "0.jpg"), str(big), "--top", "2"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith(str(big / "0.jpg")) and lines[1].startswith(str(big / "0.jpg"))
    model = keras.saving.load_model(path)
    decoded = np.stack([np.asarray(Image.open(big / f"{i}.jpg").convert("RGB")) for i in range(3)])
    expected = model.predict(resize_image(decoded, 16), verbose=0)
    results = keras_resnets.predict(str(path), str(big), top=1)
    assert [r["top"][0]["index"] for r in results] == list(expected.argmax(-1))
    np.testing.assert_allclose([r["top"][0]["probability"] for r in results], expected.max(-1), atol=1e-5)
    # An array of images, and the model itself.
    from_array = keras_resnets.predict(model, images[:2], top=10)
    assert [r["image"] for r in from_array] == [0, 1]
    assert sum(e["probability"] for e in from_array[0]["top"]) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match=r"`top` must be an integer from 1 to the model's 10 classes; received top=11"):
        keras_resnets.predict(model, images[:1], top=11)


def test_predict_imagenet_weights_names_imagenet_classes(tmp_path, capsys):
    reference = keras_resnets.ResNet18(classifier_activation=None)
    randomize_batchnorm(reference)
    checkpoint = tmp_path / "resnet18.safetensors"
    save_file(to_state_dict(reference, "torchvision"), str(checkpoint))
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    code = cli_main(["predict", "resnet18", str(tmp_path / "photo.png"), "--weights", str(checkpoint),
                     "--image-size", "32", "--top", "2", "--format", "json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    # ImageNet's evaluation transform, torchvision's normalization, the
    # checkpoint's classifier: the same classes as the reference model.
    x = preprocess_input(imagenet_eval_transform(image, 32).numpy()[None], weights="torchvision:IMAGENET1K_V1")
    logits = keras.ops.convert_to_numpy(reference(x, training=False))[0]
    best = np.argsort(-logits, kind="stable")[:2]
    classes = imagenet_classes()
    assert [e["class"] for e in result["top"]] == [classes[i][1] for i in best]
    assert [e["wordnet_id"] for e in result["top"]] == [classes[i][0] for i in best]


@pytest.mark.parametrize("argv, expected", [
    (["missing.keras", "x.png"], "`MODEL`"),
    (["resnet5O", "x.png"], "'resnet5O'"),
    (["resnet18", "nowhere.png"], "IMAGE='nowhere.png'"),
    (["resnet18", "empty"], "IMAGE='empty'"),
    (["resnet18", "x.png", "--weights", "timm:nonesuch.tag"], "`--weights`"),
    (["resnet18", "x.png", "--top", "0"], "--top"),
    (["resnet18", "x.png", "--format", "xml"], "--format"),
])
def test_predict_bad_input(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), "uint8")).save(tmp_path / "x.png")
    try:
        code = cli_main(["predict", *argv])
    except SystemExit as e:  # argparse's own checks
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-resnets predict: error: ") and expected in err, err
