"""Records the reference implementations' outputs that CI checks our loaders against.

    pip install torch==2.14.1 torchvision==0.29.1 timm safetensors numpy
    python tests/references/make.py          # writes tests/references/*.safetensors, *.npz, manifest.json

Runs torchvision and timm only (no TensorFlow: torch crashes when imported
after it on these machines). For each configuration it builds the reference
implementation's own model class at narrow widths (every stage's width, and
the stem's, scaled by `scale`; the registered depths), randomizes its weights
and its batch-norm statistics (measured on random images, then perturbed:
every tensor distinct, so a swapped or skipped one changes the outputs),
and writes:

- `NAME.safetensors`: its state dict, as torchvision's and timm's files hold it;
- `NAME.npz`: random NCHW images at two sizes (one odd) and the model's outputs
  on them: the logits, and for the dilated configurations the feature maps of
  each stage at output stride 16 and 8 (the same weights, built with
  torchvision's `replace_stride_with_dilation` / timm's `output_stride`);
- `manifest.json`: what was recorded, by which versions (`make_keras.py`
  adds keras.applications' entries).

tests/test_references.py loads each state dict through the public loaders
(`weights=PATH`) onto the keras_resnets model it claims to be, and compares.
This is keras-hub's way with its presets: the numbers come from the original
implementation, recorded once, and are never written by our own code.
"""

import hashlib
import json
import os
import sys

import numpy as np
import torch
import torchvision
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = (32, 35)  # even and odd: the padding of every strided layer matters
CLASSES = 10


def narrow_torchvision(block, layers, scale, replace_stride_with_dilation=None, **kwargs):
    """torchvision's `ResNet` class with every width scaled by `scale` (its
    `__init__` fixes the stem at 64 and the stages at 64..512 planes)."""
    from torch import nn

    class Narrow(torchvision.models.resnet.ResNet):
        def __init__(self):
            self._first = True
            super().__init__(block, layers, num_classes=CLASSES,
                             replace_stride_with_dilation=replace_stride_with_dilation, **kwargs)
            stem = int(64 * scale)
            self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(stem)
            self.fc = nn.Linear(int(512 * scale) * block.expansion, CLASSES)

        def _make_layer(self, block_, planes, blocks, stride=1, dilate=False):
            if self._first:  # the first stage's input: the narrow stem
                self.inplanes, self._first = int(64 * scale), False
            return super()._make_layer(block_, int(planes * scale), blocks, stride, dilate)

    return Narrow()


