"""`keras-resnets benchmark` on a tiny model with one repetition: the figures
are checked against hand counts and the test's own clock, not for speed."""

import json
import re
import time

import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets.benchmark import stock_resnext50
from keras_resnets.benchmark.layers import format_conv_table, time_conv_layers
from keras_resnets.benchmark.peers import (
    KERAS_PEERS,
    TORCH_PEERS,
    measure_torchvision,
    torch_available,
)
from keras_resnets.benchmark.run import (
    DEFAULT_MODELS,
    DEFAULT_PEERS,
    SLOW_PEERS,
    TARGETS,
    cpu_flags,
    default_precisions,
    evaluate_targets,
    format_report,
    gpu_name,
    run_benchmark,
)
from keras_resnets.cli import main

from helpers import cifar_resnet_figures


def test_tiny_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "bench.json"
    started = time.perf_counter()
    code = main([
        "benchmark", "--models", "resnet20", "--peers", "none",
        "--precision", "mixed_bfloat16", "--image-size", "32", "--batch-size", "4",
        "--warmup", "1", "--repeats", "1", "--matmul-size", "512", "--json", str(out),
    ])
    elapsed = time.perf_counter() - started
    assert code == 0
    record = json.loads(out.read_text())
    assert not list(tmp_path.glob(".partial-*"))  # written atomically

    assert record["machine"]["cores"] >= 1 and record["machine"]["threads"] >= 1
    gpu = gpu_name()
    assert record["machine"]["gpu"] == gpu
    peak = record["peak_gflops"]
    assert peak["float32"] > 1 and peak["mixed_bfloat16"] > 1
    if gpu is None:  # no float16 arithmetic on a CPU: its peak is float32's
        assert peak["mixed_float16"] == peak["float32"]
    rows = record["rows"]
    # One precision keeps the test short; mixed_bfloat16 also checks that the
    # policy is set for the measurement and restored after it.
    assert [(r["model"], r["precision"]) for r in rows] == [("resnet20", "mixed_bfloat16")]
    # ResNet-20 at 32 px with the benchmark's 1000 classes, counted by hand.
    macs = cifar_resnet_figures(3, classes=1000)[1]
    for r in rows:
        assert r["device"] == ("gpu" if gpu else "cpu")
        assert r["macs"] == macs
        assert len(r["train_step_times"]) == 1
        # Against the test's own clock: a training step, a batch of inference
        # and a batch-1 call each took less than the whole command did.
        assert 0 < r["train_step_times"][0] < elapsed
        assert 0 < 4 / r["infer_ips"] < elapsed and 0 < r["infer_b1_ms"] / 1e3 < elapsed
        # The same through the exported SavedModel, loaded back.
        assert 0 < 4 / r["served_ips"] < elapsed and 0 < r["served_b1_ms"] / 1e3 < elapsed
        assert r["served_b1_ips"] == pytest.approx(1e3 / r["served_b1_ms"])
        # No model runs faster than the machine's measured matmul peak.
        assert 0 < r["train_peak_fraction"] < 1 and 0 < r["infer_peak_fraction"] < 1
        assert r["train_peak_rss_mib"] > 100  # TensorFlow alone is more
        assert 0 < r["train_rss_increase_mib"] < r["train_peak_rss_mib"]
        assert 0 < r["train_cpu_busy"] <= 1.5  # TensorFlow threads may spin a little
    assert record["targets"] == []  # no target names resnet20
    assert keras.config.dtype_policy().name == "float32"  # restored

    printed = capsys.readouterr().out
    assert "train img/s" in printed and "mixed_bfloat16" in printed
    # LiteRT is timed for float32 models only: the row shows n/a in both
    # LiteRT columns.
    row = next(line for line in printed.splitlines() if re.match(r"resnet20\s+mixed_bfloat16\s", line))
    assert rows[0]["litert"] is None and row.split()[-2:] == ["n/a", "n/a"]
    cells = row.split()
    assert cells[8:10] == [f"{rows[0]['served_ips']:.2f}", f"{rows[0]['served_b1_ms']:.1f}"]


