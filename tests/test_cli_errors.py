"""Every bad input on the command line, subcommand by subcommand: one line on
stderr, `keras-resnets COMMAND: error: ...`, that names the argument and the
value received; exit status 2; no traceback; no file written or changed.
And the no-loss rules of a run folder (`--resume`, `--overwrite`).

The checks run before any model is built or data loaded, so the table runs
in-process in seconds; a few cases run as real commands in a subprocess."""

import argparse
import io
import json
import os
import pty
import re
import struct
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest

from keras_resnets.cli import build_parser, main
from keras_resnets.training.run_folder import check_run_folder
from keras_resnets.utils import file_kinds
from keras_resnets.utils.validation import UsageError, check_positive_int

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _h5(path, values=4096):
    with h5py.File(path, "w") as f:
        f["weights"] = np.arange(values, dtype="float32")


def _keras_archive(path, members=("config.json", "metadata.json", "model.weights.h5")):
    """A zip laid out as `model.save` writes it (what MODEL's check reads)."""
    _h5(str(path) + ".tmp.h5")
    with zipfile.ZipFile(path, "w") as archive:
        for name in members:
            if name.endswith(".h5"):
                archive.write(str(path) + ".tmp.h5", name)
            else:
                archive.writestr(name, json.dumps({"class_name": "Functional"}))
    os.remove(str(path) + ".tmp.h5")


def _safetensors(path, tensor_bytes=4000):
    header = json.dumps({"w": {"dtype": "F32", "shape": [tensor_bytes // 4],
                               "data_offsets": [0, tensor_bytes]}}).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + bytes(tensor_bytes))


def _cut(source, target, fraction=0.5):
    data = open(source, "rb").read()
    with open(target, "wb") as f:
        f.write(data[: int(len(data) * fraction)])


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A working folder holding one file of each kind, whole or broken; the
    commands run there (their default outputs would land in it)."""
    d = tmp_path
    _keras_archive(d / "model.keras")
    _cut(d / "model.keras", d / "truncated.keras")
    _keras_archive(d / "noconfig.keras", members=("metadata.json", "model.weights.h5"))
    _h5(d / "model.weights.h5")
    _cut(d / "model.weights.h5", d / "truncated.weights.h5")
    (d / "random.weights.h5").write_bytes(bytes(range(256)) * 8)
    (d / "empty.weights.h5").write_bytes(b"")
    (d / "empty.keras").write_bytes(b"")
    (d / "folder.keras").mkdir()
    (d / "folder.weights.h5").mkdir()
    (d / "folder.json").mkdir()
    (d / "folder.png").mkdir()
    with zipfile.ZipFile(d / "model.pth", "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    (d / "truncated.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(8))
    (d / "notes.txt").write_text("a regular file: nothing can be created under it\n")
    (d / "exported").mkdir()
    _keras_archive(d / "exported" / "model.keras")
    (d / "exported" / "model.tflite").write_bytes(b"an earlier export")
    monkeypatch.chdir(d)
    return d


def snapshot(root):
    """Every path under `root` with its modification time and size."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


def run(argv):
    """`keras-resnets ARGV` in this process: `(exit status, stderr)`."""
    err = io.StringIO()
    old, sys.stderr = sys.stderr, err
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    finally:
        sys.stderr = old
    return code, err.getvalue()