def randomize(model, seed):
    """Random weights (the constructors' initializers, seeded) and random
    batch-norm state: statistics measured on random images, then perturbed;
    the last norm of each residual branch small, as in trained networks."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.momentum = None  # a cumulative average: one batch sets the statistics
        m.reset_running_stats()
    model.train()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model(torch.randn(8, 3, 64, 64, generator=generator))
        for m in norms:
            m.momentum = 0.1
            std = m.running_var.sqrt()
            m.running_mean.add_(0.2 * std * torch.randn(m.running_mean.shape, generator=generator))
            m.running_var.mul_(torch.rand(m.running_var.shape, generator=generator) * 1.5 + 0.5)
            m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
            m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=generator))
        for block in model.modules():
            last = None
            for conv, norm in (("conv3", "bn3"), ("conv2", "bn2")):
                if hasattr(block, conv) and isinstance(getattr(block, norm, None), torch.nn.BatchNorm2d):
                    last = getattr(block, norm)
                    break
            if last is not None:
                last.weight.copy_(torch.rand(last.weight.shape, generator=generator) * 0.3 + 0.1)
            elif hasattr(block, "norm3") and hasattr(block, "conv3"):  # timm's pre-activation block
                block.conv3.weight.mul_(0.3)
    return model.eval()


def images(seed):
    rng = np.random.default_rng(seed)
    return {size: rng.standard_normal((2, 3, size, size)).astype("float32") for size in SIZES}


def torchvision_features(model, x):
    from torchvision.models._utils import IntermediateLayerGetter

    layers = {"layer1": "P2", "layer2": "P3", "layer3": "P4", "layer4": "P5"}
    with torch.no_grad():
        return {k: v.numpy() for k, v in IntermediateLayerGetter(model, layers)(torch.from_numpy(x)).items()}


def record(name, model, source, seed, scale, dilated=None):
    """Writes NAME.safetensors and NAME.npz; `dilated(output_stride)`: the
    same architecture built for that output stride (its feature maps too)."""
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(HERE, f"{name}.safetensors"))
    arrays = {}
    for size, x in images(seed).items():
        arrays[f"images_{size}"] = x
        with torch.no_grad():
            arrays[f"logits_{size}"] = model(torch.from_numpy(x)).numpy()
        if dilated is not None:
            for output_stride in (16, 8):
                features = dilated(output_stride)
                features.load_state_dict(state)
                for level, value in features(x).items():
                    arrays[f"features_os{output_stride}_{size}_{level}"] = value
    np.savez_compressed(os.path.join(HERE, f"{name}.npz"), **arrays)
    return {"source": source, "scale": scale, "parameters": int(sum(p.numel() for p in model.parameters())),
            "arrays": sorted(arrays), "sha256": _sha256(os.path.join(HERE, f"{name}.safetensors"))}


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    import timm
    from torchvision.models.resnet import BasicBlock, Bottleneck

    torch.manual_seed(0)
    manifest = {"versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                             "timm": timm.__version__, "python": sys.version.split()[0]},
                "sizes": list(SIZES), "classes": CLASSES, "references": {}}
    path = os.path.join(HERE, "manifest.json")
    if os.path.exists(path):  # make_keras.py's entries (and versions) stay
        with open(path) as f:
            previous = json.load(f)
        manifest["references"] = {k: v for k, v in previous["references"].items() if k.startswith("keras_")}
        manifest["versions"] = {**previous["versions"], **manifest["versions"]}
    out = manifest["references"]

    # Widths: 1/8 of the full ones for the basic blocks, 1/16 for the
    # bottlenecks (their outputs are 4x wider); timm's ResNetV2 rounds its
    # widths to multiples of 8, so 1/8 there. About 5 MB in all.
    def tv(name, block, layers, seed, scale, dilate=False, **kwargs):
        torch.manual_seed(seed)
        model = randomize(narrow_torchvision(block, layers, scale, **kwargs), seed)

        def dilated_model(output_stride):
            flags = {16: [False, False, True], 8: [False, True, True]}[output_stride]
            net = narrow_torchvision(block, layers, scale, replace_stride_with_dilation=flags, **kwargs)
            return _Features(net, torchvision_features)

        source = f"torchvision {torchvision.__version__} ResNet({block.__name__}, {layers}, {kwargs}) x{scale}"
        out[name] = record(name, model, source, seed, scale, dilated_model if dilate else None)

    tv("torchvision_resnet18", BasicBlock, [2, 2, 2, 2], seed=1, scale=1 / 8)
    tv("torchvision_resnet50", Bottleneck, [3, 4, 6, 3], seed=2, scale=1 / 16, dilate=True)
    # 4 groups of 2 channels at this width (ResNeXt-50 32x4d: 32 groups of 4)
    tv("torchvision_resnext50", Bottleneck, [3, 4, 6, 3], seed=3, scale=1 / 16, dilate=True, groups=4,
       width_per_group=32)
    tv("torchvision_wide_resnet50_2", Bottleneck, [3, 4, 6, 3], seed=4, scale=1 / 16, width_per_group=128)

    def timm_model(name, seed, **kwargs):
        torch.manual_seed(seed)
        return randomize(timm.create_model(name, pretrained=False, num_classes=CLASSES, **kwargs), seed)

    def narrow(scale):
        return dict(channels=tuple(int(c * scale) for c in (64, 128, 256, 512)), zero_init_last=False)

    model = timm_model("resnet50d", 5, stem_width=2, **narrow(1 / 16))
    out["timm_resnet50d"] = record("timm_resnet50d", model, f"timm {timm.__version__} resnet50d x1/16", 5, 1 / 16)
    model = timm_model("resnetv2_50", 6, width_factor=1 / 8)
    out["timm_resnetv2_50"] = record("timm_resnetv2_50", model, f"timm {timm.__version__} resnetv2_50 x1/8", 6,
                                     1 / 8)

    # Basic blocks with dilation (torchvision's refuses it): timm's resnet18d
    # (its plain stem is 64 wide whatever `stem_width`; the deep one narrows).
    def timm_dilated(output_stride):
        net = timm.create_model("resnet18d", pretrained=False, num_classes=CLASSES, features_only=True,
                                output_stride=output_stride, stem_width=4, **narrow(1 / 8))
        return _Features(net, _timm_features)

    model = timm_model("resnet18d", 7, stem_width=4, **narrow(1 / 8))
    out["timm_resnet18d"] = record("timm_resnet18d", model, f"timm {timm.__version__} resnet18d x1/8", 7, 1 / 8,
                                   timm_dilated)

    # Channel attention and ResNet-RS's stem (issue 31), each with the deep
    # stem, which narrows with `stem_width` (timm's plain stem stays 64 wide):
    # SE on grouped bottlenecks (4 groups of 2 channels here), ECA (kernel
    # sizes 3 and 5 at these widths), ResNet-RS (SE of ratio 1/4, the stem's
    # max-pool a strided convolution, average-pool shortcuts).
    model = timm_model("seresnext50_32x4d", 8, stem_type="deep", stem_width=2, avg_down=True, cardinality=4,
                       base_width=32, **narrow(1 / 16))
    out["timm_seresnext50d"] = record("timm_seresnext50d", model,
                                      f"timm {timm.__version__} seresnext50_32x4d, deep stem, avg_down, 4x32d, x1/16",
                                      8, 1 / 16)
    model = timm_model("ecaresnet50d", 9, stem_width=2, **narrow(1 / 16))
    out["timm_ecaresnet50d"] = record("timm_ecaresnet50d", model, f"timm {timm.__version__} ecaresnet50d x1/16", 9,
                                      1 / 16)
    model = timm_model("resnetrs50", 10, stem_width=2, **narrow(1 / 16))
    out["timm_resnetrs50"] = record("timm_resnetrs50", model, f"timm {timm.__version__} resnetrs50 x1/16", 10,
                                    1 / 16)

    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(HERE, n)) for n in os.listdir(HERE) if n.endswith((".npz", ".safetensors")))
    print(f"wrote {len(out)} references, {total / 2**20:.2f} MiB, into {HERE}")


class _Features:
    """A features model: `load_state_dict` takes the classifier's state dict
    (its leftover classifier keys allowed), calling it gives {level: array}."""

    def __init__(self, net, run):
        self.net, self.run = net, run

    def load_state_dict(self, state):
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        assert not missing and set(unexpected) <= {"fc.weight", "fc.bias"}, (missing, unexpected)

    def __call__(self, x):
        self.net.eval()
        return self.run(self.net, x)


def _timm_features(net, x):
    with torch.no_grad():
        return {f"P{i + 1}": v.numpy() for i, v in enumerate(net(torch.from_numpy(x)))}


if __name__ == "__main__":
    main()
