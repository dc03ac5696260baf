"""Export: SavedModel and TFLite files (float32, float16, dynamic, int8) run in
LiteRT and TensorFlow against the Keras model, for every block family."""

import contextlib
import io
import os
import re
import runpy
import shutil
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_resnets
from keras_resnets import export
from keras_resnets.cli import main as cli_main
from keras_resnets.data import load_data
from keras_resnets.layers import GroupedConv2D
from keras_resnets.utils import file_kinds
from keras_resnets.utils.validation import UsageError
from helpers import random_images, randomize_batchnorm, write_digit_folder

# The trained model and its exported files are session-scoped fixtures;
# pytest.ini's `--dist loadfile` keeps this module on one pytest-xdist
# worker, so each is computed once per suite run.

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
SIZE = 16  # the trained test model's image size

# Builtin operators of the plain TFLite runtime that these networks lower to.
# Anything else (a Flex "FlexConv2D", a "CUSTOM" op, a split grouped
# convolution's SPLIT / CONCATENATION) fails the family test.
PLAIN_OPS = {
    "ADD", "CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "PADV2",
    "SOFTMAX", "STRIDED_SLICE", "SUB", "CAST", "QUANTIZE", "DEQUANTIZE",
    "LOGISTIC", "RESHAPE", "EXPAND_DIMS", "AVERAGE_POOL_2D",  # SE and ECA gates, the "D" shortcut
}

# One model for each kind of layer the converter meets (plain bottlenecks
# and ResNeXt's grouped ones without SE are layers of these models too).
FAMILIES = [
    ("resnet20", {}),  # the paper's CIFAR net: basic blocks, option-A shortcuts
    ("resnet18", {"width_multiplier": 0.25}),  # basic blocks, ImageNet stem, 1x1 projection shortcuts
    ("resnet50v2", {"width_multiplier": 0.25}),  # pre-activation bottlenecks
    ("seresnext50_32x4d", {"width_multiplier": 0.25}),  # grouped bottlenecks (32 groups), SE gates
    ("ecaresnet50d", {"width_multiplier": 0.25}),  # ECA, deep stem, average-pool shortcut
    ("resnetrs50", {"width_multiplier": 0.25}),  # the stem's convolutional pool
]


def _scale_logits(model, images, largest=10.0):
    """Scales the classifier so the largest |logit| is `largest`, a trained
    model's range: random batch-norm statistics make the logits of a deep
    random net anything from 1e-3 to 1e9, and an absolute tolerance needs a
    scale."""
    logits = model.predict(images, verbose=0)
    head = model.get_layer("predictions")
    kernel, bias = head.get_weights()
    factor = largest / np.abs(logits).max()
    head.set_weights([kernel * factor, bias * factor])


def _grouped_layers(model):
    return [
        layer for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, GroupedConv2D) and layer.groups > 1
    ]