# (argv, what the message must name: the argument, then the value received)
CASES = {
    "train": [
        (["--batch-size", "0"], "--batch-size", "'0'"),
        (["--batch-size", "-3"], "--batch-size", "'-3'"),
        (["--epochs", "0"], "--epochs", "'0'"),
        (["--lr", "0"], "--lr", "'0'"),
        (["--lr", "-0.1"], "--lr", "'-0.1'"),
        (["--image-size", "0"], "--image-size", "'0'"),
        (["--model", "resnet50", "--image-size", "16"], "--image-size", "16"),
        (["--seed", "-1"], "--seed", "'-1'"),
        (["--verbose", "3"], "--verbose", "3"),
        (["--collective-timeout", "0"], "--collective-timeout", "'0'"),
        (["--model", "resnet5O"], "--model", "'resnet5O'"),
        (["--recipe", "adam"], "--recipe", "'adam'"),
        (["--precision", "half"], "--precision", "'half'"),
        (["--strategy", "ray"], "--strategy", "'ray'"),
        (["--data", "no/such/folder"], "--data", "'no/such/folder'"),
        (["--data", "notes.txt"], "--data", "'notes.txt'"),
        (["--data", "tfds:"], "--data", "'tfds:'"),
        (["--weights", "missing.weights.h5"], "--weights", "'missing.weights.h5'"),
        (["--weights", "empty.weights.h5"], "--weights", "'empty.weights.h5'"),
        (["--weights", "truncated.weights.h5"], "--weights", "'truncated.weights.h5'"),
        (["--weights", "random.weights.h5"], "--weights", "'random.weights.h5'"),
        (["--weights", "truncated.keras"], "--weights", "'truncated.keras'"),
        (["--weights", "folder.weights.h5"], "--weights", "'folder.weights.h5'"),
        (["--weights", "model.pth"], "--weights", "'model.pth'"),
        (["--weights", "truncated.tflite"], "--weights", "'truncated.tflite'"),
        (["--output", "notes.txt/runs"], "--output", "'notes.txt/runs'"),
        (["--output", "notes.txt"], "--output", "'notes.txt'"),
        (["--resume", "--output", "runs"], "--resume", "runs/resnet20-digits"),
    ],
    "predict": [
        (["missing.keras", "x.png"], "MODEL", "'missing.keras'"),
        (["truncated.keras", "x.png"], "MODEL", "'truncated.keras'"),
        (["resnet5O", "x.png"], "MODEL", "'resnet5O'"),
        (["resnet18", "no/such.png"], "IMAGE", "'no/such.png'"),
        (["resnet18", "notes.txt"], "IMAGE", "'notes.txt'"),
        (["resnet18", "folder.png"], "IMAGE", "'folder.png'"),
        (["resnet18", "notes.txt", "--top", "0"], "--top", "'0'"),
        (["resnet20", "notes.txt"], "--weights", "'imagenet'"),
    ],
    "export": [
        (["missing.keras"], "MODEL", "'missing.keras'"),
        (["empty.keras"], "MODEL", "'empty.keras'"),
        (["truncated.keras"], "MODEL", "'truncated.keras'"),
        (["noconfig.keras"], "MODEL", "'noconfig.keras'"),
        (["folder.keras"], "MODEL", "'folder.keras'"),
        (["truncated.tflite"], "MODEL", "'truncated.tflite'"),
        (["model.weights.h5"], "MODEL", "'model.weights.h5'"),
        (["model.keras", "--runs", "0"], "--runs", "'0'"),
        (["model.keras", "--threads", "-1"], "--threads", "'-1'"),
        (["model.keras", "--calibration-images", "0"], "--calibration-images", "'0'"),
        (["model.keras", "--group-width", "0"], "--group-width", "'0'"),
        (["model.keras", "--format", "saved_model", "--group-width", "64"], "--group-width", "64"),
        (["model.keras", "--keep-precision"], "--keep-precision", "--format tflite"),
        (["model.keras", "--quantize", "none", "float16", "--group-width", "64"], "--group-width",
         "--quantize none float16"),
        (["model.keras", "--std", "0"], "--std", "'0'"),
        (["model.keras", "--quantize", "int4"], "--quantize", "'int4'"),
        (["model.keras", "--format", "pb"], "--format", "'pb'"),
        (["model.keras", "--output", "notes.txt/out"], "--output", "'notes.txt/out'"),
        (["model.keras", "--data", "no/such/folder"], "--data", "'no/such/folder'"),
        (["model.keras", "--format", "saved_model", "--quantize", "int8"], "--quantize", "int8"),
        (["model.keras", "--format", "saved_model", "onnx", "--quantize", "int8"], "--format saved_model onnx",
         "int8"),
        (["model.keras", "--quantize", "int8"], "--quantize int8", "no --data"),
        (["exported/model.keras"], "--overwrite", "model.tflite"),
    ],
    "tune": [
        (["--epochs", "0"], "--epochs", "'0'"),
        (["--epochs", "-2"], "--epochs", "'-2'"),
        (["--max-trials", "0"], "--max-trials", "'0'"),
        (["--max-epochs", "0"], "--max-epochs", "'0'"),
        (["--final-epochs", "-1"], "--final-epochs", "'-1'"),
        (["--time-budget", "0"], "--time-budget", "'0'"),
        (["--time-budget", "nan"], "--time-budget", "'nan'"),
        (["--max-macs", "0"], "--max-macs", "'0'"),
        (["--max-macs=-5M"], "--max-macs", "'-5M'"),
        (["--max-params", "lots"], "--max-params", "'lots'"),
        (["--max-latency-ms", "0"], "--max-latency-ms", "'0'"),
        (["--families", "v1,v3"], "--families", "'v1,v3'"),
        (["--depths", "20,0"], "--depths", "'20,0'"),
        (["--min-depth", "0"], "--min-depth", "'0'"),
        (["--image-size", "0"], "--image-size", "'0'"),
        (["--seed", "-1"], "--seed", "'-1'"),
        (["--tuner", "grid"], "--tuner", "'grid'"),
        (["--data", "no/such/folder"], "--data", "'no/such/folder'"),
        (["--directory", "notes.txt/search"], "--directory", "'notes.txt/search'"),
    ],
    "benchmark": [
        (["--json", "no/such/dir/out.json"], "--json", "'no/such/dir/out.json'"),
        (["--json", "folder.json"], "--json", "'folder.json'"),
        (["--json", "notes.txt/out.json"], "--json", "'notes.txt/out.json'"),
        (["--models", "resnet5O"], "--models", "'resnet5O'"),
        (["--models", "none"], "--models", "[]"),
        (["--peers", "nobody"], "--peers", "'nobody'"),
        (["--precision", "float8"], "--precision", "'float8'"),
        (["--image-size", "16"], "--image-size", "'16'"),
        (["--batch-size", "0"], "--batch-size", "'0'"),
        (["--repeats", "0"], "--repeats", "'0'"),
        (["--warmup", "-1"], "--warmup", "'-1'"),
        (["--matmul-size", "8"], "--matmul-size", "'8'"),
        (["--group-width", "64"], "--group-width", "without --litert"),
        (["--litert", "--group-width", "0"], "--group-width", "'0'"),
        (["--litert", "--no-saved-model"], "--no-saved-model", "with --litert"),
        (["--torch-configs", "jit"], "--torch-configs", "'jit'"),
        (["--torch-configs", "none"], "--torch-configs", "[]"),
        # --litert and --backend refuse the options they would ignore.
        (["--litert", "--precision", "mixed_bfloat16"], "--precision", "=mixed_bfloat16 with --litert"),
        (["--litert", "--by-layer"], "--by-layer", "with --litert"),
        (["--litert", "--batch-size", "8"], "--batch-size", "=8 with --litert"),
        (["--litert", "--peers", "none"], "--peers", "--peers= with --litert"),
        (["--backend", "jax", "--matmul-size", "512"], "--matmul-size", "=512 with --backend"),
        (["--backend", "jax", "--peers", "keras-resnet50"], "--peers", "received --peers=keras-resnet50"),
        (["--backend", "jax", "--precision", "float8"], "--precision", "'float8'"),
        (["--litert", "--backend", "jax"], "--backend", "--backend=jax"),
    ],
    "models": [
        (["--family", "nope"], "--family", "'nope'"),
        (["--format", "yaml"], "--format", "'yaml'"),
    ],
    "info": [
        (["resnet5O"], "NAME", "'resnet5O'"),
        (["resnet50", "--image-size", "16"], "--image-size", "16"),
        (["resnet50", "--image-size", "0"], "--image-size", "'0'"),
        (["resnet50", "--image-size", "-5"], "--image-size", "'-5'"),
        (["resnet20", "--plot", "notes.txt/model.png"], "--plot", "'notes.txt/model.png'"),
        (["resnet20", "--plot", "no/such/dir/model.png"], "--plot", "'no/such/dir/model.png'"),
        (["resnet20", "--plot", "folder.png"], "--plot", "'folder.png'"),
        (["resnet20", "--plot", "model.bmpx"], "--plot", "'model.bmpx'"),
        (["resnet50", "--output-stride", "4"], "--output-stride", "4"),
        (["resnet20", "--output-stride", "8"], "--output-stride", "8"),
        (["resnet50", "--output-stride", "0"], "--output-stride", "'0'"),
    ],
}


