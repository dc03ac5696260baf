"""`ResNetHyperModel`: the ResNet family as a KerasTuner search space."""

import contextlib
import dataclasses
import json
import os
import time
import warnings

from keras_resnets.utils.backend import require_tensorflow_backend

# (as in keras_resnets.tuning.space: before KerasTuner loads)
require_tensorflow_backend("keras_resnets.tuning (the KerasTuner search, `keras-resnets tune`)")

import keras  # noqa: E402
import keras_tuner  # noqa: E402
import numpy as np

from keras_resnets.data import load_data
from keras_resnets.training import callbacks as cb
from keras_resnets.training.distribute import set_synchronized_batchnorm
from keras_resnets.training.loop import build_for_fit, one_hot_labels, with_preprocessing
from keras_resnets.training.precision import dtype_policy_restored, resolve_precision, set_precision
from keras_resnets.training.recipes import get_recipe, make_optimizer, steps_per_epoch
from keras_resnets.tuning.space import (
    BudgetExceeded,
    SearchSpace,
    check_budgets,
    over_budget,
    tflite_latency_ms,
)
from keras_resnets.utils.macs import count_macs
from keras_resnets.tuning.settings import DEFAULT_EPOCHS
from keras_resnets.utils.validation import UsageError, check_positive_int

DEFAULT_BATCH_SIZES = (32, 64, 128)
MIN_STEPS_PER_EPOCH = 20  # default batch sizes give epochs at least this long


