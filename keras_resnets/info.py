"""Finding your way: `keras-resnets models` (the catalog) and
`keras-resnets info NAME` (one model, stage by stage).

Example:

>>> from keras_resnets.info import stage_table
>>> model = keras_resnets.ResNet50(input_shape=(224, 224, 3))  # doctest: +SKIP
>>> stage_table(model)[0]  # doctest: +SKIP
{'stage': 'stem', 'blocks': 0, 'output_shape': (56, 56, 64), 'parameters': 9536, ...}
"""

import argparse
import re
import shutil
import textwrap

from keras_resnets.models.catalog import (
    FORMATS, catalog, pretrained_weights, reference_classes, render, text_table,
)
from keras_resnets.models.registry import check_model_name, get_spec, list_models
from keras_resnets.models.specs import check_image_size, output_strides
from keras_resnets.utils.validation import UsageError, check_new_file, int_at_least

MODELS_EXAMPLES = """examples:
  keras-resnets models                          # every model: size, cost, reference, weights
  keras-resnets models --family resnext
  keras-resnets models --format json > models.json
  keras-resnets models --format markdown        # the README's table
"""

INFO_EXAMPLES = """examples:
  keras-resnets info resnet50                   # per-stage table at 224 px
  keras-resnets info resnet20 --image-size 64
  keras-resnets info resnext50_32x4d --plot resnext50.png
  keras-resnets info resnet50 --output-stride 16   # a backbone's features, last stage dilated
"""

_STAGE = re.compile(r"^(stage\d+)_block\d+$")
PLOT_ENDINGS = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".gif", ".dot")
"""The files `--plot` writes (graphviz picks the format by the ending)."""


def _stage_of(layer_name):
    if layer_name in ("stem", "stem_pool"):
        return "stem"
    match = _STAGE.match(layer_name)
    return match.group(1) if match else "head"


def stage_table(model, input_shape=None):
    """Parameters and MACs of a keras_resnets model, stage by stage.

    Args:
        model: a model built by keras_resnets (layers named "stem",
            "stage{i}_block{j}", then the head).
        input_shape: `(height, width, channels)` for the MACs; defaults to
            the model's own (see `count_macs`).

    Returns:
        A list of dicts (stem, stage1, ..., head) with the keys stage,
        blocks, output_shape, parameters (trainable), non_trainable, macs.
    """
    import keras
    import numpy as np

    from keras_resnets.utils.macs import macs_by_layer

    macs = macs_by_layer(model, input_shape)
    rows = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        stage = _stage_of(layer.name)
        row = rows.setdefault(stage, dict(
            stage=stage, blocks=0, output_shape=None, parameters=0, non_trainable=0, macs=0,
        ))
        row["blocks"] += stage.startswith("stage")
        row["output_shape"] = tuple(layer.output.shape[1:])
        row["parameters"] += int(sum(np.prod(w.shape) for w in layer.trainable_weights))
        row["non_trainable"] += int(sum(np.prod(w.shape) for w in layer.non_trainable_weights))
        row["macs"] += macs.get(layer.name, 0)
    return list(rows.values())


def _shape(shape):
    return "x".join("?" if d is None else str(d) for d in shape)


def _percent(part, total):
    return f"{100 * part / total:.1f}%" if total else "-"


def feature_table(model):
    """The feature pyramid of a keras_resnets model (`pyramid_outputs`), as
    text: each level's layer, shape and stride."""
    lines = [
        (level, tensor._keras_history.operation.name, _shape(tensor.shape[1:]), model.feature_strides[level])
        for level, tensor in model.pyramid_outputs.items()
    ]
    return text_table(("level", "layer", "shape", "stride"), lines, right=(3,))


def render_info(spec, model, rows):
    """`stage_table` rows as the text of `keras-resnets info`."""
    params = sum(r["parameters"] for r in rows)
    fixed = sum(r["non_trainable"] for r in rows)
    macs = sum(r["macs"] for r in rows)
    header = ("stage", "blocks", "output shape", "params", "% params", "MACs", "% MACs")
    lines = [
        (r["stage"], r["blocks"] or "-", _shape(r["output_shape"]), f"{r['parameters']:,}",
         _percent(r["parameters"], params), f"{r['macs']:,}", _percent(r["macs"], macs))
        for r in rows
    ]
    lines.append(("total", sum(r["blocks"] for r in rows), "", f"{params:,}", "100.0%",
                  f"{macs:,}", "100.0%"))
    size = _shape(model.inputs[0].shape[1:])
    classes = model.output_shape[-1]
    imagenet, sources = pretrained_weights(spec.name)
    return "\n".join([
        f"{spec.name}: {spec.title}, family {spec.family}, depth {spec.depth}, "
        f"input {size}, {classes} classes",
        f"reference: {spec.reference}",
        f"weights='imagenet': {imagenet or 'none'}",
        *textwrap.wrap(f"other weights=: {', '.join(s for s in sources if s != imagenet) or 'none'}",
                       width=100, subsequent_indent="  "),
        "",
        text_table(header, lines, right=(1, 3, 4, 5, 6)),
        "",
        f"parameters: {params:,} trainable + {fixed:,} non-trainable (batch-norm statistics)"
        f" = {params + fixed:,}",
        f"MACs per image: {macs:,} ({macs / 1e9:.3f} G)",
        "",
        f"features (pyramid_outputs), output stride {max(model.feature_strides.values())}:",
        feature_table(model),
    ])


