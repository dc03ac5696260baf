"""The one table of the ResNet family: every variant is a row of data.

A row says which block, how many per stage, how wide, how grouped, which stem
(and its downsampling), which channel attention, which default shortcut
option and layout, and which published reference it reproduces.
`keras_resnets.models.builder.build_model` turns a row into a Keras model;
nothing else holds architecture numbers.
"""

import dataclasses

from keras_resnets.utils.validation import UsageError, check_positive_int

IMAGENET_WIDTHS = (64, 128, 256, 512)
CIFAR_WIDTHS = (16, 32, 64)
# The stride of each stem's convolutions ("imagenet", "cifar", "deep"); all
# but "cifar" max-pool after them.
STEM_CONV_STRIDES = {"imagenet": 2, "cifar": 1, "deep": 2}
# Downsampling factor of each stem: what the input size must allow.
STEM_STRIDES = {kind: s if kind == "cifar" else 2 * s for kind, s in STEM_CONV_STRIDES.items()}
# The choices of a spec's fields; the layers take the same (they import these:
# this module needs no Keras, the layers do).
STEM_POOLS = ("max", "conv")
SHORTCUT_OPTIONS = ("A", "B", "C", "D")
ATTENTIONS = (None, "se", "eca")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One registered architecture.

    Attributes:
        name: registry name, e.g. "resnet50".
        title: human name, e.g. "ResNet-50".
        family: "resnet", "resnet_v2", "resnext", "wide_resnet", "resnet_d",
            "se_resnet", "eca_resnet" or "resnet_rs".
        block: "basic" or "bottleneck".
        depths: blocks per stage.
        widths: the blocks' `filters` per stage (bottlenecks output 4x).
        stem: "imagenet", "cifar" or "deep".
        stem_width: output channels of the stem.
        stem_pool: the stem's downsampling after its convolutions: "max"
            (a 3x3 max-pool) or "conv" (a strided 3x3 convolution, BN and
            ReLU: ResNet-RS).
        groups: groups of the bottleneck's 3x3 convolution.
        width_per_group: its channels per group at `filters=64`.
        preactivation: ResNet v2 blocks.
        attention: None, "se" (squeeze-and-excitation) or "eca": channel
            attention on every block's residual branch.
        se_ratio: the squeeze's width relative to a block's output
            channels, with `attention="se"` (1/16; ResNet-RS 1/4).
        shortcut: default shortcut option ("A", "B", "C" or "D").
        project_first_blocks: each stage's first block projects its
            shortcut even where the shape is unchanged (keras-hub's ResNet-vd
            with basic blocks, after PaddleClas, projects stage 1's 64 -> 64).
        layout: default layout ("torchvision" or "keras"), see
            `keras_resnets.models.builder.LAYOUTS`.
        default_size: the image size of the reference (224 or 32).
        reference: what the model reproduces (a torchvision or
            keras.applications model, or a paper's table).
        aliases: other names that `get_model` accepts.
    """

    name: str
    title: str
    family: str
    block: str
    depths: tuple
    widths: tuple = IMAGENET_WIDTHS
    stem: str = "imagenet"
    stem_width: int = 64
    stem_pool: str = "max"
    groups: int = 1
    width_per_group: int = 64
    preactivation: bool = False
    attention: str = None
    se_ratio: float = 1 / 16
    shortcut: str = "B"
    project_first_blocks: bool = False
    layout: str = "torchvision"
    default_size: int = 224
    reference: str = ""
    aliases: tuple = ()

    def __post_init__(self):
        """The choices checked, so that a spec made by hand (`build_model`
        takes one) fails here, naming the field, not deep in the builder."""
        choices = dict(block=("basic", "bottleneck"), stem=tuple(STEM_STRIDES), stem_pool=STEM_POOLS,
                       shortcut=SHORTCUT_OPTIONS, layout=("torchvision", "keras"), attention=ATTENTIONS)
        for field, allowed in choices.items():
            value = getattr(self, field)
            if value not in allowed:
                raise UsageError(
                    f"ModelSpec `{field}` must be one of {', '.join(map(repr, allowed))}; "
                    f"received {field}={value!r} (model {self.name!r})."
                )
        if not isinstance(self.project_first_blocks, bool):
            raise UsageError(
                "ModelSpec `project_first_blocks` must be True or False; received "
                f"project_first_blocks={self.project_first_blocks!r} (model {self.name!r})."
            )
        if not self.depths or len(self.widths) != len(self.depths) or not all(
                isinstance(d, int) and d > 0 for d in (*self.depths, *self.widths)):
            raise UsageError(
                f"ModelSpec `depths` and `widths` must be positive integers, one of each per stage; "
                f"received depths={self.depths!r}, widths={self.widths!r} (model {self.name!r})."
            )

    @property
    def depth(self):
        """Weighted layers: convolutions of the residual branches, stem, head.

        The stem counts as one layer, as the names do (ResNet-50-D, with its
        three stem convolutions, and ResNet-RS-50 keep 50). The CIFAR wide
        ResNets' WRN-d-k counts the stem, the branches and one projection
        per stage instead of the head (Zagoruyko & Komodakis 2016).
        """
        per_block = 2 if self.block == "basic" else 3
        if self.family == "wide_resnet" and self.stem == "cifar":
            return per_block * sum(self.depths) + 1 + len(self.depths)
        return per_block * sum(self.depths) + 2


def total_stride(spec, stem=None):
    """The network's downsampling without dilation: the stem's stride times
    2 for each stage after the first."""
    return STEM_STRIDES[stem or spec.stem] * 2 ** (len(spec.depths) - 1)


def output_strides(spec, stem=None):
    """The output strides the network of `spec` takes (`output_stride` of
    the builder): its total stride, or that divided by 2 or 4 (the last one
    or two strided stages dilated), never below the stem's stride."""
    total = total_stride(spec, stem)
    return [total // 2**k for k in range(3) if total // 2**k >= STEM_STRIDES[stem or spec.stem]]


def min_input_size(spec, stem=None, output_stride=None):
    """Smallest image side the network's downsampling takes (its output
    stride: the total stride, or less with dilation)."""
    return output_stride or total_stride(spec, stem)


def check_image_size(name, size, spec):
    """`size`, the side of square images for `spec`'s network: a positive
    integer at least its total stride; a ValueError naming `name` otherwise."""
    size = check_positive_int(name, size)
    smallest = min_input_size(spec)
    if size < smallest:
        raise UsageError(
            f"`{name}` must be at least {smallest} for {spec.name} (its total stride); "
            f"received {name}={size}."
        )
    return size


def _resnet(depth, block, depths, **kw):
    return ModelSpec(
        f"resnet{depth}", f"ResNet-{depth}", "resnet", block, depths,
        reference=kw.pop("reference", f"torchvision resnet{depth}"), **kw,
    )


def _resnet_v2(depth, block, depths, **kw):
    return ModelSpec(
        f"resnet{depth}v2", f"ResNet-{depth} v2", "resnet_v2", block, depths,
        preactivation=True, layout="keras", **kw,
    )


def _resnext(depth, depths, groups, width, **kw):
    return ModelSpec(
        f"resnext{depth}_{groups}x{width}d", f"ResNeXt-{depth} {groups}x{width}d",
        "resnext", "bottleneck", depths, groups=groups, width_per_group=width, **kw,
    )


def _cifar(depth, **kw):
    n = (depth - 2) // 6
    return ModelSpec(
        f"resnet{depth}", f"ResNet-{depth} (CIFAR)", "resnet", "basic", (n, n, n),
        widths=CIFAR_WIDTHS, stem="cifar", stem_width=16, shortcut="A",
        default_size=32, **kw,
    )


def _resnet_d(depth, block, depths, **kw):
    return ModelSpec(
        f"resnet{depth}d", f"ResNet-{depth}-D", "resnet_d", block, depths, stem="deep", shortcut="D",
        reference=f"timm resnet{depth}d ({_TRICKS})", **kw,
    )


def _se(name, title, depths, **kw):
    return ModelSpec(name, title, "se_resnet", "bottleneck", depths, attention="se",
                     reference=f"timm {name} ({_SE})", **kw)


def _resnet_rs(depth, depths):
    return ModelSpec(
        f"resnetrs{depth}", f"ResNet-RS-{depth}", "resnet_rs", "bottleneck", depths, stem="deep",
        stem_pool="conv", shortcut="D", attention="se", se_ratio=0.25,
        reference=f"timm resnetrs{depth} (Bello et al. 2021, Revisiting ResNets)",
    )


_TRICKS = "He et al. 2019, Bag of Tricks: deep stem, average-pool shortcut"
_SE = "Hu et al. 2018, Squeeze-and-Excitation Networks"
_PAPER = "He et al. 2015, Deep Residual Learning, Table 6"
_PREACT = "He et al. 2016, Identity Mappings in Deep Residual Networks"
_RESNEXT = "Xie et al. 2017, Aggregated Residual Transformations, Table 7"
_WRN = "Zagoruyko & Komodakis 2016, Wide Residual Networks"

SPECS = (
    # ResNet v1 (He et al. 2015), torchvision's layout (stride on the 3x3).
    _resnet(18, "basic", (2, 2, 2, 2)),
    _resnet(34, "basic", (3, 4, 6, 3)),
    _resnet(50, "bottleneck", (3, 4, 6, 3)),
    _resnet(101, "bottleneck", (3, 4, 23, 3)),
    _resnet(152, "bottleneck", (3, 8, 36, 3)),
    _resnet(200, "bottleneck", (3, 24, 36, 3),
            reference="He et al. 2016, Identity Mappings (original ResNet-200)"),
    # ResNet v2: pre-activation (He et al. 2016), keras.applications' layout.
    _resnet_v2(18, "basic", (2, 2, 2, 2), reference=_PREACT + ", keras.applications v2 layout"),
    _resnet_v2(34, "basic", (3, 4, 6, 3), reference=_PREACT + ", keras.applications v2 layout"),
    _resnet_v2(50, "bottleneck", (3, 4, 6, 3), reference="keras.applications ResNet50V2"),
    _resnet_v2(101, "bottleneck", (3, 4, 23, 3), reference="keras.applications ResNet101V2"),
    _resnet_v2(152, "bottleneck", (3, 8, 36, 3), reference="keras.applications ResNet152V2"),
    _resnet_v2(200, "bottleneck", (3, 24, 36, 3), reference=_PREACT + " (ResNet-200), keras.applications v2 layout"),
    # ResNeXt (Xie et al. 2017).
    _resnext(50, (3, 4, 6, 3), 32, 4, reference="torchvision resnext50_32x4d",
             aliases=("resnext50",)),
    _resnext(101, (3, 4, 23, 3), 32, 4, reference="Xie et al. 2017, Table 5 (ResNeXt-101 32x4d)",
             aliases=("resnext101",)),
    _resnext(101, (3, 4, 23, 3), 32, 8, reference="torchvision resnext101_32x8d"),
    _resnext(101, (3, 4, 23, 3), 64, 4, reference="torchvision resnext101_64x4d"),
    # Wide ResNets: torchvision's (bottleneck 3x3 twice as wide).
    ModelSpec("wide_resnet50_2", "Wide ResNet-50-2", "wide_resnet", "bottleneck",
              (3, 4, 6, 3), width_per_group=128, reference="torchvision wide_resnet50_2"),
    ModelSpec("wide_resnet101_2", "Wide ResNet-101-2", "wide_resnet", "bottleneck",
              (3, 4, 23, 3), width_per_group=128, reference="torchvision wide_resnet101_2"),
    # The CIFAR networks of He et al. 2015, section 4.2: 6n+2 layers, option A.
    _cifar(20, reference=_PAPER + " (0.27M)"),
    _cifar(32, reference=_PAPER + " (0.46M)"),
    _cifar(44, reference=_PAPER + " (0.66M)"),
    _cifar(56, reference=_PAPER + " (0.85M)"),
    _cifar(110, reference=_PAPER + " (1.7M)"),
    _cifar(1202, reference=_PAPER + " (19.4M)"),
    # Pre-activation bottleneck CIFAR networks (He et al. 2016): 9n+2 layers.
    ModelSpec("preact_resnet164", "Pre-act ResNet-164 (CIFAR)", "resnet_v2", "bottleneck",
              (18, 18, 18), widths=CIFAR_WIDTHS, stem="cifar", stem_width=16,
              preactivation=True, default_size=32, reference=_PREACT + ", CIFAR (1.7M)"),
    ModelSpec("preact_resnet1001", "Pre-act ResNet-1001 (CIFAR)", "resnet_v2", "bottleneck",
              (111, 111, 111), widths=CIFAR_WIDTHS, stem="cifar", stem_width=16,
              preactivation=True, default_size=32, reference=_PREACT + ", CIFAR (10.2M)"),
    # CIFAR ResNeXt-29 (Xie et al. 2017): 3 stages of 3 bottlenecks, 64-wide stem.
    _resnext(29, (3, 3, 3), 8, 64, widths=(64, 128, 256), stem="cifar", default_size=32,
             reference=_RESNEXT + " (34.4M)"),
    _resnext(29, (3, 3, 3), 16, 64, widths=(64, 128, 256), stem="cifar", default_size=32,
             reference=_RESNEXT + " (68.1M)"),
    # CIFAR Wide ResNets WRN-d-k (Zagoruyko & Komodakis 2016): pre-activation
    # basic blocks, (d - 4) / 6 per stage, widths 16k, 32k, 64k.
    ModelSpec("wide_resnet16_8", "WRN-16-8 (CIFAR)", "wide_resnet", "basic", (2, 2, 2),
              widths=(128, 256, 512), stem="cifar", stem_width=16, preactivation=True,
              default_size=32, reference=_WRN + " (11.0M)"),
    ModelSpec("wide_resnet28_10", "WRN-28-10 (CIFAR)", "wide_resnet", "basic", (4, 4, 4),
              widths=(160, 320, 640), stem="cifar", stem_width=16, preactivation=True,
              default_size=32, reference=_WRN + " (36.5M)"),
    # "Bag of Tricks" (He et al. 2019) ResNet-D: the deep 3x3 stem
    # (ResNet-C) and average-pooling projections; timm's "d" models.
    _resnet_d(18, "basic", (2, 2, 2, 2)),
    _resnet_d(34, "basic", (3, 4, 6, 3)),
    _resnet_d(50, "bottleneck", (3, 4, 6, 3)),
    _resnet_d(101, "bottleneck", (3, 4, 23, 3)),
    _resnet_d(152, "bottleneck", (3, 8, 36, 3)),
    _resnet_d(200, "bottleneck", (3, 24, 36, 3)),
    ModelSpec("resnext50d_32x4d", "ResNeXt-50-D 32x4d", "resnet_d", "bottleneck", (3, 4, 6, 3),
              stem="deep", shortcut="D", groups=32, width_per_group=4,
              reference=f"timm resnext50d_32x4d ({_TRICKS})"),
    # Squeeze-and-excitation (Hu et al. 2018) on every bottleneck, timm's.
    _se("seresnet50", "SE-ResNet-50", (3, 4, 6, 3)),
    _se("seresnext50_32x4d", "SE-ResNeXt-50 32x4d", (3, 4, 6, 3), groups=32, width_per_group=4),
    _se("seresnext101_32x4d", "SE-ResNeXt-101 32x4d", (3, 4, 23, 3), groups=32, width_per_group=4),
    # ECA (Wang et al. 2020) on ResNet-D, timm's.
    ModelSpec("ecaresnet50d", "ECA-ResNet-50-D", "eca_resnet", "bottleneck", (3, 4, 6, 3),
              stem="deep", shortcut="D", attention="eca",
              reference="timm ecaresnet50d (Wang et al. 2020, ECA-Net)"),
    ModelSpec("ecaresnet101d", "ECA-ResNet-101-D", "eca_resnet", "bottleneck", (3, 4, 23, 3),
              stem="deep", shortcut="D", attention="eca",
              reference="timm ecaresnet101d (Wang et al. 2020, ECA-Net)"),
    # ResNet-RS (Bello et al. 2021): ResNet-D, the stem's max-pool a
    # strided convolution, SE of ratio 1/4.
    _resnet_rs(50, (3, 4, 6, 3)),
    _resnet_rs(101, (3, 4, 23, 3)),
    _resnet_rs(152, (3, 8, 36, 3)),
    _resnet_rs(200, (3, 24, 36, 3)),
)
