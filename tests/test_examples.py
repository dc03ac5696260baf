"""The example scripts run as their docstrings say (on mock data here)."""

import json
import os
import re
import runpy
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def test_train_cifar10_example(tmp_path, monkeypatch, capsys):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train_cifar10.py", "--epochs", "1", "--precision", "float32"])
    with tfds.testing.mock_data(num_examples=64):
        runpy.run_path(os.path.join(EXAMPLES, "train_cifar10.py"), run_name="__main__")
    out = capsys.readouterr().out
    with open(tmp_path / "saved_models" / "resnet20-tfds_cifar10" / "summary.json") as f:
        summary = json.load(f)
    # The error it prints is the run's: 1 - its test accuracy.
    error = re.search(r"resnet20: test error (\d+\.\d\d)%", out)
    assert error, out
    assert float(error.group(1)) == pytest.approx(100 * (1 - summary["test_accuracy"]), abs=0.005)
    # The paper's recipe (He et al. 2015, section 4.2): CIFAR-10, a learning
    # rate of 0.1, mini-batches of 128.
    assert summary["data"] == "tfds:cifar10" and summary["recipe"] == "cifar"
    assert (summary["lr"], summary["batch_size"]) == (0.1, 128)


def _segment_digits():
    pytest.importorskip("keras_hub", reason='keras-hub is not installed: pip install ".[keras-hub]"')
    return runpy.run_path(os.path.join(EXAMPLES, "segment_digits.py"))


def test_segment_digits_canvases_and_masks():
    example = _segment_digits()
    (images, labels), (test_images, _) = example["split_digits"](seed=0)
    assert len(images) + len(test_images) == 1797
    canvases, masks = example["make_canvases"](images, labels, 40, size=48, per_canvas=(1, 1), scales=(16, 16))
    again, _ = example["make_canvases"](images, labels, 40, size=48, per_canvas=(1, 1), scales=(16, 16))
    np.testing.assert_array_equal(canvases, again)  # seeded
    assert canvases.shape == (40, 48, 48, 3) and masks.shape == (40, 48, 48, 1)
    for canvas, mask in zip(canvases[..., 0], masks[..., 0]):
        classes = set(np.unique(mask)) - {0}
        # One digit: one class, on the strokes: the canvas's brightest half.
        assert len(classes) == 1 and min(classes) >= 1 and max(classes) <= 10
        assert canvas[mask > 0].min() >= 0.5 * canvas.max() - 1e-6
        assert np.all(canvas[mask == 0] < 0.5 * canvas.max() + 1e-6)


def test_segment_digits_mean_iou_by_hand():
    example = _segment_digits()
    masks = np.zeros((2, 4, 4, 1), "int32")
    masks[0, :2, :2] = 3  # 4 pixels of digit 2, 4 of digit 5, 24 background
    masks[1, 2:, 2:] = 6
    everything_background = example["_AllBackground"]()
    # Background: 24 of 32 pixels intersect, the union is all 32; digits 2
    # and 5: IoU 0. Absent classes do not count.
    assert example["mean_iou"](everything_background, masks, masks) == pytest.approx((24 / 32) / 3)


@pytest.mark.slow
def test_segment_digits_example_runs(tmp_path):
    example = _segment_digits()
    size = 48  # (at 32 px a digit at its largest scale does not fit its canvas)
    summary = example["main"](["--epochs", "1", "--canvases", "32", "--test-canvases", "16", "--size", str(size),
                               "--width-multiplier", "0.25", "--output", str(tmp_path)])
    with open(tmp_path / "summary.json") as f:
        assert json.load(f) == summary
    # The reported mean IoU is the saved model's on the same held-out canvases.
    import keras

    model = keras.saving.load_model(tmp_path / "model.keras")
    _, (test_images, test_labels) = example["split_digits"](0)
    x, y = example["make_canvases"](test_images, test_labels, 16, size, seed=1)
    assert example["mean_iou"](model, x, y) == pytest.approx(summary["mean_iou"], abs=1e-6)
    assert summary["output_stride"] == 16 and 0 <= summary["mean_iou"] <= 1
