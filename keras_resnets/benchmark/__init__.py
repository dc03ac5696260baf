"""`keras-resnets benchmark`: speed and memory side by side with the peers.

Training and inference throughput of keras_resnets models against
keras.applications, a ResNeXt-50 of stock `keras.layers.Conv2D(groups=32)`
and torchvision on the same CPU threads, in float32 and mixed bfloat16, each
also as a fraction of the machine's measured matrix-multiply peak.
TensorFlow loads when one of these is first used (`keras_resnets.utils.lazy`).

>>> from keras_resnets.benchmark import run_benchmark, format_report
>>> print(format_report(run_benchmark(models=["resnet50"], peers=[])))  # doctest: +SKIP
"""

from keras_resnets.utils.lazy import attach

__all__ = ["PEERS", "TARGETS", "format_report", "matmul_peak_gflops", "measure_keras_model",
           "run_benchmark", "stock_resnext50", "write_json"]

__getattr__, __dir__ = attach(
    __name__,
    {
        "measure_keras_model": "keras_resnets.benchmark.measure",
        "matmul_peak_gflops": "keras_resnets.benchmark.peak",
        **dict.fromkeys(("PEERS", "stock_resnext50"), "keras_resnets.benchmark.peers"),
        **dict.fromkeys(("TARGETS", "format_report", "run_benchmark", "write_json"), "keras_resnets.benchmark.run"),
    },
    submodules=("command", "layers", "measure", "peak", "peers", "run", "timing"),
)
