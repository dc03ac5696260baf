"""`keras_resnets.train`: the package's main job."""

import dataclasses
import json
import pathlib
import platform
import shutil
import tempfile
import time

import keras
import numpy as np

from keras_resnets.data import load_data
from keras_resnets.training import callbacks as cb
from keras_resnets.training import distribute
from keras_resnets.training.precision import dtype_policy_restored, set_precision
from keras_resnets.training.recipes import (
    Recipe,
    get_recipe,
    make_optimizer,
    scaled_lr,
    steps_per_epoch,
)
from keras_resnets.training.run_folder import can_resume, check_run_folder, default_run_name, earlier_run
from keras_resnets.training.settings import DEFAULT_OUTPUT, DIGITS_EPOCHS, resolve_verbose
from keras_resnets.training.starting_point import StartingPoint, starting_point
from keras_resnets.training.transfer import (
    continued_model,
    fit_linear_probe,
    image_transform,
    pretrained_model,
    with_preprocessing,
)
from keras_resnets.utils.macs import count_macs
from keras_resnets.utils.validation import check_data, check_positive_int, check_positive_number
from keras_resnets.weights.pretrained import load_keras_weights


def write_json(path, obj):
    with cb.atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def versions():
    """The versions of what ran: keras_resnets, Keras, its backend (and
    TensorFlow, which runs the data pipelines on every backend)."""
    import importlib.metadata

    import tensorflow as tf

    import keras_resnets

    backend = keras.backend.backend()
    found = {
        "keras_resnets": keras_resnets.__version__,
        "keras": keras.__version__,
        "backend": backend,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    if backend != "tensorflow":
        found[backend] = importlib.metadata.version(backend)
    return found


def train(
    model=None,
    data="digits",
    epochs=None,
    batch_size=None,
    lr=None,
    recipe=None,
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
    overwrite=False,
    **model_kwargs,
):
    """Trains a registered model and writes everything into one run folder.

    Args:
        model: a registered model name (`keras_resnets.list_models()`);
            defaults to "resnet20", or to the model of `weights` when it is
            an earlier run's `.keras` file.
        data: "digits" (default: scikit-learn's handwritten digits, no
            download), "tfds:NAME" or a folder of images, one sub-folder per
            class (see `keras_resnets.data.load_data`).
        epochs: int; defaults to 20 on digits, else the recipe's.
        batch_size: int; defaults to the recipe's.
        lr: float; defaults to the recipe's, scaled linearly with the batch.
        recipe: "cifar", "imagenet" or "finetune" (see
            `keras_resnets.training.recipes`); defaults to "finetune" when
            `weights` are given, else "cifar".
        precision: "auto", "float32", "mixed_float16", "mixed_bfloat16" or
            "float64" (for exactness checks, see
            `keras_resnets.training.precision`).
        image_size: int; defaults to the data's natural size (an earlier
            run's, when `weights` is its `.keras` model).
        output: folder of runs. Defaults to "saved_models".
        run_name: the run's sub-folder; defaults to "<model>-<data>".
        seed: int, seeds Python, NumPy, TensorFlow and the data pipeline.
        resume: bool, continue an interrupted run of the same folder from its
            last completed epoch (`keras.callbacks.BackupAndRestore`). A
            folder with no backup is refused (see
            `keras_resnets.training.run_folder`).
        deterministic: bool, TensorFlow's deterministic ops: two runs with
            the same seed give identical losses.
        strategy: "auto", "none", "mirrored", "multiworker" or "tpu" (see
            `keras_resnets.training.distribute`). "auto": "tpu" if `tpu` is
            given, "multiworker" if `TF_CONFIG` names several tasks,
            "mirrored" if several GPUs are visible, else "none". Under a
            distributed strategy `batch_size` is the global batch (split
            across all replicas) and the learning rate follows it; only the
            chief worker writes into `output`.
        weights: what the run starts from (see
            `keras_resnets.training.starting_point`): None (random
            weights); what the builders' `weights=` takes ("imagenet", a
            source such as "torchvision:IMAGENET1K_V2", "timm:...",
            "keras:imagenet", a `WeightSource`, a `.pth`, `.safetensors` or
            keras.applications `.h5` file), loaded into every layer but the
            classifier, which is new and sized for the data, the images
            normalized as the weights expect; a `.keras` model of an earlier
            run (its head kept if its class names are the data's, else a
            new one; its own normalization); or a `.weights.h5` file of
            the same model (loaded whole).
        skip_bad_images: bool, image folders: leave unreadable files out
            (counted in the summary) instead of stopping.
        verbose: Keras `fit` verbosity: 0, 1 (the live progress bar), 2 (one
            line per epoch) or "auto": 1 when standard output is a terminal,
            else 2 (a log file, a pipe).
        tpu: the TPU address or name for strategy "tpu" ("local" on a TPU VM).
        sync_batchnorm: bool, distributed strategies: batch norm statistics
            over the global batch (True, as on one device) or per replica.
        collective_timeout: seconds, "multiworker": the longest a worker
            may go without finishing a step (waiting for a stuck peer, say)
            before training stops with `WorkerLostError`; None: no limit.
        overwrite: bool, let a new run replace an earlier one in its folder
            (finished or interrupted), which is otherwise refused; with
            `resume`, start afresh where there is no backup.
        **model_kwargs: builder arguments (`drop_path_rate`, `shortcut`, ...).

    Returns:
        `(model, summary)`: the trained `keras.Model` (taking uint8 images)
        and the dict written to `summary.json`.

    The run is a sequence of steps, each a function: `plan_run` (arguments
    checked, defaults filled in), the strategy, `check_run_folder` (no
    earlier run is lost; nothing written yet), `configure_backend` (seed,
    determinism, precision), `load_training_data`, `build_training_model`,
    `prepare_run_folder` (the first write), `fit_model` (with
    `make_callbacks`), `evaluate_model` and `save_results`.

    Example:

    >>> model, summary = keras_resnets.train("resnet20", "digits", epochs=2)  # doctest: +SKIP
    >>> summary["test_accuracy"]  # doctest: +SKIP
    """
    started = time.time()
    plan = plan_run(model, data, epochs, batch_size, lr, recipe, seed, strategy, tpu,
                    deterministic, sync_batchnorm, verbose, weights, collective_timeout)
    # Before any other TensorFlow op: collectives are configured at start-up.
    dist = distribute.make_strategy(plan.strategy, tpu)
    chief = distribute.is_chief(dist)
    run_name = run_name or default_run_name(plan.model, data)
    if chief:  # (the others write into a temporary folder)
        resumed = check_run_folder(output, run_name, resume, overwrite)
    else:
        resumed = resume and can_resume(pathlib.Path(output) / run_name)
    with dtype_policy_restored():  # the caller's policy again after the run
        policy = configure_backend(plan, precision)
        bundle = load_training_data(plan, image_size or plan.start.image_size, skip_bad_images)
        net, normalization, new_head = build_training_model(plan, bundle, dist, model_kwargs)
        folder = prepare_run_folder(pathlib.Path(output) / run_name, resumed, chief)
        try:
            loss, timer = fit_model(net, plan, bundle, dist, folder, new_head)
            scores = evaluate_model(net, plan, bundle, dist, loss)
            summary = save_results(net, plan, bundle, dist, folder, timer, scores, policy, started, normalization)
        finally:
            folder.release()
    return net, summary


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A run's settings, checked, with the recipe's defaults filled in."""

    model: str
    data: str
    recipe: Recipe
    strategy: str  # resolved: "none", "mirrored", "multiworker" or "tpu"
    epochs: int
    batch_size: int
    lr: float  # the base learning rate: given, or the recipe's scaled to the batch
    seed: int
    deterministic: bool
    sync_batchnorm: bool
    verbose: int  # Keras' 0, 1 or 2 ("auto" resolved)
    collective_timeout: float = None  # seconds without progress, several workers; None: no limit
    start: StartingPoint = None  # what the run starts from (`weights`)


def plan_run(model, data, epochs, batch_size, lr, recipe, seed, strategy, tpu,
             deterministic=False, sync_batchnorm=True, verbose="auto", weights=None,
             collective_timeout=distribute.DEFAULT_COLLECTIVE_TIMEOUT):
    """Checks `train`'s arguments and fills in the defaults; touches nothing.
    A value given is used or refused, never replaced by a default."""
    start = starting_point(weights, model)
    check_data("data", data)
    rec = get_recipe(recipe or ("finetune" if start.pretrained else "cifar"))
    strategy_name = distribute.resolve_strategy(strategy, tpu)
    if epochs is None:
        epochs = DIGITS_EPOCHS if data == "digits" else rec.epochs
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", rec.batch_size if batch_size is None else batch_size)
    if lr is not None:
        lr = check_positive_number("lr", lr)
    if collective_timeout is not None:
        collective_timeout = check_positive_number("collective_timeout", collective_timeout)
    return RunPlan(
        model=start.model, data=data, recipe=rec, strategy=strategy_name, epochs=epochs,
        batch_size=batch_size, lr=scaled_lr(rec, lr, batch_size), seed=int(seed),
        deterministic=bool(deterministic), sync_batchnorm=bool(sync_batchnorm),
        verbose=resolve_verbose(verbose), collective_timeout=collective_timeout, start=start,
    )


@dataclasses.dataclass
class RunFolder:
    """Where a run writes: `path` (the chief's run folder, or a non-chief
    worker's temporary copy) and whether it continues from a backup."""

    path: pathlib.Path
    resumed: bool
    worker_tmp: tempfile.TemporaryDirectory = None

    @property
    def backup(self):
        return self.path / "backup"

    def release(self):
        """Removes a non-chief worker's temporary folder."""
        if self.worker_tmp is not None:
            self.worker_tmp.cleanup()
            self.worker_tmp = None


def prepare_run_folder(run_dir, resumed, chief=True):
    """The run folder `run_dir`, created; unless the run continues from its
    backup, an earlier run's outputs are removed (`check_run_folder` let
    only an empty folder or `overwrite=True` come here)."""
    worker_tmp = None
    if not chief:
        # The same callbacks write here (they read synchronized variables,
        # which takes every worker); the chief's backup is where they resume.
        worker_tmp = tempfile.TemporaryDirectory(prefix="keras_resnets-worker-")
        run_dir = distribute.worker_copy(run_dir, worker_tmp.name, resumed)
    elif not resumed:
        for stale in earlier_run(run_dir):
            if (run_dir / stale).is_dir():
                shutil.rmtree(run_dir / stale)
            else:
                (run_dir / stale).unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    return RunFolder(run_dir, resumed, worker_tmp)


def configure_backend(plan, precision):
    """Seeds every generator, turns on deterministic ops if the plan asks
    (TensorFlow's op determinism, PyTorch's deterministic algorithms; JAX's
    CPU ops are deterministic already), and sets the dtype policy for
    `precision`; returns the policy's name."""
    keras.utils.set_random_seed(plan.seed)
    if plan.deterministic:
        import tensorflow as tf

        # The data pipeline's ops too, on every backend.
        tf.config.experimental.enable_op_determinism()
        if keras.backend.backend() == "torch":
            import torch

            torch.use_deterministic_algorithms(True)
    return set_precision(precision)


def load_training_data(plan, image_size, skip_bad_images):
    """The run's `DataBundle`: batches of `plan.batch_size`, augmented by the recipe."""
    return load_data(
        plan.data, image_size=image_size, batch_size=plan.batch_size,
        augment=plan.recipe.augment, seed=plan.seed, skip_bad_images=skip_bad_images,
    )


def build_training_model(plan, bundle, dist, model_kwargs):
    """The model to train, built under the strategy from what the run starts
    from (`plan.start`, see `keras_resnets.training.transfer`), taking raw
    uint8 images; it knows the data's class names and how its images are
    resized (`ResNetModel.set_labels`).

    Returns `(model, normalization, new_head)`: how the model normalizes
    its images, "data" (the training images' mean and std), the pretrained
    weights' mode ("torch", "caffe", "tf") or "earlier model" (its own;
    "data" where it had none, see `continued_model`); and
    whether its classifier is new (False: an earlier run's head, kept)."""
    start = plan.start
    with dist.scope():
        new_head = True
        if start.kind == "keras_model":
            net, kept, normalization = continued_model(start.weights, bundle, **model_kwargs)
            new_head = not kept
            if normalization == "data" and plan.verbose:
                print(f"{start.weights}: the model takes float images and normalizes nothing; the data's mean "
                      "and std go in front of it, as in a run from scratch", flush=True)
        elif start.kind in ("source", "checkpoint"):
            net, normalization = pretrained_model(plan.model, start.weights, bundle, **model_kwargs)
        else:
            # (a `.weights.h5` file loaded below replaces the zeros)
            net = with_preprocessing(plan.model, bundle, zero_head=plan.recipe.zero_init_head,
                                     zero_residual=plan.recipe.zero_init_residual, **model_kwargs)
            normalization = "data"
            if start.kind == "keras_weights":
                load_keras_weights(net, start.weights)
    net.set_labels(bundle.class_names, image_transform(bundle))
    if plan.strategy != "none":
        distribute.set_synchronized_batchnorm(net, plan.sync_batchnorm)
    return net, normalization, new_head


def make_callbacks(folder, append, nan_guard, timer):
    """The callbacks of one `fit`: log, backup, best checkpoint, TensorBoard,
    and the run's NaN guard and epoch timer (shared by every phase)."""
    # The log is written before the backup: a kill between the two repeats
    # an epoch's row on resumption, it never loses one.
    return [
        cb.CSVLoggerWithStats(str(folder.path / "log.csv"), append=append),
        cb.AtomicBackupAndRestore(str(folder.backup)),
        cb.AtomicModelCheckpoint(
            str(folder.path / "best.keras"), monitor="val_accuracy", mode="max",
            save_best_only=True,
        ),
        keras.callbacks.TensorBoard(str(folder.path / "tensorboard")),
        nan_guard,
        timer,
    ]


def fit_model(net, plan, bundle, dist, folder, new_head=True):
    """Trains `net` by the recipe. The finetune recipe fits a new head first
    on the frozen network's features (`fit_linear_probe`; not when
    `new_head` is False: an earlier run's head, kept), then trains the whole network with batch
    norm frozen.

    Returns `(loss, timer)`: the compiled loss and the `EpochTimer`.

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    rec = plan.recipe
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=rec.label_smoothing)
    steps = steps_per_epoch(bundle.train_size, plan.batch_size)
    train_ds = one_hot_labels(bundle.train, bundle.num_classes)
    val_ds = one_hot_labels(bundle.validation, bundle.num_classes)
    nan_guard = cb.NaNGuard()
    timer = cb.EpochTimer()

    def phase(epochs, lr, append):
        callbacks = make_callbacks(folder, append, nan_guard, timer)
        fit_phase(net, plan, dist, loss, train_ds, val_ds, epochs, lr, steps, callbacks)

    if rec.freeze_batchnorm:
        _freeze_batchnorm(net)
    head_weights = folder.path / "head.weights.h5"
    if rec.linear_probe and new_head:
        if folder.resumed and head_weights.exists():
            net.load_weights(head_weights)  # and the backup, where there is one, the epochs since
        else:
            accuracy = fit_linear_probe(net, bundle.train_unaugmented, plan.seed,
                                        strategy=None if plan.strategy == "none" else dist)
            if plan.verbose:
                print(f"linear probe: the new head fitted on the frozen features "
                      f"(training accuracy {accuracy:.4f})", flush=True)
            with cb.atomic_path(head_weights) as tmp:
                net.save_weights(tmp)
    phase(plan.epochs, plan.lr, append=folder.resumed)

    if nan_guard.failure is not None:
        f = nan_guard.failure
        best = folder.path / "best.keras"
        kept = f"the last good checkpoint is {best}" if best.exists() else "no epoch completed, so no checkpoint was kept"
        raise FloatingPointError(
            f"The loss became {f['loss']} at epoch {f['epoch']}, step {f['step']}: "
            f"training stopped; {kept}. Try a lower --lr or --precision float32."
        )
    return loss, timer


def fit_phase(net, plan, dist, loss, train_ds, val_ds, epochs, lr, steps, callbacks):
    """Compiles `net` with the recipe's optimizer over `epochs` and fits it:
    `model.fit` on one device, `distribute.fit_distributed` under a strategy."""
    with dist.scope():
        net.compile(
            optimizer=make_optimizer(plan.recipe, lr, steps, epochs),
            loss=loss,
            metrics=["accuracy"],
        )
    if plan.strategy != "none":
        return distribute.fit_distributed(
            net, dist, loss, train_ds, val_ds, epochs, steps, callbacks,
            verbose=plan.verbose, chief=distribute.is_chief(dist),
            collective_timeout=plan.collective_timeout,
        )
    build_for_fit(net, train_ds.element_spec)
    return net.fit(
        train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks,
        verbose=plan.verbose, shuffle=False,
    )


def evaluate_model(net, plan, bundle, dist, loss):
    """`(test loss, test accuracy)` on the test split."""
    test_ds = one_hot_labels(bundle.test, bundle.num_classes)
    if plan.strategy == "none":
        return net.evaluate(test_ds, verbose=0)
    return distribute.evaluate(net, dist, loss, test_ds, plan.collective_timeout)


def save_results(net, plan, bundle, dist, folder, timer, scores, policy, started, normalization="data"):
    """Writes model.keras, history.png and summary.json into the run
    folder; returns the summary. `scores`: `(test loss, test accuracy)`;
    `policy`: the dtype policy trained in; `started`: `time.time()` at the
    start of the run; `normalization`: see `build_training_model`."""
    run_dir = folder.path
    test_loss, test_accuracy = scores
    if plan.strategy != "none":
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
        "model": plan.model,
        "data": bundle.name,
        "weights": plan.start.describe(),
        "starting_point": plan.start.kind,
        "normalization": normalization,
        "class_names": list(bundle.class_names),
        "image_transform": net.image_transform,
        "recipe": plan.recipe.name,
        "epochs": plan.epochs,
        "epochs_logged": epochs_logged,
        "batch_size": plan.batch_size,
        "lr": plan.lr,
        "image_size": bundle.image_shape[0],
        "num_classes": bundle.num_classes,
        "train_images": bundle.train_size,
        "validation_images": bundle.validation_size,
        "test_images": bundle.test_size,
        "splits": bundle.splits,
        "skipped_images": len(bundle.skipped),
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "params": int(sum(np.prod(w.shape) for w in net.trainable_weights)),
        "macs": count_macs(net),
        "train_images_per_second": None if ips is None else round(float(ips), 1),
        "peak_rss_mib": cb.peak_rss_mib(),
        "wall_seconds": round(time.time() - started, 1),
        "precision": policy,
        "seed": plan.seed,
        "deterministic": plan.deterministic,
        "resumed": bool(folder.resumed),
        "strategy": plan.strategy,
        "replicas": int(dist.num_replicas_in_sync),
        "sync_batchnorm": plan.sync_batchnorm if plan.strategy != "none" else None,
        "run_dir": str(run_dir),
        "versions": versions(),
    }
    write_json(run_dir / "summary.json", summary)
    return summary


def _freeze_batchnorm(model):
    """Non-trainable batch norm, which in Keras 3 also runs in inference mode."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def build_for_fit(net, data_spec):
    """Creates the optimizer's and the compiled metrics' variables of a
    compiled `net` before `fit`, from the spec of its data's batches.

    On TensorFlow without a strategy, Keras leaves them to the first trace
    of the train step (only under a strategy does `fit` build them first,
    by `_symbolic_build`), and `tf.function` traces a function that creates
    variables twice: the train step was traced twice in every run (ResNet-20:
    2,825 and 2,545 graph operations; 2.2 s of a 17 s run at 16 px, and
    250 MiB). Here Keras's own
    build runs first, as under a strategy; a Keras without it keeps its way.
    """
    symbolic_build = getattr(net, "_symbolic_build", None)
    if keras.backend.backend() != "tensorflow" or symbolic_build is None:
        return
    symbolic_build(data_batch=data_spec)


def one_hot_labels(dataset, num_classes):
    """`dataset` of (images, integer labels) with the labels one-hot encoded
    (the categorical losses take label smoothing only on one-hot labels)."""
    import tensorflow as tf

    return dataset.map(lambda images, labels: (images, tf.one_hot(labels, num_classes)))
