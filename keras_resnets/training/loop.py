"""`keras_resnets.train`: the package's main job."""

import json
import os
import pathlib
import platform
import re
import shutil
import tempfile
import time

import keras
import numpy as np

from keras_resnets.data import load_data
from keras_resnets.models import build_model, get_spec
from keras_resnets.training import callbacks as cb
from keras_resnets.training import distribute
from keras_resnets.training.precision import set_precision
from keras_resnets.training.recipes import (
    get_recipe,
    make_optimizer,
    scaled_lr,
    steps_per_epoch,
)
from keras_resnets.utils.macs import count_macs
from keras_resnets.utils.validation import check_positive_int

DEFAULT_OUTPUT = "saved_models"
# The default run: ResNet-20 on the digits in about 100 seconds on 2
# CPU cores (the paper's CIFAR recipe, shortened).
DIGITS_EPOCHS = 20
STRATEGIES = distribute.STRATEGIES


def _run_name(model, data):
    data = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(os.path.normpath(data)))
    return f"{model}-{data.strip('_') or 'data'}"


def write_json(path, obj):
    with cb.atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def versions():
    import tensorflow as tf

    import keras_resnets

    return {
        "keras_resnets": keras_resnets.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def with_preprocessing(name, bundle, **model_kwargs):
    """The model `name` taking raw uint8 images: normalization is inside it."""
    inputs = keras.Input(bundle.image_shape, dtype="uint8", name="image")
    variance = [max(s * s, 1e-6) for s in bundle.std]
    x = keras.layers.Normalization(
        mean=bundle.mean, variance=variance, dtype="float32", name="normalize"
    )(inputs)
    return build_model(
        name, input_tensor=x, classes=bundle.num_classes, **model_kwargs
    )


def train(
    model="resnet20",
    data="digits",
    epochs=None,
    batch_size=None,
    lr=None,
    recipe="cifar",
    precision="auto",
    image_size=None,
    output=DEFAULT_OUTPUT,
    run_name=None,
    seed=0,
    resume=False,
    deterministic=False,
    strategy="auto",
    weights=None,
    skip_bad_images=False,
    verbose="auto",
    tpu=None,
    sync_batchnorm=True,
    collective_timeout=distribute.DEFAULT_COLLECTIVE_TIMEOUT,
    **model_kwargs,
):
    """Trains a registered model and writes everything into one run folder.

    Args:
        model: a registered model name (`keras_resnets.list_models()`).
        data: "digits" (default: scikit-learn's handwritten digits, no
            download), "tfds:NAME" or a folder of images, one sub-folder per
            class (see `keras_resnets.data.load_data`).
        epochs: int; defaults to 20 on digits, else the recipe's.
        batch_size: int; defaults to the recipe's.
        lr: float; defaults to the recipe's, scaled linearly with the batch.
        recipe: "cifar", "imagenet" or "finetune" (see
            `keras_resnets.training.recipes`).
        precision: "auto", "float32", "mixed_float16", "mixed_bfloat16" or
            "float64" (for exactness checks, see
            `keras_resnets.training.precision`).
        image_size: int; defaults to the data's natural size.
        output: folder of runs. Defaults to "saved_models".
        run_name: the run's sub-folder; defaults to "<model>-<data>".
        seed: int, seeds Python, NumPy, TensorFlow and the data pipeline.
        resume: bool, continue an interrupted run of the same folder from its
            last completed epoch (`keras.callbacks.BackupAndRestore`).
        deterministic: bool, TensorFlow's deterministic ops: two runs with
            the same seed give identical losses.
        strategy: "auto", "none", "mirrored", "multiworker" or "tpu" (see
            `keras_resnets.training.distribute`). "auto": "tpu" if `tpu` is
            given, "multiworker" if `TF_CONFIG` names several tasks,
            "mirrored" if several GPUs are visible, else "none". Under a
            distributed strategy `batch_size` is the global batch (split
            across all replicas) and the learning rate follows it; only the
            chief worker writes into `output`.
        weights: None or a weights file for the model (`model.save_weights`).
        skip_bad_images: bool, image folders: leave unreadable files out
            (counted in the summary) instead of stopping.
        verbose: Keras `fit` verbosity ("auto" shows a progress bar).
        tpu: the TPU address or name for strategy "tpu" ("local" on a TPU VM).
        sync_batchnorm: bool, distributed strategies: batch norm statistics
            over the global batch (True, as on one device) or per replica.
        collective_timeout: seconds, "multiworker": the longest a worker
            may go without finishing a step (waiting for a stuck peer, say)
            before training stops with `WorkerLostError`; None: no limit.
        **model_kwargs: builder arguments (`drop_path_rate`, `shortcut`, ...).

    Returns:
        `(model, summary)`: the trained `keras.Model` (taking uint8 images)
        and the dict written to `summary.json`.

    Example:

    >>> model, summary = keras_resnets.train("resnet20", "digits", epochs=2)  # doctest: +SKIP
    >>> summary["test_accuracy"]  # doctest: +SKIP
    """
    started = time.time()
    get_spec(model)
    rec = get_recipe(recipe)
    strategy_name = distribute.resolve_strategy(strategy, tpu)
    if epochs is None:
        epochs = DIGITS_EPOCHS if data == "digits" else rec.epochs
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size or rec.batch_size)
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"`lr` must be a positive number; received lr={lr!r}.")
    seed = int(seed)
    # Before any other TensorFlow op: collectives are configured at start-up.
    dist = distribute.make_strategy(strategy_name, tpu)
    chief = distribute.is_chief(dist)

    run_dir = pathlib.Path(output) / (run_name or _run_name(model, data))
    resumed = resume and (run_dir / "backup").exists()
    worker_tmp = None
    if not chief:
        # The same callbacks write here (they read synchronized variables,
        # which takes every worker); the chief's backup is where they resume.
        worker_tmp = tempfile.TemporaryDirectory(prefix="keras_resnets-worker-")
        run_dir = distribute.worker_copy(run_dir, worker_tmp.name, resumed)
    backup_dir = run_dir / "backup"
    if not resumed and run_dir.exists():
        # A fresh run replaces the folder's previous results.
        for stale in ("backup", "tensorboard"):
            shutil.rmtree(run_dir / stale, ignore_errors=True)
        for stale in ("log.csv", "summary.json", "head.weights.h5"):
            (run_dir / stale).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)

    keras.utils.set_random_seed(seed)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    policy = set_precision(precision)

    bundle = load_data(
        data, image_size=image_size, batch_size=batch_size, augment=rec.augment,
        seed=seed, skip_bad_images=skip_bad_images,
    )
    with dist.scope():
        net = with_preprocessing(model, bundle, **model_kwargs)
    if weights is not None:
        net.load_weights(weights)
    if strategy_name != "none":
        distribute.set_synchronized_batchnorm(net, sync_batchnorm)
    steps = steps_per_epoch(bundle.train_size, batch_size)
    base_lr = scaled_lr(rec, lr, batch_size)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=rec.label_smoothing)
    train_ds = one_hot_labels(bundle.train, bundle.num_classes)
    val_ds = one_hot_labels(bundle.validation, bundle.num_classes)
    test_ds = one_hot_labels(bundle.test, bundle.num_classes)

    nan_guard = cb.NaNGuard()
    timer = cb.EpochTimer()

    def make_callbacks(append):
        # The log is written before the backup: a kill between the two repeats
        # an epoch's row on resumption, it never loses one.
        return [
            cb.CSVLoggerWithStats(str(run_dir / "log.csv"), append=append),
            cb.AtomicBackupAndRestore(str(backup_dir)),
            cb.AtomicModelCheckpoint(
                str(run_dir / "best.keras"), monitor="val_accuracy", mode="max",
                save_best_only=True,
            ),
            keras.callbacks.TensorBoard(str(run_dir / "tensorboard")),
            nan_guard,
            timer,
        ]

    def compile_and_fit(epochs_, lr_, append):
        with dist.scope():
            net.compile(
                optimizer=make_optimizer(rec, lr_, steps, epochs_),
                loss=loss,
                metrics=["accuracy"],
            )
        if strategy_name != "none":
            return distribute.fit_distributed(
                net, dist, loss, train_ds, val_ds, epochs_, steps, make_callbacks(append),
                verbose=verbose, chief=chief, collective_timeout=collective_timeout,
            )
        return net.fit(
            train_ds, validation_data=val_ds, epochs=epochs_, callbacks=make_callbacks(append),
            verbose=verbose, shuffle=False,
        )

    if rec.freeze_batchnorm:
        _freeze_batchnorm(net)
    if rec.head_epochs_fraction > 0:
        head_weights = run_dir / "head.weights.h5"
        head_epochs = max(1, round(epochs * rec.head_epochs_fraction))
        if not (resume and head_weights.exists()):
            head = net.get_layer("predictions")
            for layer in net.layers:
                layer.trainable = layer is head
            compile_and_fit(head_epochs, base_lr, append=resumed)
            for layer in net.layers:
                layer.trainable = True
            if rec.freeze_batchnorm:
                _freeze_batchnorm(net)
            with cb.atomic_path(head_weights) as tmp:
                net.save_weights(tmp)
        else:
            net.load_weights(head_weights)
        compile_and_fit(max(1, epochs - head_epochs), base_lr / 10, append=True)
    else:
        compile_and_fit(epochs, base_lr, append=resumed)

    if nan_guard.failure is not None:
        f = nan_guard.failure
        best = run_dir / "best.keras"
        kept = f"the last good checkpoint is {best}" if best.exists() else "no epoch completed, so no checkpoint was kept"
        raise FloatingPointError(
            f"The loss became {f['loss']} at epoch {f['epoch']}, step {f['step']}: "
            f"training stopped; {kept}. Try a lower --lr or --precision float32."
        )

    if strategy_name == "none":
        test_loss, test_accuracy = net.evaluate(test_ds, verbose=0)
    else:
        test_loss, test_accuracy = distribute.evaluate(net, dist, loss, test_ds, collective_timeout)
        distribute.set_synchronized_batchnorm(net, False)  # the saved model: one device
    cb.atomic_save(net, run_dir / "model.keras")
    log_path = run_dir / "log.csv"
    epochs_logged = 0
    if log_path.exists():
        with open(log_path) as f:
            epochs_logged = max(0, sum(1 for _ in f) - 1)
        cb.plot_history(log_path, run_dir / "history.png")
    ips = timer.images_per_second(bundle.train_size)
    summary = {
        "model": model,
        "data": bundle.name,
        "recipe": rec.name,
        "epochs": epochs,
        "epochs_logged": epochs_logged,
        "batch_size": batch_size,
        "lr": base_lr,
        "image_size": bundle.image_shape[0],
        "num_classes": bundle.num_classes,
        "train_images": bundle.train_size,
        "validation_images": bundle.validation_size,
        "test_images": bundle.test_size,
        "skipped_images": len(bundle.skipped),
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "params": int(sum(np.prod(w.shape) for w in net.trainable_weights)),
        "macs": count_macs(net),
        "train_images_per_second": None if ips is None else round(float(ips), 1),
        "peak_rss_mib": cb.peak_rss_mib(),
        "wall_seconds": round(time.time() - started, 1),
        "precision": policy,
        "seed": seed,
        "deterministic": bool(deterministic),
        "resumed": bool(resumed),
        "strategy": strategy_name,
        "replicas": int(dist.num_replicas_in_sync),
        "sync_batchnorm": bool(sync_batchnorm) if strategy_name != "none" else None,
        "run_dir": str(run_dir),
        "versions": versions(),
    }
    write_json(run_dir / "summary.json", summary)
    if worker_tmp is not None:
        worker_tmp.cleanup()
    return net, summary


def _freeze_batchnorm(model):
    """Non-trainable batch norm, which in Keras 3 also runs in inference mode."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def one_hot_labels(dataset, num_classes):
    """`dataset` of (images, integer labels) with the labels one-hot encoded
    (the categorical losses take label smoothing only on one-hot labels)."""
    import tensorflow as tf

    return dataset.map(lambda images, labels: (images, tf.one_hot(labels, num_classes)))
