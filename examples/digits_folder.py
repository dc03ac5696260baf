"""Write scikit-learn's handwritten digits as an image folder of PNG files.

    python examples/digits_folder.py digits04 --digits 0-4           # digits04/0/*.png ... digits04/4/*.png
    python examples/digits_folder.py digits59 --digits 5-9 --size 32

One sub-folder per digit, the layout `keras-resnets train --data FOLDER`,
`keras.utils.image_dataset_from_directory` and `keras-resnets predict FOLDER`
read. Each 8x8 digit is scaled to 0..255, resized to `--size` pixels
(bilinear, antialiased) and stored as an RGB PNG: the images `load_data("digits")`
makes, as files (no download; the digits ship with scikit-learn). Two
folders of different digits stand in for a pretraining and a fine-tuning
data set (`examples/transfer_digits.py`).
"""

import argparse
import os


def write_digit_folder(root, digits=range(10), size=32, limit=None):
    """Writes the digits `digits` as `root/<digit>/<index>.png`; returns the
    number of files written.

    Args:
        root: the folder to create (its class sub-folders must not exist).
        digits: which digits (0..9) to write.
        size: the side of the PNG images, in pixels.
        limit: at most this many images per digit (all, about 180, by default).
    """
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits

    from keras_resnets.data.augment import resize_image

    data = load_digits()
    images = np.round(data.images * (255.0 / 16.0)).astype("uint8")[..., None]
    written = 0
    for digit in digits:
        folder = os.path.join(root, str(digit))
        os.makedirs(folder)
        index = np.flatnonzero(data.target == digit)[:limit]
        for i in index:
            image = tf.image.grayscale_to_rgb(resize_image(images[i], size))
            tf.io.write_file(os.path.join(folder, f"{i:04d}.png"), tf.io.encode_png(image))
            written += 1
    return written


def _digit_range(text):
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--digits", type=_digit_range, default=range(10), help="e.g. 0-4 (default: 0-9)")
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    count = write_digit_folder(args.folder, args.digits, args.size)
    print(f"wrote {count} images of the digits {args.digits.start}-{args.digits.stop - 1} into {args.folder}")


if __name__ == "__main__":
    main()
