"""Test set-up: a fresh Keras state per test, and what runs on which backend.

The suite runs on TensorFlow (KERAS_BACKEND defaults to it here). The
tests marked `backends` run on JAX and PyTorch as well:
`KERAS_BACKEND=jax python -m pytest -m backends` (CI runs that in an
environment without TensorFlow). Off TensorFlow, only the test modules that
hold such tests are collected (the others import TensorFlow, or parts of
keras_resnets that need it), and their other tests are skipped with a reason.
"""

import gc
import importlib.util
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if "PYTEST_XDIST_WORKER" in os.environ:
    # README's `-n 3` runs three workers (and their child processes) on two
    # cores: TensorFlow's thread pools, each as wide as the machine, only
    # took turns on them. One thread an operation: 5% less CPU time and wall
    # time for five of the slowest modules, measured side by side.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import pytest  # noqa: E402

# The PyTorch-backend items of the cross-backend tests need torch (large; not in CI).
BACKENDS_MODULE = "test_backends.py"
BACKENDS_COMMAND = 'pip install torch && python -m pytest tests/test_backends.py'

# What `keras.backend.backend()` reads first, without importing Keras: the
# pytest-xdist controller loads this file too, and importing Keras (and with
# it TensorFlow, 6 s) there only delayed the workers' start.
BACKEND = os.environ["KERAS_BACKEND"]
BACKENDS_MARK = "pytest.mark.backends"

# The modules that take longest, slowest first (their summed test times,
# measured on 2 cores): pytest-xdist hands whole modules out in the order of
# the collection (pytest.ini: --dist loadfile --no-loadscope-reorder, which
# otherwise orders them by their number of tests and left the one-test JAX
# pass of three minutes for the end, one core idle), so the long ones start
# first and the short ones fill in around them.
SLOWEST_MODULES = (
    "test_distribute.py", "test_training.py", "test_tuning.py", "test_user_journey.py",
    "test_jax_backend.py", "test_export.py", "test_models.py", "test_fidelity.py", "test_backends.py",
    "test_recipes.py", "test_transfer.py", "test_backbones.py",
)


def pytest_ignore_collect(collection_path, config):
    """Off TensorFlow, a test module without a test marked `backends` is not
    collected: importing it may need TensorFlow."""
    path = pathlib.Path(collection_path)
    if BACKEND == "tensorflow" or path.suffix != ".py" or not path.name.startswith("test_"):
        return None
    return True if BACKENDS_MARK not in path.read_text() else None


def pytest_collection_finish(session):
    """What the imports made (TensorFlow's modules, some 400,000 objects)
    lives as long as the process: moved out of the garbage collector's
    reach, so that its collections walk only what the tests make."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with float32, a fixed seed and no leftover names.

    `clear_session(free_memory=False)`: without it, each test's teardown ran a
    full garbage collection over every object alive in the pytest-xdist
    worker (0.2 s alone, about 1 s late in a suite run: 480 s of the suite's
    2,200 test-seconds, measured); Python's own collector frees the cycles
    the tests leave, and `_collect_per_module` below bounds what is left."""
    import keras

    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session(free_memory=False)


@pytest.fixture(autouse=True, scope="module")
def _collect_per_module():
    """One full collection after each test module (instead of after each test)."""
    yield
    gc.collect()


def pytest_collection_modifyitems(config, items):
    """Off TensorFlow, the tests not marked `backends` are skipped. Without
    torch, the parity items and the PyTorch-backend items are each skipped,
    with a reason that says how many they are and the command that runs them.
    The slowest modules come first (SLOWEST_MODULES)."""
    from helpers import PARITY_COMMAND, PARITY_MODULE, torch_installed

    rank = {name: i for i, name in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # (stable: a module keeps its order)
    if BACKEND != "tensorflow":
        skip = pytest.mark.skip(reason=f"TensorFlow backend only (Keras runs on {BACKEND!r} here): "
                                "not marked `backends`")
        for item in items:
            if item.get_closest_marker("backends") is None:
                item.add_marker(skip)
    on_torch = [item for item in items if item.path.name == BACKENDS_MODULE
                and "torch" in getattr(item, "callspec", None).params.values()]
    if on_torch and importlib.util.find_spec("torch") is None:
        skip = pytest.mark.skip(reason=f"torch is not installed: {len(on_torch)} PyTorch-backend items "
                                f"skipped; run them with: {BACKENDS_COMMAND}")
        for item in on_torch:
            item.add_marker(skip)
    parity = [item for item in items if item.path.name == PARITY_MODULE]
    if not parity or torch_installed():
        return
    skip = pytest.mark.skip(
        reason=f"torch and torchvision are not installed: {len(parity)} parity items against "
        f"torchvision and timm skipped; run them with: {PARITY_COMMAND}"
    )
    for item in parity:
        item.add_marker(skip)
