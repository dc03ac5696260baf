"""The model catalog: every registered model with its size, cost, reference
and the published checkpoints that load onto it.

Parameters and MACs are stored here as data, so that `keras-resnets models`
answers at once (building all the models takes minutes). They are measured
on the real models by `python -m keras_resnets.models.catalog`, which prints
`FIGURES`; the tests rebuild the models and assert equality
(tests/test_catalog.py, tests/test_models.py, tests/test_fidelity.py).

Example:

>>> from keras_resnets.models.catalog import catalog, render
>>> print(render(catalog(family="resnext"), "markdown"))  # doctest: +SKIP
"""

import csv
import io
import json

from keras_resnets.models.registry import BUILDER_NAMES, get_spec, list_models
from keras_resnets.utils.validation import UsageError

# Trainable parameters (torchvision's and timm's count) and multiply-accumulates of one
# image at the reference size (224 px, or 32 px for the CIFAR nets), with
# the reference's classes: 1000 (ImageNet), or 10 for the CIFAR nets.
FIGURES = {
    "resnet18": (11_689_512, 1_814_073_344),
    "resnet34": (21_797_672, 3_663_761_408),
    "resnet50": (25_557_032, 4_089_184_256),
    "resnet101": (44_549_160, 7_801_405_440),
    "resnet152": (60_192_808, 11_513_626_624),
    "resnet200": (64_673_832, 15_007_481_856),
    "resnet18v2": (11_690_600, 1_293_848_576),
    "resnet34v2": (21_800_616, 3_143_536_640),
    "resnet50v2": (25_568_360, 3_482_255_360),
    "resnet101v2": (44_577_896, 7_194_476_544),
    "resnet152v2": (60_236_904, 10_906_697_728),
    "resnet200v2": (64_726_120, 14_400_552_960),
    "resnext50_32x4d": (25_028_904, 4_230_479_872),
    "resnext101_32x4d": (44_177_704, 7_969_996_800),
    "resnext101_32x8d": (88_791_336, 16_414_015_488),
    "resnext101_64x4d": (83_455_272, 15_460_270_080),
    "wide_resnet50_2": (68_883_240, 11_398_021_120),
    "wide_resnet101_2": (126_886_696, 22_753_050_624),
    "resnet20": (269_722, 40_551_040),
    "resnet32": (464_154, 68_862_592),
    "resnet44": (658_586, 97_174_144),
    "resnet56": (853_018, 125_485_696),
    "resnet110": (1_727_962, 252_887_680),
    "resnet1202": (19_421_274, 2_829_238_912),
    "preact_resnet164": (1_703_258, 247_646_720),
    "preact_resnet1001": (10_327_706, 1_490_995_712),
    "resnext29_8x64d": (34_426_698, 5_387_266_048),
    "resnext29_16x64d": (68_155_210, 10_688_866_304),
    "wide_resnet16_8": (10_961_370, 1_548_145_664),
    "wide_resnet28_10": (36_479_194, 5_243_328_768),
    "resnet18d": (11_708_744, 2_053_713_920),
    "resnet34d": (21_816_904, 3_903_401_984),
    "resnet50d": (25_576_264, 4_328_824_832),
    "resnet101d": (44_568_392, 8_041_046_016),
    "resnet152d": (60_212_040, 11_753_267_200),
    "resnet200d": (64_693_064, 15_247_122_432),
    "resnext50d_32x4d": (25_048_136, 4_470_120_448),
    "seresnet50": (28_088_024, 4_091_699_200),
    "seresnext50_32x4d": (27_559_896, 4_232_994_816),
    "seresnext101_32x4d": (48_955_416, 7_974_739_968),
    "ecaresnet50d": (25_576_350, 4_328_912_640),
    "ecaresnet101d": (44_568_563, 8_041_220_864),
    "resnetrs50": (35_691_912, 4_454_490_112),
    "resnetrs101": (63_618_696, 8_175_624_192),
    "resnetrs152": (86_621_576, 11_895_185_408),
    "resnetrs200": (93_209_992, 15_391_137_792),
}

FORMATS = ("table", "json", "csv", "markdown")


def reference_classes(spec):
    """Classes of the reference: 10 for the CIFAR nets, 1000 otherwise."""
    return 10 if spec.default_size == 32 else 1000


