"""A command line that answers at once and quietly: `--help` and argument
parsing import neither TensorFlow nor Keras, `import keras_resnets` is lazy,
and TensorFlow's C++ start-up lines stay hidden unless asked for."""

import os
import subprocess
import sys
import textwrap

import pytest

import keras_resnets
from keras_resnets.utils import tf_logs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("tensorflow", "keras", "numpy", "keras_tuner", "h5py")


def run_python(code):
    """Runs `code` in a fresh interpreter (TF_CPP_MIN_LOG_LEVEL unset), then
    prints the heavy packages it loaded ("heavy: [...]", the last line)."""
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environ.update(PYTHONPATH=REPO)
    report = f"import sys\nprint('heavy:', sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code) + report], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=300)


def test_help_and_parsing_import_nothing_heavy():
    out = run_python("""
        import contextlib, io, sys
        from keras_resnets.cli import build_parser, main
        commands = ["info", "models", "train", "export", "tune", "benchmark"]
        for argv in [["--help"], *[[c, "--help"] for c in commands]]:
            with contextlib.redirect_stdout(io.StringIO()) as text:
                try:
                    main(argv)
                except SystemExit as e:
                    assert e.code == 0, argv
            assert "usage: keras-resnets" in text.getvalue(), argv
        build_parser().parse_args(["train", "--model", "resnet56", "--epochs", "3", "--recipe", "imagenet"])
        build_parser().parse_args(["tune", "--families", "v1,resnext", "--max-macs", "20M"])
        build_parser().parse_args(["benchmark", "--models", "resnet50", "--peers", "none"])
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "heavy: []"
    assert out.stderr == ""


def test_import_keras_resnets_is_lazy():
    out = run_python("""
        import sys
        import keras_resnets
        assert keras_resnets.__version__
        names = dir(keras_resnets)
        assert set(keras_resnets.__all__) <= set(names), set(keras_resnets.__all__) - set(names)
        assert "ResNet50" in names and "train" in names and "data" in names
        print("spec:", keras_resnets.get_spec("resnet50").title)
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["spec: ResNet-50", "heavy: []"]


def test_every_public_name_resolves():
    # (In this process TensorFlow is loaded already; what matters is that
    # each name loads from the module the lazy table says.)
    from keras_resnets import ResNet50, train

    assert keras_resnets.ResNet50 is ResNet50 and ResNet50.registry_name == "resnet50"
    assert train is keras_resnets.training.loop.train
    for name in keras_resnets.__all__:
        assert getattr(keras_resnets, name) is not None, name
    assert keras_resnets.data.load_data and keras_resnets.training.train is keras_resnets.train
    assert sorted(keras_resnets.BUILDERS) == sorted(keras_resnets.models.BUILDER_NAMES)
    with pytest.raises(AttributeError, match="has no attribute 'ResNet51'"):
        keras_resnets.ResNet51


def test_models_command_imports_no_tensorflow():
    out = run_python("""
        import sys
        from keras_resnets.cli import main
        assert main(["models", "--format", "csv"]) == 0
    """)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("name,builders,family") and len(lines) == 2 + len(keras_resnets.list_models())
    assert lines[-1] in ("heavy: []", "heavy: ['numpy']"), lines[-1]


# Lines TensorFlow 2.21 printed on stderr while it was imported (CPU-only
# machine, TF_CPP_MIN_LOG_LEVEL=3, which it read too late for them).
START_UP = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1796138190.413295    4398 port.cc:153] oneDNN custom operations are on. You may see "
    b"slightly different numerical results due to floating-point round-off errors from different "
    b"computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n",
    b"I0000 00:00:1796138190.413605    4398 cudart_stub.cc:31] Could not find cuda drivers on your "
    b"machine, GPU will not be used.\n",
    b"I0000 00:00:1796138190.462107    4398 cpu_feature_guard.cc:227] This TensorFlow binary is "
    b"optimized to use available CPU instructions in performance-critical operations.\n",
    b"To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other "
    b"operations, rebuild TensorFlow with the appropriate compiler flags.\n",
    b"E0000 00:00:1796138205.288941    4398 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    b"CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
]


@pytest.mark.parametrize("level, shown", [
    (0, START_UP),
    (1, [START_UP[0], START_UP[-1]]),
    (2, [START_UP[-1]]),
    (3, []),
])
def test_start_up_lines_below_the_level_are_hidden(level, shown):
    others = [b"Traceback (most recent call last):\n", b"UserWarning: something else\n",
              b"I think therefore I am\n"]
    lines = START_UP + others
    assert [line for line in lines if not tf_logs.is_hidden(line, level)] == shown + others


