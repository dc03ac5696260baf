"""Training on several devices or hosts with TensorFlow's `tf.distribute`.

- `make_strategy` turns `--strategy auto|none|mirrored|multiworker|tpu` into a
  `tf.distribute.Strategy`: `MirroredStrategy` (the GPUs of one host),
  `MultiWorkerMirroredStrategy` (several hosts, described by the standard
  `TF_CONFIG` environment variable) or `TPUStrategy` (a Cloud TPU).
- `fit_distributed` trains under any of them. `model.fit` cannot: with Keras
  3.15 and TensorFlow 2.21 it fails under `MultiWorkerMirroredStrategy`
  ("Attempt to convert a value (PerReplica:...) with an unsupported type",
  keras-team/keras#20585). Here each step is `strategy.run` over the Keras
  model and optimizer, and the rest is what `fit` does: the same Keras
  callbacks, a progress bar, validation after each epoch, a `History`.

Rules:

- The batch size is global: each step trains on `batch_size` images split
  evenly across the replicas (all devices of all workers), and the loss is
  the sum over the replica's images divided by the global count. The
  gradients summed across replicas are then the gradient of the mean loss
  over the global batch, as on one device; the recipe's learning rate, which
  scales with the global batch (`recipes.scaled_lr`), applies unchanged.
- Batch normalization is synchronized across replicas by default: in
  training each layer normalizes with the mean and variance of the global
  batch (two all-reduces per layer, `_global_moments`), and its moving
  statistics follow those global moments, identical on every replica. So a
  step is the same computation as on one device with the whole batch, up to
  the order of float additions (sums are split by replica). Measured on
  ResNet-20, 8 px digits, batch 256, lr 0.02, five steps
  (tests/test_distribute.py): in float64 (`precision="float64"`) two
  workers, two devices of one process and one device agree within 1.2e-14;
  in float32 two workers and two devices give equal weights, and they end
  0.02 from one device, because the batch-norm backward pass (it divides by
  small standard deviations) amplifies float32 rounding over the steps, and
  one device runs the fused batch-norm kernel
  (`keras_resnets.layers.BatchNormalization`) where synchronized batch norm
  runs Keras's own arithmetic (with Keras's arithmetic on one device too:
  0.005).
  `sync_batchnorm=False` keeps them per replica (cheaper: one all-reduce per
  layer, of the moving statistics, which `BatchNormalization` averages
  across replicas; but each replica normalizes a smaller batch: the results
  differ from one device's).
- Every worker runs every callback (a checkpoint reads variables that may be
  synchronized on read, which is a collective); only the chief writes into
  the run folder, the others into a temporary folder removed at the end.
- A worker that dies makes the others stop with `WorkerLostError` within
  about `10 s` (the coordination service's heartbeats). A worker that lives
  but stops making progress (a hung file system, a deadlock) makes them stop
  after `collective_timeout` seconds without a finished step (`Watchdog`).
  Restarting every worker with `resume=True` continues from the last backup.
- The collective timeout is one watchdog thread per process, not TensorFlow's
  per-collective timeout (`CommunicationOptions(timeout_seconds=...)`): for
  that one TensorFlow starts a thread that sleeps for the whole timeout beside
  every collective it launches (`SchedNonBlockingClosureAfter`), and
  synchronized batch norm launches four per layer per step. With 300 s that
  was about 1,500 threads more per epoch per worker for ResNet-20 on the
  digits, until the process could start no more (measured: 15,769 threads
  and an abort in epoch 10 of 12; 122-127 threads, flat, without it).
- Each collective of a traced step keeps the instance key it got when the
  step was traced (`_instance_keys_at_trace_time`), and each step is traced
  once per worker, for the distributed dataset's element spec (the same on
  every worker, so the workers' keys stay in step). TensorFlow's default
  gives every collective a new key at every call, and its collective
  runtime keeps a record per key for the life of the process: about 1.5 KiB
  per collective per step, 85 KiB per step for ResNet-20 with synchronized
  batch norm (measured on two logical CPUs; 0 with the keys kept), which
  grows without bound over a long run.
- On JAX and PyTorch, "auto" and "none" train on one device with
  `model.fit` (`OneDevice` stands in for the strategy); the other
  strategies are TensorFlow's and are refused with an error that names the
  backend. (Keras's own `keras.distribution.DataParallel` spreads a JAX
  model over several devices; `train` does not set it up.)
"""

