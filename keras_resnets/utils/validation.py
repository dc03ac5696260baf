"""Argument checks shared by layers, builders and the command line.

Every error names the argument, the value received and what is allowed.
The command line's number types (`int_at_least`, `positive_number`) are
`argparse` types: a bad value stops at parsing, before anything runs. The
checks of files, folders and data names raise `UsageError`; they read the
file system and write nothing, so the command line runs them all before any
work.
"""

import argparse
import math
import numbers
import os

from keras_resnets.utils import file_kinds


class UsageError(ValueError):
    """A bad argument or bad data (a value out of range, a missing file, a
    folder that cannot be written, a run that would be lost), raised by
    every check of the package: `keras-resnets` prints its message as one
    line, `keras-resnets COMMAND: error: MESSAGE`, and exits with status 2;
    any other exception keeps its traceback. A `ValueError`, so callers of
    the Python API catch it as the Keras convention has it."""


class DownloadError(ConnectionError):
    """A file that could not be downloaded (offline, the server down, a
    truncated transfer), with a message that says which file to place where:
    `keras-resnets` prints it as one line and exits with status 1."""


def check_bool(name, value):
    """True or False, nothing else (not 0, 1 or a string)."""
    if not isinstance(value, bool):
        raise UsageError(f"`{name}` must be True or False; received {name}={value!r}.")
    return value


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise UsageError(
            f"`{name}` must be a positive integer; received {name}={value!r}."
        )
    return int(value)


def check_non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise UsageError(
            f"`{name}` must be a non-negative integer; received {name}={value!r}."
        )
    return int(value)


def check_positive_number(name, value):
    """A finite real number > 0 (a learning rate, a timeout in seconds)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (math.isfinite(value) and value > 0)
    ):
        raise UsageError(f"`{name}` must be a positive number; received {name}={value!r}.")
    return float(value)


def check_rate(name, value):
    """A probability in [0, 1): drop rates."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= value < 1.0
    ):
        raise UsageError(
            f"`{name}` must be a number in [0, 1); received {name}={value!r}."
        )
    return float(value)


def check_choice(name, value, allowed):
    if value not in allowed:
        raise UsageError(
            f"`{name}` must be one of {', '.join(repr(a) for a in allowed)}; "
            f"received {name}={value!r}."
        )
    return value


def int_at_least(minimum, maximum=None):
    """An `argparse` type: an integer >= `minimum` ("a positive integer" for
    1), and <= `maximum` if given."""
    if maximum is not None:
        what = f"an integer from {minimum} to {maximum}"
    else:
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {what}; received {text!r}")
        return value

    parse.__name__ = f"int_at_least_{minimum}"
    return parse


def positive_number(text):
    """An `argparse` type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number; received {text!r}")
    return value


def _refuse(name, value, allowed, why):
    raise UsageError(f"`{name}` must be {allowed}; received {name}={value!r} ({why}).")


def check_existing_file(name, path, kinds):
    """`path`, an existing, readable, non-empty file whose name and bytes are
    one of `kinds` (`keras_resnets.utils.file_kinds.KINDS`) and which reads as
    whole (not truncated); a `UsageError` saying which of these fails."""
    allowed = " or ".join(f"{file_kinds.KINDS[k][0]} ({', '.join(file_kinds.KINDS[k][1])})" for k in kinds)
    path = os.fspath(path)
    if not os.path.exists(path):
        _refuse(name, path, allowed, "no such file")
    if os.path.isdir(path):
        _refuse(name, path, allowed, "a directory")
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        _refuse(name, path, allowed, "not a readable file")
    if os.path.getsize(path) == 0:
        _refuse(name, path, allowed, "an empty file")
    named = file_kinds.kind_by_name(path)
    if named not in kinds:
        _refuse(name, path, allowed, f"named as {file_kinds.KINDS[named][0]}" if named else "an unknown file ending")
    holds = file_kinds.kind_by_content(path)
    if holds != named:
        theirs = f"those of {file_kinds.KINDS[holds][0]}" if holds else "of no known kind"
        _refuse(name, path, allowed,
                f"its bytes are {theirs}, not of {file_kinds.KINDS[named][0]}: corrupt or another format")
    problem = file_kinds.damage(path, named)
    if problem:
        _refuse(name, path, allowed, f"truncated or corrupt: {problem}")
    return path


def _nearest_existing(path):
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def check_output_folder(name, path):
    """`path`, a folder that exists and can be written, or that can be
    created: its nearest existing parent is a writable folder. Creates
    nothing."""
    allowed = "a folder that can be written or created"
    target = os.path.abspath(os.fspath(path))
    if os.path.lexists(target):
        if not os.path.isdir(target):
            _refuse(name, os.fspath(path), allowed, "a file, not a folder")
        if not os.access(target, os.W_OK | os.X_OK):
            _refuse(name, os.fspath(path), allowed, "not writable")
        return path
    parent = _nearest_existing(target)
    if not os.path.isdir(parent):
        _refuse(name, os.fspath(path), allowed, f"{parent} is a file, so no folder can be made inside it")
    if not os.access(parent, os.W_OK | os.X_OK):
        _refuse(name, os.fspath(path), allowed, f"{parent} is not writable")
    return path


def check_new_file(name, path, endings=None):
    """`path`, a file to write: not a folder, in an existing writable folder,
    ending in one of `endings` if given. Creates nothing."""
    allowed = "a file path in an existing writable folder" + (
        f", ending in {', '.join(endings)}" if endings else "")
    path = os.fspath(path)
    if os.path.isdir(path):
        _refuse(name, path, allowed, "a directory")
    if endings and not path.lower().endswith(tuple(endings)):
        _refuse(name, path, allowed, "another ending")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        existing = _nearest_existing(folder)
        why = f"{existing} is a file" if not os.path.isdir(existing) else f"the folder {folder} does not exist"
        _refuse(name, path, allowed, why)
    if not os.access(folder, os.W_OK | os.X_OK):
        _refuse(name, path, allowed, f"the folder {folder} is not writable")
    return path


DATA_SOURCES = (
    "'digits', 'tfds:NAME' (or 'tfds:NAME:CONFIG', e.g. 'tfds:cifar10') or the path of a folder "
    "of images with one sub-folder per class"
)


def data_error(name, data, reason=None):
    """The message of a bad `data` source: what is allowed, what was received and why."""
    return f"`{name}` must be {DATA_SOURCES}; received {name}={data!r}" + (f" ({reason})." if reason else ".")


def check_data(name, data):
    """`data`, a data source `keras_resnets.data.load_data` takes: "digits",
    "tfds:NAME[:CONFIG]" (whether tfds knows NAME shows when it loads) or an
    existing folder; a `UsageError` otherwise."""
    if isinstance(data, os.PathLike):
        data = os.fspath(data)
    if not isinstance(data, str):
        raise UsageError(data_error(name, data))
    if data == "digits":
        return data
    if data.startswith("tfds:"):
        parts = data[len("tfds:"):].split(":")
        if len(parts) > 2 or not all(parts):
            raise UsageError(data_error(name, data, "expected 'tfds:NAME' or 'tfds:NAME:CONFIG'"))
        return data
    if os.path.isdir(data):
        return data
    reason = "a file, not a folder" if os.path.exists(data) else "no such folder" if data else None
    raise UsageError(data_error(name, data, reason))


random_seed = int_at_least(0, 2**32 - 1)
"""An `argparse` type: a seed NumPy takes (0 to 2**32 - 1)."""