def test_targets_are_ratios_of_the_rows():
    def row(model, precision, train, infer, fraction=0.5):
        return dict(model=model, precision=precision, train_ips=train, infer_ips=infer,
                    train_peak_fraction=fraction, infer_peak_fraction=fraction)

    targets = {t["what"]: t for t in evaluate_targets([
        row("resnet50", "float32", 10.0, 30.0, fraction=0.62),
        row("resnext50_32x4d", "float32", 9.0, 28.0),
        row("keras.applications ResNet50", "float32", 12.0, 20.0),
    ])}
    assert targets["ResNeXt-50 / ResNet-50 training"]["value"] == pytest.approx(0.9)
    assert not targets["ResNeXt-50 / ResNet-50 training"]["met"]
    assert targets["ResNet-50 training, fraction of fp32 matmul peak"]["met"]
    t = targets["resnet50 / keras.applications ResNet50 train [float32]"]
    assert t["value"] == pytest.approx(10 / 12) and not t["met"]
    t = targets["resnet50 / keras.applications ResNet50 infer [float32]"]
    assert t["value"] == pytest.approx(1.5) and t["met"]
    assert not any("torchvision" in w or "bf16" in w for w in targets)  # not measured


def test_ratios_against_torchvision_take_its_best_configuration():
    def row(model, precision, train, infer, config=None):
        return dict(model=model, precision=precision, config=config, train_ips=train,
                    infer_ips=infer, train_peak_fraction=0.5, infer_peak_fraction=0.5)

    rows = [
        row("resnet50", "mixed_bfloat16", 30.0, 140.0),
        row("torchvision resnet50", "mixed_bfloat16", 12.0, 40.0, "eager"),
        row("torchvision resnet50", "mixed_bfloat16", 40.0, 130.0, "channels_last"),
        row("torchvision resnet50", "mixed_bfloat16", 35.0, 200.0, "compile"),
    ]
    targets = {t["what"]: t for t in evaluate_targets(rows)}
    # Each metric against the fastest configuration in that metric.
    t = targets["resnet50 / torchvision resnet50 train [mixed_bfloat16]"]
    assert t["value"] == pytest.approx(30 / 40) and not t["met"]
    assert t["against"] == "torchvision resnet50 (channels_last)"
    t = targets["resnet50 / torchvision resnet50 infer [mixed_bfloat16]"]
    assert t["value"] == pytest.approx(140 / 200) and t["against"] == "torchvision resnet50 (compile)"
    t = targets["ResNet-50 bf16 training, fraction of bf16 matmul peak"]
    assert t["value"] == 0.5 and t["against"] == "peak" and not t["met"]
    # The report names the configuration of every torchvision row.
    record = dict(
        machine=dict(cpu="a CPU", cpu_flags=["avx512_bf16"], cores=2, threads=2,
                     load_average=[0.0] * 3, load_average_after=[0.0] * 3, tensorflow="x",
                     keras="y"),
        settings=dict(image_size=128, batch_size=16, repeats=1, warmup=1),
        peak_gflops=dict(float32=100.0, mixed_bfloat16=200.0),
        rows=[dict(r, macs=4e9, infer_b1_ms=1.0, train_peak_rss_mib=1.0,
                   train_rss_increase_mib=1.0) for r in rows],
        targets=list(targets.values()), notes=[])
    report = format_report(record)
    assert "a CPU (avx512_bf16)" in report
    for config in ("eager", "channels_last", "compile"):
        assert re.search(rf"^torchvision resnet50 \({config}\) +mixed_bfloat16 ", report, re.M)


def test_served_ratios_pair_our_savedmodel_with_torchvision_inference():
    rows = [
        dict(model="resnet50", precision="mixed_bfloat16", train_ips=1.0, infer_ips=100.0,
             infer_b1_ips=25.0, served_ips=200.0, served_b1_ips=80.0, train_peak_fraction=0.5),
        dict(model="torchvision resnet50", precision="mixed_bfloat16", config="eager", train_ips=1.0,
             infer_ips=150.0, infer_b1_ips=40.0),
        dict(model="torchvision resnet50", precision="mixed_bfloat16", config="channels_last",
             train_ips=1.0, infer_ips=160.0, infer_b1_ips=50.0),
    ]
    targets = {t["what"]: t for t in evaluate_targets(rows)}
    t = targets["resnet50 SavedModel / torchvision resnet50 infer [mixed_bfloat16]"]
    assert t["value"] == pytest.approx(200 / 160) and t["met"]
    t = targets["resnet50 SavedModel / torchvision resnet50 batch-1 [mixed_bfloat16]"]
    assert t["value"] == pytest.approx(80 / 50) and t["against"] == "torchvision resnet50 (channels_last)"
    # Without the SavedModel rows (--no-saved-model) there is no such ratio.
    del rows[0]["served_ips"], rows[0]["served_b1_ips"]
    assert not any("SavedModel" in t["what"] for t in evaluate_targets(rows))


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: X\n"
                       "flags\t\t: fpu sse avx2 avx512f amx_tile amx_bf16 amx_int8\n")
    assert cpu_flags(str(cpuinfo)) == ["avx2", "avx512f", "amx_tile", "amx_bf16", "amx_int8"]
    assert cpu_flags(str(tmp_path / "missing")) == []


