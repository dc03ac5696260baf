"""Batch normalization that runs TensorFlow's fused kernel."""

import keras
from keras import ops

# Input dtypes the fused kernel takes; its statistics and parameters are float32.
_FUSED_DTYPES = ("float32", "bfloat16", "float16")


@keras.saving.register_keras_serializable(package="keras_resnets")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` on TensorFlow's fused kernel.

    The same layer (same arguments, weights, variable names, outputs and
    moving-statistics updates), with a faster path on the TensorFlow backend:
    Keras 3 normalizes with several elementwise operations there, forward and
    backward, where `FusedBatchNormV3` / `FusedBatchNormGradV3` do it in one
    pass each, about twice as fast on CPU. In inference `FusedBatchNormV3`
    also lets TensorFlow's graph optimizer fold a preceding `Conv2D` (and a
    following ReLU) into one fused convolution.

    The fused path covers 4-D channels-last inputs normalized over the last
    axis, with `center` and `scale`, without a mask, renormalization or
    `synchronized`; and not when `_moments` has been replaced on the instance
    (as `keras_resnets.training.distribute.set_synchronized_batchnorm` does
    for the global batch's statistics). Everything else, and other backends,
    run Keras's own computation.

    Under a `tf.distribute` strategy with several replicas, when each
    replica normalizes with its own part of the batch (Keras's default; not
    `synchronized`, nor `keras_resnets.training.distribute`'s synchronized
    moments), every training step sets each replica's moving statistics to
    the mean of the replicas' updates: one all-reduce per layer, as
    `tf.keras`'s batch norm did (`aggregation=MEAN`). Keras 3's own layer
    updates each replica's copy with its own moments only, so the copies
    drift apart and a saved model keeps the first replica's: statistics of
    1/N of the data (two replicas of ResNet-8 after 5 steps of `fit`: 0.12
    apart). So the moving mean follows the global batch's mean, and the
    moving variance the mean of the replicas' variances.

    Args:
        **kwargs: the `keras.layers.BatchNormalization` arguments (`axis`,
            `momentum`, `epsilon`, `center`, `scale`, initializers, ...).

    Example:

    >>> layer = BatchNormalization(momentum=0.9, epsilon=1e-5)
    >>> layer(keras.ops.ones((2, 4, 4, 8)), training=True).shape
    (2, 4, 4, 8)
    """

    def _fused(self, inputs, mask):
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and self.center
            and self.scale
            and not self.renorm
            and not self.synchronized
            and "_moments" not in vars(self)
            and keras.backend.standardize_dtype(inputs.dtype) in _FUSED_DTYPES
        )

    def _float32_weights(self):
        """gamma, beta, moving mean and moving variance, as float32 tensors."""
        return [ops.cast(w, "float32") for w in
                (self.gamma, self.beta, self.moving_mean, self.moving_variance)]

    def inference_scale_shift(self):
        """The inference-mode normalization as `x * scale + shift` per
        channel: float32 `(scale, shift)`, `scale = gamma /
        sqrt(moving_variance + epsilon)`, `shift = beta - moving_mean * scale`
        (what `conv_norm` folds into a convolution)."""
        gamma, beta, moving_mean, moving_variance = self._float32_weights()
        scale = gamma * ops.rsqrt(moving_variance + self.epsilon)
        return scale, beta - moving_mean * scale

    def _replica_context_of_local_moments(self):
        """The replica context (TensorFlow) when this layer's training
        step runs on one of several replicas with the replica's own batch
        moments; None otherwise."""
        if keras.backend.backend() != "tensorflow" or self.synchronized or "_moments" in vars(self):
            return None
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        return context if context is not None and context.num_replicas_in_sync > 1 else None

    def _average_moving_statistics(self, context):
        """Sets this replica's moving mean and variance to the mean of all
        replicas' (one all-reduce of both)."""
        import tensorflow as tf

        both = context.all_reduce("mean", tf.concat([self.moving_mean.value, self.moving_variance.value], 0))
        channels = self.moving_mean.shape[0]
        self.moving_mean.assign(both[:channels])
        self.moving_variance.assign(both[channels:])

    def call(self, inputs, training=None, mask=None):
        outputs = self._call(inputs, training, mask)
        if training and self.trainable:
            context = self._replica_context_of_local_moments()
            if context is not None:
                self._average_moving_statistics(context)
        return outputs

    def _call(self, inputs, training, mask):
        if not self._fused(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        # Keras normalizes bfloat16 and float16 inputs in float32 and rounds
        # the result once; the kernel does the same inside (float32
        # statistics and arithmetic, one rounding of the output), so the
        # input goes in as it is, without a cast through memory each way.
        gamma, beta, moving_mean, moving_variance = self._float32_weights()
        if training and self.trainable:
            outputs, mean, variance = tf.raw_ops.FusedBatchNormV3(
                x=inputs,
                scale=gamma,
                offset=beta,
                mean=tf.zeros((0,)),
                variance=tf.zeros((0,)),
                epsilon=self.epsilon,
                exponential_avg_factor=1.0,
                data_format="NHWC",
                is_training=True,
            )[:3]
            # The kernel normalizes with the biased variance but returns the
            # unbiased one (x n / (n - 1), n = N * H * W; n / max(n - 1, 1));
            # Keras's moving variance averages the biased one.
            n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), "float32")
            variance = variance * (tf.maximum(n - 1.0, 1.0) / n)
            self.moving_mean.assign(
                moving_mean * self.momentum + mean * (1.0 - self.momentum)
            )
            self.moving_variance.assign(
                moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            outputs = tf.raw_ops.FusedBatchNormV3(
                x=inputs,
                scale=gamma,
                offset=beta,
                mean=moving_mean,
                variance=moving_variance,
                epsilon=self.epsilon,
                data_format="NHWC",
                is_training=False,
            )[0]
        return ops.cast(outputs, self.compute_dtype)
