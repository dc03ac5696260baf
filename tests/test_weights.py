"""Pretrained weights: downloads against a real HTTP server, files, bad input,
preprocessing and class names, and the fine-tuning example.

Checkpoints are generated here from keras_resnets models (`to_state_dict`
writes them in the checkpoint's names and PyTorch's axis order); the parity
with torchvision's and timm's own models is in test_torchvision_parity.py.
"""

import dataclasses
import hashlib
import http.server
import os
import pathlib
import runpy
import socket
import sys
import threading

import keras
import numpy as np
import pytest
from safetensors.numpy import save_file

import keras_resnets
from keras_resnets.weights import WeightSource, fetch, load_torchvision, preprocess_input
from keras_resnets.weights.layouts import to_state_dict

from helpers import randomize_batchnorm, write_digit_folder

TINY = dict(width_multiplier=0.25, input_shape=(32, 32, 3), classifier_activation=None)
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _tiny(name="resnet18", **kwargs):
    return keras_resnets.get_model(name, **{**TINY, **kwargs})


def _images(shape=(2, 32, 32, 3)):
    return np.random.default_rng(1).uniform(-1, 1, shape).astype("float32")


def _outputs(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A narrow resnet18 with random weights and BN state, as a torchvision
    .safetensors checkpoint; (model, path, sha256)."""
    model = _tiny()
    randomize_batchnorm(model)
    path = tmp_path_factory.mktemp("ckpt") / "tiny18.safetensors"
    save_file(to_state_dict(model, "torchvision"), str(path))
    return model, path, hashlib.sha256(path.read_bytes()).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; under /truncated/ it promises the whole file and
    sends half of it, as a dropped connection does."""

    def do_GET(self):
        if not self.path.startswith("/truncated/"):
            return super().do_GET()
        data = (pathlib.Path(self.directory) / self.path[len("/truncated/"):]).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(reference):
    folder = str(reference[1].parent)
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Handler(*a, directory=folder)
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty Keras cache for this test."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path / "keras_home" / "models"


def _source(url, file_hash, **kwargs):
    return WeightSource("test:tiny", "resnet18", url, file_hash, **kwargs)


def test_download_verify_cache_and_load(reference, server, cache):
    model, path, sha = reference
    source = _source(f"{server}/tiny18.safetensors", sha[:8])  # a torchvision-style prefix
    loaded = keras_resnets.ResNet18(weights=source, **TINY)
    x = _images()
    np.testing.assert_allclose(_outputs(loaded, x), _outputs(model, x), rtol=0, atol=1e-5)
    assert (cache / "tiny18.safetensors").read_bytes() == path.read_bytes()
    # A file spoiled in the cache is fetched again; a good one is reused
    # (the same bytes, whatever the algorithm of the pin).
    (cache / "tiny18.safetensors").write_bytes(b"spoiled")
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    assert fetch(_source(source.url, md5, hash_algorithm="md5")) == str(cache / "tiny18.safetensors")
    assert (cache / "tiny18.safetensors").read_bytes() == path.read_bytes()


def test_download_of_a_timm_variant_gives_timms_outputs(reference, server, cache):
    """Issue 31's sources go through the same download path: timm's own
    SE-ResNeXt state dict (the recorded reference of tests/references, deep
    stem and average-pool shortcut, 4 groups of 2 channels, 1/16 width),
    served on 127.0.0.1 and pinned by its SHA-256 prefix, loads onto
    `seresnext50_32x4d` and gives timm's recorded logits."""
    import json
    import shutil

    here = pathlib.Path(__file__).parent / "references"
    entry = json.loads((here / "manifest.json").read_text())["references"]["timm_seresnext50d"]
    shutil.copy(here / "timm_seresnext50d.safetensors", reference[1].parent / "se.safetensors")
    source = WeightSource("test:se", "seresnext50_32x4d", f"{server}/se.safetensors", entry["sha256"][:8],
                          layout="timm", build={"stem": "deep", "shortcut": "D"}, classes=10)
    model = keras_resnets.get_model("seresnext50_32x4d", weights=source, classes=10, classifier_activation=None,
                                    groups=4, width_per_group=32, width_multiplier=entry["scale"])
    assert (cache / "se.safetensors").exists()
    with np.load(here / "timm_seresnext50d.npz") as recorded:
        images, expected = recorded["images_35"], recorded["logits_35"]
    logits = keras.ops.convert_to_numpy(model(images.transpose(0, 2, 3, 1), training=False))
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_hash_mismatch_leaves_nothing(server, cache):
    source = _source(f"{server}/tiny18.safetensors", "0" * 64)
    with pytest.raises(ValueError, match=r"has sha256 [0-9a-f]{64}, not the pinned 0{64}; it was deleted"):
        keras_resnets.ResNet18(weights=source, **TINY)
    assert not list(cache.iterdir())


def test_server_down_names_url_file_and_folder(cache):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/tiny18.safetensors"
    with pytest.raises(ConnectionError) as info:
        keras_resnets.ResNet18(weights=_source(url, "ab" * 32), **TINY)
    message = str(info.value)
    assert f"could not download {url}" in message
    assert f"place it as {cache / 'tiny18.safetensors'} (in the folder {cache})" in message
    assert not cache.exists() or not list(cache.iterdir())


def test_truncated_download_leaves_nothing(reference, server, cache):
    source = _source(f"{server}/truncated/tiny18.safetensors", reference[2])
    with pytest.raises(ConnectionError, match="retrieval incomplete"):
        fetch(source)
    assert not list(cache.iterdir())


def test_unpinned_source_is_not_downloaded(server, cache):
    with pytest.raises(ValueError, match=r"no hash of .* is known.*weights='/path/to/tiny18.safetensors'"):
        fetch(_source(f"{server}/tiny18.safetensors", None))
    assert not cache.exists()


# --- local files -----------------------------------------------------------


def test_file_loads_headless_and_refuses_other_classes(reference):
    model, path, _ = reference
    backbone = _tiny(include_top=False, pooling="avg", weights=str(path))
    features = keras.Model(model.input, model.get_layer("avg_pool").output)
    x = _images()
    np.testing.assert_allclose(_outputs(backbone, x), _outputs(features, x), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match=r"model has classes=10, the checkpoint 1000.*include_top=False"):
        _tiny(classes=10, weights=str(path))


def test_checkpoint_of_another_architecture_is_refused(reference, tmp_path):
    path = tmp_path / "tiny34.safetensors"
    save_file(to_state_dict(_tiny("resnet34"), "torchvision"), str(path))
    model = _tiny()
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(ValueError, match=r"Unexpected keys \(80\): \['layer1.2.bn1.bias'.* and 50 more"):
        load_torchvision(model, path)
    for w, old in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), old)


