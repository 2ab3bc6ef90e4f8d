"""The one label-mapping step: what a mask file stores -> class ids.

    mapping = LabelMapping(22, ignore_label=255, shift=True)      # VOC: 255 -> 0, ids + 1
    classes = mapping.apply(mask, "SegmentationClass/2007_000032.png")

* Ids (grey or palette-indexed masks) go through one lookup table, stored id ->
  class. Without an ignore label the ids are the classes (ADE20K, Cityscapes, the
  folder layout as it always was). The ignore label becomes the don't-care class 0;
  with ``shift`` the other ids move up by one (COCO-Stuff, VOC, Cityscapes trainIds:
  the official ``contain_dontcare_label``).
* Colours (RGB masks) are looked up exactly in ``colors`` (one per class).

A value that is no class is refused naming the file, the value and its pixel count.
The file pipeline, the TFDS builders and the inspector (`oasis_tf.data.inspection`)
all map with this class.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np

_MAX_LISTED = 5


def pack_colors(rgb) -> np.ndarray:
    """uint8 [..., 3] colours -> int32 [...] keys ``r * 65536 + g * 256 + b``."""
    rgb = np.asarray(rgb)[..., :3].astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def color_text(key) -> str:
    """A packed colour key as ``(r, g, b)``."""
    key = int(key)
    return f"({key >> 16}, {(key >> 8) & 255}, {key & 255})"


def list_values(values, counts, text=str) -> str:
    """``"7 on 120 pixels, 9 on 3 pixels"``: values by pixel count, the first five."""
    order = np.argsort(-np.asarray(counts), kind="stable")
    parts = [f"{text(values[i])} on {int(counts[i])} pixels" for i in order[:_MAX_LISTED]]
    more = len(order) - _MAX_LISTED
    return ", ".join(parts) + (f" (and {more} more)" if more > 0 else "")


@dataclasses.dataclass(frozen=True)
class LabelMapping:
    """Stored mask values -> class ids.

    Args:
        num_classes: class count, including the don't-care class 0.
        ignore_label: the stored id of unlabelled pixels; it becomes class 0 (None:
            none).
        shift: the other stored ids move up by one (needs ``ignore_label``).
        colors: for RGB masks, the colour of each class (``num_classes`` [r, g, b],
            all different); None: RGB masks are refused.
    """

    num_classes: int
    ignore_label: Optional[int] = None
    shift: bool = False
    colors: Optional[Tuple[Tuple[int, int, int], ...]] = None

    def __post_init__(self):
        n = int(self.num_classes)
        object.__setattr__(self, "num_classes", n)
        if not 1 <= n <= 65536:
            raise ValueError(f"`num_classes` must be in [1, 65536]. Received: {n}")
        if self.shift and self.ignore_label is None:
            raise ValueError("`shift` moves the ids up by one to make room for the ignore "
                             "label's class 0: give `ignore_label`")
        if self.colors is not None:
            colors = tuple(tuple(int(v) for v in c) for c in self.colors)
            object.__setattr__(self, "colors", colors)
            if len(colors) != n:
                raise ValueError(f"`colors` must have one colour per class "
                                 f"(num_classes={n}). Received: {len(colors)}")
            keys = pack_colors(np.array(colors, np.int32).reshape(-1, 3))
            if len(np.unique(keys)) != n:
                raise ValueError("`colors` must all differ (a colour decodes to one class)")

    @classmethod
    def from_options(cls, num_classes, ignore_label=None, zero_is_dontcare=False,
                     colors=None) -> "LabelMapping":
        """The mapping of an own data set's options (``data.ignore_label``,
        ``data.zero_is_dontcare``; ``colors``: ``model.palette`` for RGB masks, which
        are decoded by colour alone). The ids shift by one unless there is no ignore
        label, it is 0 or ``zero_is_dontcare`` (0 already is the don't-care class)."""
        if colors is not None:
            return cls(num_classes, colors=colors)
        shift = ignore_label is not None and ignore_label != 0 and not zero_is_dontcare
        return cls(num_classes, ignore_label, shift)

    @classmethod
    def for_layout(cls, layout, num_classes) -> "LabelMapping":
        """The mapping of a layout of `oasis_tf.data.layouts` (``label_mapping``
        "coco_stuff": 255 -> 0, ids + 1; the others: ids as stored)."""
        from oasis_tf.data.layouts import get_layout

        if get_layout(layout).label_mapping == "coco_stuff":
            return cls(num_classes, ignore_label=255, shift=True)
        return cls(num_classes)

    @property
    def identity(self) -> bool:
        """Ids are the classes (no ignore label, no colours)."""
        return self.ignore_label is None and self.colors is None

    def describe(self) -> str:
        """One line: what the mapping does."""
        if self.colors is not None:
            return f"RGB colours -> {self.num_classes} classes (exact match)"
        if self.ignore_label is None:
            return f"ids as stored (0..{self.num_classes - 1})"
        if self.shift:
            return (f"ignore label {self.ignore_label} -> don't-care class 0, the other "
                    f"ids + 1")
        return f"ignore label {self.ignore_label} -> class 0, the other ids as stored"

    def lookup(self) -> np.ndarray:
        """int32 [K]: the class of each stored id (-1: not a class)."""
        stored = self.num_classes - 1 if self.shift else self.num_classes
        size = stored if self.ignore_label is None else max(stored, self.ignore_label + 1)
        table = np.full(size, -1, np.int32)
        table[:stored] = np.arange(stored) + (1 if self.shift else 0)
        if self.ignore_label is not None:
            table[self.ignore_label] = 0
        return table

    def apply(self, label, path="label") -> np.ndarray:
        """Class ids int32 [H, W] of a mask's stored values.

        Args:
            label: ids [H, W] (int), or RGB(A) uint8 [H, W, 3 or 4] when ``colors``.
            path: the file, for the messages.

        Raises:
            ValueError: a value or colour that is no class, an RGB mask without
                ``colors`` (naming ``path``).
        """
        label = np.asarray(label)
        if label.ndim == 3:
            if self.colors is None:
                raise ValueError(f"label file {path} is an RGB image; expected a single-channel "
                                 f"image of class ids (grey or palette PNG)")
            return self._from_colors(label, path)
        if self.colors is not None:
            raise ValueError(f"label file {path} is a single-channel image; this data set's "
                             f"masks are RGB colours (data.label_encoding: colors)")
        if self.identity:
            return self._check_ids(label, path)
        table = self.lookup()
        if label.size and (label.min() < 0 or label.max() >= len(table)
                           or (table[label] < 0).any()):
            bad = (label < 0) | (label >= len(table))
            bad |= ~bad & (table[np.clip(label, 0, len(table) - 1)] < 0)
            values, counts = np.unique(label[bad], return_counts=True)
            raise ValueError(f"label file {path} has class id(s) that are no class: "
                             f"{list_values(values, counts)} (num_classes={self.num_classes}; "
                             f"{self.describe()})")
        return table[label] if label.size else label.astype(np.int32)

    def _check_ids(self, label, path):
        label = label.astype(np.int32)
        if label.size:
            high = int(label.max())
            if high >= self.num_classes:
                raise ValueError(f"label file {path} has class id {high} >= num_classes="
                                 f"{self.num_classes} (ids must be in [0, {self.num_classes}))")
        return label

    def _from_colors(self, rgb, path):
        keys = pack_colors(rgb)
        table = pack_colors(np.array(self.colors, np.int32))
        order = np.argsort(table)
        found, inverse = np.unique(keys, return_inverse=True)
        where = np.clip(np.searchsorted(table[order], found), 0, len(table) - 1)
        known = table[order][where] == found
        if not known.all():
            counts = np.bincount(inverse.reshape(-1), minlength=len(found))
            raise ValueError(f"label file {path} has colour(s) that are no class: "
                             f"{list_values(found[~known], counts[~known], color_text)}")
        return order[where][inverse.reshape(keys.shape)].astype(np.int32)
