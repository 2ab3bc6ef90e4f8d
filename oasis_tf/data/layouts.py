"""The one table of data set layouts: reader, class count, TFDS name, label mapping.

    layout = get_layout("coco_stuff")
    layout.reader         # "coco_stuff_pairs": the function of oasis_tf.data.readers
    layout.num_classes    # 183 (incl. the don't-care class 0; None for "folder")
    layout.tfds_name      # "oasis_coco_stuff" (None: no TFDS builder)
    layout.label_mapping  # "coco_stuff": stored ids 0..181 and 255 -> id + 1, 255 -> 0

The config (``data.dataset``), the pipeline, the TFDS builders and the readers
all read this table. Class counts are the official ``semantic_nc``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from oasis_tf.data.synthetic_scenes import NUM_CLASSES as _SYNTHETIC_NUM_CLASSES


@dataclasses.dataclass(frozen=True)
class DatasetLayout:
    """One data set layout.

    Args:
        name: the layout name (``data.dataset``).
        reader: the name of the function of `oasis_tf.data.readers` that lists its pairs.
        num_classes: class count incl. the don't-care class 0; None when the data set
            does not fix it ("folder").
        tfds_name: its TFDS builder's name (None: none).
        label_mapping: None (the label files hold the class ids) or "coco_stuff"
            (id + 1, 255 -> 0).
    """

    name: str
    reader: str
    num_classes: Optional[int]
    tfds_name: Optional[str] = None
    label_mapping: Optional[str] = None


LAYOUT_TABLE = {layout.name: layout for layout in (
    DatasetLayout("ade20k", "ade20k_pairs", 151, "oasis_ade20k"),
    DatasetLayout("cityscapes", "cityscapes_pairs", 35, "oasis_cityscapes"),
    DatasetLayout("coco_stuff", "coco_stuff_pairs", 183, "oasis_coco_stuff", label_mapping="coco_stuff"),
    DatasetLayout("folder", "folder_pairs", None, "oasis_folder"),
    DatasetLayout("synthetic", "ade20k_pairs", _SYNTHETIC_NUM_CLASSES),  # written in the ADE20K layout
)}
LAYOUTS = tuple(LAYOUT_TABLE)


def get_layout(name) -> DatasetLayout:
    """The `DatasetLayout` of ``name``; ValueError naming the known ones otherwise."""
    if name not in LAYOUT_TABLE:
        raise ValueError(f"`layout` must be one of {LAYOUTS}. Received: layout={name!r}")
    return LAYOUT_TABLE[name]


def layout_of_tfds_name(tfds_name) -> DatasetLayout:
    """The `DatasetLayout` whose TFDS builder is ``tfds_name`` ("oasis_ade20k" -> ade20k)."""
    for layout in LAYOUT_TABLE.values():
        if layout.tfds_name == tfds_name:
            return layout
    known = sorted(x.tfds_name for x in LAYOUT_TABLE.values() if x.tfds_name)
    raise ValueError(f"unknown oasis TFDS data set {tfds_name!r}; known: {', '.join(known)}")
