"""Image helpers shared by the library and the tools: one place for each job.

* ``to_uint8`` / ``to_float``: images in [-1, 1] <-> uint8 (the numpy twin of
  ``oasis_tf.inference.to_uint8``, the same rounding);
* ``palette_for`` / ``class_names_for``: a model's colours and names: its own
  (``OASISGenerator(class_names=, palette=)``, an own data set's), else the
  dataset tables of ``oasis_tf.palettes``;
* ``colorize``: class ids -> colours; ``labels_from_colors``: a colour-coded label
  map -> class ids (nearest palette colour, far colours refused);
* ``make_grid`` and ``upscale``: image grids;
* ``read_label_png`` / ``read_label_image`` / ``list_label_pngs`` /
  ``encode_label_png``: label PNG files.

This module imports only numpy and Pillow.
"""

import io
import os

import numpy as np
from PIL import Image

from oasis_tf import palettes

# PIL modes of single-channel class-id PNGs (grey, palette indices, 16/32 bit).
LABEL_MODES = ("L", "P", "I", "I;16", "I;16B", "I;16L")
# A pixel of a colour-coded label map may be this far (Euclidean, RGB 0..255) from
# its class's palette colour (JPEG-like noise passes; a colour that is not in the
# palette is refused).
MAX_COLOR_DISTANCE = 24.0