@pytest.mark.parametrize("name,kwargs", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_float32_tflite_matches_keras_logits(name, kwargs, tmp_path):
    model = keras_resnets.get_model(
        name, input_shape=(32, 32, 3), classes=10, classifier_activation=None, **kwargs
    )
    randomize_batchnorm(model)
    images = random_images((16, 32, 32, 3))
    _scale_logits(model, images)

    path = export.tflite(model, tmp_path / "model.tflite")
    result = export.verify(path, model, images, runs=3, warmup=1)
    assert result.max_abs_diff <= 1e-4
    assert result.top1_agreement == 1.0
    assert result.input_type == "float32" and result.images == 16

    ops = export.tflite_ops(path)
    names = {op["op"] for op in ops}
    assert names <= PLAIN_OPS, f"not plain builtin operators: {names - PLAIN_OPS}"
    # Each grouped convolution is one CONV_2D whose filter holds one group's
    # input channels.
    grouped = _grouped_layers(model)
    group_convs = [
        op["inputs"][0][-1] // op["inputs"][1][-1] for op in ops
        if op["op"] == "CONV_2D" and op["inputs"][1][-1] != op["inputs"][0][-1]
    ]
    assert group_convs == [layer.groups for layer in grouped]
    assert (len(grouped) == 16) == (name == "seresnext50_32x4d")


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A ResNet-20 trained 6 epochs on the 16 px digits by `keras_resnets.train`
    (uint8 images in, softmax out), and the digits. (Its classifier starts
    at zero, so 2 epochs leave it near chance, 0.20, and its int8 file then
    agrees on 0.88 of the images, all of them near-ties; after 6, test
    accuracy 0.72 and int8 agreement 0.99.)"""
    output = tmp_path_factory.mktemp("runs")
    keras.utils.set_random_seed(0)
    model, summary = keras_resnets.train(
        "resnet20", "digits", epochs=6, image_size=SIZE, precision="float32",
        output=str(output), verbose=0,
    )
    bundle = load_data("digits", image_size=SIZE, batch_size=64)
    return os.path.join(summary["run_dir"], "model.keras"), model, bundle


@pytest.fixture(scope="session")
def exported(trained):
    """`keras-resnets export MODEL --quantize none float16 dynamic int8`:
    its exit code, what it printed and the files."""
    model_path, _, _ = trained
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(["export", model_path, "--quantize", "none", "float16", "dynamic",
                         "int8", "--runs", "5"])
    folder = os.path.dirname(model_path)
    paths = {q: os.path.join(folder, f"model{suffix}.tflite") for q, suffix in
             [("float32", ""), ("float16", "_float16"), ("dynamic", "_dynamic"), ("int8", "_int8")]}
    return code, out.getvalue(), paths


def test_cli_writes_every_quantization_and_prints_the_table(exported):
    code, out, paths = exported
    assert code == 0
    for path in paths.values():
        assert os.path.isfile(path)
        assert f"wrote {path}" in out
    table = out[out.index("file "):].splitlines()
    assert [line.split()[0] for line in table[2:6]] == [os.path.basename(p) for p in paths.values()]
    assert "LiteRT" in out and "XNNPACK" in out


def test_truncated_model_and_tflite_files_are_found(trained, exported, tmp_path):
    """`keras_resnets.utils.file_kinds` on real files (what the command line
    checks before it loads one): whole ones read as whole, a cut one is
    found."""
    model_path, _, _ = trained
    _, _, paths = exported
    for path, kind in [(model_path, "keras"), (paths["float32"], "tflite"), (paths["int8"], "tflite")]:
        assert file_kinds.kind_by_content(path) == kind and file_kinds.damage(path, kind) is None
        data = open(path, "rb").read()
        for fraction in (0.5, 0.9):
            cut = tmp_path / f"cut{os.path.splitext(path)[1]}"
            cut.write_bytes(data[: int(len(data) * fraction)])
            assert file_kinds.damage(cut, kind), (path, fraction)


def test_predict_reads_the_exported_files(trained, exported, tmp_path, capsys):
    """`keras_resnets.predict` on the .tflite files and a SavedModel in the
    run folder: the run's class names (from its summary.json), the .keras
    model's classes and probabilities (float32, SavedModel), and in int8
    the file's own probabilities: they sum to 1 only roughly, and must not
    go through a second softmax."""
    model_path, _, _ = trained
    _, _, paths = exported
    served = export.saved_model(keras_resnets.load_model(model_path), os.path.join(os.path.dirname(model_path),
                                                                                  "predict_saved_model"))
    write_digit_folder(tmp_path / "photos", size=SIZE, limit=3)

    def top(model):
        results = keras_resnets.predict(model, str(tmp_path / "photos"), top=3)
        return ([r["image"] for r in results], [[t["class"] for t in r["top"]] for r in results],
                np.array([[t["probability"] for t in r["top"]] for r in results]))

    images, classes, probabilities = top(model_path)
    assert len(images) == 30 and {c for row in classes for c in row} <= set("0123456789")
    for path in (paths["float32"], served):
        got = top(path)
        assert got[0] == images and got[1] == classes, path
        np.testing.assert_allclose(got[2], probabilities, atol=1e-5)
    images8, classes8, probabilities8 = top(paths["int8"])
    assert images8 == images
    assert np.mean([a[0] == b[0] for a, b in zip(classes8, classes)]) >= 0.9
    np.testing.assert_allclose(probabilities8[:, 0], probabilities[:, 0], atol=0.05)
    # Away from its run folder a file has no class names or transform: said, not guessed silently.
    alone = shutil.copy(paths["float32"], tmp_path / "alone.tflite")
    with pytest.warns(UserWarning, match=r"No summary.json beside .*alone.tflite.*10 classes are named by their index"):
        keras_resnets.predict(alone, str(tmp_path / "photos" / "3"), top=1)
    capsys.readouterr()
    assert cli_main(["predict", str(alone), str(tmp_path / "photos" / "3"), "--top", "1"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3
    assert err.startswith("keras-resnets predict: warning: No summary.json beside"), err


def test_int8_agrees_with_the_float_model(trained, exported):
    _, model, bundle = trained
    _, _, paths = exported
    result = export.verify(paths["int8"], model, bundle.test, runs=5, warmup=1)
    assert result.images == bundle.test_size == 360
    # A 6-epoch model has less margin than the trained default ResNet-20
    # (100% agreement there, see the README): 97% here.
    assert result.top1_agreement >= 0.97
    assert result.exported_accuracy >= result.keras_accuracy - 0.02
    assert result.size_bytes <= 0.30 * os.path.getsize(paths["float32"])
    assert result.input_type == "uint8"  # raw images in, like the Keras model

    ops = export.tflite_ops(paths["int8"])
    compute = [op for op in ops if op["op"] in ("CONV_2D", "FULLY_CONNECTED")]
    assert len(compute) == 20  # ResNet-20: 19 convolutions (option-A shortcuts have none), 1 dense
    assert all(op["input_types"][:2] == ["int8", "int8"] for op in compute)
    assert {op["op"] for op in ops} <= PLAIN_OPS


def test_float_files_agree_with_keras(trained, exported):
    _, model, bundle = trained
    _, _, paths = exported
    results = {q: export.verify(paths[q], model, bundle.test, runs=5, warmup=1)
               for q in ("float32", "float16", "dynamic")}
    assert results["float32"].max_abs_diff <= 1e-4
    assert results["float32"].top1_agreement == 1.0
    # float16 and dynamic-range int8 weights may change the top-1 class only
    # where Keras itself hesitates: a file's probabilities within rounding of
    # Keras's, and every image whose class changed one that Keras gives its
    # top two classes within 0.15 of each other (a short run's model has a few:
    # in dynamic int8 they were at most 0.07 apart when this was written).
    from keras_resnets.export.runtime import _run_interpreter

    images = np.concatenate([x for x, _ in bundle.test.as_numpy_iterator()])
    expected = model.predict(images, verbose=0)
    top2 = np.sort(expected, axis=-1)[:, -2:]
    for q in ("float16", "dynamic"):
        assert results[q].top1_agreement >= 0.95
        interpreter = export.load_interpreter(paths[q])
        got = np.concatenate([_run_interpreter(interpreter, images[i:i + 1]) for i in range(len(images))])
        assert np.abs(got - expected).max() < {"float16": 0.01, "dynamic": 0.1}[q], q
        changed = np.argmax(got, -1) != np.argmax(expected, -1)
        assert np.all(top2[changed, 1] - top2[changed, 0] < 0.15), (q, top2[changed])
    size = results["float32"].size_bytes
    assert 0.4 * size < results["float16"].size_bytes < 0.6 * size
    assert results["dynamic"].size_bytes < 0.35 * size


def test_int8_input_of_a_float_model(tmp_path):
    model = keras_resnets.ResNet20(input_shape=(SIZE, SIZE, 3), classes=10)
    images = random_images((64, SIZE, SIZE, 3))
    path = export.tflite(model, tmp_path / "m.tflite", quantize="int8",
                         representative_data=images, input_type="int8")
    interpreter = export.load_interpreter(path)
    scale, zero_point = interpreter.get_input_details()[0]["quantization"]
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert scale == pytest.approx(2 / 255, rel=0.01)  # calibrated on -1..1
    result = export.verify(path, model, images, runs=3, warmup=1)
    assert result.input_type == "int8"
    assert result.max_abs_diff < 0.05


def test_int8_of_an_imagenet_stem_runs_in_xnnpack(tmp_path):
    """The stem's max-pool pads with zeros after its ReLU: a -inf pad value
    gave the tensor a quantization scale of 1e36 and XNNPACK refused the file."""
    model = keras_resnets.ResNet18(input_shape=(32, 32, 3), width_multiplier=0.25, classes=10)
    images = random_images((16, 32, 32, 3))
    path = export.tflite(model, tmp_path / "m.tflite", quantize="int8", representative_data=images)
    interpreter = export.load_interpreter(path)
    scales = [t["quantization"][0] for t in interpreter.get_tensor_details()]
    assert max(scales) < 10, max(scales)
    result = export.verify(path, model, images, runs=3, warmup=1)
    assert result.max_abs_diff < 0.05


def test_int8_file_merges_narrow_groups_with_the_same_outputs(tmp_path):
    """An int8 file's grouped convolutions read at least `group_width`
    channels a group (`INT8_MIN_GROUP_WIDTH`, 8, by default): a quarter-width
    ResNeXt-50 has 1, 2, 4 and 8 a group in its four stages, merged to 8, or
    to 32 with `group_width=32` (XNNPACK pads each group to its kernel's
    tile: 8 on AVX2, 64 on AMX). The outputs equal those of the file with
    the groups as they are (`group_width=1`), bit for bit."""
    model = keras_resnets.get_model("resnext50_32x4d", input_shape=(32, 32, 3), classes=10,
                                    classifier_activation=None, width_multiplier=0.25)
    randomize_batchnorm(model)
    images = random_images((16, 32, 32, 3))
    _scale_logits(model, images)
    files = {width: export.tflite(model, tmp_path / f"w{width}.tflite", quantize="int8",
                                  representative_data=images, input_type="int8",
                                  **({} if width == 8 else {"group_width": width}))
             for width in (1, 8, 32)}

    def grouped_depths(path):  # filter depth of each CONV_2D that is grouped
        return [op["inputs"][1][-1] for op in export.tflite_ops(path)
                if op["op"] == "CONV_2D" and op["inputs"][1][-1] != op["inputs"][0][-1]]

    widths = [layer.kernel.shape[2] for layer in _grouped_layers(model)]
    assert sorted(set(widths)) == [1, 2, 4, 8] and grouped_depths(files[1]) == widths
    # With 32, stage 1's 32 groups of one channel become one dense convolution.
    assert grouped_depths(files[8]) == [8] * 16 and grouped_depths(files[32]) == [32] * 13
    quantized = np.clip(np.round(images / (2 / 255)), -128, 127).astype("int8")
    plain = _run_litert(files[1], quantized)[1]
    for width in (8, 32):
        np.testing.assert_array_equal(_run_litert(files[width], quantized)[1], plain)
    # Dynamic files (int8 weights, activations quantized as they run) take
    # `group_width` too. Merged, they run another kernel than the grouped
    # one (XNNPACK's per-row quantized product), so their outputs are not
    # those of the unmerged file bit for bit: each stays as close to the
    # float model (2% of the largest logit here, for both).
    dynamic = {width: export.tflite(model, tmp_path / f"dynamic{width}.tflite", quantize="dynamic",
                                    **({} if width is None else {"group_width": width}))
               for width in (None, 32)}
    assert grouped_depths(dynamic[None]) == widths and grouped_depths(dynamic[32]) == [32] * 13
    expected = model.predict(images, verbose=0)
    for path in dynamic.values():
        assert np.abs(_run_litert(path, images)[1] - expected).max() < 0.05 * np.abs(expected).max()
    with pytest.raises(UsageError, match=r"group_width=0"):
        export.tflite(model, tmp_path / "w0.tflite", quantize="int8", representative_data=images, group_width=0)
    with pytest.raises(UsageError, match=r"group_width=32 with quantize='float16'"):
        export.tflite(model, tmp_path / "f16.tflite", quantize="float16", group_width=32)
    # The CLI checks --group-width against its own copy of the list (no TensorFlow imported then).
    from keras_resnets.export import command, convert

    assert command.GROUP_WIDTH_QUANTIZE == convert.INT8_KERNEL_QUANTIZATIONS


def test_an_int8_file_xnnpack_refuses_is_named_with_the_reason(tmp_path):
    """XNNPACK refuses an int8 convolution whose requantization scale (input
    scale x weight scale / output scale) is 256 or more: here an input
    channel of range 1e5 beside one of range 1 and an output that reads
    only the small one. The error names the operator and its scale (it said
    "truncated or corrupt?" before); LiteRT's own kernels load the file."""
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(2, 1, use_bias=False, name="wide_input")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, use_bias=False, name="after")(x))
    model.get_layer("wide_input").set_weights([np.array([[[[0.0, 1e-6], [1.0, 0.0]]]], "float32")])
    model.get_layer("after").set_weights([np.eye(2, dtype="float32")[None, None]])
    rng = np.random.default_rng(0)
    images = np.concatenate([rng.uniform(0, 1e5, (16, 4, 4, 1)), rng.uniform(0, 1, (16, 4, 4, 1))], -1)
    path = export.tflite(model, tmp_path / "wide.tflite", quantize="int8",
                         representative_data=images.astype("float32"), input_type="int8")
    (name, scale), (_, after) = export.runtime.requantization_scales(path)
    assert "wide_input" in name and scale >= 256 and after < 256
    with pytest.raises(ValueError, match=r"XNNPACK.*refuses this int8 file: 1 operator\(s\).*wide_input\S* \(\d+\)"):
        export.load_interpreter(path)
    export.load_interpreter(path, delegates=False)