import contextlib
import functools
import json
import os
import pathlib
import shutil
import threading
import time

import keras
import numpy as np

from keras_resnets.training.settings import STRATEGIES, check_strategy_backend
from keras_resnets.utils.backend import configured_backend, require_tensorflow
from keras_resnets.utils.validation import UsageError

tf = require_tensorflow("keras_resnets.training (tf.data pipelines and tf.distribute strategies)")

DEFAULT_COLLECTIVE_TIMEOUT = 300.0
"""Seconds a multi-worker run may go without a finished step (waiting for its
peers in a collective, say) before it stops with `WorkerLostError`."""


class WorkerLostError(RuntimeError):
    """A peer of a multi-worker run stopped (or stopped answering)."""


def _tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise UsageError(f"`TF_CONFIG` is not valid JSON ({e}); received TF_CONFIG={raw!r}.") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise UsageError(
            "`TF_CONFIG` must be a JSON object with a \"cluster\" and a \"task\", e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}; '
            f"received TF_CONFIG={raw!r}."
        )
    return config


def resolve_strategy(strategy="auto", tpu=None):
    """The strategy name `strategy="auto"` stands for on this machine.

    "auto" is "tpu" when `tpu` is given, "multiworker" when `TF_CONFIG`
    names more than one task, "mirrored" when several GPUs are visible, else
    "none" (one device, `model.fit`). On JAX and PyTorch "auto" is "none",
    and the tf.distribute strategies (and `tpu`) are refused.
    """
    if strategy not in STRATEGIES:
        raise UsageError(
            f"`strategy` must be one of {', '.join(repr(s) for s in STRATEGIES)}; "
            f"received strategy={strategy!r}."
        )
    if tpu is not None and strategy not in ("auto", "tpu"):
        raise UsageError(f"`tpu` needs strategy='tpu' (or 'auto'); received strategy={strategy!r}, tpu={tpu!r}.")
    check_strategy_backend(strategy, tpu)
    if configured_backend() != "tensorflow":
        return "none"
    if strategy != "auto":
        return strategy
    if tpu is not None:
        return "tpu"
    cluster = _tf_config().get("cluster", {})
    if sum(len(tasks) for tasks in cluster.values()) > 1:
        return "multiworker"
    return "mirrored" if several_gpus() else "none"


def several_gpus():
    """Whether TensorFlow sees more than one GPU on this host (where
    "auto" means "mirrored")."""
    return len(tf.config.list_physical_devices("GPU")) > 1


def make_strategy(strategy="auto", tpu=None):
    """A `tf.distribute.Strategy` for `strategy`.

    Args:
        strategy: "auto", "none" (the default strategy: one device),
            "mirrored" (every GPU of this host, or its CPU), "multiworker"
            (the hosts of `TF_CONFIG`) or "tpu".
        tpu: the TPU's name or address ("grpc://10.0.0.2:8470", or a Cloud
            TPU name) for "tpu"; "local" for a TPU VM's own chips.

    Returns:
        The strategy; its `num_replicas_in_sync` is the number of replicas.

    Example:

    >>> strategy = make_strategy("mirrored")  # doctest: +SKIP
    >>> with strategy.scope():  # doctest: +SKIP
    ...     model = keras_resnets.ResNet50()
    """
    name = resolve_strategy(strategy, tpu)
    if name == "none":
        return tf.distribute.get_strategy() if configured_backend() == "tensorflow" else OneDevice()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        config = _tf_config()
        if not config:
            raise UsageError(
                "strategy='multiworker' reads the cluster from the `TF_CONFIG` environment variable, which is "
                'not set; e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}\' on the first host, "index": 1 on the second.'
            )
        if "task" not in config:
            raise UsageError(f"`TF_CONFIG` has no \"task\" (this worker's type and index); received {config!r}.")
        # No `CommunicationOptions(timeout_seconds=...)`: see the module
        # docstring; `Watchdog` bounds a hang instead.
        return tf.distribute.MultiWorkerMirroredStrategy()
    if tpu is None:
        raise UsageError("strategy='tpu' needs the TPU's address: tpu='grpc://HOST:8470', a Cloud TPU name or 'local'.")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError) as e:
        raise UsageError(f"no TPU reachable at tpu={tpu!r}: {e}") from None
    return tf.distribute.TPUStrategy(resolver)


