"""Image transforms for training and evaluation, on `uint8` images.

Two recipes:

- `"cifar"`, the ResNet paper's (He et al., 2016, section 4.2): pad 4 pixels
  of zeros on each side, take a random crop of the original size, flip
  horizontally at random (`cifar_augment`). Evaluation uses the images as
  they are.
- `"imagenet"`, the standard one (torchvision's `RandomResizedCrop` +
  `RandomHorizontalFlip` for training, `Resize(size / 0.875)` +
  `CenterCrop(size)` for evaluation): `imagenet_augment` and
  `imagenet_eval_transform`.

Every function takes and returns `uint8` images, either one image
`[height, width, 3]` or a batch `[batch, height, width, 3]`, and works inside
`tf.data` pipelines (graph mode). The random ones are stateless: they take a
`seed` (a Python int or an integer tensor of shape `[2]`) and give the same
output for the same seed, so pipelines are reproducible. A batch gets one
independent draw per image, derived from `seed`.

`flip=False` turns the horizontal flip off: `load_data` does so for the
`digits` data set, because a mirrored digit is not the same digit (or not a
digit at all).
"""

import math
import numbers

import tensorflow as tf

from keras_resnets.utils.validation import UsageError

AUGMENTATIONS = (None, "cifar", "imagenet")
"""The values `load_data(augment=...)` accepts."""

IMAGENET_CROP_FRACTION = 0.875
"""The evaluation centre crop keeps this fraction of the resized side (224 of 256)."""


def _seed(seed):
    """A stateless-op seed: shape [2], int64."""
    if isinstance(seed, bool):
        raise UsageError(
            f"`seed` must be an integer or a shape-[2] integer tensor; received seed={seed!r}."
        )
    if isinstance(seed, numbers.Integral):
        return tf.constant([int(seed), 0], dtype=tf.int64)
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or not seed.shape.is_compatible_with([2]):
        raise UsageError(
            "`seed` must be an integer or a shape-[2] integer tensor; "
            f"received seed={seed!r}."
        )
    return tf.cast(seed, tf.int64)


def _to_uint8(image):
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def _check_image(image, name="image"):
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        raise UsageError(f"`{name}` must be uint8; received dtype {image.dtype.name}.")
    if image.shape.rank not in (3, 4):
        raise UsageError(
            f"`{name}` must be [height, width, channels] or [batch, height, width, "
            f"channels]; received shape {image.shape}."
        )
    return image


def _per_image(fn, images, seed, output_shape):
    """Applies `fn(image, seed)` to one image, or to each image of a batch with
    its own seed derived from `seed`."""
    seed = _seed(seed)
    if images.shape.rank == 3:
        return fn(images, seed)
    seeds = tf.random.stateless_uniform(
        [tf.shape(images)[0], 2], seed=seed, minval=None, maxval=None, dtype=tf.int64
    )
    return tf.map_fn(
        lambda args: fn(args[0], args[1]),
        (images, seeds),
        fn_output_signature=tf.TensorSpec(output_shape, tf.uint8),
    )


def resize_image(image, size):
    """Resizes `uint8` images to `size` x `size` (bilinear, antialiased).

    The aspect ratio is not kept. Images already of that size come back
    unchanged.

    Args:
        image: a `uint8` image `[h, w, c]` or batch `[n, h, w, c]`.
        size: the output side in pixels.

    Returns:
        A `uint8` tensor `[size, size, c]` (or `[n, size, size, c]`).

    Example:

    >>> resize_image(tf.zeros([8, 8, 3], tf.uint8), 32).shape
    TensorShape([32, 32, 3])
    """
    image = _check_image(image)
    return _to_uint8(tf.image.resize(image, [size, size], method="bilinear", antialias=True))


def _shorter_side_shape(height, width, side):
    """torchvision's `Resize(side)` output size: the shorter side becomes
    `side`, the longer one `int(side * long / short)`."""
    height = tf.cast(height, tf.float64)
    width = tf.cast(width, tf.float64)
    short = tf.minimum(height, width)
    side = tf.constant(side, tf.float64)
    new_h = tf.where(height <= width, side, tf.floor(side * height / short))
    new_w = tf.where(width <= height, side, tf.floor(side * width / short))
    return tf.cast(new_h, tf.int32), tf.cast(new_w, tf.int32)


def resize_shorter_side(image, side):
    """Resizes one `uint8` image so that its shorter side is `side` pixels,
    keeping the aspect ratio (torchvision's `Resize(side)`).

    Args:
        image: a `uint8` image `[h, w, c]`.
        side: the new length of the shorter side.

    Returns:
        A `uint8` image whose shorter side is `side`.

    Example:

    >>> resize_shorter_side(tf.zeros([100, 200, 3], tf.uint8), 50).shape
    TensorShape([50, 100, 3])
    """
    image = _check_image(image)
    if image.shape.rank != 3:
        raise UsageError(f"`image` must be one image [h, w, c]; received shape {image.shape}.")
    shape = tf.shape(image)
    new_h, new_w = _shorter_side_shape(shape[0], shape[1], side)
    resized = _to_uint8(
        tf.image.resize(image, tf.stack([new_h, new_w]), method="bilinear", antialias=True)
    )
    return tf.ensure_shape(resized, [None, None, image.shape[-1]])


