"""Parity with torchvision: its checkpoints load and give the same logits.

Every torchvision ResNet / ResNeXt / Wide-ResNet is built with random weights
(no download), its batch-norm statistics and affine parameters randomized, its
`state_dict` saved and read back as a user would (`torch.load(...,
weights_only=True)`), loaded onto the keras_resnets model of the same name, and
both models must give the same logits on the same images.
"""

import sys

import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets.weights.torchvision import load_torchvision_state_dict, torchvision_weight_map

from helpers import PARITY_COMMAND, torch_installed, trainable_count

if torch_installed():
    # Triton's native library segfaults when it loads after TensorFlow's
    # (which conftest.py has imported), and torchvision imports it through
    # torch._dynamo. The test runs PyTorch on CPU only, which does not need
    # Triton: hide it.
    if "tensorflow" in sys.modules and "triton" not in sys.modules:
        sys.modules["triton"] = None
    import torch
    import torchvision
else:
    # Every item is still collected, then skipped by conftest.py with a
    # reason that counts them and names the command that runs them.
    torch = torchvision = None

FAST = ["resnet18", "resnet34", "resnet50", "resnext50_32x4d", "wide_resnet50_2"]
SLOW = [
    "resnet101",
    "resnet152",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet101_2",
]
ATOL = 1e-4
IMAGE_SIZE = 64


def _randomized_torch_model(name, seed=0, factory=None):
    """torchvision's `name` (or `factory(name)`), random weights and random
    batch-norm state.

    Plain random running statistics would let the activations grow through the
    depth (logits in the hundreds for ResNet-152, beyond what float32 can
    compare at 1e-4), so the statistics are first measured on random images
    and then perturbed; as in trained networks, the last batch norm of each
    residual branch gets a small scale. Every BN tensor (weight, bias,
    running_mean, running_var) ends up random and distinct, so that a swapped
    or skipped tensor changes the logits.
    """
    torch.manual_seed(seed)
    if factory is None:
        model = getattr(torchvision.models, name)(weights=None)
    else:
        model = factory(name)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = None  # cumulative average: one batch sets the statistics
        m.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, IMAGE_SIZE, IMAGE_SIZE))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
            std = m.running_var.sqrt()
            m.running_mean.add_(0.2 * std * torch.randn_like(m.running_mean))
            m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.5, 2.0))
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.2)
        for block in model.modules():
            # torchvision's and timm's blocks name their last norm alike.
            if hasattr(block, "bn3") and hasattr(block, "conv3"):
                last = block.bn3
            elif hasattr(block, "bn2") and hasattr(block, "conv2"):
                last = block.bn2
            elif hasattr(block, "norm3") and hasattr(block, "conv3"):
                # timm's pre-activation block ends with a convolution.
                block.conv3.weight.mul_(0.3)
                continue
            else:
                continue
            last.weight.uniform_(0.1, 0.4)
            last.bias.normal_(0.0, 0.05)
    return model.eval()


def _checkpoint(torch_model, tmp_path):
    """The model's state dict, through a file, read back as users will."""
    path = tmp_path / "checkpoint.pth"
    torch.save(torch_model.state_dict(), path)
    return torch.load(path, weights_only=True)


def _images(seed=1, size=IMAGE_SIZE):
    return np.random.default_rng(seed).standard_normal((2, 3, size, size)).astype("float32")


def _keras_logits(model, images_nchw):
    out = model(images_nchw.transpose(0, 2, 3, 1), training=False)
    return keras.ops.convert_to_numpy(out)


def _assert_same_logits(label, actual, expected):
    # The comparison means something: the logits are O(1), vary across
    # classes and depend on the image.
    assert 0.1 < np.abs(expected).max() < 100
    assert np.abs(expected[0] - expected[1]).max() > 10 * ATOL
    diff = np.abs(actual - expected).max()
    print(f"{label}: max |keras - torch| logit difference {diff:.3g}")
    np.testing.assert_allclose(actual, expected, rtol=0, atol=ATOL)


def _numpy_state_dict(torch_model):
    return {k: v.detach().cpu().numpy() for k, v in torch_model.state_dict().items()}


@pytest.mark.parametrize(
    "name", FAST + [pytest.param(n, marks=pytest.mark.slow) for n in SLOW]
)
def test_logits_match_torchvision(name, tmp_path):
    torch_model = _randomized_torch_model(name)
    state_dict = _checkpoint(torch_model, tmp_path)
    images = _images()
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(images)).numpy()
    del torch_model

    model = keras_resnets.get_model(name, classifier_activation=None)
    assert load_torchvision_state_dict(model, state_dict) is model
    actual = _keras_logits(model, images)

    _assert_same_logits(name, actual, expected)