class OneDevice:
    """What `train` reads of a strategy, for one device on JAX or PyTorch,
    where `tf.distribute` does not place Keras's variables."""

    num_replicas_in_sync = 1
    cluster_resolver = None

    def scope(self):
        return contextlib.nullcontext()


def is_chief(strategy):
    """Whether this process writes the run's files: the "chief" task, or
    worker 0 when the cluster has no chief; always true on one host."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and resolver.task_id == 0 and not has_chief


def broadcast_from_first_replica(strategy, arrays):
    """`arrays` (NumPy) as the cluster's first replica (replica 0, on the
    chief) holds them, returned on every worker: each replica contributes
    its own values if it is the first and zeros otherwise, and an all-reduce
    sums them, which is exact (adding zeros changes no bit). On one replica,
    or without `tf.distribute` (`OneDevice`), `arrays` themselves."""
    if isinstance(strategy, OneDevice) or strategy.num_replicas_in_sync == 1:
        return list(arrays)

    @tf.function
    def broadcast(*values):
        def replica(*values):
            context = tf.distribute.get_replica_context()
            first = tf.equal(context.replica_id_in_sync_group, 0)
            # One all-reduce an array: a list is packed into one tensor, of one dtype.
            return [context.all_reduce("sum", tf.where(first, v, tf.zeros_like(v))) for v in values]

        return strategy.run(replica, args=values)

    summed = broadcast(*(tf.constant(a) for a in arrays))
    return [np.asarray(strategy.experimental_local_results(value)[0]) for value in summed]


def _global_moments(layer, inputs, mask=None):
    """A `BatchNormalization`'s mean and variance over the global batch, in
    two passes like `tf.nn.moments` on one device: the mean, then the mean
    squared deviation from it.

    Keras's own `synchronized=True` computes E[x^2] - E[x]^2 in one pass,
    which loses precision where the mean is large next to the spread. On one
    device, ResNet-20 on 8 px digits (batch 256, lr 0.02, 5 steps) ends
    0.30 from plain batch norm with it, and 4.5e-4 with this (the float
    rounding of a different summation order, grown over the steps); after
    one step this agrees to 1.2e-7.
    """
    ctx = tf.distribute.get_replica_context()
    if mask is not None or ctx is None:
        # (None: a call in the strategy's cross-replica context, outside
        # `strategy.run`, as a callback makes: the whole batch is this one.)
        return type(layer)._moments(layer, inputs, mask)
    axes = layer._reduction_axes
    local_sum = tf.reduce_sum(inputs, axes, keepdims=True)
    local_count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(inputs), axes)), inputs.dtype)
    total, count = ctx.all_reduce("sum", [local_sum, local_count])
    mean = tf.math.divide_no_nan(total, count)
    squares = tf.reduce_sum(tf.math.squared_difference(inputs, tf.stop_gradient(mean)), axes, keepdims=True)
    variance = tf.math.divide_no_nan(ctx.all_reduce("sum", squares), count)
    return tf.squeeze(mean, axes), tf.squeeze(variance, axes)


def set_synchronized_batchnorm(model, synchronized=True):
    """Makes every `BatchNormalization` of `model` normalize with the mean and
    variance of the global batch (`synchronized=True`, see `_global_moments`)
    or of its replica's part (False, Keras's default)."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            if synchronized:
                layer._moments = functools.partial(_global_moments, layer)
            elif "_moments" in vars(layer):
                del layer._moments


