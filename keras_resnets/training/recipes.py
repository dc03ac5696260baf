"""The training recipes: optimizer, schedule, regularization, each from its source.

Every recipe trains with `keras_resnets.training.optimizers.L2SGD`: SGD with
momentum 0.9 and the L2 weight decay of the papers and of PyTorch's
`torch.optim.SGD`, added to the gradient before the momentum (Keras's own
`SGD(weight_decay=...)` decays decoupled from the gradient, about ten times
more weakly at momentum 0.9). The learning rate is given at the recipe's
batch size and scaled linearly with the batch (Goyal et al. 2017).

- "cifar": He et al. 2015, "Deep Residual Learning for Image Recognition",
  section 4.2 (CIFAR-10): SGD, momentum 0.9, weight decay 1e-4, mini-batch
  128, learning rate 0.1 divided by 10 at 32k and 48k iterations and stopped
  at 64k: on CIFAR-10's 50k training images 391 iterations an epoch, so about
  164 epochs, divided at epochs 82 and 123 (the milestones are kept as those
  fractions of training, 1/2 and 3/4, whatever the number of epochs); 4-pixel
  zero padding, random 32x32 crop and horizontal flip.
- "imagenet": torchvision's reference recipe for its ResNets
  (`references/classification/README.md`, "ResNet": `train.py --model
  resnet50` with its defaults, the recipe of the `IMAGENET1K_V1` weights),
  which is the ResNet paper's (section 3.4) with a fixed schedule: SGD,
  momentum 0.9, weight decay 1e-4 on every parameter, batch 256 (32 on each
  of 8 GPUs), learning rate 0.1 divided by 10 every 30 epochs, 90 epochs;
  random-resized crop 224 and flip, evaluation on the centre 224 of images
  resized to 256.
- A network trained from random weights ("cifar", "imagenet") starts with
  its classifier at zero (`zero_init_head`; Zhang et al. 2019, "Fixup
  Initialization", rule 1: "initialize the classification layer ... to 0"):
  its first predictions are uniform and the first loss is ln(classes),
  instead of up to 2.7x that (measured) from a random classifier over the summed
  residual features of a v1 network, whose first steps at the full rate
  can leave it stuck for epochs. On the digits (`keras-resnets train`,
  ResNet-20, 20 epochs, 5 seeds), the test accuracy ranged 0.944-1.000 on
  TensorFlow and 0.775-1.000 on JAX with Keras's random classifier, and
  0.981-0.994 on TensorFlow and 0.978-0.986 on JAX with it at zero
  (docs/backends.md).
- A bottleneck network trained from random weights ("cifar", "imagenet")
  also starts each residual branch at zero (`zero_init_residual`: the last
  batch norm's scale, or a pre-activation block's last convolution; Goyal
  et al. 2017, "Accurate, Large Minibatch SGD", section 5.1, and timm's
  `zero_init_last`), so that the network starts as its shortcuts. At the
  recipes' rate of 0.1 such networks diverged on small data without it: on
  the digits at 32 px (20 epochs, one seed, TensorFlow) ResNeXt-50 32x4d
  reached a test accuracy of 0.32 and ResNet-50 0.24 (first-epoch losses of
  47 and 22), and 0.96-0.98 and 0.975 with it; a linear warm-up of 1 or 3 epochs
  did not help ResNeXt-50 (0.31, 0.23). Basic-block networks keep their
  branches as initialized: ResNet-20 fell from 0.99 to 0.64 with it.
- "finetune": for a pretrained backbone with a new head: "linear probing,
  then fine-tuning" (LP-FT; Kumar et al. 2022, "Fine-Tuning can Distort
  Pretrained Features and Underperform Out-of-Distribution", ICLR): the new
  head is first fitted alone on the frozen backbone's features of the
  training images, unaugmented (a logistic regression: `linear_probe`; it
  costs one forward pass over the training images, no epoch), so that
  fine-tuning starts from a head that already classifies instead of sending
  a random head's gradients through the pretrained features; then the whole
  network trains for every epoch, batch norm frozen in inference mode (as
  torchvision's and Keras's transfer-learning guides do); learning rate
  0.002 at batch 64 (a fine-tuning rate: on the digits, 0.01 undid the
  probe's head within an epoch; docs/transfer.md), Nesterov momentum, cosine decay, weight decay 1e-4 except
  on batch norm and biases; random-resized crops on images larger than 64
  px, the CIFAR pad-crop-flip on smaller ones.
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
    schedule: str  # "step" (/10 at each of `milestones`) or "cosine" (warm-up, then cosine)
    weight_decay: float  # L2, added to the gradient (see `L2SGD`)
    milestones: tuple = (0.5, 0.75)  # "step": fractions of training where the rate drops 10x
    nesterov: bool = False
    label_smoothing: float = 0.0
    warmup_epochs: int = 0
    augment: str = "cifar"  # `load_data`'s: "cifar", "imagenet" or "auto" (by the image size)
    decay_norm_and_bias: bool = True
    freeze_batchnorm: bool = False
    linear_probe: bool = False  # fit the new head on frozen features first (`finetune`)
    zero_init_head: bool = False  # from random weights, the classifier starts at zero (Fixup)
    zero_init_residual: bool = False  # from random weights, bottleneck residual branches start at zero


RECIPES = {
    # He et al. 2015, section 4.2: /10 at 32k and 48k of 64k iterations.
    "cifar": Recipe("cifar", lr=0.1, batch_size=128, epochs=164, schedule="step",
                    weight_decay=1e-4, milestones=(32 / 64, 48 / 64), augment="cifar",
                    zero_init_head=True, zero_init_residual=True),
    # torchvision references/classification: --lr 0.1 --lr-step-size 30 --epochs 90 --wd 1e-4.
    "imagenet": Recipe("imagenet", lr=0.1, batch_size=256, epochs=90, schedule="step",
                       weight_decay=1e-4, milestones=(30 / 90, 60 / 90), augment="imagenet",
                       zero_init_head=True, zero_init_residual=True),
    "finetune": Recipe("finetune", lr=0.002, batch_size=64, epochs=10, schedule="cosine",
                       weight_decay=1e-4, nesterov=True, augment="auto",
                       decay_norm_and_bias=False, freeze_batchnorm=True,
                       linear_probe=True),
}


def get_recipe(name):
    return RECIPES[check_choice("recipe", name, tuple(RECIPES))]


def learning_rate(recipe, base_lr, steps_per_epoch, epochs):
    """The recipe's learning-rate schedule over `epochs` epochs."""
    import keras

    total = max(1, steps_per_epoch * epochs)
    if recipe.schedule == "step":
        # Step k (counted from 0, as `optimizer.iterations`) is the first at
        # the lower rate when k = fraction * total (as torch's MultiStepLR
        # after k scheduler steps); `PiecewiseConstantDecay` lowers the rate
        # for steps > boundary. Boundaries strictly increase, also in short runs.
        boundaries = []
        for fraction in recipe.milestones:
            boundaries.append(max(int(fraction * total + 0.5) - 1, boundaries[-1] + 1 if boundaries else 0))
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            boundaries, [base_lr / 10**i for i in range(len(boundaries) + 1)]
        )
    warmup = min(recipe.warmup_epochs * steps_per_epoch, total // 2)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else base_lr,
        decay_steps=total - warmup,
        warmup_target=base_lr if warmup else None,
        warmup_steps=warmup,
    )


