"""Fine-tune an ImageNet-pretrained ResNet on a folder of images.

    python examples/finetune_image_folder.py ./photos                    # resnet50, torchvision weights
    python examples/finetune_image_folder.py ./photos --model resnet50v2 # keras.applications weights
    python examples/finetune_image_folder.py ./photos --weights timm:resnet50.a1_in1k --epochs 5
    python examples/finetune_image_folder.py ./photos --weights ./resnet50-0676ba61.pth   # offline

The same as `keras-resnets train --model resnet50 --weights imagenet --data
./photos`. `./photos` holds one sub-folder per class (optionally inside
`train/`, `validation/`, `test/`). `keras_resnets.train` loads the weights
into every layer but the classifier, which is new and sized for the folder's
classes, puts the normalization the weights expect inside the model (the
saved model takes raw uint8 images), and follows the `finetune` recipe: the new
head fitted alone on the frozen network's features (a linear probe), then
the whole network trained with batch norm frozen. Then the run's model classifies a few of the
images (`keras_resnets.predict`).
"""

import argparse

import keras_resnets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a folder with one sub-folder of images per class")
    parser.add_argument("--model", default="resnet50", choices=keras_resnets.list_models())
    parser.add_argument("--weights", default="imagenet",
                        help="'imagenet', a source such as 'torchvision:IMAGENET1K_V2', or a file")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--output", default="saved_models")
    args = parser.parse_args()

    _, summary = keras_resnets.train(
        args.model, data=args.data, weights=args.weights, recipe="finetune", image_size=args.image_size,
        epochs=args.epochs, batch_size=args.batch_size, output=args.output,
    )
    print(f"{args.model} fine-tuned on {args.data}: test accuracy {summary['test_accuracy']:.3f}")
    for result in keras_resnets.predict(f"{summary['run_dir']}/model.keras", args.data)[:3]:
        best = result["top"][0]
        print(f"{result['image']}: {best['class']} ({best['probability']:.2f})")


if __name__ == "__main__":
    main()
