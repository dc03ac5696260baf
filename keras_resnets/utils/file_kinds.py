"""What a model or weights file holds, read from its bytes, and whether it is whole.

The command line checks a file it is given before it starts any work, so
that a missing, empty, truncated or wrong file is one clear error instead of
a traceback from deep inside Keras, h5py or torch after minutes of loading.

- `kind_by_name(path)`: the kind its name promises (`.keras`, `.h5`, ...).
- `kind_by_content(path)`: the kind its first bytes show.
- `damage(path, kind)`: why a file of that kind is not whole, or None.

Kinds: "keras" (`model.save`: a zip of config.json and model.weights.h5),
"hdf5" (`.h5`, `.weights.h5`, `.hdf5`), "torch" (`.pth`, `.pt`, `.bin`:
torch.save's zip, or an older pickle), "safetensors" and "tflite" (a
flatbuffer with the TFL3 identifier, verified by the LiteRT interpreter).

Example:

>>> kind_by_content("saved_models/resnet20-digits/model.keras")  # doctest: +SKIP
'keras'
"""

import json
import os
import struct
import zipfile

KINDS = {
    "keras": ("a Keras model file (model.save)", (".keras",)),
    "hdf5": ("an HDF5 weights file (model.save_weights)", (".h5", ".hdf5")),
    "torch": ("a PyTorch checkpoint", (".pth", ".pt", ".bin")),
    "safetensors": ("a safetensors file", (".safetensors",)),
    "tflite": ("a TFLite model", (".tflite",)),
}
"""kind -> (what it is, in words; the file name endings that promise it)."""

KERAS_MEMBERS = ("config.json", "model.weights.h5")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
TFLITE_IDENTIFIER = b"TFL3"


def kind_by_name(path):
    """The kind `path`'s ending promises, or None."""
    name = os.fspath(path).lower()
    for kind, (_, endings) in KINDS.items():
        if name.endswith(endings):
            return kind
    return None


def kind_by_content(path):
    """The kind `path`'s first bytes show, or None (not one of `KINDS`)."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(HDF5_SIGNATURE):
        return "hdf5"
    if head[4:8] == TFLITE_IDENTIFIER:
        return "tflite"
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            # A zip cut short: the kind its name promises, if a zip is that kind.
            return kind_by_name(path) if kind_by_name(path) in ("keras", "torch") else None
        if all(member in names for member in KERAS_MEMBERS):
            return "keras"
        if any(name.endswith("data.pkl") for name in names):
            return "torch"
        return None
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "torch"  # torch.save's format before zip files: a pickle
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"  # an 8-byte header length, then its JSON
    return None


def damage(path, kind):
    """Why `path`, a file of `kind`, is not whole (truncated, corrupt or
    incomplete), or None when it reads as whole."""
    return _CHECKS[kind](path)


def _keras_damage(path):
    try:
        with zipfile.ZipFile(path) as archive:
            missing = [m for m in KERAS_MEMBERS if m not in archive.namelist()]
            if missing:
                return f"the archive has no {', '.join(missing)}"
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        return f"not a readable zip archive ({e})"
    if bad is not None:
        return f"{bad} in the archive is corrupt (CRC mismatch)"
    return None


def _hdf5_damage(path):
    import h5py

    try:
        with h5py.File(path, "r"):
            pass
    except OSError as e:
        return f"h5py cannot open it ({str(e).splitlines()[0]})"
    return None


def _torch_damage(path):
    with open(path, "rb") as f:
        if f.read(2) != b"PK":
            return None  # an older pickle: only torch can tell
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        return f"not a readable zip archive ({e})"
    return None if bad is None else f"{bad} in the archive is corrupt (CRC mismatch)"


def _safetensors_damage(path):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            return "shorter than its 8-byte header length"
        (length,) = struct.unpack("<Q", raw)
        if 8 + length > size:
            return f"its header says {length} bytes of JSON, the file ends before"
        try:
            header = json.loads(f.read(length))
        except ValueError as e:
            return f"its header is not JSON ({e})"
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
    if 8 + length + max(ends, default=0) > size:
        return f"truncated: its tensors need {8 + length + max(ends)} bytes, the file has {size}"
    return None


def _tflite_damage(path):
    # LiteRT verifies the whole flatbuffer when it loads it (no tensors
    # allocated, no TensorFlow imported).
    from ai_edge_litert.interpreter import Interpreter

    try:
        Interpreter(model_path=os.fspath(path))
    except (ValueError, RuntimeError) as e:
        return f"the LiteRT interpreter refused it ({str(e).strip().splitlines()[0]})"
    return None


_CHECKS = {
    "keras": _keras_damage,
    "hdf5": _hdf5_damage,
    "torch": _torch_damage,
    "safetensors": _safetensors_damage,
    "tflite": _tflite_damage,
}


IMAGE_FILE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                         ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico")
"""The raster formats Pillow (behind `keras.utils.load_img`) reads that a
folder of images is searched for (any case); an image file named on its own
may have another ending Pillow reads."""


def is_exported_model(path):
    """Whether `path` names a model file `keras-resnets export` writes that
    `predict` reads: a `.tflite` file or a SavedModel folder."""
    path = os.fspath(path)
    return path.lower().endswith(".tflite") or os.path.isfile(os.path.join(path, "saved_model.pb"))


def image_files(folder):
    """The image files under `folder` (`IMAGE_FILE_EXTENSIONS`), recursively,
    sorted; hidden files and folders left out."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, name) for name in sorted(files)
                     if not name.startswith(".") and name.lower().endswith(IMAGE_FILE_EXTENSIONS))
    return found