def test_stock_resnext50_is_resnext50_with_keras_grouped_conv2d():
    model = stock_resnext50((64, 64, 3))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 25_028_904  # torchvision resnext50_32x4d
    grouped = [l for l in model.layers if getattr(l, "groups", 1) > 1]
    assert len(grouped) == 16
    assert all(type(l) is keras.layers.Conv2D and l.groups == 32 for l in grouped)
    # The same work as ours (whose MACs are torchvision's at 224 px,
    # tests/test_fidelity.py): the stock grouped convolutions run inside
    # functions of their own, and count_macs counts them there.
    ours = keras_resnets.ResNeXt50(input_shape=(64, 64, 3))
    assert keras_resnets.count_macs(model) == keras_resnets.count_macs(ours)


def test_litert_latency_of_a_float32_model():
    from keras_resnets.benchmark.measure import _litert_latency

    model = keras_resnets.ResNet20(input_shape=(32, 32, 3), classes=10)
    latency = _litert_latency(model, image_size=32, repeats=2)
    assert set(latency) == {"float32_ms", "int8_ms"}, latency
    assert all(0 < ms < 1000 for ms in latency.values())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(models=["resnet5"]), r"received name='resnet5'"),
        (dict(models=[]), r"`models` must be a non-empty list.*models=\[\]"),
        (dict(peers=["timm-resnet50"]), r"`peers` must be .*keras-resnet50.*timm-resnet50"),
        (dict(precisions=["float64"]), r"`precisions` must be .*mixed_bfloat16.*float64"),
        (dict(repeats=0), r"`repeats` must be an integer >= 1; received repeats=0"),
        (dict(image_size=16), r"`image_size` must be an integer >= 32; received image_size=16"),
    ],
)
def test_bad_arguments(kwargs, match):
    """`run_benchmark`'s own checks, before it measures anything (the command
    line's are in tests/test_cli_errors.py)."""
    with pytest.raises(ValueError, match=match):
        run_benchmark(**kwargs)


@pytest.mark.skipif(not torch_available(), reason="torch/torchvision are not installed")
def test_torchvision_peer_in_a_subprocess():
    (result,) = measure_torchvision("resnet18", ["float32"], image_size=32, batch_size=2,
                                    warmup=0, repeats=1, threads=1)
    assert result["precision"] == "float32" and result["device"] == "cpu"
    assert result["train_ips"] > 0 and result["infer_ips"] > 0 and result["infer_b1_ms"] > 0
    assert result["train_peak_rss_mib"] > result["train_rss_increase_mib"] > 0
    assert result["config"] == "eager"


@pytest.mark.skipif(not torch_available(), reason="torch/torchvision are not installed")
def test_torchvision_peer_configurations():
    results = measure_torchvision("resnet18", ["float32", "mixed_bfloat16"], image_size=32,
                                  batch_size=2, warmup=0, repeats=1, threads=1,
                                  configs=["eager", "channels_last"])
    assert [(r["config"], r["precision"]) for r in results] == [
        ("eager", "float32"), ("eager", "mixed_bfloat16"),
        ("channels_last", "float32"), ("channels_last", "mixed_bfloat16")]
    assert all(r["train_ips"] > 0 and r["infer_ips"] > 0 for r in results)


def test_convolutions_timed_by_shape():
    model = keras_resnets.ResNet20(input_shape=(32, 32, 3), classes=10)
    rows = time_conv_layers(model, image_size=32, batch_size=2, repeats=1)
    counts = {(r["kind"], r["input_shape"], r["strides"]): r["count"] for r in rows}
    # ResNet-20: the 3x3 stem, then 3 stages of 3 blocks of two 3x3 convolutions.
    assert counts[("3x3", (32, 32, 3), (1, 1))] == 1
    assert counts[("3x3", (32, 32, 16), (1, 1))] == 6
    assert sum(counts.values()) == 19
    assert all(r["cpu_ms"] > 0 and r["gflop_per_cpu_s"] > 0 for r in rows)
    assert "3x3" in format_conv_table("resnet20", rows)


def test_matmul_peak_traces_once_per_signature():
    # One tf.function for every measurement: a new one per call traced anew
    # each time, and TensorFlow warned about the retracing in every full run.
    from keras_resnets.benchmark.peak import _product, matmul_peak_gflops

    assert matmul_peak_gflops("float32", size=64, repeats=1) > 0
    traces = _product().experimental_get_tracing_count()
    for _ in range(3):
        matmul_peak_gflops("float32", size=64, repeats=1)
    assert _product().experimental_get_tracing_count() == traces

    # With a time budget the peak is the best over at least that much time of
    # products, not the median of the first few.
    started = time.perf_counter()
    assert matmul_peak_gflops("float32", size=64, repeats=1, min_seconds=0.2) > 0
    assert time.perf_counter() - started >= 0.2


