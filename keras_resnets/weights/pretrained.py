"""`weights=`: named sources, downloads with pinned hashes, local files.

A source is a `WeightSource`: where a file is, how it is pinned, which
keras_resnets model and build arguments fit it, how it loads and how its
images are preprocessed. `SOURCES` holds the known ones (built from the data
of `keras_resnets.weights.sources`); a `WeightSource` of your own (a mirror,
your own checkpoint) can be passed as `weights=` too.

Downloads go through `keras.utils.get_file` into the Keras cache
(`$KERAS_HOME/models`, default `~/.keras/models`, where keras.applications
puts its files too). The file is checked against its pinned hash; a mismatch
deletes it and raises. Without a connection, the error names the URL, the
file and the folder to place it in.
"""

import dataclasses
import hashlib
import os
import re

from keras_resnets.utils.validation import DownloadError, UsageError
from keras_resnets.weights import sources as data
from keras_resnets.weights.files import checkpoint_format, read_checkpoint

__all__ = ["WeightSource", "SOURCES", "list_sources", "get_source", "fetch", "load_weights",
           "CheckpointFile", "read_weights_file", "is_source_name"]

_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.[a-z]+$")


@dataclasses.dataclass(frozen=True)
class WeightSource:
    """A downloadable weights file for one keras_resnets model.

    Attributes:
        name: what `weights=` says, e.g. "torchvision:IMAGENET1K_V2".
        model: the registry name of the model it fits, e.g. "resnet50".
        url: where the file is.
        file_hash: hex digest the file must have (`hash_algorithm`); a
            SHA-256 may be a prefix of at least 6 digits (torchvision's
            convention); `None`: no hash is known, so it is not downloaded.
        hash_algorithm: "sha256" or "md5".
        layout: how the checkpoint names weights: "torchvision", "timm",
            "timm_resnetv2" or "keras" (see `keras_resnets.weights.layouts`).
        build: build arguments the model needs, e.g. `{"layout": "keras"}`.
        preprocessing: "torch", "caffe" or "tf" (see `preprocess_input`).
        classes: classes of the checkpoint's classifier.
        notop_url: a smaller file without the classifier, used with
            `include_top=False` (keras.applications has them).
        notop_hash: its digest.

    Example:

    >>> mirror = WeightSource(  # doctest: +SKIP
    ...     "mirror:resnet50", "resnet50",
    ...     "https://example.org/resnet50-0676ba61.pth", "0676ba61")
    >>> keras_resnets.ResNet50(weights=mirror)  # doctest: +SKIP
    """

    name: str
    model: str
    url: str
    file_hash: str = None
    hash_algorithm: str = "sha256"
    layout: str = "torchvision"
    build: dict = dataclasses.field(default_factory=dict)
    preprocessing: str = "torch"
    classes: int = 1000
    notop_url: str = None
    notop_hash: str = None

    def file(self, include_top=True):
        """(url, hash) of the file to fetch."""
        if not include_top and self.notop_url:
            return self.notop_url, self.notop_hash
        return self.url, self.file_hash


def _hash_from_name(url):
    match = _HASH_IN_NAME.search(url)
    return match.group(1) if match else None


def _table():
    table = {}

    def add(source):
        table[(source.model, source.name)] = source

    for (model, tag), fname in data.TORCHVISION_FILES.items():
        url = data._TORCHVISION + fname
        add(WeightSource(f"torchvision:{tag}", model, url, _hash_from_name(url)))
    for model, (top, notop) in data.KERAS_MD5.items():
        v2 = model.endswith("v2")
        add(WeightSource(
            "keras:imagenet", model, data.KERAS_URL.format(model=model, suffix=""), top,
            hash_algorithm="md5", layout="keras", build={"layout": "keras"},
            preprocessing="tf" if v2 else "caffe",
            notop_url=data.KERAS_URL.format(model=model, suffix="_notop"), notop_hash=notop,
        ))
    for name, url in data.TIMM_URLS.items():
        architecture = name.split(".")[0]
        v2 = name.startswith("resnetv2")
        targets = [data.TIMM_ARCHITECTURES[architecture]]
        if architecture in data.TIMM_ALSO:
            targets.append(data.TIMM_ALSO[architecture])
        for model, build in targets:
            add(WeightSource(
                f"timm:{name}", model, url,
                None if url.endswith(".safetensors") else _hash_from_name(url),
                layout="timm_resnetv2" if v2 else "timm", build=build,
                preprocessing="tf" if name in data.TIMM_TF_PREPROCESSING else "torch",
            ))
    return table