class Watchdog:
    """Stops the collectives of a process that makes no progress.

    One thread per process: it wakes every second or so, and when `beat()`
    has not been called for `timeout` seconds it aborts every collective
    this process runs or will run (`abort_collective_ops`, as TensorFlow's
    own health check of multi-worker strategies does). A step waiting for a
    peer then fails with `tf.errors.DeadlineExceededError`, which
    `fit_distributed` reports as `WorkerLostError`. A timeout of None never
    fires.

    The caller beats whenever a unit of work ends (a step, an evaluation
    batch, an epoch's callbacks), so `timeout` bounds the longest of them,
    the first step's tracing included.

    Example:

    >>> with Watchdog(300) as watchdog:  # doctest: +SKIP
    ...     for batch in dataset:
    ...         train_step(batch)
    ...         watchdog.beat()
    """

    def __init__(self, timeout):
        self.timeout = None if timeout is None else float(timeout)
        self.fired = None
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = None

    def beat(self):
        self._last = time.monotonic()

    def __enter__(self):
        if self.timeout is not None:
            self.beat()
            self._thread = threading.Thread(target=self._watch, name="keras_resnets-watchdog", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self):
        while not self._stop.wait(min(1.0, self.timeout / 4)):
            idle = time.monotonic() - self._last
            if idle > self.timeout:
                from tensorflow.python.eager import context

                self.fired = (
                    f"no step finished for {idle:.0f} s (collective_timeout={self.timeout:g} s): a peer is "
                    "stuck or much slower"
                )
                context.context().abort_collective_ops(tf.errors.DEADLINE_EXCEEDED, self.fired)
                return


class DistributedSteps:
    """The training and evaluation steps of `model` under `strategy`.

    Each returns `[loss_sum, correct, count]` summed over all replicas, for
    one global batch. Each is traced once, for `element_spec` (a
    distributed dataset's): a batch of another size (the last of an epoch,
    or a worker's smaller part of it) reuses the trace, so every worker
    traces the same functions at the same points. `evaluate` beats
    `watchdog` after each batch.
    """

    def __init__(self, model, strategy, loss, element_spec, watchdog=None):
        self.model = model
        self.strategy = strategy
        self.watchdog = watchdog or Watchdog(None)
        # Per-image losses: the mean is taken over the global batch below.
        self.loss = loss.__class__.from_config({**loss.get_config(), "reduction": None})
        self.train_step = tf.function(self._train_step, input_signature=[element_spec])
        self.test_step = tf.function(self._test_step, input_signature=[element_spec])

    def _sums(self, x, y, training):
        logits = self.model(x, training=training)
        per_image = self.loss(y, logits)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1), tf.argmax(y, -1)), "float32"))
        # The loss keeps the model's dtype (float64 under that policy); the
        # counts are float32, exact up to 2**24 images per batch.
        return logits, tf.reduce_sum(per_image), correct, tf.cast(tf.shape(y)[0], "float32")

    def _replica_train(self, x, y):
        model, optimizer = self.model, self.model.optimizer
        with tf.GradientTape() as tape:
            _, loss_sum, correct, count = self._sums(x, y, training=True)
            # The global count (not batch_size): a last, smaller batch is
            # averaged over the images it has, as on one device.
            global_count = tf.distribute.get_replica_context().all_reduce("sum", count)
            loss = tf.math.divide_no_nan(loss_sum, tf.cast(global_count, loss_sum.dtype))
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return tf.stack([tf.cast(loss_sum, "float32"), correct, count])

    def _replica_test(self, x, y):
        _, loss_sum, correct, count = self._sums(x, y, training=False)
        return tf.stack([tf.cast(loss_sum, "float32"), correct, count])

    def _train_step(self, batch):
        sums = self.strategy.run(self._replica_train, args=batch)
        return self.strategy.reduce("sum", sums, axis=None)

    def _test_step(self, batch):
        sums = self.strategy.run(self._replica_test, args=batch)
        return self.strategy.reduce("sum", sums, axis=None)

    def evaluate(self, dataset):
        """`(loss, accuracy)` over a distributed dataset."""
        total = np.zeros(3)
        for batch in dataset:
            total += self.test_step(batch).numpy()
            self.watchdog.beat()
        return total[0] / max(total[2], 1), total[1] / max(total[2], 1)


