"""File listings of the official dataset layouts: (image_path, label_path) pairs.

One function per layout; each takes the dataset root and a split ("train" or
"val", mapped to the layout's own folder names) and returns the pairs sorted by
name. Pairing is checked up front: files without a partner are listed by name
(the first few plus a count) in a `ValueError`, and an empty split raises
naming the folders that were searched.

* ADE20K (ADEChallengeData2016): `images/{training,validation}/*.jpg` (or
  `.png`) with `annotations/{training,validation}/*.png`, paired by stem.
* Cityscapes: `leftImg8bit/{train,val}/<city>/<x>_leftImg8bit.png` with
  `gtFine/{train,val}/<city>/<x>_gtFine_labelIds.png`.
* COCO-Stuff: `{train,val}_img/*.jpg` with `{train,val}_label/*.png`, paired by
  stem (the label mapping id+1, 255->0 is applied by the pipeline).
* folder (own data sets): `<root>/<split>/images/*` with `<root>/<split>/labels/*.png`
  (or `masks/`, `annotations/`), the same without split folders (val held out by
  `val_fraction`), or the VOC folders; paired by stem, masks may carry a suffix
  (`x_mask.png`). The shapes are found by `oasis_tf.data.discovery`.
"""

from __future__ import annotations

import os
from typing import Dict, List, Sequence, Tuple

from oasis_tf.data import discovery
from oasis_tf.data.layouts import get_layout

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
LABEL_EXTENSIONS = (".png",)
_MAX_LISTED = 5

Pairs = List[Tuple[str, str]]


def _split_name(split: str, names: Dict[str, str], layout: str) -> str:
    if split not in names:
        raise ValueError(f"{layout}: `split` must be one of {sorted(names)}. "
                         f"Received: split={split!r}")
    return names[split]


def _list(folder: str, extensions: Sequence[str]) -> List[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder)
                  if n.lower().endswith(tuple(extensions)) and not n.startswith("."))


def _describe(names: List[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown + (f" (and {more} more)" if more > 0 else "")


def _pair(images: Dict[str, str], labels: Dict[str, str], layout: str,
          image_dir: str, label_dir: str) -> Pairs:
    """Pairs two {key: path} maps; raises listing files without a partner."""
    if not images and not labels:
        raise ValueError(f"{layout}: no images found in {image_dir} and no labels in "
                         f"{label_dir}")
    no_label = sorted(os.path.relpath(images[k], image_dir) for k in images.keys() - labels.keys())
    no_image = sorted(os.path.relpath(labels[k], label_dir) for k in labels.keys() - images.keys())
    if no_label or no_image:
        parts = []
        if no_label:
            parts.append(f"{len(no_label)} image(s) in {image_dir} without a label: "
                         f"{_describe(no_label)}")
        if no_image:
            parts.append(f"{len(no_image)} label(s) in {label_dir} without an image: "
                         f"{_describe(no_image)}")
        raise ValueError(f"{layout}: unpaired files. " + "; ".join(parts))
    return [(images[k], labels[k]) for k in sorted(images)]


def _by_stem(folder: str, extensions: Sequence[str], layout: str, what: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for name in _list(folder, extensions):
        stem = os.path.splitext(name)[0]
        if stem in out:
            raise ValueError(f"{layout}: two {what} files with the stem {stem!r} in {folder}: "
                             f"{os.path.basename(out[stem])}, {name}")
        out[stem] = os.path.join(folder, name)
    return out


def _stem_pairs(image_dir, label_dir, layout) -> Pairs:
    images = _by_stem(image_dir, IMAGE_EXTENSIONS, layout, "image")
    labels = _by_stem(label_dir, LABEL_EXTENSIONS, layout, "label")
    return _pair(images, labels, layout, image_dir, label_dir)


def ade20k_pairs(root, split="train") -> Pairs:
    """ADE20K (also the synthetic data set): pairs of `split` ("train"/"val")."""
    sub = _split_name(split, {"train": "training", "val": "validation"}, "ade20k")
    root = os.fspath(root)
    return _stem_pairs(os.path.join(root, "images", sub), os.path.join(root, "annotations", sub),
                       "ade20k")


def coco_stuff_pairs(root, split="train") -> Pairs:
    """COCO-Stuff: `{split}_img/*.jpg` with `{split}_label/*.png`."""
    sub = _split_name(split, {"train": "train", "val": "val"}, "coco_stuff")
    root = os.fspath(root)
    return _stem_pairs(os.path.join(root, f"{sub}_img"), os.path.join(root, f"{sub}_label"),
                       "coco_stuff")


def folder_pairs(root, split="train", val_fraction=None) -> Pairs:
    """Own data sets: `<root>/<split>/images/*` with `<root>/<split>/labels/*.png`, or
    another shape of `oasis_tf.data.discovery` (without split folders the val split
    is held out: `val_fraction`, default `discovery.DEFAULT_VAL_FRACTION`)."""
    sub = _split_name(split, {"train": "train", "val": "val"}, "folder")
    root = os.fspath(root)
    found = discovery.find_layout(root)
    if found.problems:
        more = len(found.problems) - 1
        raise ValueError(f"folder: {found.problems[0]}" + (
            f" (and {more} more problem(s): `python tools/inspect_data.py {root}` lists "
            f"them all)" if more else ""))
    part = found.parts[0] if found.held_out else found.part(sub)
    if part is None:
        raise ValueError(f"folder: no images found in {os.path.join(root, sub, 'images')} "
                         f"and no labels in {os.path.join(root, sub, 'labels')}")
    _pair(part.images, part.masks, "folder", part.image_dir, part.mask_dir)  # unpaired files
    if val_fraction is None:
        val_fraction = discovery.DEFAULT_VAL_FRACTION
    return discovery.split_pairs(found, sub, val_fraction)


_CS_IMAGE = "_leftImg8bit.png"
_CS_LABEL = "_gtFine_labelIds.png"


def cityscapes_pairs(root, split="train") -> Pairs:
    """Cityscapes: `leftImg8bit/<split>/<city>/*_leftImg8bit.png` with
    `gtFine/<split>/<city>/*_gtFine_labelIds.png`."""
    sub = _split_name(split, {"train": "train", "val": "val"}, "cityscapes")
    root = os.fspath(root)
    image_dir = os.path.join(root, "leftImg8bit", sub)
    label_dir = os.path.join(root, "gtFine", sub)

    def collect(base, suffix):
        out = {}
        if not os.path.isdir(base):
            return out
        for city in sorted(os.listdir(base)):
            folder = os.path.join(base, city)
            if not os.path.isdir(folder):
                continue
            for name in sorted(os.listdir(folder)):
                if name.endswith(suffix):
                    out[(city, name[: -len(suffix)])] = os.path.join(folder, name)
        return out

    return _pair(collect(image_dir, _CS_IMAGE), collect(label_dir, _CS_LABEL), "cityscapes",
                 image_dir, label_dir)


def list_pairs(layout, root, split="train", val_fraction=None) -> Pairs:
    """The (image, label) pairs of `split` for any layout in `LAYOUTS` (its reader is
    named in `oasis_tf.data.layouts`; `val_fraction`: the folder layout's)."""
    reader = globals()[get_layout(layout).reader]
    if layout == "folder":
        return reader(root, split, val_fraction=val_fraction)
    return reader(root, split)
