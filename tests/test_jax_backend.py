"""The tests marked `backends` pass on JAX, in a process that cannot import TensorFlow.

One pytest run inside the suite: `KERAS_BACKEND=jax python -m pytest -m
backends` in a subprocess where `import tensorflow` fails as it does where
TensorFlow is not installed (`sys.modules["tensorflow"] = None`, Python's
own way to block a module: the import raises `ModuleNotFoundError` and
`importlib.util.find_spec` answers None). So the layers, the models,
`count_macs` and the weight files are checked on JAX, and so is the claim
that they need no TensorFlow. jax is in the `test` extras; without it this
test is skipped with the command that installs it.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

# What runs in the subprocess: TensorFlow blocked, then pytest.
BLOCKED_PYTEST = (
    "import sys; sys.modules['tensorflow'] = None; import pytest; "
    "sys.exit(pytest.main(sys.argv[1:]))"
)
# The tests marked `backends` on JAX: 75 when this was written (a
# floor: more may be added; a module that stops being collected shows here).
MIN_PASSED = 70


def _cases(report):
    """`[(file, name, outcome, message)]` of a JUnit XML report."""
    found = []
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, child.get("message", "")
        module = next(part for part in case.get("classname", "").split(".") if part.startswith("test_"))
        found.append((module, case.get("name"), outcome, message))
    return found


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason='jax is not installed: pip install ".[test]"')
def test_backends_marked_tests_pass_on_jax_without_tensorflow(tmp_path):
    report = tmp_path / "jax.xml"
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    env.pop("PYTEST_XDIST_WORKER", None)
    # (without xdist: pytest.ini's addopts, whose --dist is xdist's, replaced)
    command = [sys.executable, "-c", BLOCKED_PYTEST, "-m", "backends", "-q", "-p", "no:cacheprovider",
               "-p", "no:xdist", "-o", "addopts=-ra", f"--junitxml={report}", "tests"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the JAX run failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    cases = _cases(report)
    passed = [c for c in cases if c[2] == "passed"]
    assert len(passed) >= MIN_PASSED, f"only {len(passed)} tests passed on JAX:\n{done.stdout[-2000:]}"
    # Every module with marked tests ran some of them on JAX.
    mark = "pytest.mark." + "backends"  # (not spelled out: this module has no such test)
    marked = {p.stem for p in (ROOT / "tests").glob("test_*.py") if mark in p.read_text()}
    assert {c[0] for c in passed} == marked
    # What was skipped was skipped for a reason of its own, not for the backend.
    assert all("TensorFlow" in c[3] or "torch" in c[3] for c in cases if c[2] == "skipped"), cases
