"""The tests marked `backends` pass on JAX, in a process that cannot import TensorFlow.

One pytest run inside the suite: `KERAS_BACKEND=jax python -m pytest -m
backends` in a subprocess where `import tensorflow` fails as it does where
TensorFlow is not installed (`sys.modules["tensorflow"] = None`, Python's
own way to block a module: the import raises `ModuleNotFoundError` and
`importlib.util.find_spec` answers None). So the layers, the models,
`count_macs` and the weight files are checked on JAX, and so is the claim
that they need no TensorFlow. jax is in the `test` extras; without it this
test is skipped with the command that installs it.

The run is exact: `tests/jax_expected.txt` lists every test's id and
outcome, and a skip's reason; any other outcome (a test more or less, a pass
that became a skip, a reason that changed) fails, and the message lists the
differences. After adding or removing a `backends` test, write the list
anew: `KERAS_RESNETS_JAX_EXPECTED=write python -m pytest tests/test_jax_backend.py`.
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
EXPECTED = ROOT / "tests" / "jax_expected.txt"


def _lines(cases):
    """One line a test: `OUTCOME MODULE::NAME`, and ` | REASON` for a skip."""
    return sorted(f"{outcome} {module}::{name}" + (f" | {message}" if outcome == "skipped" else "")
                  for module, name, outcome, message in cases)


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
    got = _lines(cases)
    if os.environ.get("KERAS_RESNETS_JAX_EXPECTED") == "write":
        EXPECTED.write_text("\n".join(got) + "\n")
    expected = EXPECTED.read_text().splitlines()
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    assert not missing and not extra, (
        f"the JAX run differs from {EXPECTED.name}:\nexpected, not seen:\n" + "\n".join(missing)
        + "\nseen, not expected:\n" + "\n".join(extra))
    # Every module with marked tests ran some of them on JAX.
    mark = "pytest.mark." + "backends"  # (not spelled out: this module has no such test)
    marked = {p.stem for p in (ROOT / "tests").glob("test_*.py") if mark in p.read_text()}
    assert {c[0] for c in cases if c[2] == "passed"} == marked
