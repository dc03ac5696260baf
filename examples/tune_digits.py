"""Search the ResNet family on the handwritten digits within a time budget.

    python examples/tune_digits.py                        # Hyperband, 10 minutes on 2 CPU cores
    python examples/tune_digits.py --max-macs 20M         # only models under 20M MACs per image
    python examples/tune_digits.py --quick                # a one-minute smoke run

Runs `keras_resnets.tuning.tune` (what `keras-resnets tune` runs), then loads
the best model from `best.keras` and classifies a few test digits with it.
Running it again continues the search in the same directory.
"""

import argparse
import os

import keras
import numpy as np

from keras_resnets.data import load_data
from keras_resnets.tuning import tune


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuner", default="hyperband", choices=["hyperband", "random", "bayesian"])
    parser.add_argument("--time-budget", type=float, default=10.0, help="minutes (default: 10)")
    parser.add_argument("--max-macs", help="e.g. 20M: reject larger candidates before training")
    parser.add_argument("--directory", default=os.path.join("saved_models", "tune-digits-example"))
    parser.add_argument("--quick", action="store_true",
                        help="ResNet-20 variants on 16 px digits, two one-epoch trials")
    args = parser.parse_args()

    options = {}
    if args.max_macs:
        scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(args.max_macs[-1].upper(), 1)
        options["max_macs"] = float(args.max_macs.rstrip("KMGkmg")) * scale
    if args.quick:
        options.update(image_size=16, families=["v1"], depths=[20], max_trials=2, epochs=1,
                       max_epochs=1, hyperband_iterations=2, final_epochs=1)
    summary = tune("digits", args.tuner, directory=args.directory, time_budget=args.time_budget,
                   **options)
    print(f"best: {summary['best_architecture']}, validation accuracy {summary['val_accuracy']:.4f}, "
          f"test accuracy {summary['test_accuracy']:.4f}, {summary['macs'] / 1e6:.1f}M MACs")

    model = keras.saving.load_model(os.path.join(args.directory, "best.keras"))
    images, labels = next(iter(load_data("digits", image_size=model.inputs[0].shape[1]).test))
    predicted = np.argmax(model.predict(images[:10], verbose=0), axis=-1)
    print(f"test digits {labels[:10].numpy().tolist()} -> predicted {predicted.tolist()}")


if __name__ == "__main__":
    main()
