"""Export a trained model to float32 and int8 TFLite files, verify them in LiteRT, and time them.

    keras-resnets train                                  # writes saved_models/resnet20-digits/ (~2 min)
    python examples/export_tflite.py                     # model.tflite and model_int8.tflite beside it
    python examples/export_tflite.py --benchmark         # and batch-1 latency: LiteRT vs Keras

The int8 file is full-integer (int8 weights and activations, raw uint8
images in) and calibrated on 200 training images; both files are verified
on the test split in the LiteRT interpreter with its XNNPACK delegate. With
`--benchmark`, one image goes through Keras `predict`, a `tf.function` of the
model and both files, and the ratios are printed: `predict` pays a large
per-call overhead that a deployed model does not.
"""

import argparse
import os

import keras

from keras_resnets import export
from keras_resnets.data import load_data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="saved_models/resnet20-digits/model.keras")
    parser.add_argument("--data", default="digits", help="the data the model was trained on")
    parser.add_argument("--benchmark", action="store_true", help="print batch-1 latencies")
    parser.add_argument("--runs", type=int, default=100, help="timed runs per latency")
    args = parser.parse_args()
    if not os.path.isfile(args.model):
        parser.error(f"no model at {args.model}: train one first with `keras-resnets train`")

    model = keras.saving.load_model(args.model)
    bundle = load_data(args.data, image_size=model.inputs[0].shape[1])
    stem = os.path.splitext(args.model)[0]
    paths = {
        "LiteRT float32": export.tflite(model, f"{stem}.tflite", overwrite=True),
        "LiteRT int8": export.tflite(
            model, f"{stem}_int8.tflite", quantize="int8",
            representative_data=bundle.train, overwrite=True,
        ),
    }
    results = [export.verify(path, model, bundle.test, runs=args.runs) for path in paths.values()]
    print(export.format_table(results, baseline=results[0]))
    if args.benchmark:
        image = next(iter(bundle.test))[0][:1]
        print(export.format_benchmark(export.benchmark(model, paths, image=image, runs=args.runs)))


if __name__ == "__main__":
    main()
