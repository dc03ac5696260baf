"""What a run folder holds, and the rules that keep an earlier run from being lost.

A run writes `RUN_OUTPUTS` into `OUTPUT/RUN-NAME/`. Before anything else,
`check_run_folder` decides whether a new run may start there:

- `resume=True` continues the run from its backup (`backup/`, or the
  finetune recipe's `head.weights.h5` of an unfinished run). With no backup
  it is refused: a user who asked to continue never wants a fresh run that
  replaces what is there. With `overwrite=True` too, it starts afresh
  instead (one command for a job that a scheduler may restart).
- A fresh run (`resume=False`) into a folder that holds an earlier run,
  finished or interrupted, is refused unless `overwrite=True`, as `export`
  and `tune` do with their outputs. `overwrite=True` removes `RUN_OUTPUTS`
  (and nothing else) when the run starts.
- An absent folder, or one that holds none of `RUN_OUTPUTS`, takes a fresh
  run.

It reads the folder and writes nothing, and needs no TensorFlow: the
command line runs it before any work.

Example:

>>> check_run_folder("saved_models", "resnet20-digits", resume=False, overwrite=False)  # doctest: +SKIP
False
"""

import os
import re

from keras_resnets.utils.validation import UsageError, check_output_folder

RUN_OUTPUTS = ("model.keras", "best.keras", "summary.json", "log.csv", "history.png", "tensorboard",
               "backup", "head.weights.h5")
"""What a run writes into its folder."""


def default_run_name(model, data):
    """"MODEL-DATA": "resnet20-digits", "resnet50-photos" for ./photos/."""
    data = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(os.path.normpath(data)))
    return f"{model}-{data.strip('_') or 'data'}"


def earlier_run(run_dir):
    """The names of `RUN_OUTPUTS` in `run_dir` (empty if there is none)."""
    return [name for name in RUN_OUTPUTS if os.path.lexists(os.path.join(run_dir, name))]


def can_resume(run_dir):
    """Whether `run_dir` holds an unfinished run to continue: a backup, or
    (finetune recipe) the head phase's weights without a summary."""
    found = earlier_run(run_dir)
    return "backup" in found or ("head.weights.h5" in found and "summary.json" not in found)


def describe(run_dir):
    """The earlier run in `run_dir`, in words: finished or not, and its files."""
    found = earlier_run(run_dir)
    epochs = _logged_epochs(os.path.join(run_dir, "log.csv"))
    if "summary.json" in found:
        state = "a finished run"
    elif can_resume(run_dir):
        state = "an interrupted run with a backup"
    else:
        state = "an interrupted run without a backup"
    logged = "" if epochs is None else f", {epochs} epoch{'' if epochs == 1 else 's'} logged"
    return f"{state} ({', '.join(found)}{logged})"


def _logged_epochs(log):
    try:
        with open(log) as f:
            return max(0, sum(1 for _ in f) - 1)
    except OSError:
        return None


def check_run_folder(output, run_name, resume, overwrite, output_name="output"):
    """Whether a run into `output/run_name` continues (True) or starts
    afresh (False); a `UsageError` where `output` cannot be written or the
    run would lose an earlier one (see the module's rules). `output_name`:
    the argument's name in the messages ("--output" on the command line)."""
    check_output_folder(output_name, output)
    run_dir = os.path.join(os.fspath(output), run_name)
    if os.path.lexists(run_dir) and not os.path.isdir(run_dir):
        raise UsageError(f"The run folder {run_dir!r} is a file. Allowed: another `output` (--output) "
                         "or `run_name` (--run-name).")
    if resume and can_resume(run_dir):
        return True
    found = earlier_run(run_dir)
    if overwrite or not found:
        if resume and not overwrite:
            raise UsageError(
                f"`resume` (--resume): there is no run to continue in {run_dir!r} "
                f"({'it does not exist' if not os.path.exists(run_dir) else 'it holds no run'}); "
                "received resume=True. Allowed: without --resume, to start a new run there."
            )
        return False
    if resume:
        raise UsageError(
            f"`resume` (--resume): {run_dir!r} has no backup to continue from; it holds "
            f"{describe(run_dir)}. Allowed: overwrite=True (--overwrite) to replace it with a new run, "
            "or another run_name (--run-name) or output (--output). Nothing was changed."
        )
    hint = "resume=True (--resume) to continue it, " if can_resume(run_dir) else ""
    raise UsageError(
        f"{run_dir!r} holds {describe(run_dir)}, which a new run would replace. Allowed: {hint}"
        "overwrite=True (--overwrite) to replace it, or another run_name (--run-name) or output "
        "(--output). Nothing was changed."
    )
