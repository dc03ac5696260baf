"""TensorFlow's C++ log lines, shown only when asked for.

TensorFlow 2.21 prints, while it is imported, lines such as

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796138190.413295    4398 port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:1796138190.413605    4398 cudart_stub.cc:31] Could not find cuda drivers ...

before it reads `TF_CPP_MIN_LOG_LEVEL` (it respects the variable only for
what it logs later), so setting the variable is not enough.
`import_tensorflow` imports it with file descriptor 2 (stderr) sent to a
temporary file, then writes back every line except TensorFlow's own log lines
below the level: `TF_CPP_MIN_LOG_LEVEL` as the user set it (0: everything, 1:
no INFO, 2: no WARNING, 3: no ERROR), else `DEFAULT_LEVEL`. Anything else
printed during the import (a Python warning, an error) comes through.

Example:

>>> import_tensorflow()  # doctest: +SKIP
<module 'tensorflow' ...>
"""

import contextlib
import os
import re
import sys
import tempfile

DEFAULT_LEVEL = "3"
"""The command line's `TF_CPP_MIN_LOG_LEVEL` when the user set none: quiet.
TensorFlow's errors still reach the user as Python exceptions."""

# absl's format: severity letter, MMDD, hh:mm:ss.micros (TensorFlow prints
# "00:00:<seconds since 1970>"), thread id, file:line].
_LOG_LINE = re.compile(rb"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")
_SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}
# Lines TensorFlow prints at start-up without that prefix, with their severity.
_START_UP = {
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR": 1,
    # The second line of cpu_feature_guard.cc's INFO message.
    b"To enable the following instructions:": 0,
}


def min_log_level(environ=os.environ):
    """`TF_CPP_MIN_LOG_LEVEL` as an int in 0..3: the user's value, else
    `DEFAULT_LEVEL` (which is also set in `environ`, for what TensorFlow
    logs after its import)."""
    value = environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LEVEL)
    try:
        return min(max(int(value), 0), 3)
    except ValueError:
        return 0  # TensorFlow reads a value it cannot parse as 0


def is_hidden(line, level):
    """Whether `line` (bytes) is one of TensorFlow's log lines below `level`."""
    match = _LOG_LINE.match(line)
    if match:
        return _SEVERITY[match.group(1)] < level
    for start, severity in _START_UP.items():
        if line.startswith(start):
            return severity < level
    return False


def import_tensorflow(level=None):
    """Imports TensorFlow without its start-up log lines below `level`
    (default: `min_log_level()`); returns the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    level = min_log_level() if level is None else level
    with native_stderr_without(lambda line: is_hidden(line, level)):
        import tensorflow
    return tensorflow


@contextlib.contextmanager
def native_stderr_without(hidden):
    """Within the block, what anything (C++ included) writes to file
    descriptor 2 goes to a temporary file; at its end, every line for which
    `hidden(line)` (bytes) is false is written back, in order."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 to redirect
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            shown = [line for line in captured.read().splitlines(keepends=True) if not hidden(line)]
            if shown:
                os.write(2, b"".join(shown))
