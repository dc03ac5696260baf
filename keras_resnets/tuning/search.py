"""`tune`: a whole search, as `keras-resnets tune` runs it.

A stock KerasTuner tuner (RandomSearch, Hyperband or BayesianOptimization)
runs `ResNetHyperModel` in `directory/trials/` (KerasTuner's own state: a
killed search continues where it stopped). Around it:

- the settings of the search are stored in `directory/search.json`; a
  directory that holds a different search is refused unless `overwrite`;
- a time budget: at the deadline the running trial stops training (a Keras
  callback sets `stop_training` after the current batch, and the trial counts
  with the epochs it finished) and no new trial starts (the tuner's
  `pre_create_trial` hook ends the search);
- a progress line per trial; at the end a results table of every trial
  (also `results.csv`) and `accuracy_vs_macs.png`;
- the best trial's model is continued with its configuration for more
  epochs (by default, with a time budget, for the last `FINAL_SHARE` of it:
  short search trials stop well before a model has converged) and kept if
  it beats the trial; the model is saved as `best.keras` (raw uint8 images
  in), with `summary.json`, whose test accuracy comes from the data's test
  split: images that no trial and no final training saw, neither to train
  nor to choose (`load_data` holds them out of the training data where the
  source has no test split).
"""

import csv
import dataclasses
import json
import math
import os
import shutil
import time

from keras_resnets.utils.backend import require_tensorflow_backend

# (as in keras_resnets.tuning.space: before KerasTuner loads)
require_tensorflow_backend("keras_resnets.tuning (the KerasTuner search, `keras-resnets tune`)")

import keras  # noqa: E402
import keras_tuner  # noqa: E402
from keras_tuner.src import config as keras_tuner_config  # DEBUG: print each failed trial's traceback

from keras_resnets.training import callbacks as cb
from keras_resnets.training.loop import one_hot_labels, versions, write_json
from keras_resnets.training.precision import dtype_policy_restored
from keras_resnets.training.settings import resolve_verbose
from keras_resnets.tuning.hypermodel import ResNetHyperModel, describe
from keras_resnets.tuning.settings import (
    DEFAULT_EPOCHS,
    DEFAULT_MAX_EPOCHS,
    DEFAULT_MAX_TRIALS,
    STRATEGIES,
    TUNER_NAMES,
    default_directory,
)
from keras_resnets.utils.validation import (
    UsageError,
    check_bool,
    check_choice,
    check_non_negative_int,
    check_positive_int,
)



class HyperbandOracle(keras_tuner.oracles.HyperbandOracle):
    """KerasTuner's Hyperband oracle, where a trial of a bracket's first
    round that failed (or was rejected by a cost budget) gives its place to a
    new candidate.

    Stock Hyperband keeps it in the round: a round promotes its best trials
    only once more of them have completed than it drops, so a bracket with a
    few rejected or failed trials never promotes anyone, and under a budget
    that rejects most candidates no trial trains past the first round.
    """

    def populate_space(self, trial_id):
        for bracket in self._brackets:
            first = bracket["rounds"][0]
            first[:] = [info for info in first
                        if self.trials[info["id"]].status not in ("FAILED", "INVALID")]
        return super().populate_space(trial_id)


class Hyperband(keras_tuner.Hyperband):
    """`keras_tuner.Hyperband` with `HyperbandOracle`: failed and rejected
    first-round trials are replaced. Takes `keras_tuner.Hyperband`'s arguments.

    >>> tuner = Hyperband(ResNetHyperModel(max_macs=20e6), objective="val_accuracy",
    ...                   max_epochs=12, directory="search")  # doctest: +SKIP
    """

    def __init__(self, hypermodel=None, objective=None, max_epochs=100, factor=3,
                 hyperband_iterations=1, seed=None, hyperparameters=None, tune_new_entries=True,
                 allow_new_entries=True, max_retries_per_trial=0, max_consecutive_failed_trials=3,
                 **kwargs):
        oracle = HyperbandOracle(
            objective, max_epochs=max_epochs, factor=factor,
            hyperband_iterations=hyperband_iterations, seed=seed,
            hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
            allow_new_entries=allow_new_entries, max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        # keras_tuner.Hyperband.__init__ only builds its own oracle: skip it.
        super(keras_tuner.Hyperband, self).__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)