def test_saved_model_serves_uint8_images_of_any_batch(trained, capsys):
    model_path, model, bundle = trained
    assert cli_main(["export", model_path, "--format", "saved_model", "--runs", "3"]) == 0
    directory = os.path.join(os.path.dirname(model_path), "model_saved_model")
    assert "model_saved_model  uint8" in capsys.readouterr().out
    served = tf.saved_model.load(directory).signatures["serving_default"]
    spec = served.structured_input_signature[1]["images"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, SIZE, SIZE, 3]
    images = next(iter(bundle.test))[0].numpy()
    for batch in (1, 7):
        probabilities = served(images=tf.constant(images[:batch]))["probabilities"].numpy()
        np.testing.assert_allclose(probabilities, model.predict(images[:batch], verbose=0), atol=1e-5)
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    result = export.verify(directory, model, bundle.test, runs=3, warmup=1)
    assert result.format == "saved_model" and result.top1_agreement == 1.0
    assert result.max_abs_diff <= 1e-5


def test_saved_model_of_a_float_logits_model_normalizes_and_adds_softmax(tmp_path):
    model = keras_resnets.ResNet20(input_shape=(SIZE, SIZE, 3), classes=10, classifier_activation=None)
    mean, std = (120.0, 110.0, 100.0), 60.0
    directory = export.saved_model(model, tmp_path / "served", mean=mean, std=std)
    images = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3)).astype("uint8")
    served = tf.saved_model.load(directory).signatures["serving_default"]
    got = served(images=tf.constant(images))["probabilities"].numpy()
    logits = model.predict((images.astype("float32") - mean) / std, verbose=0)
    np.testing.assert_allclose(got, tf.nn.softmax(logits).numpy(), atol=1e-6)


