"""Reproduce the ResNet paper's CIFAR-10 experiment (He et al. 2015, section 4.2).

    python examples/train_cifar10.py --model resnet20      # or resnet32, resnet44, resnet56, resnet110

The recipe is the paper's: SGD with momentum 0.9, L2 weight decay 1e-4 added
to the gradient (as the paper's Torch code and PyTorch's SGD do, not Keras's
decoupled decay), batch 128, learning rate 0.1 divided by 10 at 32k and 48k
of 64k iterations (epochs 82 and 123 of 164), 4-pixel padding, random 32x32
crops and horizontal flips; option A shortcuts. The test errors the paper
reports (Table 6), to compare with:

    ResNet-20  8.75%    ResNet-32  7.51%    ResNet-44  7.17%
    ResNet-56  6.97%    ResNet-110 6.43%

The paper trains on 45k images and validates on 5k; here the validation split
is the last 10% of the training set, as `keras-resnets train` does. CIFAR-10
comes from TensorFlow Datasets (downloaded once, about 160 MB).
"""

import argparse

import keras_resnets

PAPER_TEST_ERROR = {"resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97, "resnet110": 6.43}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20", choices=sorted(PAPER_TEST_ERROR))
    parser.add_argument("--epochs", type=int, default=164)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    _, summary = keras_resnets.train(
        model=args.model, data="tfds:cifar10", recipe="cifar", epochs=args.epochs,
        precision=args.precision,
    )
    error = 100 * (1 - summary["test_accuracy"])
    print(f"{args.model}: test error {error:.2f}% (paper: {PAPER_TEST_ERROR[args.model]}%)")


if __name__ == "__main__":
    main()