TUNERS = dict(zip(TUNER_NAMES, (keras_tuner.RandomSearch, Hyperband, keras_tuner.BayesianOptimization)))
FINAL_SHARE = 0.3  # of a time budget, kept for continuing the best trial
TRAINING_HPS = ("drop_path_rate", "dropout_rate", "learning_rate", "weight_decay",
                "label_smoothing", "batch_size", "precision")


class _TimeUp(Exception):
    pass


class StopAtDeadline(keras.callbacks.Callback):
    """Stops training after the batch during which `deadline` (a
    `time.time()` value) passes."""

    def __init__(self, deadline):
        super().__init__()
        self.deadline = deadline

    def on_train_batch_end(self, batch, logs=None):
        if time.time() >= self.deadline:
            self.model.stop_training = True


def _final_training(search, trial, model, epochs, deadline, verbose=0):
    """Continues the best trial's model for `epochs` epochs with its own
    configuration (the recipe's schedule restarted over those epochs, as a
    Hyperband round does), stopping at `deadline`. Returns `(model,
    record)`: the continued model at its best epoch if that beats the
    trial's checkpoint, else the checkpoint."""
    hypermodel = search.hypermodel
    print(f"final training: trial {trial.trial_id}'s configuration, {_epochs(epochs)} more from its "
          "checkpoint", flush=True)
    started = time.time()
    # The weights of the best epoch go back into the model at the end
    # (patience = epochs: it never stops early); `history` counts the epochs
    # that ended, also when the training fails.
    best_epoch = keras.callbacks.EarlyStopping(
        "val_accuracy", mode="max", patience=epochs, restore_best_weights=True
    )
    history = keras.callbacks.History()
    callbacks = [best_epoch, history] + ([] if deadline is None else [StopAtDeadline(deadline)])
    try:
        result = hypermodel.fit(trial.hyperparameters, model, epochs=epochs, callbacks=callbacks,
                                verbose=verbose)
    except keras_tuner.errors.FailedTrialError as e:
        print(f"final training failed ({e}); keeping trial {trial.trial_id}'s checkpoint", flush=True)
        return search.load_model(trial), {"epochs": len(history.history.get("loss", [])),
                                          "val_accuracy": None, "kept": "checkpoint", "reason": str(e)}
    best, ended = result["val_accuracy"], int(result["epochs"])
    better = best > trial.score
    record = {"epochs": ended, "val_accuracy": best,
              "seconds": round(time.time() - started, 1), "kept": "retrained" if better else "checkpoint"}
    print(f"final training: validation accuracy {best:.4f} after {_epochs(ended)} "
          f"(trial {trial.trial_id}: {trial.score:.4f}); keeping the "
          f"{'retrained model' if better else 'trial checkpoint'}", flush=True)
    return (model if better else search.load_model(trial)), record


def _epochs(n):
    return f"{n} epoch{'' if n == 1 else 's'}"


