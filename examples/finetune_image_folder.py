"""Fine-tune an ImageNet-pretrained ResNet on a folder of images.

    python examples/finetune_image_folder.py ./photos                    # resnet50, torchvision weights
    python examples/finetune_image_folder.py ./photos --model resnet50v2 # keras.applications weights
    python examples/finetune_image_folder.py ./photos --weights timm:resnet50.a1_in1k --epochs 5
    python examples/finetune_image_folder.py ./photos --weights ./resnet50-0676ba61.pth   # offline

`./photos` holds one sub-folder per class (optionally inside `train/`,
`validation/`, `test/`). The pretrained network is built without its
classifier (`include_top=False, pooling="avg"`), the images are normalized as
its weights expect (`keras_resnets.preprocess_input`, inside the model, so
that the saved model takes raw uint8 images), and a new classifier is put on
top. Training follows the `finetune` recipe of `keras_resnets.training.recipes`:
batch norm frozen in inference mode, the new head trained alone for a fifth
of the epochs at the recipe's learning rate, then the whole network at a
tenth of it. The model is written to `saved_models/finetune-<model>.keras`.
"""

import argparse
import os

import keras

import keras_resnets
from keras_resnets.data import load_data
from keras_resnets.training.callbacks import atomic_save
from keras_resnets.training.loop import _freeze_batchnorm
from keras_resnets.training.recipes import get_recipe, make_optimizer, scaled_lr, steps_per_epoch


def finetuned_model(model, weights, image_shape, num_classes):
    """A pretrained backbone, its preprocessing and a new `num_classes` head."""
    backbone = keras_resnets.get_model(
        model, include_top=False, pooling="avg", weights=weights, input_shape=image_shape
    )
    inputs = keras.Input(image_shape, dtype="uint8", name="image")
    x = keras_resnets.preprocess_input(
        keras.ops.cast(inputs, "float32"), weights=_mode(weights, model), model=model
    )
    x = backbone(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"finetune_{model}"), backbone


def _mode(weights, model):
    # A local file does not say how its images were normalized; torchvision's
    # and timm's v1 weights use ImageNet's mean and std.
    if isinstance(weights, str) and os.path.isfile(weights):
        return "torch"
    return weights


def finetune(data, model="resnet50", weights="imagenet", image_size=224, epochs=None,
             batch_size=None, lr=None, output="saved_models", verbose="auto"):
    """Fine-tunes `model` with `weights` on `data`; returns (model, test accuracy)."""
    recipe = get_recipe("finetune")
    epochs = epochs or recipe.epochs
    batch_size = batch_size or recipe.batch_size
    bundle = load_data(data, image_size=image_size, batch_size=batch_size, augment=recipe.augment)
    net, backbone = finetuned_model(model, weights, bundle.image_shape, bundle.num_classes)
    steps = steps_per_epoch(bundle.train_size, batch_size)
    base_lr = scaled_lr(recipe, lr, batch_size)
    head_epochs = max(1, round(epochs * recipe.head_epochs_fraction))

    def fit(epochs_, lr_):
        net.compile(make_optimizer(recipe, lr_, steps, epochs_),
                    "sparse_categorical_crossentropy", metrics=["accuracy"])
        net.fit(bundle.train, validation_data=bundle.validation, epochs=epochs_, verbose=verbose,
                shuffle=False)  # load_data shuffles

    backbone.trainable = False  # 1. the new head alone
    fit(head_epochs, base_lr)
    # 2. everything at lr / 10, batch norm frozen: a non-trainable BN runs in
    # inference mode in Keras 3, so the pretrained statistics stay.
    backbone.trainable = True
    _freeze_batchnorm(backbone)
    fit(max(1, epochs - head_epochs), base_lr / 10)

    _, accuracy = net.evaluate(bundle.test, verbose=0)
    os.makedirs(output, exist_ok=True)
    atomic_save(net, os.path.join(output, f"finetune-{model}.keras"))
    return net, float(accuracy)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a folder with one sub-folder of images per class")
    parser.add_argument("--model", default="resnet50", choices=keras_resnets.list_models())
    parser.add_argument("--weights", default="imagenet",
                        help="'imagenet', a source such as 'torchvision:IMAGENET1K_V2', or a file")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--output", default="saved_models")
    args = parser.parse_args()
    _, accuracy = finetune(args.data, args.model, args.weights, args.image_size, args.epochs,
                           args.batch_size, args.lr, args.output)
    print(f"{args.model} fine-tuned on {args.data}: test accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