# --- the strict loader: every problem reported at once, nothing assigned ----


@pytest.fixture(scope="module")
def resnet18_pair():
    torch_model = _randomized_torch_model("resnet18")
    model = keras_resnets.get_model("resnet18", classifier_activation=None)
    return torch_model, model


def _snapshot(model):
    return [keras.ops.convert_to_numpy(w).copy() for w in model.weights]


def _assert_unchanged(model, before):
    for w, old in zip(model.weights, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), old)


def test_weight_map_covers_torchvision_keys(resnet18_pair):
    torch_model, model = resnet18_pair
    mapping = torchvision_weight_map(model)
    torch_keys = [
        k for k in torch_model.state_dict() if not k.endswith("num_batches_tracked")
    ]
    assert sorted(mapping) == sorted(torch_keys)
    assert len({id(v) for v in mapping.values()}) == len(model.weights)
    assert tuple(mapping["conv1.weight"].shape) == (7, 7, 3, 64)
    assert mapping["bn1.running_var"] is model.get_layer("stem").norms[0].moving_variance
    block = model.get_layer("stage2_block1")
    assert mapping["layer2.0.conv2.weight"] is block.convs[1][-1].kernel
    assert mapping["layer2.0.downsample.0.weight"] is block.shortcut_layer.conv.kernel
    assert mapping["layer2.0.downsample.1.running_mean"] is block.shortcut_layer.bn.moving_mean
    assert mapping["fc.weight"] is model.get_layer("predictions").kernel


def test_missing_key_raises_and_assigns_nothing(resnet18_pair):
    torch_model, model = resnet18_pair
    state_dict = _numpy_state_dict(torch_model)
    del state_dict["layer3.1.bn2.running_var"]
    del state_dict["fc.bias"]
    before = _snapshot(model)
    with pytest.raises(ValueError, match="Missing keys") as info:
        load_torchvision_state_dict(model, state_dict)
    assert "layer3.1.bn2.running_var" in str(info.value)
    assert "fc.bias" in str(info.value)
    assert "Unexpected" not in str(info.value)
    _assert_unchanged(model, before)


def test_unexpected_key_raises_and_assigns_nothing(resnet18_pair):
    torch_model, model = resnet18_pair
    state_dict = torch_model.state_dict()
    state_dict["layer5.0.conv1.weight"] = torch.zeros(1, 1, 1, 1)
    before = _snapshot(model)
    with pytest.raises(ValueError, match="Unexpected keys") as info:
        load_torchvision_state_dict(model, state_dict)
    assert "layer5.0.conv1.weight" in str(info.value)
    assert "Missing" not in str(info.value)
    assert "num_batches_tracked" not in str(info.value)
    _assert_unchanged(model, before)


def test_shape_mismatch_names_key_and_both_shapes(resnet18_pair):
    torch_model, model = resnet18_pair
    state_dict = _numpy_state_dict(torch_model)
    state_dict["layer2.0.conv1.weight"] = np.zeros((128, 32, 3, 3), "float32")
    before = _snapshot(model)
    with pytest.raises(ValueError, match="Shape mismatch") as info:
        load_torchvision_state_dict(model, state_dict)
    message = str(info.value)
    assert "layer2.0.conv1.weight" in message
    assert "(128, 32, 3, 3)" in message  # the checkpoint's
    assert "(128, 64, 3, 3)" in message  # the model's, in PyTorch's order
    _assert_unchanged(model, before)


def test_all_problems_reported_in_one_error(resnet18_pair):
    torch_model, model = resnet18_pair
    state_dict = _numpy_state_dict(torch_model)
    del state_dict["bn1.weight"]
    state_dict["extra.weight"] = np.zeros(3, "float32")
    state_dict["fc.weight"] = np.zeros((10, 512), "float32")
    with pytest.raises(ValueError) as info:
        load_torchvision_state_dict(model, state_dict)
    message = str(info.value)
    for part in ("bn1.weight", "extra.weight", "fc.weight", "(10, 512)", "(1000, 512)"):
        assert part in message