def worker_copy(run_dir, tmp_dir, resume):
    """The run folder of a non-chief worker: `tmp_dir`, holding a copy of the
    chief's backup (and first-phase head weights) when resuming, so that
    every worker restores the same state."""
    run_dir, worker_dir = pathlib.Path(run_dir), pathlib.Path(tmp_dir) / pathlib.Path(run_dir).name
    worker_dir.mkdir(parents=True)
    if resume and (run_dir / "backup").is_dir():
        shutil.copytree(run_dir / "backup", worker_dir / "backup")
        for name in ("head.weights.h5", "log.csv"):
            if (run_dir / name).exists():
                shutil.copy2(run_dir / name, worker_dir / name)
    return worker_dir


def evaluate(model, strategy, loss, dataset, collective_timeout=DEFAULT_COLLECTIVE_TIMEOUT):
    """`(loss, accuracy)` of `model` on `dataset` (global batches), computed
    by all replicas of `strategy`.

    Raises:
        WorkerLostError: a peer stopped, or no batch finished for
            `collective_timeout` seconds.
    """
    watchdog = make_watchdog(strategy, collective_timeout)
    dist_dataset = distribute_dataset(strategy, dataset)
    steps = DistributedSteps(model, strategy, loss, dist_dataset.element_spec, watchdog)
    with _peer_errors(watchdog, "evaluation"), watchdog, _instance_keys_at_trace_time():
        return steps.evaluate(dist_dataset)


@contextlib.contextmanager
def _instance_keys_at_trace_time():
    """Within the block, a collective traced into a `tf.function` keeps the
    instance key it gets at tracing (see the module docstring): TensorFlow's
    `CollectiveReplicaLauncher._prefer_unique_instance_key`, which its own
    tests set either way, set to False and restored after."""
    from tensorflow.python.distribute.cross_device_utils import CollectiveReplicaLauncher

    before = CollectiveReplicaLauncher._prefer_unique_instance_key
    CollectiveReplicaLauncher._prefer_unique_instance_key = False
    try:
        yield
    finally:
        CollectiveReplicaLauncher._prefer_unique_instance_key = before


def make_watchdog(strategy, collective_timeout):
    """A `Watchdog` for the collectives of `strategy`: only several workers
    can wait on a peer (one host's devices fail together)."""
    multiworker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    return Watchdog(collective_timeout if multiworker else None)


_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError)


@contextlib.contextmanager
def _peer_errors(watchdog, where):
    """Turns the errors of a lost or stuck peer into `WorkerLostError`;
    `where` says how far the work had come."""
    try:
        yield
    except _PEER_ERRORS as e:
        reason = watchdog.fired or (
            f"a worker of the cluster stopped or did not answer ({type(e).__name__}: "
            f"{str(e).strip().splitlines()[0][:300]})"
        )
        where = where() if callable(where) else where
        raise WorkerLostError(
            f"training stopped at {where}: {reason}. Restart every worker with --resume to continue from "
            "the last completed epoch."
        ) from None