def test_keras_file_that_does_not_fit_changes_nothing(tmp_path):
    from keras_resnets.weights import load_weights

    path = tmp_path / "ten.weights.h5"
    _tiny(classes=10).save_weights(path)
    model = _tiny(classes=5)  # every layer but the head fits
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(ValueError, match=r"weights='.*ten.weights.h5': this Keras weights file does not fit"):
        load_weights(model, str(path))
    for w, old in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), old)


@pytest.mark.parametrize("suffix, match", [
    (".safetensors", "not a readable .safetensors file"),
    (".h5", "not a readable HDF5 file"),
])
def test_truncated_file_is_refused(reference, tmp_path, suffix, match):
    import h5py

    if suffix == ".h5":
        with h5py.File(tmp_path / "full.h5", "w") as f:  # keras.applications' layout
            f.attrs["layer_names"] = [b"conv1_conv"]
            f.create_group("conv1_conv").create_dataset("conv1_conv/kernel:0", data=np.ones((7, 7, 3, 64)))
    full = reference[1] if suffix == ".safetensors" else tmp_path / "full.h5"
    data = full.read_bytes()
    path = tmp_path / f"truncated{suffix}"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=match):
        _tiny(weights=str(path))


def test_unknown_file_type_is_refused(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"file '.*weights.npz' has an unknown type. Allowed: .weights.h5"):
        _tiny(weights=str(path))


def test_pickle_refused_by_weights_only(tmp_path):
    if "tensorflow" in sys.modules:
        sys.modules.setdefault("triton", None)  # see test_torchvision_parity.py
    torch = pytest.importorskip("torch", reason="torch is not installed; the .pth reader needs it")
    path = tmp_path / "pickled.pth"
    torch.save({"conv1.weight": torch.zeros(1), "callback": _Handler}, path)
    with pytest.raises(ValueError, match=r"torch.load\(weights_only=True\) refused '.*pickled.pth'"):
        _tiny(weights=str(path))