NORM_AND_BIAS = ("gamma", "beta", "bias")
"""The variable names of batch norm's scale and shift and of the biases."""


def zero_classifier(net):
    """Sets the classifier's ("predictions") kernel and bias to zero: the
    start of `zero_init_head` recipes; its first predictions are uniform."""
    import numpy as np

    head = net.get_layer("predictions")
    for weight in head.weights:
        weight.assign(np.zeros(weight.shape, weight.dtype))


def make_optimizer(recipe, lr, steps_per_epoch, epochs):
    """The recipe's optimizer: `L2SGD` (momentum 0.9, L2 decay added to the
    gradient) over its learning-rate schedule."""
    from keras_resnets.training.optimizers import L2SGD

    return L2SGD(
        learning_rate(recipe, lr, steps_per_epoch, epochs),
        momentum=0.9,
        nesterov=recipe.nesterov,
        l2=recipe.weight_decay,
        l2_exclude=() if recipe.decay_norm_and_bias else NORM_AND_BIAS,
    )


def scaled_lr(recipe, lr, batch_size):
    """The learning rate for `batch_size`: `lr` if given, else the recipe's,
    scaled linearly with the batch (Goyal et al. 2017)."""
    if lr is not None:
        return float(lr)
    return recipe.lr * batch_size / recipe.batch_size


def steps_per_epoch(num_images, batch_size):
    return max(1, math.ceil(num_images / batch_size))
