"""Callbacks of a training run: atomic checkpoints, NaN guard, throughput."""

import contextlib
import json
import math
import os
import sys
import time

import keras


def partial_path(path):
    """Where `path` is written before it is renamed into place: the same
    folder (so the rename is atomic) and the same ending (Keras checks it)."""
    directory, name = os.path.split(os.fspath(path))
    return os.path.join(directory, f".partial-{os.getpid()}-{name}")


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; renames it to `path` when the block
    ends without error, removes it otherwise: `path` is whole or absent."""
    tmp = partial_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_save(model, path):
    """`model.save(path)` that never leaves a half-written file at `path`."""
    with atomic_path(path) as tmp:
        model.save(tmp)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint` whose files appear whole or not at all:
    each is written beside its final name, then renamed."""

    def _get_file_path(self, epoch, batch, logs):
        self._final_path = super()._get_file_path(epoch, batch, logs)
        self._partial_path = partial_path(self._final_path)
        return self._partial_path

    def _save_model(self, epoch, batch, logs):
        try:
            super()._save_model(epoch, batch, logs)
            if os.path.exists(self._partial_path):
                os.replace(self._partial_path, self._final_path)
        finally:
            if os.path.exists(self._partial_path):
                os.remove(self._partial_path)


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where."""

    def __init__(self):
        super().__init__()
        self.epoch = 0
        self.failure = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failure = {"epoch": self.epoch + 1, "step": batch + 1, "loss": float(loss)}
            self.model.stop_training = True


def process_stats():
    """This process's thread count and resident memory (MiB), read from
    /proc (Linux); an empty dict elsewhere."""
    try:
        threads = len(os.listdir("/proc/self/task"))
        with open("/proc/self/status") as f:
            rss_kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return {}
    return {"threads": threads, "rss_mib": round(rss_kib / 1024, 1)}


def peak_rss_mib():
    """This process's peak resident memory so far, in MiB; None where the
    `resource` module is missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20, 1)


class CSVLoggerWithStats(keras.callbacks.CSVLogger):
    """`keras.callbacks.CSVLogger` whose rows also hold the process's thread
    count and resident memory at the end of the epoch (`process_stats`): a
    leak shows as a column that grows over a long run. The figures go to the
    file only, not into the logs that the progress bar and the other
    callbacks see."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, {**(logs or {}), **process_stats()})


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each training epoch (without validation)."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def _stop(self):
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_test_begin(self, logs=None):
        self._stop()  # validation runs inside the epoch: the clock stops there

    def on_epoch_end(self, epoch, logs=None):
        self._stop()

    def images_per_second(self, images_per_epoch):
        """From the epochs after the first (which includes graph tracing)."""
        times = self.seconds[1:] or self.seconds
        if not times:
            return None
        times = sorted(times)
        return images_per_epoch / times[len(times) // 2]


def plot_history(csv_path, png_path):
    """A PNG of loss and accuracy per epoch from a CSVLogger file."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + key in rows[0]:
                ax.plot(epochs, [float(r[prefix + key]) for r in rows], style,
                        label=(prefix or "train_").rstrip("_"))
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return png_path


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backup survives a SIGKILL.

    Keras overwrites its weights file and its metadata in place, so a kill
    while it writes leaves a backup that cannot be read ("bad object header")
    or that disagrees with itself. Here each backup's weights go to a new file
    and then the metadata naming that file is replaced atomically: the backup
    is always the last complete one.
    """

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch{self._current_epoch}-batch{self._last_batch_seen}.weights.h5"
        self.model.save_weights(os.path.join(self.backup_dir, name), overwrite=True)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name}
        with atomic_path(self._training_metadata_path) as tmp, open(tmp, "w") as f:
            json.dump(metadata, f)
        for old in os.listdir(self.backup_dir):
            if old.endswith(".weights.h5") and old != name:
                os.remove(os.path.join(self.backup_dir, old))

    def _load_model(self):
        if not os.path.exists(self._training_metadata_path):
            return
        with open(self._training_metadata_path) as f:
            metadata = json.load(f)
        if self.model.optimizer is not None and not self.model.optimizer.built:
            # Optimizer variables must exist before their values load.
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, metadata["weights"]))
        self.model._initial_epoch = metadata["epoch"]