SOURCES = _table()
"""{(model, source name): WeightSource} of every known download."""


def list_sources(model=None):
    """Names of the known weight sources, of one model or all.

    Example:

    >>> list_sources("resnet50")[:2]  # doctest: +SKIP
    ['torchvision:IMAGENET1K_V1', 'torchvision:IMAGENET1K_V2']
    """
    return [name for (m, name) in SOURCES if model in (None, m)]


def get_source(weights, model):
    """The `WeightSource` of `weights` ("imagenet" or a source name) for `model`."""
    if weights == "imagenet":
        if model not in data.IMAGENET_DEFAULT:
            others = list_sources(model)
            raise UsageError(
                f"weights='imagenet': no ImageNet weights for {model!r} fit its default "
                f"layout. Allowed: weights='imagenet' for {sorted(data.IMAGENET_DEFAULT)}"
                + (f"; for {model!r}: {others}" if others else "") + "."
            )
        weights = data.IMAGENET_DEFAULT[model]
    if (model, weights) not in SOURCES:
        others = list_sources(model)
        elsewhere = sorted(m for (m, name) in SOURCES if name == weights)
        raise UsageError(
            f"weights={weights!r} has no file for model {model!r}"
            + (f" (it has for {elsewhere})" if elsewhere else "")
            + f". Allowed for {model!r}: None, "
            + ("'imagenet', " if model in data.IMAGENET_DEFAULT else "")
            + (f"{others}, " if others else "")
            + "or the path of a weights file."
        )
    return SOURCES[(model, weights)]


def cache_folder(cache_dir=None):
    """Where downloads go: `cache_dir`/models, default the Keras cache."""
    base = cache_dir or os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras")
    return os.path.join(base, "models")


def _digest(path, algorithm):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _matches(path, expected, algorithm):
    return _digest(path, algorithm).startswith(expected.lower())


def fetch(source, include_top=True, cache_dir=None):
    """The local path of `source`'s file: from the cache, or downloaded.

    Args:
        source: a `WeightSource`.
        include_top: fetch the file with the classifier (or, where the
            source has one, the smaller file without).
        cache_dir: the cache; defaults to `$KERAS_HOME` or `~/.keras`
            (files go into its `models/` folder).

    Returns:
        The path of the verified file.

    Raises:
        ValueError: the source has no pinned hash, or the downloaded file's
            hash differs (the file is deleted).
        DownloadError: a `ConnectionError`: the download failed (offline,
            server down, truncated); the message says which file to place where.

    Example:

    >>> fetch(get_source("imagenet", "resnet50"))  # doctest: +SKIP
    '/home/me/.keras/models/resnet50-0676ba61.pth'
    """
    url, expected = source.file(include_top)
    fname = os.path.basename(url.split("?")[0])
    folder = cache_folder(cache_dir)
    target = os.path.join(folder, fname)
    path_hint = f"pass the file's path: weights='/path/to/{fname}'"
    if expected is None:
        raise UsageError(
            f"weights={source.name!r}: no hash of {url} is known to keras_resnets, so it "
            f"is not downloaded unverified. Download it yourself and {path_hint}."
        )
    if os.path.exists(target):
        if _matches(target, expected, source.hash_algorithm):
            return target
        os.remove(target)  # a stale or partial file: fetch it again
    import keras

    # get_file falls back to /tmp/.keras when the folder is not writable yet.
    os.makedirs(folder, exist_ok=True)
    try:
        path = keras.utils.get_file(fname, url, cache_dir=os.path.dirname(folder),
                                    cache_subdir="models")
    except Exception as e:  # get_file raises a bare Exception on URL errors
        if os.path.exists(target):
            os.remove(target)
        raise DownloadError(
            f"weights={source.name!r}: could not download {url} ({e}). Offline? "
            f"Download it elsewhere and place it as {target} (in the folder {folder}), "
            f"or {path_hint}."
        ) from None
    if not _matches(path, expected, source.hash_algorithm):
        actual = _digest(path, source.hash_algorithm)
        os.remove(path)
        raise UsageError(
            f"weights={source.name!r}: the file downloaded from {url} has "
            f"{source.hash_algorithm} {actual}, not the pinned {expected}; it was "
            "deleted. The server sent another file (or a corrupted one)."
        )
    return path