def test_keras_applications_weights_file_without_top(tmp_path):
    """keras.applications' no-top file layout (the file that
    weights="keras:imagenet", include_top=False downloads)."""
    source = keras.applications.ResNet50(
        weights=None, include_top=False, pooling="avg", input_shape=(64, 64, 3)
    )
    randomize_batchnorm(source)
    import h5py

    source.save(tmp_path / "model.h5")  # Keras' HDF5 model file: the weights in "model_weights"
    # The downloads are save_weights files: the same groups at the root.
    with h5py.File(tmp_path / "model.h5", "r") as f, h5py.File(tmp_path / "notop.h5", "w") as g:
        for key, value in f["model_weights"].attrs.items():
            g.attrs[key] = value
        for name in f["model_weights"]:
            f.copy(f["model_weights"][name], g, name=name)
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = _outputs(source, x)
    assert np.abs(expected).max() > 1e-3
    # The file says it is keras.applications': `layout` may be left out.
    for path, layout in (("model.h5", {"layout": "keras"}), ("notop.h5", {})):
        ours = keras_resnets.ResNet50(
            include_top=False, pooling="avg", input_shape=(64, 64, 3), weights=str(tmp_path / path), **layout
        )
        np.testing.assert_allclose(_outputs(ours, x), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name, build, layout, error", [
    ("resnet50v2", {"layout": "torchvision"}, "timm_resnetv2",
     r"does not have the architecture of a timm ResNetV2 checkpoint.*layout='torchvision'"),
    ("resnet18", {"stem": "deep", "shortcut": "D"}, "timm",
     r"(?s)Cannot load the torchvision or timm ResNet checkpoint.*Missing keys \(1\): \['conv1.weight'\].*stem='deep', shortcut='D'"),
])
def test_weights_file_builds_the_model_it_fits(tmp_path, name, build, layout, error):
    """A timm ResNetV2 state dict builds `layout="torchvision"` (not the v2
    default "keras"), a timm "d" one the deep stem and average-pool
    shortcut, with `layout`, `stem`, `shortcut` left out; one given that
    contradicts the file keeps the layout's error."""
    source = _tiny(name, **build)
    randomize_batchnorm(source)
    path = tmp_path / f"{name}.safetensors"
    save_file(to_state_dict(source, layout), str(path))
    loaded = _tiny(name, weights=str(path))
    assert loaded.get_config() == {**source.get_config()}
    x = _images()
    np.testing.assert_array_equal(_outputs(loaded, x), _outputs(source, x))
    contradiction = {"layout": "keras"} if name == "resnet50v2" else {"stem": "imagenet"}
    with pytest.raises(ValueError, match=error):
        _tiny(name, weights=str(path), **contradiction)


# --- the source table --------------------------------------------------------


def test_source_table_pins_what_is_known():
    sources = keras_resnets.weights.SOURCES
    tv = sources[("resnet50", "torchvision:IMAGENET1K_V2")]
    assert tv.url.endswith("/resnet50-11ad3fa6.pth") and tv.file_hash == "11ad3fa6"
    keras_v2 = sources[("resnet50v2", "keras:imagenet")]
    assert keras_v2.hash_algorithm == "md5" and keras_v2.build == {"layout": "keras"}
    assert keras_v2.file(include_top=False)[1] == "fac2f116257151a9d068a22e544a4917"
    timm_d = sources[("resnet50", "timm:resnet50d.ra2_in1k")]
    assert timm_d.build == {"stem": "deep", "shortcut": "D"} and timm_d.file_hash == "464e36ba"
    # The same file is also resnet50d's own, which needs no build arguments;
    # issue 31's variants load timm's files of their names, pinned the same way.
    assert sources[("resnet50d", "timm:resnet50d.ra2_in1k")].build == {}
    for model, name, pin in [("seresnext50_32x4d", "timm:seresnext50_32x4d.racm_in1k", "a304a460"),
                             ("ecaresnet50d", "timm:ecaresnet50d.miil_in1k", "93c81e3b"),
                             ("resnetrs50", "timm:resnetrs50.tf_in1k", "6b53758b")]:
        source = sources[(model, name)]
        assert (source.file_hash, source.layout, source.build, source.preprocessing) == (pin, "timm", {}, "torch")
    for source in sources.values():
        assert source.file_hash is None or source.url.endswith(".pth") or source.hash_algorithm == "md5"
    assert keras_resnets.weights.get_source("imagenet", "resnet101v2").name == "keras:imagenet"
    assert keras_resnets.weights.get_source("imagenet", "wide_resnet50_2").name == "torchvision:IMAGENET1K_V1"


# --- preprocessing and class names ------------------------------------------


def test_preprocess_input_modes():
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    original = x.copy()
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected_torch = (x / 255 - mean) / std
    for weights, model in [("torchvision:IMAGENET1K_V2", None), ("timm:resnet50.a1_in1k", None),
                           ("imagenet", "resnet50")]:
        np.testing.assert_allclose(preprocess_input(x, weights, model=model), expected_torch, atol=1e-5)
    caffe = x[..., ::-1] - np.array([103.939, 116.779, 123.68])
    np.testing.assert_allclose(preprocess_input(x, "keras:imagenet", model="resnet50"), caffe, atol=1e-4)
    np.testing.assert_allclose(preprocess_input(x, "imagenet", model="resnet152v2"), x / 127.5 - 1, atol=1e-5)
    np.testing.assert_array_equal(x, original)
    with pytest.raises(ValueError, match=r"received weights='imagenet'\. Allowed: .*together with model="):
        preprocess_input(x, "imagenet")


