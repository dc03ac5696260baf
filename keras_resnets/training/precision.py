"""Choosing the mixed-precision policy."""

import contextlib

from keras_resnets.utils.validation import UsageError

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16", "float64")
"""The allowed `precision` values. "float64" is for exactness checks, not for
speed: a distributed run in float64 gives a one-device run's weights within
rounding of about 1e-16 per operation (see `keras_resnets.training.distribute`)."""


def cpu_has_bfloat16():
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision):
    """The Keras dtype policy name for `precision`.

    "auto" picks "mixed_float16" on a GPU, "mixed_bfloat16" on a CPU with
    native bfloat16 arithmetic (keras.applications' ResNet-50 trains about
    1.35x faster than in float32 on an AVX512-BF16 CPU), "float32" otherwise,
    and "float32" on JAX's CPU: XLA's CPU kernels gain nothing from bfloat16
    (ResNet-20 training, 32 px, batch 128: 174 against 170 img/s in float32),
    and the default digits run scored 0.978-0.986 over five seeds in
    `mixed_bfloat16` against 0.986-0.994 in float32 (docs/backends.md).
    "float64" (never picked by "auto") computes and stores everything in
    double precision, without the float32 fast paths (oneDNN, the fused
    batch-norm kernel): it is there to check that two ways of computing the
    same step agree, free of float32 rounding.
    """
    if precision not in PRECISIONS:
        raise UsageError(
            f"`precision` must be one of {', '.join(repr(p) for p in PRECISIONS)}; "
            f"received precision={precision!r}."
        )
    if precision != "auto":
        return precision
    if gpu_available():
        return "mixed_float16"
    from keras_resnets.utils.backend import configured_backend

    if configured_backend() == "jax":
        return "float32"
    return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"


def gpu_available():
    """Whether Keras's backend (TensorFlow, JAX or PyTorch) sees a GPU."""
    from keras_resnets.utils.backend import configured_backend

    backend = configured_backend()
    if backend == "jax":
        import jax

        return any(device.platform == "gpu" for device in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def set_precision(precision):
    """Sets Keras's global dtype policy; returns the policy name."""
    import keras

    policy = resolve_precision(precision)
    keras.config.set_dtype_policy(policy)
    return policy


@contextlib.contextmanager
def dtype_policy_restored():
    """A block that may change Keras's global dtype policy (a run sets the
    one it trains in): after it, even when it raised, the policy is the one
    before, so that a caller's next model is not built in mixed precision.
    Yields that policy."""
    import keras

    policy = keras.config.dtype_policy()
    try:
        yield policy
    finally:
        keras.config.set_dtype_policy(policy)