def _params():
    for command, cases in CASES.items():
        for argv, argument, value in cases:
            yield pytest.param(command, argv, argument, value, id=f"{command} {' '.join(argv)}")


@pytest.mark.parametrize("command, argv, argument, value", _params())
def test_bad_input(work, command, argv, argument, value):
    before = snapshot(work)
    code, err = run([command, *argv])
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"keras-resnets {command}: error: "), err
    assert "Traceback" not in err
    assert argument in err and value in err, err
    assert snapshot(work) == before


def test_every_subcommand_is_in_the_table():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(CASES) == set(action.choices)


@pytest.mark.parametrize("argv", [
    ["train", "--batch-size", "0"],
    ["export", "truncated.keras"],
    ["tune", "--epochs", "0"],
    ["benchmark", "--json", "no/such/dir/out.json"],
    ["info", "resnet5O"],
    ["models", "--format", "yaml"],
])
def test_bad_input_as_a_command(work, argv):
    """The real command: exit status 2, one line, and no TensorFlow loaded
    (the check came before any work)."""
    before = snapshot(work)
    env = dict(os.environ, PYTHONPATH=REPO)
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "keras_resnets.cli", *argv],
                         cwd=work, env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in out.stderr.splitlines() if not line.startswith("import time:")]
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert out.returncode == 2
    assert len(lines) == 1 and lines[0].startswith(f"keras-resnets {argv[0]}: error: "), lines
    assert "tensorflow" not in imported and "keras" not in imported
    assert snapshot(work) == before