def test_saved_model_preprocessing_arguments_are_checked(trained, tmp_path):
    _, model, _ = trained
    with pytest.raises(ValueError, match="takes uint8 images and normalizes them inside"):
        export.saved_model(model, tmp_path / "a", mean=127.5)
    floats = keras_resnets.ResNet20(input_shape=(SIZE, SIZE, 3), classes=10)
    with pytest.raises(ValueError, match=r"`std` must be positive; received std=0"):
        export.saved_model(floats, tmp_path / "b", std=0)
    with pytest.raises(ValueError, match=r"`mean` must be a number or 3 numbers"):
        export.saved_model(floats, tmp_path / "c", mean=(1.0, 2.0))
    with pytest.raises(UsageError, match=r"`keep_precision` must be True or False; received keep_precision='yes'"):
        export.saved_model(floats, tmp_path / "d", keep_precision="yes")
    assert os.listdir(tmp_path) == []


MEAN, STD = (120.0, 110.0, 100.0), (60.0, 50.0, 40.0)


def _normalized_reference(model, images):
    """The float model on (images - MEAN) / STD, computed here in NumPy."""
    return model.predict((images.astype("float32") - np.float32(MEAN)) / np.float32(STD), verbose=0)


def _run_litert(path, images):
    """The LiteRT interpreter itself on `images`: (input type, output)."""
    interpreter = export.load_interpreter(str(path))
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], images)
    interpreter.invoke()
    return np.dtype(detail["dtype"]), interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_tflite_of_a_float_model_holds_its_normalization(tmp_path):
    model = keras_resnets.ResNet20(input_shape=(SIZE, SIZE, 3), classes=10, classifier_activation=None)
    randomize_batchnorm(model)
    images = np.random.default_rng(0).integers(0, 256, (8, SIZE, SIZE, 3)).astype("uint8")
    path = export.tflite(model, tmp_path / "m.tflite", mean=MEAN, std=STD)
    input_type, got = _run_litert(path, images)  # fed the raw uint8 images
    assert input_type == np.uint8
    expected = _normalized_reference(model, images)
    assert np.abs(expected).max() > 1e-2  # a meaningful comparison
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max())
    result = export.verify(path, model, images, runs=3, warmup=1, mean=MEAN, std=STD)
    assert result.input_type == "uint8" and result.top1_agreement == 1.0
    # Without them, verify would compare the file with another computation.
    with pytest.raises(ValueError, match="pass `verify` the `mean` and `std` it was exported with"):
        export.verify(path, model, images, runs=1)