def _epochs_that_fit(trial, seconds):
    """How many epochs of `trial`'s model fit in `seconds`, at the pace of
    its own trial (whose time includes building and tracing: a safe side)."""
    metrics = trial.metrics
    epochs = metrics.get_last_value("epochs") if metrics.exists("epochs") else None
    spent = metrics.get_last_value("seconds") if metrics.exists("seconds") else None
    if not epochs or not spent:
        return 0
    return max(0, int(seconds // (spent / epochs)))


class _Monitor:
    """Mixed into the chosen KerasTuner tuner: the deadline and a line per trial."""

    deadline = None
    search_started = None

    def on_search_begin(self):
        super().on_search_begin()
        # `search(verbose=...)` is the epochs' verbosity; the line per trial
        # is this class's, so KerasTuner's own trial display stays quiet.
        self.oracle.verbose = 0

    def pre_create_trial(self):
        super().pre_create_trial()
        if self.deadline is not None and time.time() >= self.deadline:
            raise _TimeUp

    def on_trial_begin(self, trial):
        self._trial_started = time.time()
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        row = trial_row(self, self.oracle.get_trial(trial.trial_id))
        best = self.oracle.get_best_trials(1)
        best = best[0].score if best and best[0].status == "COMPLETED" else None
        result = (f"val_accuracy {row['val_accuracy']:.4f}, {row['seconds']:.0f} s"
                  if row["status"] == "completed" else f"{row['status']}: {row['reason']}")
        elapsed = time.time() - self.search_started
        print(
            f"trial {row['trial']} (epochs {row['epochs_trained'] or 0:g}): {row['architecture']}, "
            f"{row['training']} -> {result} | best {'-' if best is None else f'{best:.4f}'}, "
            f"{elapsed // 60:.0f}:{elapsed % 60:02.0f} elapsed",
            flush=True,
        )


def _reason(trial):
    """The last line of KerasTuner's traceback, without the exception class."""
    lines = [line for line in (trial.message or "").strip().splitlines() if line.strip()]
    if not lines:
        return "", ""
    kind, _, text = lines[-1].partition(": ")
    return kind.rsplit(".", 1)[-1], text or kind


def trial_row(tuner, trial):
    """One trial as a dict: the results table's row."""
    hp = trial.hyperparameters
    values = {k: v for k, v in hp.values.items() if not k.startswith("tuner/")}
    arch = tuner.hypermodel.architecture(hp)
    metrics = trial.metrics
    got = lambda name: metrics.get_last_value(name) if metrics.exists(name) else None  # noqa: E731
    kind, reason = _reason(trial)
    status = {"COMPLETED": "completed", "FAILED": "failed", "INVALID": "failed"}.get(
        trial.status, trial.status.lower())
    if kind == "BudgetExceeded":
        status = "rejected"
    cost = {"params": got("params"), "macs": got("macs"), "latency_ms": got("latency_ms")}
    if cost["macs"] is None:
        cost = tuner.hypermodel.cost(arch)
    training = ", ".join(
        f"{k}={values[k]:.3g}" if isinstance(values[k], float) else f"{k}={values[k]}"
        for k in TRAINING_HPS if k in values
    )
    return {
        "trial": trial.trial_id,
        "status": status,
        "val_accuracy": trial.score if status == "completed" else None,
        "params": None if cost["params"] is None else int(cost["params"]),
        "macs": None if cost["macs"] is None else int(cost["macs"]),
        "latency_ms": cost.get("latency_ms"),
        "seconds": got("seconds"),
        "epochs_trained": got("epochs"),
        "continues": hp.values.get("tuner/trial_id"),
        "architecture": describe(arch),
        "training": training,
        "reason": reason if status != "completed" else "",
        **values,
    }


def _fmt_macs(macs):
    return "-" if macs is None else f"{macs / 1e6:.1f}M"


def format_table(rows):
    """The results table, one line per trial, best first."""
    ranked = sorted(rows, key=lambda r: (r["val_accuracy"] is None, -(r["val_accuracy"] or 0), r["trial"]))
    header = ("trial", "status", "architecture", "training", "val_acc", "params", "MACs", "seconds")
    lines = [[
        r["trial"], r["status"], r["architecture"], r["training"],
        "-" if r["val_accuracy"] is None else f"{r['val_accuracy']:.4f}",
        "-" if r["params"] is None else f"{r['params']:,}", _fmt_macs(r["macs"]),
        "-" if r["seconds"] is None else f"{r['seconds']:.0f}",
    ] for r in ranked]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    out = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths))]
    out += ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)) for line in lines]
    notes = [f"trial {r['trial']}: {r['status']}: {r['reason']}" for r in ranked if r["reason"]]
    return "\n".join(out + notes)