def cifar_augment(image, seed, padding=4, flip=True):
    """The ResNet paper's CIFAR augmentation.

    Pads `padding` pixels of zeros on each side, crops a random window of the
    original size out of the padded image, then flips it horizontally with
    probability 1/2. The output is the input shifted by (dy, dx), each in
    `[-padding, padding]`, with zeros where it moved in from outside, and
    possibly mirrored.

    Args:
        image: a `uint8` image `[h, w, c]` or batch `[n, h, w, c]`.
        seed: an int, or an integer tensor of shape `[2]`; same seed, same output.
        padding: the zero padding on each side, in pixels.
        flip: whether to flip at random. Pass `False` for data whose meaning
            changes in a mirror (digits, text).

    Returns:
        A `uint8` tensor of the input's shape.

    Example:

    >>> images = tf.zeros([4, 32, 32, 3], tf.uint8)
    >>> cifar_augment(images, seed=0).shape
    TensorShape([4, 32, 32, 3])
    """
    image = _check_image(image)
    padding = int(padding)

    def one(img, s):
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(s, 2))
        shape = tf.shape(img)
        padded = tf.pad(img, [[padding, padding], [padding, padding], [0, 0]])
        offset = tf.random.stateless_uniform(
            [2], seed=crop_seed, minval=0, maxval=2 * padding + 1, dtype=tf.int32
        )
        out = tf.slice(padded, tf.concat([offset, [0]], 0), shape)
        if flip:
            out = tf.image.stateless_random_flip_left_right(out, flip_seed)
        return tf.ensure_shape(out, img.shape)

    return _per_image(one, image, seed, image.shape[1:])


def imagenet_augment(image, size, seed, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip=True):
    """The standard ImageNet training augmentation.

    A random resized crop, like torchvision's `RandomResizedCrop`: a window
    covering a random fraction `scale` of the image area with a random aspect
    ratio in `ratio` (the whole image if no such window is found in 10 tries),
    resized to `size` x `size`; then a random horizontal flip.

    Args:
        image: a `uint8` image `[h, w, c]` or batch `[n, h, w, c]`; images of
            any size (one image at a time inside `tf.data` for varying sizes).
        size: the output side in pixels.
        seed: an int, or an integer tensor of shape `[2]`; same seed, same output.
        scale: the range of the crop's area, as a fraction of the image's.
        ratio: the range of the crop's aspect ratio (width / height).
        flip: whether to flip at random.

    Returns:
        A `uint8` tensor `[size, size, c]` (or `[n, size, size, c]`).

    Example:

    >>> image = tf.zeros([300, 400, 3], tf.uint8)
    >>> imagenet_augment(image, 224, seed=0).shape
    TensorShape([224, 224, 3])
    """
    image = _check_image(image)
    channels = image.shape[-1]

    def one(img, s):
        box_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(s, 2))
        begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(img),
            bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
            seed=box_seed,
            min_object_covered=0.0,
            aspect_ratio_range=tuple(float(r) for r in ratio),
            area_range=tuple(float(a) for a in scale),
            max_attempts=10,
            use_image_if_no_bounding_boxes=True,
        )
        crop = tf.slice(img, begin, crop_size)
        out = _to_uint8(tf.image.resize(crop, [size, size], method="bilinear", antialias=True))
        if flip:
            out = tf.image.stateless_random_flip_left_right(out, flip_seed)
        return tf.ensure_shape(out, [size, size, channels])

    return _per_image(one, image, seed, [size, size, channels])


def imagenet_eval_transform(image, size, crop_fraction=IMAGENET_CROP_FRACTION):
    """The standard ImageNet evaluation transform (deterministic).

    Resizes the shorter side to `floor(size / crop_fraction)` pixels (256 for
    224), keeping the aspect ratio, then takes the central `size` x `size`
    crop, as torchvision's `Resize(256)` + `CenterCrop(224)`.

    Args:
        image: a `uint8` image `[h, w, c]` or batch `[n, h, w, c]`.
        size: the output side in pixels.
        crop_fraction: the fraction of the resized shorter side kept, in (0, 1].

    Returns:
        A `uint8` tensor `[size, size, c]` (or `[n, size, size, c]`).

    Example:

    >>> image = tf.zeros([375, 500, 3], tf.uint8)
    >>> imagenet_eval_transform(image, 224).shape
    TensorShape([224, 224, 3])
    """
    image = _check_image(image)
    if not 0.0 < crop_fraction <= 1.0:
        raise UsageError(
            f"`crop_fraction` must be in (0, 1]; received crop_fraction={crop_fraction!r}."
        )
    side = resize_side(size, crop_fraction)
    channels = image.shape[-1]

    def one(img, _seed_unused=None):
        img = resize_shorter_side(img, side)
        shape = tf.shape(img)
        top = tf.cast(tf.round(tf.cast(shape[0] - size, tf.float32) / 2.0), tf.int32)
        left = tf.cast(tf.round(tf.cast(shape[1] - size, tf.float32) / 2.0), tf.int32)
        out = tf.slice(img, tf.stack([top, left, 0]), [size, size, -1])
        return tf.ensure_shape(out, [size, size, channels])

    if image.shape.rank == 3:
        return one(image)
    return tf.map_fn(
        one, image, fn_output_signature=tf.TensorSpec([size, size, channels], tf.uint8)
    )


def resize_side(size, crop_fraction=IMAGENET_CROP_FRACTION):
    """The shorter side the ImageNet evaluation transform resizes to:
    `floor(size / crop_fraction)` (256 for 224, 36 for 32)."""
    return int(math.floor(size / crop_fraction + 1e-9))