# ---------------------------------------------------------------------------
# No silent data loss: the run folder.

def _earlier_run(folder, backup=False, finished=True, head=False):
    folder.mkdir(parents=True)
    (folder / "log.csv").write_text("epoch,loss\n0,2.3\n1,1.9\n")
    (folder / "tensorboard").mkdir()
    (folder / "tensorboard" / "events.out.tfevents.1").write_bytes(b"earlier")
    if finished:
        (folder / "summary.json").write_text('{"epochs": 2}\n')
        (folder / "model.keras").write_bytes(b"earlier model")
    if backup:
        (folder / "backup").mkdir()
        (folder / "backup" / "training_metadata.json").write_text('{"epoch": 1}')
    if head:
        (folder / "head.weights.h5").write_bytes(b"head")


@pytest.mark.parametrize("state, resume, overwrite, expected", [
    ("absent", False, False, False),
    ("empty", False, False, False),
    ("empty", True, False, "no run to continue"),
    ("absent", True, False, "no run to continue"),
    ("absent", True, True, False),
    ("finished", False, False, "holds a finished run (model.keras, summary.json, log.csv, tensorboard, "
                                "2 epochs logged)"),
    ("finished", True, False, "has no backup to continue from; it holds a finished run"),
    ("finished", False, True, False),
    ("finished", True, True, False),
    ("backup", True, False, True),
    ("backup", True, True, True),
    ("backup", False, False, "an interrupted run with a backup (log.csv, tensorboard, backup, 2 epochs logged)"
                             ", which a new run would replace. Allowed: resume=True (--resume) to continue it"),
    ("backup", False, True, False),
    ("no backup", True, False, "an interrupted run without a backup"),
    ("head only", True, False, True),  # finetune: the head phase ended, then the run stopped
    ("finished head", True, False, "has no backup to continue from"),
])
def test_run_folder_rules(tmp_path, state, resume, overwrite, expected):
    folder = tmp_path / "runs" / "resnet20-digits"
    if state == "empty":
        folder.mkdir(parents=True)
    elif state != "absent":
        _earlier_run(folder, backup=state == "backup", finished=state in ("finished", "finished head"),
                     head=state in ("head only", "finished head"))
    before = snapshot(tmp_path)
    if isinstance(expected, bool):
        assert check_run_folder(tmp_path / "runs", "resnet20-digits", resume, overwrite) is expected
    else:
        with pytest.raises(UsageError) as error:
            check_run_folder(tmp_path / "runs", "resnet20-digits", resume, overwrite)
        assert expected in str(error.value)
    assert snapshot(tmp_path) == before