def test_cli_mean_and_std_for_tflite_of_a_float_model(tmp_path, capsys):
    model = keras_resnets.ResNet20(input_shape=(SIZE, SIZE, 3), classes=10)
    model_path = str(tmp_path / "float.keras")
    model.save(model_path)
    argv = ["export", model_path, "--data", "digits", "--quantize", "none", "int8", "--runs", "2",
            "--mean", *map(str, MEAN), "--std", *map(str, STD)]
    assert cli_main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    for name in ("float", "float_int8"):  # both files take raw uint8 images
        assert re.search(rf"^{name}\.tflite +uint8 ", out, re.M), out
    images = next(iter(load_data("digits", image_size=SIZE).test))[0].numpy()
    result = export.verify(tmp_path / "float.tflite", model, images, runs=1, mean=MEAN, std=STD)
    assert result.max_abs_diff < 1e-5
    _, got = _run_litert(tmp_path / "float.tflite", images[:4])
    np.testing.assert_allclose(got, _normalized_reference(model, images[:4]), atol=1e-5)


def test_cli_refuses_mean_and_std_for_a_model_taking_uint8(trained, capsys, tmp_path):
    model_path, _, _ = trained
    argv = ["export", model_path, "--output", str(tmp_path), "--mean", "127.5", "--std", "64"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "--mean and --std are for a model taking float images" in err
    assert "Received --mean 127.5 --std 64." in err
    assert os.listdir(tmp_path) == []


def test_mixed_precision_model_exports_in_float32(tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = keras_resnets.ResNet20(input_shape=(SIZE, SIZE, 3), classes=10)
    keras.config.set_dtype_policy("float32")
    copy = export.float32_model(model)
    assert {layer.dtype_policy.name for layer in copy._flatten_layers()} == {"float32"}
    for a, b in zip(copy.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    path = export.tflite(model, tmp_path / "m.tflite")
    ops = export.tflite_ops(path)
    assert all(t in ("float32", "int32", None) for op in ops for t in op["input_types"])
    images = random_images((4, SIZE, SIZE, 3))
    assert export.verify(path, model, images, runs=3, warmup=1).max_abs_diff <= 1e-5


def _stored_variables(directory):
    """The names of the tensors in a SavedModel's variables checkpoint."""
    checkpoint = os.path.join(directory, "variables", "variables")
    return [name for name, _ in tf.train.list_variables(checkpoint) if not name.startswith("_CHECKPOINTABLE")]


def _frozen_graph_ops(model, **kwargs):
    function, _ = export.serving.frozen_function(model, **kwargs)
    return function.graph.as_graph_def().node


@pytest.mark.parametrize("name,kwargs", [("resnet18", {"width_multiplier": 0.25}),
                                         ("resnext29_8x64d", {"width_multiplier": 0.125})])
def test_frozen_saved_model_folds_every_batch_norm_and_keeps_no_variables(name, kwargs, tmp_path):
    """The default SavedModel: the weights are constants, every batch norm is
    folded into its convolution (also at a batch size unknown when traced),
    the outputs are the Keras model's, and the folder holds no variables."""
    model = keras_resnets.get_model(name, input_shape=(32, 32, 3), classes=10, **kwargs)
    randomize_batchnorm(model)
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype("uint8")
    _scale_logits(model, images.astype("float32"))
    ops = [n.op for n in _frozen_graph_ops(model)]
    assert "ReadVariableOp" not in ops and "VarHandleOp" not in ops
    assert "IdentityN" not in ops  # no custom gradients: the SavedModel loads without a warning
    assert not [op for op in ops if "BatchNorm" in op]
    assert ops.count("Conv2D") == sum(isinstance(layer, keras.layers.Conv2D)
                                      for layer in model._flatten_layers())
    directory = export.saved_model(model, tmp_path / "served")
    assert _stored_variables(directory) == []
    served = tf.saved_model.load(directory).signatures["serving_default"]
    got = served(images=tf.constant(images))["probabilities"].numpy()
    expected = model.predict(images.astype("float32"), verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    if name != "resnet18":
        return  # the variables' SavedModel once: the grouped network adds nothing to it
    # With variables: the same outputs.
    directory = export.saved_model(model, tmp_path / "vars", frozen=False)
    assert _stored_variables(directory)
    served = tf.saved_model.load(directory).signatures["serving_default"]
    np.testing.assert_allclose(served(images=tf.constant(images))["probabilities"].numpy(), got, atol=1e-5)


def test_frozen_bfloat16_kernels_fold_from_the_stored_weights(tmp_path):
    """`keep_precision=True` serves a mixed_bfloat16 model in bfloat16; each
    folded kernel is computed from the float32 weights, a product the graph
    optimizer folds into a constant. Cast up from bfloat16 first (as the
    layer reads its kernel in its call), it stays a cast on every call and
    oneDNN reorders the kernel every call (ResNet-50 at batch 1: 28 against
    14 ms)."""
    from keras.src.backend.common.variables import AutocastScope

    from keras_resnets.layers.common import _stored_value

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = keras_resnets.get_model("resnet18", input_shape=(32, 32, 3), classes=10,
                                        width_multiplier=0.25)
    finally:
        keras.config.set_dtype_policy("float32")
    randomize_batchnorm(model)
    block = model.get_layer("stage1_block1")
    with AutocastScope("bfloat16"):  # as inside a mixed layer's call
        conv = next(layer for layer in block._flatten_layers() if isinstance(layer, keras.layers.Conv2D))
        assert keras.ops.convert_to_tensor(conv.kernel).dtype == tf.bfloat16
        assert _stored_value(conv.kernel).dtype == tf.float32
    nodes = {n.name: n for n in _frozen_graph_ops(model)}
    convolutions = [n for n in nodes.values() if n.op == "Conv2D"]
    assert convolutions and all(n.attr["T"].type == tf.bfloat16.as_datatype_enum for n in convolutions)
    # No weight (a node that does not depend on the images) is cast up from bfloat16.
    on_images = {}

    def depends_on_images(name):
        if name not in on_images:
            node = nodes[name]
            on_images[name] = node.op == "Placeholder" or any(
                depends_on_images(i.lstrip("^").split(":")[0]) for i in node.input)
        return on_images[name]

    cast_up = [n.name for n in nodes.values() if n.op == "Cast"
               and n.attr["SrcT"].type == tf.bfloat16.as_datatype_enum and not depends_on_images(n.name)]
    assert cast_up == []
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    directory = export.saved_model(model, tmp_path / "bf16", keep_precision=True)
    got = tf.saved_model.load(directory).signatures["serving_default"](images=tf.constant(images))
    expected = model.predict(images.astype("float32"), verbose=0)
    np.testing.assert_allclose(got["probabilities"].numpy(), expected, atol=2e-2)
    # Without keep_precision: float32 convolutions only.
    float_nodes = _frozen_graph_ops(export.float32_model(model))
    assert {n.attr["T"].type for n in float_nodes if n.op == "Conv2D"} == {tf.float32.as_datatype_enum}


# Bad input: clear errors, nothing (half-)written.


def test_unbuilt_model_is_refused(tmp_path):
    model = keras.Sequential([keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()])
    with pytest.raises(ValueError, match="is not built"):
        export.tflite(model, tmp_path / "m.tflite")
    with pytest.raises(ValueError, match="is not built"):
        export.saved_model(model, tmp_path / "served")
    assert os.listdir(tmp_path) == []


def test_int8_needs_representative_data_of_the_right_shape(tmp_path):
    model = keras_resnets.ResNet20(input_shape=(SIZE, SIZE, 3), classes=10)
    with pytest.raises(ValueError, match="needs `representative_data`"):
        export.tflite(model, tmp_path / "m.tflite", quantize="int8")
    wrong = random_images((8, 28, 28, 3))
    with pytest.raises(ValueError, match=r"shape \(28, 28, 3\).*16x16x3"):
        export.tflite(model, tmp_path / "m.tflite", quantize="int8", representative_data=wrong)
    with pytest.raises(ValueError, match="calibrates int8 only"):
        export.tflite(model, tmp_path / "m.tflite", quantize="dynamic", representative_data=wrong)
    with pytest.raises(ValueError, match="`quantize` must be one of"):
        export.tflite(model, tmp_path / "m.tflite", quantize="int4")
    assert os.listdir(tmp_path) == []


def test_existing_destination_needs_overwrite(tmp_path, trained, exported, capsys):
    model_path, model, _ = trained
    _, _, paths = exported
    target = tmp_path / "m.tflite"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.tflite(model, target)
    (tmp_path / "served").mkdir()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.saved_model(model, tmp_path / "served")
    assert target.read_bytes() == b"keep me" and os.listdir(tmp_path / "served") == []

    before = os.path.getmtime(paths["int8"])
    assert cli_main(["export", model_path, "--quantize", "int8"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert os.path.getmtime(paths["int8"]) == before

    export.saved_model(model, tmp_path / "served", overwrite=True)
    assert os.path.isfile(tmp_path / "served" / "saved_model.pb")
    assert sorted(os.listdir(tmp_path)) == ["m.tflite", "served"]  # no temporary leftovers


def test_flex_operators_are_an_error_and_leave_no_file(tmp_path):
    x = keras.Input((4, 4, 3))
    model = keras.Model(x, keras.layers.Lambda(tf.math.erfinv)(x))
    with pytest.raises(ValueError, match="lacks: Erfinv"):
        export.tflite(model, tmp_path / "m.tflite")
    assert os.listdir(tmp_path) == []


def test_verify_refuses_corrupt_and_truncated_files(tmp_path, trained, exported):
    _, model, bundle = trained
    _, _, paths = exported
    data = open(paths["float32"], "rb").read()
    for name, content in [("truncated", data[: len(data) // 2]), ("garbage", b"TFL3" * 100),
                          ("empty", b"")]:
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(content)
        with pytest.raises(ValueError, match=f"{name}.tflite.*not a valid TFLite model"):
            export.verify(path, model, bundle.test)
    with pytest.raises(FileNotFoundError):
        export.verify(tmp_path / "absent.tflite", model, bundle.test)


def test_benchmark_and_example(trained, exported, tmp_path, monkeypatch, capsys):
    model_path, model, _ = trained
    _, _, paths = exported
    rows = export.benchmark(model, {"float32": paths["float32"], "int8": paths["int8"]},
                            runs=3, warmup=1, num_threads=1)
    assert [r["name"] for r in rows] == ["Keras predict", "tf.function", "float32 (1 threads)",
                                         "int8 (1 threads)"]
    for row in rows:
        assert 0 < row["median_ms"] <= row["p90_ms"]
        assert row["speedup_vs_predict"] == pytest.approx(rows[0]["median_ms"] / row["median_ms"])

    copy = tmp_path / "model.keras"
    shutil.copy(model_path, copy)
    monkeypatch.setattr(sys, "argv", ["export_tflite.py", "--model", str(copy), "--benchmark",
                                      "--runs", "3"])
    runpy.run_path(os.path.join(EXAMPLES, "export_tflite.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "model_int8.tflite" in out and "x vs tf.function" in out and "LiteRT int8" in out
    assert os.path.isfile(tmp_path / "model_int8.tflite")


def test_onnx_export_runs_in_onnxruntime(trained, tmp_path, capsys):
    pytest.importorskip("tf2onnx", reason="the onnx extra: pip install \"keras_resnets[onnx]\"")
    ort = pytest.importorskip("onnxruntime")
    model_path, model, bundle = trained
    assert cli_main(["export", model_path, "--format", "onnx", "--runs", "3"]) == 0
    path = os.path.join(os.path.dirname(model_path), "model.onnx")
    assert "model.onnx  uint8" in capsys.readouterr().out
    result = export.verify(path, model, bundle.test, runs=3, warmup=1)
    assert result.format == "onnx" and result.input_type == "uint8"
    assert result.max_abs_diff <= 1e-5 and result.top1_agreement == 1.0

    # A grouped convolution is one ONNX Conv with its group attribute.
    x = keras.Input((6, 6, 64))
    grouped = keras.Model(x, GroupedConv2D(64, 3, groups=32, padding="same")(x))
    export.onnx(grouped, tmp_path / "grouped.onnx")
    session = ort.InferenceSession(str(tmp_path / "grouped.onnx"))
    images = random_images((2, 6, 6, 64))
    got = session.run(None, {session.get_inputs()[0].name: images})[0]
    np.testing.assert_allclose(got, grouped.predict(images, verbose=0), atol=1e-5)
    import onnx

    convs = [n for n in onnx.load(str(tmp_path / "grouped.onnx")).graph.node if n.op_type == "Conv"]
    assert [[a.i for a in n.attribute if a.name == "group"] for n in convs] == [[32]]

    # A float model with `mean` and `std`: the file takes raw uint8 images.
    floats = keras_resnets.ResNet20(input_shape=(SIZE, SIZE, 3), classes=10, classifier_activation=None)
    randomize_batchnorm(floats)
    export.onnx(floats, tmp_path / "floats.onnx", mean=MEAN, std=STD)
    session = ort.InferenceSession(str(tmp_path / "floats.onnx"))
    assert session.get_inputs()[0].type == "tensor(uint8)"
    pixels = np.random.default_rng(0).integers(0, 256, (4, SIZE, SIZE, 3)).astype("uint8")
    got = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    expected = _normalized_reference(floats, pixels)
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max())

    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(open(path, "rb").read()[:1000])
    with pytest.raises(ValueError, match="not a valid ONNX model"):
        export.verify(truncated, model, bundle.test)