def test_default_precisions_add_float16_on_a_gpu():
    from keras_resnets.cli import build_parser

    assert default_precisions(None) == ("float32", "mixed_bfloat16")
    assert default_precisions("NVIDIA H200") == ("float32", "mixed_bfloat16", "mixed_float16")
    # The command line leaves the choice to `run_benchmark` (None: the default).
    assert build_parser().parse_args(["benchmark"]).precision is None


def test_every_default_peer_has_its_ratio():
    # Each peer row of a default run on a CPU (the stock ResNeXt-50 in
    # float32 only) is the denominator of a target whose numerator is a row
    # of one of the default models.
    precisions = default_precisions(None)
    ours = {(model, p) for model in DEFAULT_MODELS for p in precisions}
    labels = {name: label for name, (label, _) in {**KERAS_PEERS, **TORCH_PEERS}.items()}
    peer_rows = {(labels[peer], p) for peer in DEFAULT_PEERS
                 for p in (["float32"] if peer in SLOW_PEERS else precisions)}
    assert len(peer_rows) == 9
    with_ratio = {den for _, num, den, _, _ in TARGETS if num in ours}
    assert sorted(peer_rows - with_ratio) == []


def test_litert_table_times_the_four_exported_forms(tmp_path, capsys):
    """`benchmark --litert`: each model exported as float32, float16,
    dynamic-range and int8 files (their sizes show the four forms), timed in
    the same rounds; the ratios are computed from the rows they print."""
    from keras_resnets.benchmark.litert import QUANTIZATIONS
    from keras_resnets.cli import main as cli_main

    out = tmp_path / "litert.json"
    code = cli_main(["benchmark", "--litert", "--models", "resnet20,resnet32", "--image-size", "32",
                     "--repeats", "1", "--group-width", "16", "--json", str(out)])
    assert code == 0
    record = json.loads(out.read_text())
    assert record["image_size"] == 32 and record["machine"]["cores"] >= 1 and record["group_width"] == 16
    rows = {r["model"]: r for r in record["rows"]}
    assert list(rows) == ["resnet20", "resnet32"]
    for row in rows.values():
        assert all(row[f"{q}_ms"] > 0 for q in QUANTIZATIONS)
        # float16 weights: about half of float32's file; int8 weights (dynamic and int8): about a quarter.
        assert 0.4 < row["float16_mib"] / row["float32_mib"] < 0.65
        assert 0.2 < row["dynamic_mib"] / row["float32_mib"] < 0.45
        assert 0.2 < row["int8_mib"] / row["float32_mib"] < 0.45
        assert row["int8_speedup"] == pytest.approx(row["float32_ms"] / row["int8_ms"])
    assert rows["resnet32"]["gmacs"] > rows["resnet20"]["gmacs"]
    (ratio,) = record["per_mac"]
    a, b = rows["resnet32"], rows["resnet20"]
    assert ratio["against"] == "resnet20"
    assert ratio["int8"] == pytest.approx((a["int8_ms"] / a["gmacs"]) / (b["int8_ms"] / b["gmacs"]))
    printed = capsys.readouterr().out
    assert ratio["int8_latency"] == pytest.approx(a["int8_ms"] / b["int8_ms"])
    assert "LiteRT batch-1 latency, 32 px" in printed and "int8 per MAC" in printed
    assert "grouped convolutions: int8 and dynamic files' groups merged to 16 channels" in printed
    assert f"{ratio['int8']:.2f}" in printed.split("int8 per MAC")[1]


def test_litert_table_names_the_amx_width_where_it_was_not_used():
    """On an AMX CPU (`cpu_flags` has amx_int8) a table of files not merged
    to 64 channels a group ends with the option that suits it; not with 64,
    nor on other CPUs."""
    from keras_resnets.benchmark.litert import format_litert_table

    def table(flags, group_width):
        return format_litert_table(dict(image_size=224, runtime="LiteRT", threads=2, rounds=1, runs=1,
                                        group_width=group_width, rows=[], per_mac=[],
                                        machine=dict(cpu_flags=flags)))

    assert table(["avx2", "avx512f", "amx_int8"], None).endswith("--group-width 64")
    assert "--group-width" not in table(["avx2", "avx512f", "amx_int8"], 64)
    assert "--group-width" not in table(["avx2", "avx512f"], None)