def load_keras_weights(model, path):
    """`model.load_weights(path)` (a Keras `.weights.h5` or `.keras` file),
    all or nothing: a file that does not fit raises a ValueError saying so
    and leaves the model's weights as they were."""
    # Keras assigns variable by variable and raises at the first misfit:
    # put the old values back so a failed load changes nothing.
    before = model.get_weights()
    try:
        model.load_weights(path)
    except Exception as e:
        model.set_weights(before)
        raise UsageError(
            f"weights={os.fspath(path)!r}: this Keras weights file does not fit "
            f"model {model.name!r} (saved by another architecture, or with other "
            f"`classes`?): {str(e).split('Target variable')[0].strip()}"
        ) from None
    return model


@dataclasses.dataclass(frozen=True)
class CheckpointFile:
    """A weights file, read once.

    Attributes:
        path: the file.
        state: `{key: array}` of a checkpoint (`.h5` of keras.applications,
            `.pth`, `.safetensors`); None for a Keras `.weights.h5`, which
            Keras reads itself.
        layout: how the keys name the weights ("torchvision"/"timm",
            "timm_resnetv2", "keras"; `keras_resnets.weights.layouts`), or None.
        build: the build arguments of the model that fits
            (`layouts.build_arguments`): `{"layout", "stem", "shortcut"}`.
        preprocessing: how its images were most likely normalized
            ("torch", "caffe", "tf"; `layouts.preprocessing_of`), or None.
    """

    path: str
    state: dict = dataclasses.field(default=None, repr=False)  # (errors print the path, not the arrays)
    layout: str = None
    build: dict = dataclasses.field(default_factory=dict)
    preprocessing: str = None

    @property
    def classes(self):
        """Classes of the checkpoint's classifier, or None without one."""
        from keras_resnets.weights.layouts import get_layout, head_keys

        if self.layout is None:
            return None
        for key in sorted(head_keys(get_layout(self.layout))):
            if key in self.state and self.state[key].ndim >= 2:
                # PyTorch (out, in[, 1, 1]); Keras (in, out).
                return int(self.state[key].shape[0 if get_layout(self.layout).torch else -1])
        return None


def read_weights_file(path):
    """A `CheckpointFile`: the file read, its layout told by its keys.

    Raises:
        ValueError: an unknown file type, a truncated or corrupt file, or
            keys of no known ResNet checkpoint.
    """
    from keras_resnets.weights.layouts import build_arguments, detect_layout, preprocessing_of

    if checkpoint_format(path) == "keras":
        return CheckpointFile(os.fspath(path))
    state = read_checkpoint(path)
    layout = detect_layout(state)
    if layout is None:
        raise UsageError(
            f"weights={os.fspath(path)!r}: its keys ({list(state)[:5]} ...) are not "
            "those of a torchvision, timm or keras.applications ResNet checkpoint."
        )
    return CheckpointFile(os.fspath(path), state, layout, build_arguments(state, layout),
                          preprocessing_of(state, layout))


PRETRAINED = ("imagenet",)
"""The `weights=` names that stand for a source of each model."""


def is_source_name(weights):
    """Whether `weights` names a source ("imagenet", "torchvision:...",
    "timm:...", "keras:imagenet") rather than a file."""
    return isinstance(weights, str) and (weights in PRETRAINED or ":" in weights) and not os.path.isfile(weights)


def _load_file(model, path, layout=None, classifier=True):
    from keras_resnets.weights.layouts import assign_weights

    checkpoint = path if isinstance(path, CheckpointFile) else read_weights_file(path)
    if checkpoint.state is None:
        return load_keras_weights(model, checkpoint.path)
    return assign_weights(model, checkpoint.state, layout or checkpoint.layout, classifier=classifier)


def load_weights(model, weights, include_top=True, cache_dir=None, classifier=True):
    """Loads `weights` onto `model`: a `WeightSource` (fetched), a file or a
    `CheckpointFile`.

    A file is read by its type (`.weights.h5`: `model.load_weights`; `.h5`:
    keras.applications; `.pth`/`.pt`/`.bin`, `.safetensors`: PyTorch
    state dicts) and its layout told by its keys.

    Args:
        model: a keras_resnets model.
        weights: a `WeightSource`, a path or a `CheckpointFile`.
        include_top: a source's file with (True) or without its classifier,
            where it has both.
        cache_dir: the download cache (see `fetch`).
        classifier: False: every weight but the classifier's (a new head;
            not for Keras `.weights.h5` files). See `layouts.assign_weights`.

    Example:

    >>> load_weights(model, "resnet50-0676ba61.pth")  # doctest: +SKIP
    """
    if isinstance(weights, WeightSource):
        path = fetch(weights, include_top=include_top and classifier, cache_dir=cache_dir)
        return _load_file(model, path, weights.layout, classifier=classifier)
    return _load_file(model, weights, classifier=classifier)