def test_resume_without_backup_and_fresh_run_are_refused_then_overwrite_replaces(tmp_path):
    """`--resume` on a finished run and a fresh run into it are refused and
    change nothing; `--overwrite` then runs and replaces it. The run writes
    its log to a file: one line per epoch, no progress bar."""
    folder = tmp_path / "resnet20-digits"
    _earlier_run(folder)
    before = snapshot(tmp_path)
    for extra in (["--resume"], []):
        code, err = run(["train", "--output", str(tmp_path), *extra])
        assert code == 2 and err.count("\n") == 1, err
        assert "holds a finished run" in err and "--overwrite" in err and str(folder) in err
        assert snapshot(tmp_path) == before

    console = tmp_path / "console.txt"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=REPO)
    with open(console, "w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "keras_resnets.cli", "train", "--output", str(tmp_path), "--overwrite",
             "--image-size", "8", "--epochs", "2", "--batch-size", "256", "--precision", "float32"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.PIPE, text=True, timeout=600,
        )
    assert proc.returncode == 0, proc.stderr
    assert not [line for line in proc.stderr.splitlines() if re.match(r"[IWEF]\d{4} ", line)], proc.stderr
    with open(folder / "summary.json") as f:
        summary = json.load(f)
    assert summary["epochs"] == 2 and summary["image_size"] == 8 and not summary["resumed"]
    assert not (folder / "tensorboard" / "events.out.tfevents.1").exists()
    assert (folder / "log.csv").read_text().count("\n") == 3  # the header and 2 epochs: the old rows are gone
    text = console.read_text()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    # "Epoch i/2", its one line of metrics, and the result line.
    assert [line for line in lines if line.startswith("Epoch ")] == ["Epoch 1/2", "Epoch 2/2"], text
    assert len(lines) == 5 and all(" - loss: " in lines[i] and " - val_loss: " in lines[i] for i in (1, 3)), text
    assert lines[-1].startswith("test accuracy ")


def test_verbose_auto_is_the_bar_on_a_terminal_and_a_line_per_epoch_elsewhere():
    code = "from keras_resnets.training.settings import resolve_verbose; print(resolve_verbose('auto'))"
    env = dict(os.environ, PYTHONPATH=REPO)
    terminal, screen = pty.openpty()
    try:
        subprocess.run([sys.executable, "-c", code], stdout=screen, env=env, timeout=60, check=True)
        assert os.read(terminal, 100).strip() == b"1"
    finally:
        os.close(terminal)
        os.close(screen)
    piped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert piped.stdout.strip() == "2"


def test_only_usage_errors_are_one_line(monkeypatch, capsys):
    """A check's `UsageError` is a bad input: one line, status 2. A plain
    ValueError is a bug and keeps its traceback, also when it is raised in
    keras_resnets' own code (here a tuple unpacked from too few values, in a
    function of keras_resnets.info): a rule by the raising module made it a
    one-line usage error, and the traceback was lost."""
    from keras_resnets import info

    namespace = {"__name__": "keras_resnets.info"}
    exec("def _models(args):\n    first, second = args.command.split('-')\n", namespace)
    monkeypatch.setattr(info, "_models", namespace["_models"])
    with pytest.raises(ValueError, match="not enough values to unpack") as bug:
        main(["models"])
    assert bug.value.__traceback__.tb_next is not None and not isinstance(bug.value, UsageError)

    def refused(args):
        check_positive_int("epochs", 0)

    monkeypatch.setattr(info, "_models", refused)
    assert main(["models"]) == 2
    assert capsys.readouterr().err == (
        "keras-resnets models: error: `epochs` must be a positive integer; received epochs=0.\n")


def test_file_kinds_find_truncated_files(tmp_path):
    _safetensors(tmp_path / "w.safetensors")
    _cut(tmp_path / "w.safetensors", tmp_path / "cut.safetensors", 0.9)
    with zipfile.ZipFile(tmp_path / "w.pth", "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("archive/data/0", bytes(range(256)) * 64)
    _cut(tmp_path / "w.pth", tmp_path / "cut.pth", 0.9)
    _h5(tmp_path / "w.h5")
    for whole, cut, kind in [("w.safetensors", "cut.safetensors", "safetensors"), ("w.pth", "cut.pth", "torch"),
                             ("w.h5", None, "hdf5")]:
        assert file_kinds.kind_by_name(whole) == file_kinds.kind_by_content(tmp_path / whole) == kind
        assert file_kinds.damage(tmp_path / whole, kind) is None
        if cut:
            assert file_kinds.kind_by_content(tmp_path / cut) == kind
            assert file_kinds.damage(tmp_path / cut, kind), cut
    assert "truncated: its tensors need" in file_kinds.damage(tmp_path / "cut.safetensors", "safetensors")