def write_csv(rows, path):
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with cb.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def plot_accuracy_vs_macs(rows, path, max_macs=None):
    """Validation accuracy against MACs; rejected and failed trials along the bottom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    done = [r for r in rows if r["status"] == "completed"]
    others = [r for r in rows if r["status"] != "completed" and r["macs"]]
    ax.scatter([r["macs"] for r in done], [r["val_accuracy"] for r in done], label="trained")
    if done:
        best = max(done, key=lambda r: r["val_accuracy"])
        ax.scatter([best["macs"]], [best["val_accuracy"]], s=120, facecolors="none",
                   edgecolors="red", label=f"best (trial {best['trial']})")
    floor = min([r["val_accuracy"] for r in done] or [0.0])
    for status, marker in (("rejected", "x"), ("failed", "v")):
        some = [r for r in others if r["status"] == status]
        if some:
            ax.scatter([r["macs"] for r in some], [floor] * len(some), marker=marker,
                       color="gray", label=status)
    if max_macs:
        ax.axvline(max_macs, color="red", linestyle="--", label="max_macs")
    ax.set_xscale("log")
    ax.set_xlabel("MACs per image")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with cb.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


OUTPUTS = ("trials", "search.json", "costs.json", "results.csv", "accuracy_vs_macs.png",
           "best.keras", "summary.json")
"""What a search writes into its directory (and `overwrite` removes)."""


def _settings(hypermodel, tuner, epochs, max_epochs, hyperparameters):
    """What makes a search the same search: stored in search.json."""
    space = dataclasses.asdict(hypermodel.space)
    space["depths"] = {f: list(t) for f, t in space["depths"].items()}
    return json.loads(json.dumps({
        "data": hypermodel.data, "image_size": hypermodel.image_size, "tuner": tuner,
        "recipe": hypermodel.recipe.name, "seed": hypermodel.seed, "space": space,
        "batch_sizes": hypermodel.batch_sizes, "precisions": hypermodel.precisions,
        "budgets": hypermodel.budgets, "objective": "val_accuracy",
        "hyperparameters": hyperparameters.get_config() if hyperparameters else None,
        # (Hyperband's iterations are in KerasTuner's own state.)
        **({"max_epochs": max_epochs} if tuner == "hyperband" else {"epochs": epochs}),
    }))


def _claim_directory(directory, settings, overwrite):
    path = os.path.join(directory, "search.json")
    if os.path.exists(path) and not overwrite:
        with open(path) as f:
            saved = json.load(f)
        if saved != settings:
            diff = [f"{k}: {saved.get(k)!r} there, {settings.get(k)!r} here"
                    for k in sorted(set(saved) | set(settings)) if saved.get(k) != settings.get(k)]
            raise UsageError(
                f"`directory` {directory!r} holds a different search ({'; '.join(diff)}). "
                "Allowed: the same settings to continue it, another directory, or "
                "overwrite=True (--overwrite) to replace it."
            )
    elif overwrite:
        for name in OUTPUTS:
            target = os.path.join(directory, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.remove(target)
    os.makedirs(directory, exist_ok=True)
    write_json(path, settings)


def _distribution(strategy):
    """The `tf.distribute.MirroredStrategy` the trials train under, or None
    (one device) for `strategy` ("auto": mirrored where several GPUs are
    visible)."""
    from keras_resnets.training.distribute import make_strategy, several_gpus

    if strategy == "auto":
        strategy = "mirrored" if several_gpus() else "none"
    return make_strategy("mirrored") if strategy == "mirrored" else None


def tune(
    data="digits",
    tuner="hyperband",
    directory=None,
    max_trials=None,
    time_budget=None,
    epochs=None,
    max_epochs=DEFAULT_MAX_EPOCHS,
    hyperband_iterations=None,
    final_epochs=None,
    overwrite=False,
    hyperparameters=None,
    seed=0,
    verbose=0,
    strategy="auto",
    **hypermodel_kwargs,
):
    """Runs an architecture and hyperparameter search and saves its results.

    Args:
        data: "digits" (default), "tfds:NAME" or an image folder.
        tuner: "hyperband" (default), "random" or "bayesian".
        directory: the search's folder; defaults to
            "saved_models/tune-<data>". Running the same search again
            continues it (finished trials are not run again).
        max_trials: int, at most this many trials (all runs together).
            Defaults to 10 for "random" and "bayesian" without a time budget,
            else unlimited.
        time_budget: minutes, > 0: no trial starts after it, and the running
            one stops training at it. Counted from the start of this call.
        epochs: epochs per trial ("random", "bayesian"); defaults to 10.
        max_epochs: Hyperband's longest training. Defaults to 8: with
            KerasTuner's factor 3, a bracket of 5 trials of 3 epochs whose
            best 2 go on to 8, then a bracket of 3 trials of 8 epochs.
        hyperband_iterations: Hyperband's passes over its brackets; by
            default 1, or as many as the time budget allows.
        final_epochs: after the search, continue the best trial's model
            with its configuration for this many epochs (the schedule
            restarted, as in a Hyperband round) and save it if its best
            epoch beats the trial; 0 keeps the trial's checkpoint. Defaults
            to 0 without a time budget; with one, the search gets
            `1 - FINAL_SHARE` of it and the final training the epochs that
            fit in the rest (at most `FINAL_SHARE` of it).
        overwrite: bool, replace a search already in `directory`.
        hyperparameters: a `keras_tuner.HyperParameters` fixing or narrowing
            some of the space.
        seed: int, seeds the tuner and the data pipeline.
        verbose: Keras `fit` verbosity of the trials' epochs: 0 (default:
            only the line per trial), 1 (the live progress bar), 2 (one line
            per epoch) or "auto" (1 on a terminal, else 2).
        strategy: "auto" (default: "mirrored" if this host has several
            GPUs, else "none"), "none" (one device) or "mirrored" (each
            trial trains on every GPU of this host: KerasTuner's
            `distribution_strategy`, a `tf.distribute.MirroredStrategy`).
            The batch size is global and batch norm synchronized, as in
            `train`, so a trial scores as on one device.
        **hypermodel_kwargs: `ResNetHyperModel` arguments: `image_size`,
            `families`, `depths`, `max_depth`, `max_params`, `max_macs`,
            `max_latency_ms`, ...

    Returns:
        The dict written to `summary.json`.

    Example:

    >>> summary = tune("digits", "hyperband", time_budget=10)  # doctest: +SKIP
    """
    started = time.time()
    check_choice("tuner", tuner, tuple(TUNERS))
    check_choice("strategy", strategy, STRATEGIES)
    verbose = resolve_verbose(verbose)
    if time_budget is not None and (
        isinstance(time_budget, bool) or not isinstance(time_budget, (int, float))
        or not math.isfinite(time_budget) or time_budget <= 0
    ):
        raise UsageError(
            f"`time_budget` must be a positive number of minutes; received time_budget={time_budget!r}."
        )
    if max_trials is not None:
        max_trials = check_positive_int("max_trials", max_trials)
    elif time_budget is None and tuner != "hyperband":
        max_trials = DEFAULT_MAX_TRIALS
    max_epochs = check_positive_int("max_epochs", max_epochs)
    if hyperband_iterations is None and time_budget is None:
        hyperband_iterations = 1
    directory = directory or default_directory(data)
    check_bool("overwrite", overwrite)

    hypermodel = ResNetHyperModel(data, seed=seed, epochs=DEFAULT_EPOCHS if epochs is None else epochs,
                                  **hypermodel_kwargs)
    settings = _settings(hypermodel, tuner, hypermodel.epochs, max_epochs, hyperparameters)
    # A budget nothing can meet is an error before anything is written.
    hypermodel.check_feasible()
    _claim_directory(directory, settings, overwrite)
    hypermodel.cost_cache = os.path.join(directory, "costs.json")
    deadline = None if time_budget is None else started + 60 * time_budget
    if final_epochs is not None:
        final_epochs = check_non_negative_int("final_epochs", final_epochs)
    search_deadline = deadline
    if deadline is not None and final_epochs is None:
        search_deadline = started + 60 * time_budget * (1 - FINAL_SHARE)

    # KerasTuner takes seed 0 for "no seed" (a random one): shift it.
    options = dict(objective=keras_tuner.Objective("val_accuracy", "max"), seed=seed + 1,
                   # A copy: KerasTuner adds the whole space to the object it is given.
                   hyperparameters=hyperparameters.copy() if hyperparameters else None,
                   directory=directory, project_name="trials",
                   overwrite=False, max_consecutive_failed_trials=1000)
    distribution = _distribution(strategy)
    if distribution is not None:
        options.update(distribution_strategy=distribution)
    if tuner == "hyperband":
        options.update(max_epochs=max_epochs, hyperband_iterations=hyperband_iterations)
    else:
        options.update(max_trials=max_trials)
    debug = keras_tuner_config.DEBUG
    with dtype_policy_restored():  # the trials set the policy they train in
        # Failed trials are reported by their reason, without KerasTuner's traceback.
        keras_tuner_config.DEBUG = False
        search = type(f"Monitored{TUNERS[tuner].__name__}", (_Monitor, TUNERS[tuner]), {})(hypermodel, **options)
        if tuner == "hyperband" and max_trials is not None:
            search.oracle.max_trials = max_trials
        search.deadline = search_deadline
        search.search_started = started
        stopped_by = "end of the search"
        try:
            if search_deadline is None or time.time() < search_deadline:
                callbacks = [] if search_deadline is None else [StopAtDeadline(search_deadline)]
                search.search(epochs=hypermodel.epochs, callbacks=callbacks, verbose=verbose)
            else:
                stopped_by = "time budget"
        except _TimeUp:
            stopped_by = "time budget"
        finally:
            keras_tuner_config.DEBUG = debug
        if stopped_by == "end of the search" and search_deadline is not None and time.time() >= search_deadline:
            stopped_by = "time budget"

        rows = [trial_row(search, t) for _, t in sorted(search.oracle.trials.items())]
        print(format_table(rows), flush=True)
        write_csv(rows, os.path.join(directory, "results.csv"))
        plot_accuracy_vs_macs(rows, os.path.join(directory, "accuracy_vs_macs.png"),
                              hypermodel.budgets.get("max_macs"))
        done = [r for r in rows if r["status"] == "completed"]
        counts = {s: sum(r["status"] == s for r in rows) for s in ("completed", "rejected", "failed")}
        if not done:
            raise UsageError(
                f"No trial of the search in {directory!r} completed ({counts['rejected']} rejected, "
                f"{counts['failed']} failed; see results.csv). Allowed: a larger time_budget or "
                "max_trials, or a wider space."
            )
        best_trial = search.oracle.get_best_trials(1)[0]
        best = next(r for r in done if r["trial"] == best_trial.trial_id)
        # The best trial's checkpoint (its best epoch), or its continuation.
        model = search.load_model(best_trial)
        if final_epochs is None:
            # The epochs that fit in the time left, at most FINAL_SHARE of the
            # budget (a search that ends early leaves more).
            left = None if deadline is None else min(deadline - time.time(), 60 * time_budget * FINAL_SHARE)
            final_epochs = 0 if left is None else _epochs_that_fit(best_trial, left)
        final = None
        if final_epochs:
            model, final = _final_training(search, best_trial, model, final_epochs, deadline, verbose)
        cb.atomic_save(model, os.path.join(directory, "best.keras"))
        bundle = hypermodel._bundle(best_trial.hyperparameters.get("batch_size"))
        with model.distribute_strategy.scope():  # where KerasTuner built it (as in `fit`)
            model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
        test = one_hot_labels(bundle.test, bundle.num_classes)
        test_loss, test_accuracy = model.evaluate(test, verbose=0)
    summary = {
        "directory": directory,
        "data": bundle.name,
        "tuner": tuner,
        "best_trial": best["trial"],
        "best_architecture": best["architecture"],
        "best_hyperparameters": {k: v for k, v in best_trial.hyperparameters.values.items()
                                 if not k.startswith("tuner/")},
        # Of the model saved as best.keras.
        "val_accuracy": max(best["val_accuracy"], (final or {}).get("val_accuracy") or 0.0),
        "trial_val_accuracy": best["val_accuracy"],
        "final_training": final,
        # On the test split, which no trial and no final training saw (where
        # the data has none, a held-out part of its training data).
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "test_images": bundle.test_size,
        "splits": bundle.splits,
        "params": best["params"],
        "macs": best["macs"],
        "latency_ms": best["latency_ms"],
        "budgets": hypermodel.budgets,
        "trials": len(rows),
        **{f"trials_{k}": v for k, v in counts.items()},
        "stopped_by": stopped_by,
        "strategy": "none" if distribution is None else "mirrored",
        "replicas": 1 if distribution is None else distribution.num_replicas_in_sync,
        "time_budget_minutes": time_budget,
        "wall_seconds": round(time.time() - started, 1),
        "versions": versions(),
    }
    write_json(os.path.join(directory, "summary.json"), summary)
    return summary