class PreciseBatchNorm(keras.callbacks.Callback):
    """Recomputes batch norm's moving statistics before each validation.

    "Precise BN" (Wu & Johnson 2021, "Rethinking Batch in BatchNorm"): the
    moving averages lag behind weights that change fast, so after an epoch or
    two of a search trial a network that classifies its training batches well
    can score near chance in inference mode. Here the statistics become
    those of `images` training images under the current weights (one
    forward pass in training mode with momentum 0, no weight update), so that
    short trials are ranked by what they learned.

    Args:
        dataset: `tf.data.Dataset` of `(images, labels)` training batches.
        images: int, how many training images the statistics come from.
    """

    def __init__(self, dataset, images=256):
        super().__init__()
        self.dataset = dataset
        self.images = images

    def on_test_begin(self, logs=None):
        norms = [layer for layer in self.model._flatten_layers()
                 if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
        momenta = [bn.momentum for bn in norms]
        batches = []
        for batch, _ in self.dataset:
            batches.append(batch)
            if sum(len(b) for b in batches) >= self.images:
                break
        images = np.concatenate(batches)[: self.images]
        try:
            for bn in norms:
                bn.momentum = 0.0  # the moving statistics become this batch's
            with warnings.catch_warnings():
                # Keras warns that a tensor is not the ['image'] list it was built with.
                warnings.simplefilter("ignore", UserWarning)
                self.model(images, training=True)
        finally:
            for bn, momentum in zip(norms, momenta):
                bn.momentum = momentum


class ResNetHyperModel(keras_tuner.HyperModel):
    """The ResNet family as a KerasTuner `HyperModel`: architecture and training.

    `build(hp)` builds a registered variant through `keras_resnets.build_model`
    (with the data's normalization inside, taking raw uint8 images);
    `fit(hp, model, ...)` trains it on `data` with the recipe's optimizer and
    schedule (`keras_resnets.training.recipes`) and returns the best
    validation accuracy with the candidate's cost. Batch norm statistics are
    recomputed before each validation (`PreciseBatchNorm`): a trial of one
    or two epochs is judged by its weights, not by lagging averages.

    Hyperparameters (names as `hp` sees them):

    - architecture: `family` ("v1", "v2", "resnext", "wide"); per family
      (active only when the family is chosen, unless it is the only one):
      `FAMILY/depth` (see `keras_resnets.tuning.space`),
      `FAMILY/width_multiplier`, `resnext/groups`, `resnext/width_per_group`;
      `shortcut` ("A", "B", "C", "D"), `stem`, `drop_path_rate`,
      `dropout_rate`;
    - training: `learning_rate`, `weight_decay`, `label_smoothing`,
      `batch_size`, `precision`. `learning_rate` is the rate at the
      recipe's batch size (128 for "cifar"); a trial scales it linearly
      with its own batch size (Goyal et al. 2017), so that the searched
      range suits every batch size. `weight_decay` is the recipe's L2
      term, added to the gradient (`keras_resnets.training.L2SGD`).

    Narrow the space with the keyword arguments below, or give the tuner a
    `keras_tuner.HyperParameters` of your own (`hp.Fixed("learning_rate",
    0.1)`, `hp.Choice("batch_size", [64])`): KerasTuner uses the values you
    declared.

    With a cost budget, a candidate over it is rejected before it trains:
    `fit` raises `keras_tuner.errors.FailedTrialError` (a `BudgetExceeded`
    naming the cost and the limit), which KerasTuner records as a failed
    trial, with the message, without retrying it. Give the tuner
    `max_consecutive_failed_trials` large enough for the rejections.
    A budget that no candidate can meet is an error when the tuner is created.

    Args:
        data: the data (`keras_resnets.data.load_data`): "digits" (default),
            "tfds:NAME" or an image folder.
        image_size: int, defaults to the data's own size. Images up to 64 px
            search the CIFAR nets, larger ones the ImageNet nets.
        recipe: the training recipe whose optimizer, schedule and
            augmentation each trial uses ("cifar", default, or "imagenet").
        epochs: epochs per trial when the tuner does not say (Hyperband does).
        families: list of "v1", "v2", "resnext", "wide". Defaults to all
            on large images, all but "v2" on small ones (see
            `keras_resnets.tuning.space`).
        depths: list of depths (from the variant table) to search.
        min_depth, max_depth: int, bounds on the depth. Without `depths` the
            default `max_depth` is 56 on small images, 101 on large ones.
        width_multipliers, groups, widths_per_group, shortcuts, stems:
            lists of the values to search (defaults in
            `keras_resnets.tuning.space`).
        batch_sizes: list of ints. Defaults to those of 32, 64 and 128 that
            give an epoch at least 20 steps (on the digits' 1,257 training
            images: 32 and 64), since short trials learn little from a
            handful of steps.
        precisions: list of precisions. Defaults to "float32" and this
            machine's mixed precision (`precision="auto"`), if different.
        max_params: reject candidates with more trainable parameters.
        max_macs: reject candidates with more multiply-accumulates per image
            (`keras_resnets.count_macs`).
        max_latency_ms: reject candidates slower than this through the
            TFLite (LiteRT) interpreter, batch 1, one thread.
        seed: int, seeds the data pipeline.
        data_dir: where `tfds` keeps its data sets.
        cost_cache: optional path of a JSON file caching each architecture's
            cost between runs.

    Example:

    >>> hypermodel = ResNetHyperModel("digits", families=["v1"], max_depth=56)  # doctest: +SKIP
    >>> tuner = keras_tuner.RandomSearch(hypermodel, objective="val_accuracy",
    ...                                  max_trials=10, directory="search")  # doctest: +SKIP
    >>> tuner.search(epochs=5)  # doctest: +SKIP
    """

    def __init__(self, data="digits", image_size=None, recipe="cifar", epochs=DEFAULT_EPOCHS,
                 families=None, depths=None, min_depth=None, max_depth=None,
                 width_multipliers=None, groups=None, widths_per_group=None, shortcuts=None,
                 stems=None, batch_sizes=None, precisions=None,
                 max_params=None, max_macs=None, max_latency_ms=None, seed=0, data_dir=None,
                 cost_cache=None, name=None, tunable=True):
        super().__init__(name=name, tunable=tunable)
        self.data = data
        self.recipe = get_recipe(recipe)
        self.epochs = check_positive_int("epochs", epochs)
        self.seed = int(seed)
        self.data_dir = data_dir
        self.budgets = check_budgets(max_params, max_macs, max_latency_ms)
        if image_size is not None:
            image_size = check_positive_int("image_size", image_size)
        self._bundles = {}
        self.image_size = image_size or self._bundle(128).image_shape[0]
        self.space = SearchSpace.create(
            self.image_size, families=families, depths=depths, min_depth=min_depth,
            max_depth=max_depth, width_multipliers=width_multipliers, groups=groups,
            widths_per_group=widths_per_group, shortcuts=shortcuts, stems=stems,
        )
        if batch_sizes is None:
            train_size = self._bundle(128).train_size
            batch_sizes = [b for b in DEFAULT_BATCH_SIZES if train_size / b >= MIN_STEPS_PER_EPOCH]
            batch_sizes = batch_sizes or DEFAULT_BATCH_SIZES[:1]
        self.batch_sizes = tuple(check_positive_int("batch_sizes", b) for b in batch_sizes)
        if precisions is None:
            precisions = tuple(dict.fromkeys(("float32", resolve_precision("auto"))))
        self.precisions = tuple(resolve_precision(p) for p in precisions)
        self.cost_cache = cost_cache
        self._costs = None
        self._feasible = False

    # -- the space -----------------------------------------------------------------

    def _choose(self, hp):
        """Declares the hyperparameters; returns `(architecture, training)` dicts."""
        families = list(self.space.depths)
        family = hp.Choice("family", families)
        if family not in families:
            raise UsageError(f"Unknown family: received family={family!r}. Allowed: {families}.")
        arch = {}
        for f in families:
            # Per-family choices live in the family's conditional scope, so a
            # trial only holds (and a tuner only tunes) those of its family.
            scope = hp.conditional_scope("family", [f]) if len(families) > 1 else contextlib.nullcontext()
            with scope:
                table = self.space.depths[f]
                wms = self.space.width_multipliers[f]
                depth = hp.Choice(f"{f}/depth", list(table))
                wm = hp.Choice(f"{f}/width_multiplier", list(wms), default=1.0 if 1.0 in wms else wms[0])
                if f == "resnext":
                    groups = hp.Choice("resnext/groups", list(self.space.groups))
                    wpg = hp.Choice("resnext/width_per_group", list(self.space.widths_per_group))
            if f != family:
                continue
            if depth not in table:
                raise UsageError(
                    f"Unknown depth for family {f!r}: received depth={depth!r}. Allowed: {list(table)}."
                )
            arch = dict(name=table[depth], width_multiplier=float(wm))
            if f == "resnext":
                arch.update(groups=int(groups), width_per_group=int(wpg))
        arch["shortcut"] = hp.Choice("shortcut", list(self.space.shortcuts))
        arch["stem"] = hp.Choice("stem", list(self.space.stems))
        training = dict(
            drop_path_rate=hp.Choice("drop_path_rate", [0.0, 0.1, 0.2]),
            dropout_rate=hp.Choice("dropout_rate", [0.0, 0.2]),
            learning_rate=hp.Float("learning_rate", 0.01, 0.2, sampling="log", default=0.1),
            weight_decay=hp.Float("weight_decay", 1e-5, 1e-3, sampling="log", default=1e-4),
            label_smoothing=hp.Choice("label_smoothing", [0.0, 0.1]),
            batch_size=hp.Choice("batch_size", list(self.batch_sizes)),
            precision=hp.Choice("precision", list(self.precisions)),
        )
        return arch, training

    def declare_hyperparameters(self, hp):
        # Called once when a tuner starts a new search: a budget nothing in
        # the space meets stops it here, before any trial.
        self.check_feasible()

    def build(self, hp):
        arch, training = self._choose(hp)
        set_precision(training["precision"])
        return with_preprocessing(
            arch.pop("name"), self._bundle(training["batch_size"]), zero_head=self.recipe.zero_init_head,
            zero_residual=self.recipe.zero_init_residual,
            drop_path_rate=training["drop_path_rate"], dropout_rate=training["dropout_rate"], **arch,
        )

    def architecture(self, hp):
        """The `build_model` arguments the values of `hp` select."""
        return self._choose(hp.copy())[0]

    # -- costs ---------------------------------------------------------------------

    def cost(self, arch, model=None):
        """`{"params", "macs", "latency_ms"}` of an architecture (cached).

        `params` counts the trainable weights, `macs` the multiply-accumulates
        of one image (precision changes neither); `latency_ms` is measured
        only with a latency budget (else None), on the float32 model.
        `model`: the architecture already built, to count instead of a new one.
        """
        if self._costs is None:
            self._costs = {}
            if self.cost_cache and os.path.exists(self.cost_cache):
                with open(self.cost_cache) as f:
                    self._costs = json.load(f)
        key = json.dumps({**arch, "image_size": self.image_size}, sort_keys=True)
        cost = self._costs.get(key)
        if cost is None or ("max_latency_ms" in self.budgets and cost.get("latency_ms") is None):
            with dtype_policy_restored():
                set_precision("float32")
                if model is None or "max_latency_ms" in self.budgets:
                    model = with_preprocessing(arch["name"], self._bundle(self.batch_sizes[0]),
                                               **{k: v for k, v in arch.items() if k != "name"})
                cost = {
                    "params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
                    "macs": count_macs(model),
                    "latency_ms": tflite_latency_ms(model) if "max_latency_ms" in self.budgets else None,
                }
            self._costs[key] = cost
            if self.cost_cache:
                with cb.atomic_path(self.cost_cache) as tmp, open(tmp, "w") as f:
                    json.dump(self._costs, f, indent=1, sort_keys=True)
        return cost

    def check_feasible(self):
        """Raises ValueError if no candidate of the space meets the budgets."""
        if not self.budgets or self._feasible:
            return
        cheapest = None
        for family in self.space.depths:
            for arch in self.space.cheapest(family):
                cost = self.cost(arch)
                if over_budget(cost, self.budgets) is None:
                    self._feasible = True
                    return
                if cheapest is None or cost["macs"] < cheapest[1]["macs"]:
                    cheapest = (arch, cost)
        arch, cost = cheapest
        raise UsageError(
            "No model in the search space meets the budget "
            f"{', '.join(f'{k}={v:,}' for k, v in self.budgets.items())}: the cheapest, "
            f"{describe(arch)}, has {over_budget(cost, self.budgets)}. Allowed: a larger budget, "
            "or a space with smaller models (families, depths, width_multipliers, stems)."
        )

    # -- training ------------------------------------------------------------------

    def _bundle(self, batch_size):
        if batch_size not in self._bundles:
            self._bundles[batch_size] = load_data(
                self.data, image_size=getattr(self, "image_size", None), batch_size=batch_size,
                augment=self.recipe.augment, seed=self.seed, data_dir=self.data_dir,
            )
        return self._bundles[batch_size]

    def fit(self, hp, model, epochs=None, initial_epoch=0, callbacks=None, verbose=0):
        """Trains a candidate on `data`; returns its best `val_accuracy` and its cost.

        Takes what `tuner.search(...)` passes: `epochs` (default: the
        hypermodel's), `callbacks`, `verbose`, and Hyperband's `initial_epoch`.

        Over a budget: raises `BudgetExceeded` before training. A non-finite
        loss or running out of memory: `keras_tuner.errors.FailedTrialError`
        with the reason (KerasTuner records the trial as failed and goes on).
        """
        started = time.perf_counter()
        arch, training = self._choose(hp.copy())
        cost = self.cost(arch, model)
        reason = over_budget(cost, self.budgets)
        if reason:
            raise BudgetExceeded(reason)
        import tensorflow as tf

        epochs = self.epochs if epochs is None else epochs
        bundle = self._bundle(training["batch_size"])
        recipe = dataclasses.replace(self.recipe, weight_decay=training["weight_decay"],
                                     label_smoothing=training["label_smoothing"])
        steps = steps_per_epoch(bundle.train_size, training["batch_size"])
        lr = training["learning_rate"] * training["batch_size"] / recipe.batch_size
        train = one_hot_labels(bundle.train, bundle.num_classes)
        # Under KerasTuner's `distribution_strategy` the model was built in
        # the strategy's scope; its optimizer and their variables must be
        # too, or each replica steps its own copy (the replicas drift apart).
        strategy = model.distribute_strategy
        with strategy.scope():
            model.compile(
                optimizer=make_optimizer(recipe, lr, steps,
                                         max(1, epochs - initial_epoch)),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
                metrics=["accuracy"],
            )
            build_for_fit(model, train.element_spec)
        if strategy.num_replicas_in_sync > 1:
            # As `train` does: each batch norm normalizes with the global
            # batch's moments, so a trial trains as on one device.
            set_synchronized_batchnorm(model)
        nan_guard = cb.NaNGuard()
        try:
            history = model.fit(
                train,
                validation_data=one_hot_labels(bundle.validation, bundle.num_classes),
                epochs=epochs, initial_epoch=initial_epoch,
                callbacks=[PreciseBatchNorm(bundle.train), *(callbacks or []), nan_guard],
                verbose=verbose, shuffle=False,
            )
        except (tf.errors.ResourceExhaustedError, MemoryError) as e:
            raise keras_tuner.errors.FailedTrialError(
                f"out of memory: {str(e).strip().splitlines()[0]}"
            ) from None
        if nan_guard.failure is not None:
            f = nan_guard.failure
            raise keras_tuner.errors.FailedTrialError(
                f"the loss became {f['loss']} at epoch {initial_epoch + f['epoch']}, step {f['step']}"
            )
        accuracy = history.history.get("val_accuracy")
        if not accuracy:
            raise keras_tuner.errors.FailedTrialError("stopped before its first epoch ended")
        return {
            "val_accuracy": float(max(accuracy)),
            "epochs": float(len(accuracy)),
            "seconds": time.perf_counter() - started,
            **{k: float(v) for k, v in cost.items() if v is not None},
        }


def describe(arch):
    """A short name for an architecture: "resnet56 x0.5 A/cifar"."""
    text = f"{arch['name']} x{arch['width_multiplier']:g}"
    if "groups" in arch:
        text += f" {arch['groups']}x{arch['width_per_group']}d"
    return f"{text} {arch['shortcut']}/{arch['stem']}"