def test_headless_model_skips_classifier(resnet18_pair, tmp_path):
    torch_model, _ = resnet18_pair
    backbone = keras_resnets.get_model("resnet18", include_top=False, pooling="avg")
    load_torchvision_state_dict(backbone, _checkpoint(torch_model, tmp_path))
    images = _images()
    torch_backbone = torch.nn.Sequential(*list(torch_model.children())[:-1])
    with torch.no_grad():
        expected = torch.flatten(torch_backbone(torch.from_numpy(images)), 1).numpy()
    np.testing.assert_allclose(_keras_logits(backbone, images), expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize(
    "name, kwargs, reason",
    [
        ("resnet50", {"layout": "keras"}, "1x1"),
        ("resnet50", {"shortcut": "D"}, "average-pooling"),
        ("resnet18", {"stem": "deep"}, "stem"),
        ("resnet50v2", {}, "pre-activation"),
    ],
)
def test_non_torchvision_architecture_is_refused(name, kwargs, reason):
    # Narrow models: the structure is what matters, and they build fast.
    model = keras_resnets.get_model(name, width_multiplier=0.25, **kwargs)
    with pytest.raises(ValueError, match=reason):
        torchvision_weight_map(model)


# --- timm: the same architectures under timm's names -------------------------

from keras_resnets.weights import load_timm  # noqa: E402
from keras_resnets.weights.sources import TIMM_ARCHITECTURES  # noqa: E402

TIMM_FAST = ["resnet18", "resnet50d", "resnext50_32x4d", "resnetv2_50", "seresnext50_32x4d", "ecaresnet50d", "resnetrs50"]


def _timm_model(name):
    timm = pytest.importorskip("timm", reason=f"timm is not installed; run: {PARITY_COMMAND}")
    # timm zero-initializes the last norm of each v1 block, which would make
    # the measured statistics of the following layers meaningless once the
    # norm is randomized (logits in the thousands for ResNet-152): off, as in
    # torchvision.
    kwargs = {} if name.startswith("resnetv2") else {"zero_init_last": False}
    return timm.create_model(name, pretrained=False, **kwargs)


@pytest.mark.parametrize(
    "timm_name",
    [n if n in TIMM_FAST else pytest.param(n, marks=pytest.mark.slow) for n in TIMM_ARCHITECTURES],
)
def test_logits_match_timm(timm_name, tmp_path):
    """Each timm architecture that `weights="timm:..."` serves: its state dict,
    saved as .safetensors (as timm's Hugging Face files are), loads onto the
    keras_resnets model with the build arguments of the source table."""
    from safetensors.torch import save_file

    torch_model = _randomized_torch_model(timm_name, factory=_timm_model)
    path = tmp_path / "model.safetensors"
    save_file(torch_model.state_dict(), str(path))
    images = _images()
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(images)).numpy()
    n_params = sum(p.numel() for p in torch_model.parameters())
    del torch_model

    name, build = TIMM_ARCHITECTURES[timm_name]
    model = keras_resnets.get_model(name, classifier_activation=None, **build)
    assert trainable_count(model) == n_params
    load_timm(model, path)
    _assert_same_logits(f"timm {timm_name}", _keras_logits(model, images), expected)


# The variants of issue 31 (attention, ResNet-RS's stem) at timm's own size
# and an odd one, where every strided layer's padding shows.
TIMM_VARIANTS = ["seresnet50", "seresnext50_32x4d", "ecaresnet50d", "resnetrs50", "resnet50d"]


@pytest.mark.slow
@pytest.mark.parametrize("size", [224, 99])
@pytest.mark.parametrize("timm_name", TIMM_VARIANTS)
def test_variants_match_timm_at_224_and_an_odd_size(timm_name, size, tmp_path):
    from safetensors.torch import save_file

    torch_model = _randomized_torch_model(timm_name, factory=_timm_model)
    path = tmp_path / "model.safetensors"
    save_file(torch_model.state_dict(), str(path))
    images = _images(size=size)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(images)).numpy()
    del torch_model
    model = keras_resnets.get_model(timm_name, classifier_activation=None, weights=str(path))
    _assert_same_logits(f"timm {timm_name} at {size} px", _keras_logits(model, images), expected)


# MACs of every name of issue 31 against fvcore's count of timm's own model
# (its convolutions and linear layers: the convention of count_macs and of
# torchvision's GFLOPS column), at 224 px.
ISSUE_31 = [n for family in ("resnet_d", "se_resnet", "eca_resnet", "resnet_rs")
            for n in keras_resnets.list_models(family=family)]


@pytest.mark.parametrize(
    "timm_name", [n if n in TIMM_VARIANTS else pytest.param(n, marks=pytest.mark.slow) for n in ISSUE_31])
