"""The training recipes of the papers: optimizer, schedule, regularization.

- "cifar": He et al. 2015, section 4.2: SGD with momentum 0.9, learning rate
  0.1 divided by 10 at 50% and 75% of training, weight decay 1e-4, batch
  128, 4-pixel padding + random crop + flip.
- "imagenet": Goyal et al. 2017 / "Bag of Tricks": SGD with Nesterov momentum
  0.9, learning rate 0.1 x batch / 256 with a linear warm-up (5 epochs) then
  cosine decay, label smoothing 0.1, weight decay 1e-4 not applied to batch
  norm and bias parameters, random-resized-crop + flip.
- "finetune": for a pretrained backbone with a new head: batch norm frozen in
  inference mode, the head trained first (a fifth of the epochs, at the
  learning rate), then the whole network at a tenth of it.
"""

import dataclasses
import math

from keras_resnets.utils.validation import check_choice


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    lr: float  # at `batch_size`; scaled linearly with the batch size
    batch_size: int
    epochs: int
    schedule: str  # "step" (/10 at 50% and 75%) or "cosine" (warm-up, then cosine)
    weight_decay: float
    nesterov: bool = False
    label_smoothing: float = 0.0
    warmup_epochs: int = 0
    augment: str = "cifar"
    decay_norm_and_bias: bool = True
    freeze_batchnorm: bool = False
    head_epochs_fraction: float = 0.0


RECIPES = {
    "cifar": Recipe("cifar", lr=0.1, batch_size=128, epochs=164, schedule="step",
                    weight_decay=1e-4, augment="cifar"),
    "imagenet": Recipe("imagenet", lr=0.1, batch_size=256, epochs=90, schedule="cosine",
                       weight_decay=1e-4, nesterov=True, label_smoothing=0.1,
                       warmup_epochs=5, augment="imagenet", decay_norm_and_bias=False),
    "finetune": Recipe("finetune", lr=0.01, batch_size=64, epochs=10, schedule="cosine",
                       weight_decay=1e-4, nesterov=True, augment="imagenet",
                       decay_norm_and_bias=False, freeze_batchnorm=True,
                       head_epochs_fraction=0.2),
}


def get_recipe(name):
    return RECIPES[check_choice("recipe", name, tuple(RECIPES))]


def learning_rate(recipe, base_lr, steps_per_epoch, epochs):
    """The recipe's learning-rate schedule over `epochs` epochs."""
    import keras

    total = max(1, steps_per_epoch * epochs)
    if recipe.schedule == "step":
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [max(1, total // 2), max(2, 3 * total // 4)],
            [base_lr, base_lr / 10, base_lr / 100],
        )
    warmup = min(recipe.warmup_epochs * steps_per_epoch, total // 2)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else base_lr,
        decay_steps=total - warmup,
        warmup_target=base_lr if warmup else None,
        warmup_steps=warmup,
    )


def make_optimizer(recipe, lr, steps_per_epoch, epochs):
    """SGD with momentum and (decoupled) weight decay, as the recipe says."""
    import keras

    optimizer = keras.optimizers.SGD(
        learning_rate(recipe, lr, steps_per_epoch, epochs),
        momentum=0.9,
        nesterov=recipe.nesterov,
        weight_decay=recipe.weight_decay,
    )
    if not recipe.decay_norm_and_bias:
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def scaled_lr(recipe, lr, batch_size):
    """The learning rate for `batch_size`: `lr` if given, else the recipe's,
    scaled linearly with the batch (Goyal et al. 2017)."""
    if lr is not None:
        return float(lr)
    return recipe.lr * batch_size / recipe.batch_size


def steps_per_epoch(num_images, batch_size):
    return max(1, math.ceil(num_images / batch_size))
