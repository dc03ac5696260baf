"""Clocks and memory gauges shared by every measurement (standard library only:
the torchvision peer imports this file without TensorFlow)."""

import ctypes
import os
import statistics
import threading
import time


def median_seconds(fn, warmup=1, repeats=5):
    """Median wall time of `fn()` over `repeats` calls after `warmup` calls.

    `fn` must block until its work is done (return a NumPy value, not a lazy
    tensor). Returns `(median, all_times)`.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def rss_mib():
    """This process's resident memory now, in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def release_memory():
    """Hands freed heap pages back to the OS (glibc `malloc_trim`), so that
    the next model's memory is measured from a clean baseline."""
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakRss:
    """Samples the resident memory every `interval` seconds in a thread while
    the block runs; `peak` is the highest value seen (MiB).

    TensorFlow and PyTorch release the GIL while they compute, so the sampler
    sees the memory of the step in flight, not only between steps.

    Example:

    >>> with PeakRss() as gauge:
    ...     work()
    >>> gauge.peak
    """

    def __init__(self, interval=0.002):
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = None

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib())
            self._stop.wait(self.interval)

    def __enter__(self):
        self.peak = rss_mib()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())
        return False