def measure(name, method="auto"):
    """Builds `name` as the reference has it and counts its parameters and MACs.

    Args:
        name: str, a registered model name.
        method: how to count the MACs (`keras_resnets.count_macs`'s `method`).

    Returns:
        `(trainable parameters, MACs of one image at the reference size)`.
    """
    import numpy as np

    from keras_resnets.models.builder import get_model
    from keras_resnets.utils.macs import count_macs

    spec = get_spec(name)
    model = get_model(spec.name, classes=reference_classes(spec))
    params = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return params, count_macs(model, method=method)


def pretrained_weights(name):
    """`(weights="imagenet" source or None, every named source)` of a model,
    from `keras_resnets.weights`' table of downloads."""
    from keras_resnets.weights.pretrained import list_sources
    from keras_resnets.weights.sources import IMAGENET_DEFAULT

    return IMAGENET_DEFAULT.get(name), list_sources(name)


def _builders():
    names = {}
    for public, registry_name in BUILDER_NAMES.items():
        names.setdefault(registry_name, []).append(public)
    return names


def catalog(family=None):
    """One dict per registered model, in table order.

    Args:
        family: None for every model, or "resnet", "resnet_v2", "resnext",
            "wide_resnet".

    Returns:
        A list of dicts with the keys name, builders, family, depth,
        parameters, macs, image_size, classes, imagenet (what
        `weights="imagenet"` loads, or None), pretrained (every `weights=`
        source name) and reference.
    """
    builders = _builders()
    rows = []
    for name in list_models(family):
        spec = get_spec(name)
        # A model registered after this table was written is measured now.
        params, macs = FIGURES[name] if name in FIGURES else measure(name)
        imagenet, sources = pretrained_weights(name)
        rows.append(dict(
            name=name, builders=builders.get(name, []), family=spec.family,
            depth=spec.depth, parameters=params, macs=macs,
            image_size=spec.default_size, classes=reference_classes(spec),
            imagenet=imagenet, pretrained=sources, reference=spec.reference,
        ))
    return rows


def _origins(row):
    """"torchvision (2), timm (9)": where the `weights=` sources come from."""
    counts = {}
    for source in row["pretrained"]:
        origin = source.split(":")[0]
        counts[origin] = counts.get(origin, 0) + 1
    return ", ".join(f"{origin} ({n})" for origin, n in counts.items()) or "-"


def _gmacs(row):
    return f"{row['macs'] / 1e9:.3f} @{row['image_size']}px"


def text_table(header, lines, right=()):
    """Aligned columns; the columns numbered in `right` are right-aligned."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines)]
    out = []
    for cells in (header, *lines):
        out.append("  ".join(
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip())
    return "\n".join(out)


def render(rows, format="table"):
    """`catalog()` rows as text: "table" (aligned columns), "json", "csv"
    (exact integers) or "markdown" (the README's model table)."""
    if format not in FORMATS:
        raise UsageError(f"`format` must be one of {', '.join(FORMATS)}; received format={format!r}.")
    if format == "json":
        return json.dumps(rows, indent=2)
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({
                k: " ".join(v) if isinstance(v, list) else v for k, v in row.items()
            })
        return buffer.getvalue().rstrip("\n")
    if format == "markdown":
        lines = [
            "| name | builder | family | depth | params | GMACs | pretrained `weights=` | reference |",
            "|---|---|---|---:|---:|---:|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| `{r['name']}` | {', '.join(f'`{b}`' for b in r['builders'])} | "
                f"{r['family']} | {r['depth']} | {r['parameters']:,} | {_gmacs(r)} | "
                f"{_origins(r)} | {r['reference']} |"
            )
        return "\n".join(lines)
    header = ("name", "family", "depth", "params", "GMACs", "pretrained", "reference")
    lines = [
        (r["name"], r["family"], r["depth"], f"{r['parameters']:,}", _gmacs(r),
         _origins(r), r["reference"])
        for r in rows
    ]
    return text_table(header, lines, right=(2, 3, 4))


if __name__ == "__main__":
    # Regenerates FIGURES (builds every model: minutes).
    print("FIGURES = {")
    for _name in list_models():
        _params, _macs = measure(_name)
        print(f'    "{_name}": ({_params:_}, {_macs:_}),', flush=True)
    print("}")