def to_uint8(images):
    """Images in [-1, 1] -> uint8 ``round((x + 1) * 127.5)`` clipped (``np.round``
    rounds half to even, as ``inference.to_uint8``'s ``tf.round``)."""
    x = np.asarray(images, np.float32)
    return np.clip(np.round((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_float(images):
    """uint8 images -> float32 in [-1, 1] (``x / 127.5 - 1``); floats pass unchanged."""
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 127.5 - 1.0
    return arr.astype(np.float32)


def check_palette(palette, num_classes):
    """``palette`` as uint8 [num_classes, 3]; ``ValueError`` naming the problem."""
    arr = np.asarray(palette)
    if arr.shape != (int(num_classes), 3):
        raise ValueError(f"palette must be [num_classes={num_classes}, 3] RGB; got shape "
                         f"{arr.shape}")
    if arr.min() < 0 or arr.max() > 255:
        raise ValueError("palette values must be in 0..255")
    return arr.astype(np.uint8)


def _dataset(model_or_dataset):
    if model_or_dataset is None or isinstance(model_or_dataset, str):
        return model_or_dataset
    return getattr(model_or_dataset, "dataset", None)


def _own(model, key, given):
    """``given``, else the model's own ``key`` (``class_names`` / ``palette``)."""
    return given if given is not None else getattr(model, key, None)


def palette_for(num_classes, dataset=None, palette=None):
    """uint8 [num_classes, 3]: ``palette`` if given, else a generator's own colours,
    else the dataset's.

    Args:
        num_classes: class count, or a generator (its ``num_classes``, its own
            ``palette`` when it has one, else its ``dataset``'s).
        dataset: dataset name or a generator (its ``dataset``); None: the
            synthetic set's colours when the count fits, else ``voc_colormap``.
        palette: explicit colours, checked.
    """
    if hasattr(num_classes, "num_classes"):
        palette = _own(num_classes, "palette", palette)
        dataset = dataset if dataset is not None else _dataset(num_classes)
        num_classes = num_classes.num_classes
    num_classes = int(num_classes)
    if palette is not None:
        return check_palette(palette, num_classes)
    return palettes.dataset_classes(_dataset(dataset) or _guess(num_classes), num_classes)[1]


def class_names_for(num_classes, dataset=None, class_names=None):
    """``num_classes`` names: ``class_names`` if given (checked), else a generator's own
    (``num_classes`` a generator, as for ``palette_for``), else the dataset's."""
    if hasattr(num_classes, "num_classes"):
        class_names = _own(num_classes, "class_names", class_names)
        dataset = dataset if dataset is not None else _dataset(num_classes)
        num_classes = num_classes.num_classes
    num_classes = int(num_classes)
    if class_names is not None:
        names = [str(n) for n in class_names]
        if len(names) != num_classes:
            raise ValueError(f"class_names must have num_classes={num_classes} entries; got "
                             f"{len(names)}")
        return names
    return list(palettes.dataset_classes(_dataset(dataset) or _guess(num_classes),
                                         num_classes)[0])


def _guess(num_classes):
    # A model without a dataset name (an official checkpoint, an old .keras file):
    # the synthetic set when the class count is its.
    return "synthetic" if num_classes == len(palettes.SYNTHETIC) else None


def colorize(label, palette):
    """Class ids [..., H, W] -> uint8 [..., H, W, 3] (ids clipped to the palette)."""
    palette = np.asarray(palette, np.uint8)
    return palette[np.clip(np.asarray(label), 0, len(palette) - 1)]


def labels_from_colors(image, palette, class_names=None, max_distance=MAX_COLOR_DISTANCE,
                       name="label image"):
    """A colour-coded label map -> int32 class ids [H, W].

    Each pixel gets the class of the nearest palette colour (Euclidean RGB; where
    colours repeat in the palette, the lowest class id).

    Args:
        image: uint8 [H, W, 3] (an alpha channel is dropped).
        palette: uint8 [num_classes, 3].
        class_names: names for the messages (default ``class_<i>``).
        max_distance: refuse colours farther than this from every palette colour
            (None: never refuse, e.g. for anti-aliased brush strokes).
        name: what the messages call the image.

    Raises:
        ValueError: for far colours, naming each (up to 5) with its pixel count and
            its nearest classes.
    """
    rgb = np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[-1] not in (3, 4):
        raise ValueError(f"{name} must be RGB [H, W, 3]; got shape {rgb.shape}")
    rgb = rgb[..., :3].astype(np.int32)
    palette = np.asarray(palette, np.int32)
    colours, inverse, counts = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True,
                                         return_counts=True)
    dist = np.sqrt(((colours[:, None, :] - palette[None, :, :]) ** 2).sum(-1))
    nearest = np.argmin(dist, axis=1)  # first minimum: the lowest id of a repeated colour
    if max_distance is not None:
        far = np.nonzero(dist[np.arange(len(colours)), nearest] > max_distance)[0]
        if len(far):
            names = (list(class_names) if class_names is not None
                     else palettes.default_class_names(len(palette)))
            far = far[np.argsort(-counts[far])]
            parts = []
            for i in far[:5]:
                order = np.argsort(dist[i], kind="stable")[:3]
                near = ", ".join(f"{names[c]} (id {c}, {tuple(int(v) for v in palette[c])}, "
                                 f"distance {dist[i, c]:.0f})" for c in order)
                parts.append(f"colour {tuple(int(v) for v in colours[i])} on "
                             f"{int(counts[i])} pixels; nearest classes: {near}")
            more = f" (and {len(far) - 5} more colours)" if len(far) > 5 else ""
            raise ValueError(f"{name} has {len(far)} colour(s) farther than {max_distance:g} "
                             f"from every colour of the model's palette: "
                             + "; ".join(parts) + more)
    return nearest[inverse.reshape(-1)].reshape(rgb.shape[:2]).astype(np.int32)


def make_grid(rows, pad=2, fill=255, gap_after=None):
    """One uint8 image from rows of equally sized uint8 [H, W, 3] images.

    Args:
        rows: a list of rows; a row is a list of images or an array [N, H, W, 3].
        pad: pixels between images and around the grid.
        fill: the background value.
        gap_after: optional column index after which ``2 * pad`` more pixels go
            (e.g. between the inputs and the generated images).
    """
    rows = [list(r) for r in rows if len(r)]
    h, w = np.asarray(rows[0][0]).shape[:2]
    cols = max(len(r) for r in rows)
    extra = 2 * pad if gap_after is not None and cols > gap_after + 1 else 0
    grid = np.full((len(rows) * (h + pad) + pad, cols * (w + pad) + pad + extra, 3), fill,
                   np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            y = pad + i * (h + pad)
            x = pad + j * (w + pad) + (extra if gap_after is not None and j > gap_after else 0)
            grid[y:y + h, x:x + w] = image
    return grid


def upscale(image, factor):
    """Nearest-neighbour enlargement by an integer ``factor`` (<= 1: unchanged)."""
    factor = int(factor)
    if factor <= 1:
        return image
    return np.repeat(np.repeat(np.asarray(image), factor, axis=0), factor, axis=1)


def _fit(label, name, image_size, resize):
    """Class ids [H, W] at ``image_size``: unchanged, resized (nearest) or refused."""
    if image_size is None or label.shape == (int(image_size[0]), int(image_size[1])):
        return label
    if not resize:
        raise ValueError(f"label {name} is {label.shape[0]}x{label.shape[1]}; the generator "
                         f"makes {image_size[0]}x{image_size[1]} images (resize it with "
                         f"nearest neighbour: --resize_labels)")
    im = Image.fromarray(label.astype(np.int32))
    return np.asarray(im.resize((int(image_size[1]), int(image_size[0])), Image.NEAREST),
                      np.int32)


def _open(source):
    if isinstance(source, (bytes, bytearray)):
        return Image.open(io.BytesIO(source))
    return Image.open(source)


def read_label_png(path, num_classes=None, image_size=None, resize=False):
    """A single-channel PNG of class ids -> int32 [H, W].

    Args:
        path: file path, file object or PNG bytes.
        num_classes: refuse ids >= this (None: no check).
        image_size: (H, W) the map must have (None: any).
        resize: resize another size with nearest neighbour instead of refusing it.

    Raises:
        ValueError: colour PNGs, ids out of range, or (without ``resize``) a size
            other than ``image_size``.
    """
    name = path if isinstance(path, (str, os.PathLike)) else "image"
    with _open(path) as im:
        im.load()
        if im.mode not in LABEL_MODES:
            raise ValueError(f"label {name} must be a single-channel PNG of class ids "
                             f"(grey or palette); it has mode {im.mode}")
        label = _fit(np.asarray(im).astype(np.int32), name, image_size, resize)
    _check_ids(label, name, num_classes)
    return label


def _check_ids(label, name, num_classes):
    if num_classes is not None and (label.max() >= num_classes or label.min() < 0):
        bad = label.max() if label.max() >= num_classes else label.min()
        raise ValueError(f"label {name} has class id {bad}; the generator has "
                         f"{num_classes} classes (0..{num_classes - 1})")


def read_label_image(path, num_classes, image_size=None, resize=False, palette=None,
                     class_names=None, max_distance=MAX_COLOR_DISTANCE):
    """A label map from a class-id PNG *or* an image colour-coded in ``palette``.

    Single-channel images (grey, palette-indexed) are class ids; RGB(A) images are
    decoded with ``labels_from_colors``. ``resize`` uses nearest neighbour (after
    the colours are decoded, so no colour is blended).

    Args:
        path: file path, file object or image bytes.
        num_classes: the model's class count.
        image_size: (H, W) the map must have (None: any).
        resize: resize another size (nearest) instead of refusing it.
        palette: uint8 [num_classes, 3] colours (default ``palette_for(num_classes)``).
        class_names: names for the messages.
        max_distance: see ``labels_from_colors``.

    Returns:
        int32 [H, W] class ids.
    """
    name = path if isinstance(path, (str, os.PathLike)) else "image"
    with _open(path) as im:
        im.load()
        if im.mode in LABEL_MODES:
            label = np.asarray(im).astype(np.int32)
        else:
            if palette is None:
                palette = palette_for(num_classes)
            label = labels_from_colors(np.asarray(im.convert("RGB")), palette, class_names,
                                       max_distance, name=f"label {name}")
    label = _fit(label, name, image_size, resize)
    _check_ids(label, name, num_classes)
    return label


def list_label_pngs(path):
    """``[path]`` for a file, else the sorted ``*.png`` files of the folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        files = sorted(os.path.join(path, n) for n in os.listdir(path)
                       if n.lower().endswith(".png"))
        if not files:
            raise FileNotFoundError(f"no .png label maps in {path}")
        return files
    if not os.path.exists(path):
        raise FileNotFoundError(f"label map {path} does not exist")
    return [path]


def encode_label_png(label):
    """Class ids [H, W] -> single-channel PNG bytes (8-bit; 16-bit above 255)."""
    label = np.asarray(label)
    arr = label.astype(np.uint8 if label.max() < 256 else np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()
