"""Semantic segmentation offline: handwritten digits on larger canvases, a
ResNet-18 backbone at output stride 16 under keras-hub's DeepLabV3.

    pip install ".[keras-hub]"
    python examples/segment_digits.py                    # about 7 minutes on 2 CPU cores
    python examples/segment_digits.py --epochs 3 --canvases 300

scikit-learn's digits (8x8, no download) are split into training and
held-out digits first; each canvas (96x96 by default) gets 1 to 3 of them at
random positions and scales (16 to 40 px). The mask gives every pixel of a
digit's strokes its class (digit + 1) and every other pixel 0 (background):
11 classes. The backbone is `keras_resnets.ResNet18(include_top=False,
output_stride=16)`: its last stage dilated, 6x6 features for a 96 px canvas
instead of 3x3. keras-hub's DeepLabV3 reads keras-hub's level names
(`keras_resnets.keras_hub.as_image_encoder`): atrous spatial pyramid pooling
on the dilated last stage ("P4", stride 16), upsampled 4x and joined with the
stride-4 features ("P2"). The script reports the mean intersection over union
(`keras.metrics.MeanIoU`, the 11 classes) on canvases made of the held-out
digits, and writes `summary.json` and the model into `--output`.
"""

import argparse
import json
import os
import time

import numpy as np

CLASSES = 11  # background and the ten digits


def split_digits(seed=0, held_out=0.25):
    """scikit-learn's digits as float images in [0, 1], split into
    (train_images, train_labels), (test_images, test_labels)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype("float32") / 16.0
    order = np.random.default_rng(seed).permutation(len(images))
    cut = int(len(images) * (1 - held_out))
    train, test = order[:cut], order[cut:]
    return (images[train], digits.target[train]), (images[test], digits.target[test])


def make_canvases(images, labels, count, size=96, per_canvas=(1, 3), scales=(16, 40), seed=0):
    """`count` canvases `(size, size, 3)` of the given digits and their
    masks `(size, size, 1)`: class digit + 1 on the strokes (the scaled
    digit's pixels brighter than half its maximum), 0 elsewhere. A digit
    placed later covers the earlier ones' strokes where they overlap; its
    faint edge only brightens them."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    canvases = np.zeros((count, size, size), "float32")
    masks = np.zeros((count, size, size), "int32")
    for i in range(count):
        for _ in range(rng.integers(per_canvas[0], per_canvas[1] + 1)):
            k = rng.integers(len(images))
            side = int(rng.integers(scales[0], scales[1] + 1))
            digit = tf.image.resize(images[k][..., None], (side, side), method="bilinear").numpy()[..., 0]
            top, left = rng.integers(0, size - side + 1, 2)
            window = (i, slice(top, top + side), slice(left, left + side))
            stroke = digit > 0.5 * digit.max()
            canvases[window] = np.where(stroke, digit, np.maximum(canvases[window], digit))
            masks[window] = np.where(stroke, labels[k] + 1, masks[window])
    return np.repeat(canvases[..., None], 3, axis=-1), masks[..., None]


def build_segmenter(size, output_stride=16, width_multiplier=1.0):
    """keras-hub's DeepLabV3 on a keras_resnets ResNet-18 trunk."""
    import keras_hub

    import keras_resnets
    from keras_resnets.keras_hub import as_image_encoder

    trunk = keras_resnets.ResNet18(include_top=False, output_stride=output_stride, input_shape=(size, size, 3),
                                   width_multiplier=width_multiplier)
    encoder = as_image_encoder(trunk)
    deepest = max(encoder.pyramid_outputs, key=lambda level: int(level[1:]))
    backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder,
        spatial_pyramid_pooling_key=deepest,
        upsampling_size=encoder.feature_strides[deepest] // encoder.feature_strides["P2"],
        low_level_feature_key="P2",
        # The atrous rates suit the 6x6 features of a 96 px canvas (DeepLab's
        # 6, 12, 18 suit the 33x33 of 513 px).
        dilation_rates=[1, 2, 3],
        image_shape=(size, size, 3),
    )
    return keras_hub.models.DeepLabV3ImageSegmenter(backbone=backbone, num_classes=CLASSES)


def mean_iou(model, canvases, masks, batch_size=32):
    """Mean intersection over union of the 11 classes on `canvases`."""
    import keras

    metric = keras.metrics.MeanIoU(num_classes=CLASSES, sparse_y_true=True, sparse_y_pred=True)
    for start in range(0, len(canvases), batch_size):
        logits = model.predict_on_batch(canvases[start:start + batch_size])
        metric.update_state(masks[start:start + batch_size], np.argmax(logits, axis=-1)[..., None])
    return float(metric.result())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--canvases", type=int, default=1500, help="training canvases")
    parser.add_argument("--test-canvases", type=int, default=500)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output-stride", type=int, default=16, choices=(8, 16, 32))
    parser.add_argument("--width-multiplier", type=float, default=0.5, help="the trunk's width (1.0: ResNet-18's)")
    parser.add_argument("--output", default=os.path.join("saved_models", "segment_digits"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras

    keras.utils.set_random_seed(args.seed)
    (train_images, train_labels), (test_images, test_labels) = split_digits(args.seed)
    x_train, y_train = make_canvases(train_images, train_labels, args.canvases, args.size, seed=args.seed)
    x_test, y_test = make_canvases(test_images, test_labels, args.test_canvases, args.size, seed=args.seed + 1)
    model = build_segmenter(args.size, args.output_stride, args.width_multiplier)
    steps = args.epochs * -(-args.canvases // args.batch_size)
    model.compile(
        optimizer=keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(2e-3, steps), weight_decay=1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # (keras-hub's default metric takes one-hot masks.)
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy")],
    )
    started = time.time()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
              verbose=1 if os.isatty(1) else 2)
    seconds = time.time() - started
    summary = {
        "mean_iou": mean_iou(model, x_test, y_test),
        # What predicting background everywhere scores: 1/11 of the
        # background's IoU, the other classes 0.
        "mean_iou_all_background": mean_iou(_AllBackground(), x_test, y_test),
        "train_seconds": round(seconds, 1),
        "epochs": args.epochs,
        "train_canvases": args.canvases,
        "test_canvases": args.test_canvases,
        "size": args.size,
        "output_stride": args.output_stride,
        "params": int(model.count_params()),
    }
    os.makedirs(args.output, exist_ok=True)
    model.save(os.path.join(args.output, "model.keras"))
    with open(os.path.join(args.output, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"mean IoU on {args.test_canvases} held-out canvases: {summary['mean_iou']:.3f} "
          f"(background everywhere: {summary['mean_iou_all_background']:.3f}); "
          f"trained {args.epochs} epochs in {seconds:.0f} s")
    return summary


class _AllBackground:
    """A stand-in model that predicts the background everywhere."""

    def predict_on_batch(self, canvases):
        logits = np.zeros((*canvases.shape[:3], CLASSES), "float32")
        logits[..., 0] = 1.0
        return logits


if __name__ == "__main__":
    main()