def test_decode_predictions():
    preds = np.zeros((2, 1000), "float32")
    preds[0, [1, 2, 134]] = [0.5, 0.2, 0.3]
    preds[1, 999] = 1.0
    top = keras_resnets.decode_predictions(preds, top=3)
    assert top[0] == [("n01443537", "goldfish", 0.5), ("n02012849", "crane bird", pytest.approx(0.3)),
                      ("n01484850", "great white shark", pytest.approx(0.2))]
    assert top[1][0] == ("n15075141", "toilet tissue", 1.0)
    with pytest.raises(ValueError, match=r"`preds` must be ImageNet predictions of shape \(batch, 1000\); received an array of shape \(2, 10\)"):
        keras_resnets.decode_predictions(np.zeros((2, 10)))


def test_class_ids_match_tfds_imagenet2012():
    tfds = pytest.importorskip("tensorflow_datasets")
    labels = pathlib.Path(tfds.__file__).parent / "datasets" / "imagenet2012" / "labels.txt"
    if not labels.exists():
        pytest.skip(f"this tfds version has no {labels}")
    ids = [wnid for wnid, _ in keras_resnets.weights.preprocessing.imagenet_classes()]
    assert ids == labels.read_text().split()


# --- the fine-tuning example -------------------------------------------------


def _image_folder(root, classes=("red", "blue"), per_class=12, size=32):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        os.makedirs(root / name)
        for i in range(per_class):
            image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            image[..., 0 if c == 0 else 2] += 180  # the class is the dominant colour
            Image.fromarray(image).save(root / name / f"{i}.png")
    return root


def test_finetune_example(tmp_path, monkeypatch, capsys):
    data = _image_folder(tmp_path / "photos")
    # The example builds resnet18 at full width: a full-width checkpoint.
    full = keras_resnets.ResNet18()
    randomize_batchnorm(full)
    checkpoint = tmp_path / "resnet18.safetensors"
    save_file(to_state_dict(full, "torchvision"), str(checkpoint))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [
        "finetune_image_folder.py", str(data), "--model", "resnet18", "--weights",
        str(checkpoint), "--image-size", "32", "--epochs", "2", "--batch-size", "8",
    ])
    runpy.run_path(str(ROOT / "examples" / "finetune_image_folder.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "resnet18 fine-tuned on" in out
    # The first images, classified by the run's model with the folder's names.
    assert f"{data / 'blue' / '0.png'}: " in out
    saved = keras.saving.load_model(tmp_path / "saved_models" / "resnet18-photos" / "model.keras")
    assert saved.output_shape == (None, 2) and list(saved.class_names) == ["blue", "red"]
    # Batch norm was frozen: the trunk kept the checkpoint's statistics.
    for name in ("stem", "stage4_block2"):
        ours = saved.get_layer(name).norms[0].moving_mean.numpy()
        np.testing.assert_array_equal(ours, full.get_layer(name).norms[0].moving_mean.numpy())


def test_commands_without_the_network_end_in_one_line(cache, monkeypatch, capsys, tmp_path):
    """Offline, `predict resnet18 IMAGE` and `train --weights imagenet` end
    with the download's message on one line and status 1 (no traceback),
    and nothing is written."""
    from keras_resnets.cli import main
    from keras_resnets.weights.pretrained import SOURCES

    with socket.socket() as s:  # a port nobody listens on: the download fails at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/resnet18-f37072fd.pth"
    key = ("resnet18", "torchvision:IMAGENET1K_V1")  # what "imagenet" names for resnet18
    monkeypatch.setitem(SOURCES, key, dataclasses.replace(SOURCES[key], url=url))
    image = tmp_path / "cat.png"
    keras.utils.save_img(image, np.zeros((40, 40, 3), "uint8"))
    folder = tmp_path / "digits"
    write_digit_folder(folder, digits=range(2), size=32, limit=12)
    for argv in (["predict", "resnet18", str(image)],
                 ["train", "--model", "resnet18", "--weights", "imagenet", "--data", str(folder),
                  "--output", str(tmp_path / "runs"), "--epochs", "1"]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"keras-resnets {argv[0]}: error: weights='torchvision:IMAGENET1K_V1'")
        assert f"could not download {url}" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.keras"))
    assert not cache.exists() or not list(cache.iterdir())