def test_min_log_level_respects_the_user(monkeypatch):
    environ = {}
    assert tf_logs.min_log_level(environ) == 3 and environ == {"TF_CPP_MIN_LOG_LEVEL": "3"}
    assert tf_logs.min_log_level({"TF_CPP_MIN_LOG_LEVEL": "0"}) == 0
    assert tf_logs.min_log_level({"TF_CPP_MIN_LOG_LEVEL": "1"}) == 1


def test_a_command_that_imports_tensorflow_is_quiet_and_on_onednn():
    """A command that imports TensorFlow prints none of its start-up lines
    and, the user's environment not choosing, runs on its oneDNN kernels
    (`test_commands_run_on_onednn_unless_the_user_chose`)."""
    out = run_python("""
        import os
        from keras_resnets.cli import main
        code = main(["info", "resnet20", "--image-size", "8"])
        from keras_resnets.layers.grouped_conv import onednn_enabled
        print("exit:", code, "onednn:", onednn_enabled(), os.environ["TF_ENABLE_ONEDNN_OPTS"])
    """)
    assert out.returncode == 0, out.stderr
    assert "resnet20: ResNet-20 (CIFAR)" in out.stdout
    assert "exit: 0 onednn: True 1" in out.stdout.splitlines()
    assert out.stderr == ""


# That `load_model` reads a keras_resnets model in a new process whether
# keras_resnets or Keras is imported first (the layers registered once Keras
# is imported, and not before) is test_user_journey.py's: its new processes
# load every kind of model file the package writes, in three import orders.


def test_commands_run_on_onednn_unless_the_user_chose():
    """The command line asks TensorFlow for its oneDNN kernels before
    importing it (on CPUs without AVX-512 it would not use them: slower,
    and no native grouped-convolution gradient); a user's
    `TF_ENABLE_ONEDNN_OPTS` stands, and so does an earlier import. (Not
    chosen, a command's TensorFlow runs on them: the test above.)"""
    out = run_python("""
        import os
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
        from keras_resnets.cli import enable_onednn
        enable_onednn()
        import tensorflow
        from keras_resnets.layers.grouped_conv import onednn_enabled
        print("onednn:", onednn_enabled(), os.environ["TF_ENABLE_ONEDNN_OPTS"])
        enable_onednn(environ := {})
        print("after import:", environ)
    """)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert "onednn: False 0" in lines
    assert "after import: {}" in lines


def test_a_hook_runs_before_the_module_and_not_on_a_look_up(tmp_path):
    # Two real modules: `late` notes, when its code runs, whether `early`
    # was loaded before it.
    (tmp_path / "early_mod.py").write_text("")
    (tmp_path / "late_mod.py").write_text("import sys\nEARLY_FIRST = 'early_mod' in sys.modules\n")
    out = run_python(f"""
        import importlib, importlib.util, sys
        sys.path.insert(0, {str(tmp_path)!r})
        from keras_resnets.utils.lazy import before_imported
        calls = []
        before_imported("late_mod", lambda: (calls.append(1), importlib.import_module("early_mod")))
        assert importlib.util.find_spec("late_mod") is not None and calls == []  # a look-up: not yet
        import late_mod
        assert late_mod.EARLY_FIRST and calls == [1], (late_mod.EARLY_FIRST, calls)
        before_imported("late_mod", lambda: calls.append(2))  # imported already: never
        import late_mod
        assert calls == [1]
        print("ok")
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "ok"


@pytest.mark.parametrize("backend, loaded", [("torch", True), ("tensorflow", False), ("jax", False)])
def test_on_pytorch_triton_and_torch_load_before_tensorflow(tmp_path, backend, loaded):
    # PyTorch's triton crashes the process when it is loaded after TensorFlow
    # (`KERAS_BACKEND=torch keras-resnets train` died at once), and torch
    # imported after TensorFlow warned at its CUDA check where TensorFlow had
    # failed its own. torch is not installed here, so packages of those
    # names note what was loaded when they ran: TensorFlow's modules and its
    # native library.
    probe = ("import sys\n"
             "def tensorflow_loaded():\n"
             "    return ('tensorflow.python' in sys.modules, 'libtensorflow' in open('/proc/self/maps').read())\n")
    (tmp_path / "triton").mkdir()
    (tmp_path / "triton" / "__init__.py").write_text(probe + "SEEN = tensorflow_loaded()\n")
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        probe + "SEEN = tensorflow_loaded()\n")
    out = run_python(f"""
        import os, sys
        os.environ["KERAS_BACKEND"] = {backend!r}
        sys.path.insert(0, {str(tmp_path)!r})
        import keras_resnets
        from keras_resnets.utils.tf_logs import import_tensorflow
        tf = import_tensorflow()  # as the command line does, first
        assert tf.constant(1).numpy() == 1
        for name in ("triton", "torch"):
            print(name, getattr(sys.modules.get(name), "SEEN", None))
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:2] == (["triton (False, False)", "torch (False, False)"] if loaded
                                           else ["triton None", "torch None"])
