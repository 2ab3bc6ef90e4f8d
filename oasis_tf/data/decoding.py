"""Decoding and checking one (image, label) pair of files: the pipeline's and the TFDS builders'.

* `decode_pair`: both files decoded with PIL and checked: an undecodable file,
  a label file whose bytes are not a PNG (whatever its name), a label that is
  not single-channel (unless the mapping decodes colours), image and label of
  different sizes, or a value that is no class raise ValueError naming the
  file(s) (`BadFileError`, with ``path``, for the first two: the pipeline can
  skip those with ``skip_bad_files``).
* `load_resized_pair`: the same, then the resize as the official code
  (images bicubic, labels nearest neighbour), from paths or (TFDS records) the
  files' bytes.

The stored values become class ids through a `LabelMapping`
(`oasis_tf.data.label_mapping`; default: ids as stored, checked < ``num_classes``):
COCO-Stuff's is id + 1, 255 -> 0, an own data set's what its config says.
"""

from __future__ import annotations

import io
from typing import Tuple

import numpy as np
from PIL import Image

from oasis_tf.data.label_mapping import LabelMapping


class BadFileError(ValueError):
    """A file that cannot be decoded, or whose bytes are not what its name says (`path` names it)."""

    def __init__(self, message, path):
        super().__init__(message)
        self.path = path


def _open(src):
    """A path or (for TFDS records) the file's bytes -> something `Image.open` takes."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(src))
    return src


def _read_image_pil(path, src=None):
    """The image as a loaded RGB `PIL.Image` (`src`: the bytes, default read `path`)."""
    try:
        with Image.open(_open(path if src is None else src)) as im:
            im.load()
            return im.convert("RGB") if im.mode != "RGB" else im.copy()
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ...
        raise BadFileError(f"cannot decode image file {path}: {type(e).__name__}: {e}",
                       path) from None


def _read_image(path: str, src=None) -> np.ndarray:
    return np.asarray(_read_image_pil(path, src), dtype=np.uint8)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIGNATURES = ((b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"), (b"RIFF", "WebP"),
               (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def check_png(path, src=None):
    """Refuses a label file whose bytes are not a PNG (e.g. a JPEG saved as .png: lossy,
    its class ids would be wrong), naming the file and what its bytes look like."""
    if src is None:
        try:
            with open(path, "rb") as f:
                head = f.read(len(PNG_SIGNATURE))
        except OSError as e:
            raise BadFileError(f"cannot read label file {path}: {e}", path) from None
    else:
        head = bytes(src[:len(PNG_SIGNATURE)])
    if head != PNG_SIGNATURE:
        kind = next((name for magic, name in _SIGNATURES if head.startswith(magic)), None)
        what = f"a {kind} file" if kind else ("empty" if not head else f"starts with {head!r}")
        raise BadFileError(f"label file {path} is not a PNG ({what}); label maps must be lossless PNG "
                           "files of class ids", path)


def _read_label(path: str, src=None, colors=False) -> np.ndarray:
    """The stored values: int32 [H, W]; with ``colors`` an RGB(A) file gives uint8
    [H, W, 3]."""
    check_png(path, src)
    try:
        with Image.open(_open(path if src is None else src)) as im:
            im.load()
            mode = im.mode
            arr = np.asarray(im)
    except Exception as e:
        raise BadFileError(f"cannot decode label file {path}: {type(e).__name__}: {e}",
                       path) from None
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if colors and mode in ("RGB", "RGBA"):
        return arr[..., :3]
    if arr.ndim != 2:
        raise ValueError(f"label file {path} must be a single-channel image of class ids "
                         f"(grey or palette PNG); it has mode {mode} and shape {arr.shape}")
    return arr.astype(np.int32)


def _mapping(num_classes, label_mapping):
    if label_mapping is None:
        return LabelMapping(num_classes)
    if label_mapping.num_classes != int(num_classes):
        raise ValueError(f"the label mapping is for {label_mapping.num_classes} classes, "
                         f"not num_classes={num_classes}")
    return label_mapping


def _check_pair(image_shape, label, image_path, label_path, mapping):
    if tuple(image_shape) != label.shape[:2]:
        raise ValueError(f"image and label sizes differ: image {image_path} is "
                         f"{image_shape[0]}x{image_shape[1]} (HxW), label {label_path} is "
                         f"{label.shape[0]}x{label.shape[1]}")
    return mapping.apply(label, label_path)


def decode_pair(image_path: str, label_path: str, num_classes: int,
                label_mapping: LabelMapping = None) -> Tuple[np.ndarray, np.ndarray]:
    """Decodes and checks one pair eagerly: (uint8 [H, W, 3], int32 [H, W] class ids).

    Args:
        image_path, label_path: the files.
        num_classes: class count, including the don't-care class 0.
        label_mapping: stored values -> class ids (default: ids as stored).

    Raises `ValueError` naming the file(s) for an undecodable file, a label
    value that is no class, or image and label of different sizes.
    """
    mapping = _mapping(num_classes, label_mapping)
    image = _read_image(image_path)
    label = _read_label(label_path, colors=mapping.colors is not None)
    label = _check_pair(image.shape[:2], label, image_path, label_path, mapping)
    return image, label


def load_resized_pair(image_path, label_path, num_classes, size=None, label_mapping=None,
                      image_bytes=None, label_bytes=None):
    """`decode_pair` followed by the resize to `size` (H, W), both with PIL as the
    official code: images bicubic (PIL's antialiased BICUBIC), labels nearest
    neighbour (only values of the source). `image_bytes` / `label_bytes`: the
    files' contents (TFDS records); the paths then only name them in errors.
    Returns (uint8 [h, w, 3], int32 [h, w])."""
    mapping = _mapping(num_classes, label_mapping)
    image = _read_image_pil(image_path, image_bytes)
    label = _read_label(label_path, label_bytes, colors=mapping.colors is not None)
    label = _check_pair((image.height, image.width), label, image_path, label_path, mapping)
    if size is not None and tuple(size) != label.shape:
        h, w = int(size[0]), int(size[1])
        image = image.resize((w, h), Image.BICUBIC)
        if label.max(initial=0) < 256:
            label = np.asarray(Image.fromarray(label.astype(np.uint8), "L").resize(
                (w, h), Image.NEAREST), np.int32)
        else:
            label = np.asarray(Image.fromarray(label, "I").resize((w, h), Image.NEAREST),
                               np.int32)
    return np.asarray(image, np.uint8), label
