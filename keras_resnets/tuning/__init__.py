"""Architecture and hyperparameter search with KerasTuner.

- `ResNetHyperModel`: the ResNet family (v1, v2, ResNeXt, wide) and its
  training as a `keras_tuner.HyperModel`, with optional cost budgets
  (parameters, MACs, TFLite latency); works with any KerasTuner tuner.
- `tune`: a whole search as `keras-resnets tune` runs it: resumable, with a
  time budget, a results table, `results.csv`, a plot and `best.keras`.
- `Hyperband`: KerasTuner's Hyperband, except that a first-round trial that
  failed or was rejected by a budget is replaced by a new candidate (stock
  Hyperband then never promotes anyone from that bracket).

KerasTuner and TensorFlow load when one of these is first used
(`keras_resnets.utils.lazy`).

>>> from keras_resnets.tuning import ResNetHyperModel, tune
>>> summary = tune("digits", "hyperband", time_budget=10)  # doctest: +SKIP
"""

from keras_resnets.tuning.settings import FAMILIES
from keras_resnets.utils.lazy import attach

__all__ = ["ResNetHyperModel", "tune", "Hyperband", "HyperbandOracle", "StopAtDeadline", "FAMILIES", "BudgetExceeded",
           "SearchSpace", "variants"]

__getattr__, __dir__ = attach(
    __name__,
    {
        "ResNetHyperModel": "keras_resnets.tuning.hypermodel",
        **dict.fromkeys(("Hyperband", "HyperbandOracle", "StopAtDeadline", "tune"), "keras_resnets.tuning.search"),
        **dict.fromkeys(("BudgetExceeded", "SearchSpace", "variants"), "keras_resnets.tuning.space"),
    },
    submodules=("command", "hypermodel", "search", "settings", "space"),
)