def test_macs_equal_fvcore_count_of_timm(timm_name):
    fvcore = pytest.importorskip("fvcore.nn", reason=f"fvcore is not installed; run: {PARITY_COMMAND}")
    from keras_resnets.models.catalog import FIGURES
    from keras_resnets.utils.macs import count_macs

    analysis = fvcore.FlopCountAnalysis(_timm_model(timm_name).eval(), torch.zeros(1, 3, 224, 224))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    by_operator = analysis.by_operator()
    theirs = by_operator.get("conv", 0) + by_operator.get("linear", 0)
    model = keras_resnets.get_model(timm_name, input_shape=(224, 224, 3))
    assert count_macs(model) == theirs == FIGURES[timm_name][1]


# --- dilated features: torchvision's replace_stride_with_dilation, timm's output_stride

FEATURE_SIZES = [99, 64]  # odd and even: the padding of every strided layer matters


def _feature_images(size):
    return np.random.default_rng(2).standard_normal((2, 3, size, size)).astype("float32")


def _assert_same_features(label, actual, expected):
    assert list(actual) == list(expected)
    for level, want in expected.items():
        got = keras.ops.convert_to_numpy(actual[level]).transpose(0, 3, 1, 2)
        assert got.shape == want.shape, (level, got.shape, want.shape)
        assert np.abs(want).max() > 0.1
        diff = np.abs(got - want).max()
        print(f"{label} {level} {tuple(want.shape)}: max |keras - torch| {diff:.3g} (max |torch| {np.abs(want).max():.3g})")
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL, err_msg=f"{label} {level}")


@pytest.mark.parametrize("size", FEATURE_SIZES)
@pytest.mark.parametrize("output_stride, dilate", [(16, [False, False, True]), (8, [False, True, True])])
@pytest.mark.parametrize("name", ["resnet50", "resnext50_32x4d"])
def test_dilated_features_match_torchvision(name, output_stride, dilate, size, tmp_path):
    """torchvision's `replace_stride_with_dilation` against `output_stride`:
    its layer1..layer4 (`IntermediateLayerGetter`) against "P2".."P5" of a
    features-only model, which loads the classifier's checkpoint (the
    classifier's keys are left over)."""
    from torchvision.models._utils import IntermediateLayerGetter

    def dilated(n):
        return getattr(torchvision.models, n)(weights=None, replace_stride_with_dilation=dilate)

    torch_model = _randomized_torch_model(name, factory=dilated)
    state_dict = _checkpoint(torch_model, tmp_path)
    images = _feature_images(size)
    layers = {"layer1": "P2", "layer2": "P3", "layer3": "P4", "layer4": "P5"}
    with torch.no_grad():
        expected = IntermediateLayerGetter(torch_model, layers)(torch.from_numpy(images))
    expected = {k: v.numpy() for k, v in expected.items()}
    del torch_model

    model = keras_resnets.get_model(name, include_top=False, features_only=True, output_stride=output_stride,
                                    levels=tuple(layers.values()))
    load_torchvision_state_dict(model, state_dict)
    actual = model(images.transpose(0, 2, 3, 1), training=False)
    _assert_same_features(f"{name} output_stride={output_stride} {size} px", actual, expected)


@pytest.mark.parametrize("size", FEATURE_SIZES)
@pytest.mark.parametrize("output_stride", [16, 8])
@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_dilated_features_match_timm(name, output_stride, size, tmp_path):
    """timm's `features_only=True, output_stride=...` (its basic block takes
    dilation, torchvision's refuses it) against every level, "P1" (the stem
    before its max-pool) included; the weights go through a .safetensors
    file of timm's classifier and `weights=` of the builder."""
    from safetensors.torch import save_file

    timm = pytest.importorskip("timm", reason=f"timm is not installed; run: {PARITY_COMMAND}")

    def classifier(n):
        return timm.create_model(n, pretrained=False, zero_init_last=False, output_stride=output_stride)

    torch_model = _randomized_torch_model(name, factory=classifier)
    path = tmp_path / "model.safetensors"
    save_file(torch_model.state_dict(), str(path))
    features = timm.create_model(name, pretrained=False, features_only=True, output_stride=output_stride)
    missing, unexpected = features.load_state_dict(torch_model.state_dict(), strict=False)
    assert not missing and sorted(unexpected) == ["fc.bias", "fc.weight"]
    images = _feature_images(size)
    with torch.no_grad():
        expected = {f"P{i + 1}": v.numpy() for i, v in enumerate(features.eval()(torch.from_numpy(images)))}
    del torch_model, features

    model = keras_resnets.get_model(name, include_top=False, features_only=True, output_stride=output_stride,
                                    weights=str(path))
    actual = model(images.transpose(0, 2, 3, 1), training=False)
    _assert_same_features(f"timm {name} output_stride={output_stride} {size} px", actual, expected)