def distribute_dataset(strategy, dataset):
    """`dataset` (of global batches) split across the replicas: worker `i`
    of `n` gets the `i`-th part of each global batch."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def _logs(total, prefix=""):
    count = max(total[2], 1.0)
    return {f"{prefix}loss": float(total[0] / count), f"{prefix}accuracy": float(total[1] / count)}


def fit_distributed(model, strategy, loss, train_data, validation_data, epochs, steps_per_epoch,
                    callbacks=(), verbose=1, chief=True, collective_timeout=DEFAULT_COLLECTIVE_TIMEOUT):
    """`model.fit` under `strategy`, driven by `strategy.run`.

    `model` must have been built and compiled (with its optimizer) inside
    `strategy.scope()`. The callbacks get what `fit` gives them: `on_train_*`,
    `on_epoch_*` with `loss`, `accuracy`, `val_loss`, `val_accuracy`,
    `on_train_batch_*` with the running means, `on_test_begin/end`; a
    callback's `model.stop_training = True` stops after the step.

    Args:
        model: a compiled `keras.Model`.
        strategy: a `tf.distribute.Strategy`.
        loss: the compiled Keras loss (its per-image form is used).
        train_data: `tf.data.Dataset` of global batches `(images, one_hot)`.
        validation_data: the same for validation, or None.
        epochs: int.
        steps_per_epoch: global batches per epoch.
        callbacks: Keras callbacks.
        verbose: 0 (silent), 1 (a progress bar) or 2 (one line per epoch),
            as in `fit`; workers other than the chief print at most one
            line per epoch.
        chief: whether this process is the chief.
        collective_timeout: seconds, several workers: the longest this
            process may go without finishing a step, an evaluation batch or
            an epoch's callbacks (see `Watchdog`); None waits forever.

    Returns:
        The `keras.callbacks.History`.

    Raises:
        WorkerLostError: a peer stopped or got stuck.
    """
    verbose = 1 if verbose == "auto" else int(verbose)
    if not chief and verbose:
        verbose = 2  # the chief's bar is the one to watch
    history = keras.callbacks.History()
    callbacks = keras.callbacks.CallbackList(
        list(callbacks) + [history], add_progbar=verbose > 0, model=model,
        verbose=verbose, epochs=epochs, steps=steps_per_epoch,
    )
    if not model.optimizer.built:
        with strategy.scope():  # its slots are distributed variables too
            model.optimizer.build(model.trainable_variables)
    watchdog = make_watchdog(strategy, collective_timeout)
    train_dist = distribute_dataset(strategy, train_data)
    val_dist = None if validation_data is None else distribute_dataset(strategy, validation_data)
    steps = DistributedSteps(model, strategy, loss, train_dist.element_spec, watchdog)
    model.stop_training = False
    model._initial_epoch = None
    epoch = step = 0
    with (
        _peer_errors(watchdog, lambda: f"epoch {epoch + 1}, step {step + 1}"),
        watchdog,
        _instance_keys_at_trace_time(),
    ):
        callbacks.on_train_begin()
        # `BackupAndRestore` sets `_initial_epoch` when it restored a backup.
        initial_epoch = model._initial_epoch or 0
        for epoch in range(initial_epoch, epochs):
            callbacks.on_epoch_begin(epoch)
            total = np.zeros(3)
            step = 0
            for step, batch in enumerate(train_dist):
                callbacks.on_train_batch_begin(step)
                total += steps.train_step(batch).numpy()
                watchdog.beat()
                callbacks.on_train_batch_end(step, _logs(total))
                if model.stop_training:
                    break
            logs = _logs(total)
            if val_dist is not None and not model.stop_training:
                callbacks.on_test_begin()
                val_loss, val_accuracy = steps.evaluate(val_dist)
                logs.update(val_loss=float(val_loss), val_accuracy=float(val_accuracy))
                callbacks.on_test_end({"loss": logs["val_loss"], "accuracy": logs["val_accuracy"]})
            callbacks.on_epoch_end(epoch, logs)
            watchdog.beat()
            if model.stop_training:
                break
        callbacks.on_train_end()
    return history
