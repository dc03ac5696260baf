import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402

from helpers import PARITY_COMMAND, PARITY_MODULE, torch_installed  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with float32, a fixed seed and no leftover names."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session()


def pytest_collection_modifyitems(config, items):
    """Without torch, the parity items are each skipped, with a reason that
    says how many they are and the command that runs them."""
    parity = [item for item in items if item.path.name == PARITY_MODULE]
    if not parity or torch_installed():
        return
    skip = pytest.mark.skip(
        reason=f"torch and torchvision are not installed: {len(parity)} parity items against "
        f"torchvision and timm skipped; run them with: {PARITY_COMMAND}"
    )
    for item in parity:
        item.add_marker(skip)
