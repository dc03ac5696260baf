"""Export for deployment: SavedModel, LiteRT / TFLite files, and their checks.

- `saved_model(model, directory)`: a TensorFlow SavedModel whose
  `serving_default` signature takes raw `uint8` images and returns class
  probabilities; frozen (the weights as constants, every batch norm
  folded), in float32 or with `keep_precision=True` the model's own.
- `tflite(model, path, quantize=None | "float16" | "dynamic" | "int8",
  representative_data=...)`: a `.tflite` file of builtin operators only.
- `verify(path, model, data)`: runs the file in the LiteRT interpreter
  (XNNPACK) or the SavedModel in TensorFlow; differences, top-1 agreement,
  accuracy, size and batch-1 latency.
- `benchmark(model, {label: path})`: LiteRT latency next to Keras `predict`
  and a `tf.function`, as ratios.
- `onnx(model, path)`: an ONNX file (Keras' exporter; the `onnx` extra),
  which `verify` runs in onnxruntime.

TensorFlow loads when one of these is first used (`keras_resnets.utils.lazy`).

>>> from keras_resnets import export
>>> model = keras_resnets.ResNet20(input_shape=(32, 32, 3), classes=10)  # doctest: +SKIP
>>> export.tflite(model, "/tmp/resnet20.tflite")  # doctest: +SKIP
>>> print(export.format_table([export.verify("/tmp/resnet20.tflite", model, images)]))  # doctest: +SKIP
"""

from keras_resnets.utils.lazy import attach

__all__ = [
    "saved_model", "serving_function", "tflite", "QUANTIZATIONS", "representative_images",
    "verify", "Verification", "format_table", "benchmark", "format_benchmark",
    "load_interpreter", "tflite_ops", "float32_model", "onnx",
]

__getattr__, __dir__ = attach(
    __name__,
    {
        "float32_model": "keras_resnets.export.common",
        **dict.fromkeys(("QUANTIZATIONS", "representative_images", "tflite"), "keras_resnets.export.convert"),
        **dict.fromkeys(("Verification", "benchmark", "format_benchmark", "format_table", "load_interpreter",
                         "tflite_ops", "verify"), "keras_resnets.export.runtime"),
        "onnx": "keras_resnets.export.onnx_format",
        **dict.fromkeys(("saved_model", "serving_function"), "keras_resnets.export.serving"),
    },
    submodules=("command", "common", "convert", "onnx_format", "runtime", "serving"),
)
