"""`precision="auto"` per backend: float32 on JAX's CPU, where XLA gains
nothing from bfloat16 and the digits run trained less accurately in it
(docs/backends.md); on TensorFlow it follows the CPU's bfloat16 hardware
(tests/test_training.py checks that against NumPy's own CPUID)."""

import keras
import pytest

from keras_resnets.training.precision import cpu_has_bfloat16, gpu_available, resolve_precision

pytestmark = pytest.mark.backends


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's choice")
def test_auto_is_float32_on_jax_cpus_even_with_bfloat16_hardware():
    if gpu_available():
        pytest.skip("a GPU: mixed_float16")
    assert resolve_precision("auto") == "float32"
    # Explicit choices are kept on every backend.
    assert resolve_precision("mixed_bfloat16") == "mixed_bfloat16"


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's choice")
def test_auto_follows_the_bfloat16_hardware_on_tensorflow_cpus():
    if gpu_available():
        pytest.skip("a GPU: mixed_float16")
    assert resolve_precision("auto") == ("mixed_bfloat16" if cpu_has_bfloat16() else "float32")
