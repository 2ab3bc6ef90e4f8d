"""Where an own data set's photos and masks are, which belong together, which split.

    found = find_layout("data/my_set")
    found.description            # "split folders train/, val/ (photos images/, masks labels/)"
    pairs = split_pairs(found, "val", val_fraction=0.1)

Shapes (``root``: the folder given):

* split folders: ``root/{train,val}/<photos>/`` with ``<masks>/`` (either may be
  missing: that split is then empty);
* one folder: ``root/<photos>/`` with ``<masks>/``; the val split is held out by
  ``val_fraction``;
* VOC: ``root/JPEGImages/`` with ``root/SegmentationClass/``, splits from
  ``root/ImageSets/Segmentation/{train,val}.txt`` (held out when those are absent).

``<photos>`` is ``images/``; ``<masks>`` is ``labels/``, ``masks/`` or
``annotations/``. Files pair by their path below those folders and their stem; a
mask's stem may carry a suffix (``x.jpg`` <-> ``x_mask.png``, ``x_label.png``,
``x_gtFine_labelIds.png``; Cityscapes photos ``x_leftImg8bit.png``). Masks are
PNG files. Layout problems (two mask folders, two masks for one photo, a JPEG
mask, a VOC list entry without its files) are collected, one line each naming
the file, in ``FoundLayout.problems``; unpaired files are listed by
``SplitFiles.unpaired``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Dict, List, Optional, Tuple

PHOTO_DIRS = ("images",)
MASK_DIRS = ("labels", "masks", "annotations")
# Longest first: a stem is stripped of the first suffix it ends with.
MASK_SUFFIXES = ("_gtFine_labelIds", "_gtFine_trainIds", "_labelIds", "_trainIds",
                 "_labels", "_label", "_masks", "_mask")
PHOTO_SUFFIXES = ("_leftImg8bit",)
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
MASK_EXTENSIONS = (".png",)
# Image files that are no lossless PNG: refused as masks (their class ids would be wrong).
_LOSSY_OR_OTHER = (".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
DEFAULT_VAL_FRACTION = 0.1
SPLITS = ("train", "val")
_VOC = ("JPEGImages", "SegmentationClass")
_VOC_LISTS = os.path.join("ImageSets", "Segmentation")


@dataclasses.dataclass
class SplitFiles:
    """The photos and masks of one split (``name``: "train", "val", or "all" for a
    data set whose val split is held out), keyed by their pairing key."""

    name: str
    image_dir: str
    mask_dir: str
    images: Dict[str, str]
    masks: Dict[str, str]

    def pairs(self, keys=None) -> List[Tuple[str, str]]:
        """(photo, mask) paths of the paired keys (all, or those in ``keys``), sorted."""
        both = self.images.keys() & self.masks.keys()
        if keys is not None:
            both &= set(keys)
        return [(self.images[k], self.masks[k]) for k in sorted(both)]

    def unpaired(self) -> Tuple[List[str], List[str]]:
        """(photos without a mask, masks without a photo), paths sorted."""
        return (sorted(self.images[k] for k in self.images.keys() - self.masks.keys()),
                sorted(self.masks[k] for k in self.masks.keys() - self.images.keys()))


@dataclasses.dataclass
class FoundLayout:
    """What `find_layout` found.

    Attributes:
        root: the data set's folder.
        shape: "split folders", "one folder" or "VOC" (None: nothing found).
        description: one line for people.
        parts: the `SplitFiles` found (a held-out data set has one, "all").
        problems: one line per problem, naming the file.
        notes: remarks that are no problem (VOC photos without a mask).
    """

    root: str
    shape: Optional[str]
    description: str
    parts: List[SplitFiles]
    problems: List[str]
    notes: List[str] = dataclasses.field(default_factory=list)

    @property
    def held_out(self) -> bool:
        """The val split is drawn by ``val_fraction`` (no split folders or lists)."""
        return [p.name for p in self.parts] == ["all"]

    def part(self, name) -> Optional[SplitFiles]:
        return next((p for p in self.parts if p.name == name), None)


def _rel(path, root):
    return os.path.relpath(path, root)


def _strip(stem, suffixes):
    for suffix in suffixes:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def _scan(folder, root, kind, problems) -> Dict[str, str]:
    """{key: path} of the photos (``kind`` "photo") or masks below ``folder``; the key
    is the path below ``folder`` without the extension."""
    out: Dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            stem, ext = os.path.splitext(name)
            path = os.path.join(dirpath, name)
            if name.startswith(".") or ext.lower() not in (
                    PHOTO_EXTENSIONS if kind == "photo" else MASK_EXTENSIONS):
                if kind == "mask" and ext.lower() in _LOSSY_OR_OTHER:
                    problems.append(f"{_rel(path, root)}: a {ext.lower()[1:].upper()} mask; "
                                    f"masks must be PNG files (lossless: a JPEG's class ids "
                                    f"would be wrong)")
                continue
            key = os.path.normpath(os.path.join(os.path.relpath(dirpath, folder), stem))
            if key in out:
                problems.append(f"{_rel(path, root)}: a second {kind} named like "
                                f"{_rel(out[key], root)}; keep one")
                continue
            out[key] = path
    return out


def _match(images, masks, root, problems) -> Dict[str, str]:
    """The masks keyed by their photo's key: the same stem, else the stem without a
    mask suffix (``x_mask`` -> ``x``), matched also against photo stems without a
    photo suffix (``x_leftImg8bit`` -> ``x``). Unmatched masks keep their own key."""
    alias = {_strip(k, PHOTO_SUFFIXES): k for k in images}
    out: Dict[str, str] = {}
    for key, path in masks.items():
        for candidate in (key, _strip(key, MASK_SUFFIXES)):
            if candidate in images or candidate in alias:
                key = candidate if candidate in images else alias[candidate]
                break
        if key in out:
            problems.append(f"{_rel(path, root)}: a second mask for "
                            f"{_rel(images.get(key, out[key]), root)} (also "
                            f"{_rel(out[key], root)}); keep one")
            continue
        out[key] = path
    return out


def _mask_dir(folder, root, problems) -> Optional[str]:
    found = [d for d in MASK_DIRS if os.path.isdir(os.path.join(folder, d))]
    if len(found) > 1:
        problems.append(f"{_rel(folder, root)}: mask folders {', '.join(found)}; keep one "
                        f"(the masks are read from {found[0]}/)")
    return os.path.join(folder, found[0]) if found else None


def _photo_mask_dirs(folder, root, problems):
    photos = next((os.path.join(folder, d) for d in PHOTO_DIRS
                   if os.path.isdir(os.path.join(folder, d))), None)
    masks = _mask_dir(folder, root, problems) if photos else None
    return (photos, masks) if photos and masks else None


def _part(name, dirs, root, problems):
    image_dir, mask_dir = dirs
    images = _scan(image_dir, root, "photo", problems)
    masks = _match(images, _scan(mask_dir, root, "mask", problems), root, problems)
    return SplitFiles(name, image_dir, mask_dir, images, masks)


def _dir_names(dirs):
    return f"photos {os.path.basename(dirs[0])}/, masks {os.path.basename(dirs[1])}/"


def _voc(root, problems, notes) -> FoundLayout:
    image_dir, mask_dir = (os.path.join(root, d) for d in _VOC)
    all_files = _part("all", (image_dir, mask_dir), root, problems)
    lists = {s: os.path.join(root, _VOC_LISTS, f"{s}.txt") for s in SPLITS}
    lists = {s: p for s, p in lists.items() if os.path.isfile(p)}
    images = {k: p for k, p in all_files.images.items() if k in all_files.masks}
    skipped = len(all_files.images) - len(images)
    if not lists:
        if skipped:
            notes.append(f"{skipped} photo(s) in JPEGImages/ without a mask in "
                         f"SegmentationClass/ are not used (VOC holds detection images too)")
        all_files.images = images
        return FoundLayout(root, "VOC", "VOC (JPEGImages/, SegmentationClass/; no "
                           f"{_VOC_LISTS}/ lists: val held out)", [all_files], problems, notes)
    parts, listed = [], set()
    for split, path in lists.items():
        with open(path, encoding="utf-8") as f:
            keys = [line.split()[0] for line in f if line.strip()]
        listed.update(keys)
        for key in keys:
            for what, files, folder in (("photo", all_files.images, "JPEGImages"),
                                        ("mask", all_files.masks, "SegmentationClass")):
                if key not in files:
                    problems.append(f"{_rel(path, root)}: {key} has no {what} in {folder}/")
        parts.append(SplitFiles(split, image_dir, mask_dir,
                                {k: all_files.images[k] for k in keys if k in all_files.images},
                                {k: all_files.masks[k] for k in keys if k in all_files.masks}))
    unlisted = len(all_files.masks.keys() - listed)
    if unlisted:
        notes.append(f"{unlisted} mask(s) in SegmentationClass/ are in no split list and "
                     f"not used")
    return FoundLayout(root, "VOC", f"VOC (JPEGImages/, SegmentationClass/, splits from "
                       f"{', '.join(_rel(p, root) for p in lists.values())})", parts,
                       problems, notes)


def find_layout(root) -> FoundLayout:
    """Finds the shape of the data set in ``root`` (see the module docstring).

    Args:
        root: the data set's folder.

    Returns:
        A `FoundLayout`; when no shape fits, ``shape`` is None and ``problems`` says
        what was looked for.
    """
    root = os.fspath(root)
    problems: List[str] = []
    notes: List[str] = []
    if not os.path.isdir(root):
        return FoundLayout(root, None, "", [], [f"{root}: no such folder"])
    if all(os.path.isdir(os.path.join(root, d)) for d in _VOC):
        return _voc(root, problems, notes)
    splits = {s: _photo_mask_dirs(os.path.join(root, s), root, problems) for s in SPLITS
              if os.path.isdir(os.path.join(root, s))}
    found = {s: d for s, d in splits.items() if d}
    if found:
        parts = [_part(s, d, root, problems) for s, d in found.items()]
        return FoundLayout(root, "split folders", f"split folders "
                           f"{', '.join(s + '/' for s in found)} "
                           f"({_dir_names(next(iter(found.values())))})", parts, problems, notes)
    dirs = _photo_mask_dirs(root, root, problems)
    if dirs:
        return FoundLayout(root, "one folder", f"one folder ({_dir_names(dirs)}; val held "
                           f"out)", [_part("all", dirs, root, problems)], problems, notes)
    problems.append(
        f"{root}: no data set found. Expected photos in images/ and masks in "
        f"{', '.join(d + '/' for d in MASK_DIRS[:-1])} or {MASK_DIRS[-1]}/, either in the "
        f"folder itself or in train/ (and val/) below it, or the VOC folders "
        f"{' and '.join(d + '/' for d in _VOC)}")
    return FoundLayout(root, None, "", [], problems, notes)


def held_out(keys, val_fraction) -> set:
    """The keys held out as the val split: those whose SHA-1 (as a number in [0, 1))
    is below ``val_fraction``, so a file keeps its split when others are added; with
    at least two keys and a fraction > 0, at least one is held out and one is kept."""
    keys = sorted(keys)
    if not keys or val_fraction <= 0:
        return set()
    score = {k: int(hashlib.sha1(k.encode("utf-8")).hexdigest()[:12], 16) / 16 ** 12
             for k in keys}
    val = {k for k in keys if score[k] < val_fraction}
    ranked = sorted(keys, key=score.get)
    if not val and len(keys) >= 2:
        val = {ranked[0]}
    if len(val) == len(keys) and len(keys) >= 2:
        val.discard(ranked[-1])
    return val


def split_pairs(found: FoundLayout, split: str, val_fraction=DEFAULT_VAL_FRACTION):
    """(photo, mask) pairs of ``split`` ("train" or "val"), sorted; a held-out data
    set's split is drawn by `held_out`. None when the data set has no such split."""
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {list(SPLITS)}. Received: split={split!r}")
    if not found.held_out:
        part = found.part(split)
        return None if part is None else part.pairs()
    part = found.parts[0]
    paired = part.images.keys() & part.masks.keys()
    val = held_out(paired, val_fraction)
    return part.pairs(val if split == "val" else paired - val)