def check_plot_requirements():
    """Raises ImportError naming what to install when pydot or graphviz's
    `dot` program, which `keras.utils.plot_model` needs, is missing."""
    try:
        import pydot  # noqa: F401
    except ImportError:
        raise ImportError(
            "plotting needs pydot: pip install 'keras_resnets[plot]' (or pip install "
            "pydot), and graphviz's `dot` program."
        ) from None
    if shutil.which("dot") is None:
        raise ImportError(
            "plotting needs graphviz's `dot` program, which is not on PATH: install "
            "graphviz (apt-get install graphviz, brew install graphviz, or conda "
            "install graphviz)."
        )


def plot_blocks(model, path):
    """Draws `model`'s block diagram (stem, blocks, head, with their names and
    shapes) into `path` with `keras.utils.plot_model`; the file type follows
    the name's ending (.png, .svg, .pdf).

    Raises:
        ImportError: pydot or graphviz's `dot` is missing (the message says
            what to install).
    """
    import keras

    from keras_resnets.training.callbacks import atomic_path

    check_plot_requirements()
    with atomic_path(path) as tmp:
        keras.utils.plot_model(model, to_file=tmp, show_shapes=True, show_layer_names=True, dpi=72)
    return path


def _models(args):
    print(render(catalog(args.family), args.format))
    return 0


def _validate_info(args):
    """Checks `info`'s arguments before any model is built."""
    spec = check_model_name("NAME", args.name)
    if args.image_size is not None:
        check_image_size("--image-size", args.image_size, spec)
    if args.output_stride is not None and args.output_stride not in output_strides(spec):
        raise UsageError(
            f"--output-stride must be one of {', '.join(map(str, output_strides(spec)))} for {spec.name}; "
            f"received --output-stride {args.output_stride}."
        )
    if args.plot:
        check_new_file("--plot", args.plot, PLOT_ENDINGS)
        try:
            check_plot_requirements()
        except ImportError as e:
            raise UsageError(f"--plot {args.plot}: {e}") from None


def _info(args):
    from keras_resnets.models import get_model

    spec = get_spec(args.name)
    size = spec.default_size if args.image_size is None else args.image_size
    model = get_model(spec.name, input_shape=(size, size, 3), classes=reference_classes(spec),
                      output_stride=args.output_stride)
    print(render_info(spec, model, stage_table(model)))
    if args.plot:
        plot_blocks(model, args.plot)
        print(f"block diagram: {args.plot}")
    return 0


def add_parsers(subparsers):
    """Adds the `models` and `info` subcommands to `keras-resnets`."""
    families = sorted({get_spec(name).family for name in list_models()})
    p = subparsers.add_parser(
        "models",
        help="list the models: parameters, MACs, reference, pretrained weights",
        description="Every registered model: family, depth, trainable parameters (1000 "
        "classes; 10 for the CIFAR nets), multiply-accumulates of one image at the "
        "reference size (224 px; 32 px for the CIFAR nets), the reference it matches and "
        "the published checkpoints that load onto it.",
        epilog=MODELS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--family", choices=families, help="only this family")
    p.add_argument("--format", default="table", choices=FORMATS,
                   help="table (default), json, csv (exact numbers) or markdown")
    p.set_defaults(func=_models, uses_keras=False)

    p = subparsers.add_parser(
        "info",
        help="one model stage by stage: output shapes, parameters, MACs",
        description="Per-stage table of a registered model (stem, stages, head): blocks, "
        "output shape, parameters and MACs with their share of the total, then the totals.",
        epilog=INFO_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="registered model name, e.g. resnet50 (see keras-resnets models)")
    p.add_argument("--image-size", type=int_at_least(1),
                   help="square input size (default: the reference's, 224 or 32 for the CIFAR nets)")
    p.add_argument("--output-stride", type=int_at_least(1), metavar="STRIDE",
                   help="the trunk's stride: 32 (default), 16 or 8 (the last stages dilated; the CIFAR "
                   "nets: 4, 2 or 1); the features table shows each level's shape and stride")
    p.add_argument("--plot", metavar="FILE.png",
                   help="also draw the block diagram (needs pydot and graphviz: "
                   "pip install 'keras_resnets[plot]')")
    p.set_defaults(func=_info, validate=_validate_info)
