"""Input data for oasis_tf: dataset readers, the tf.data pipeline and the
built-in synthetic data set.

    ds = oasis_tf.data.load_dataset("ade20k", root, split="train",
                                    image_size=(256, 256), batch_size=32)

Layouts: "ade20k" | "cityscapes" | "coco_stuff" | "folder" (your own data set:
see below) | "synthetic" (generated under `root` on first use, read as ADE20K).

Your own data set (docs/own_data.md): `inspect_dataset(root)` finds its shape,
pairs, mask encoding, classes and the config values it implies (`DatasetReport`);
`resolve_config(config, root)` fills a config's "auto" values from it (train()
does) and `dataset_options(config)` gives the `load_dataset` arguments (label
mapping, val split) that read a run's data as its training did.

Modules: `layouts` (the table of layouts: reader, class count, TFDS name,
label mapping), `readers` (file listings), `decoding` (decoding and checking a
pair of files), `label_mapping` (stored mask values -> class ids), `pipeline`
(`load_dataset`), `synthetic`; for own data sets `discovery` (shapes and
pairing), `class_table` (classes.json / classes.csv), `scan` (reading headers
and masks), `proposal` (the values a data set implies), `inspection`
(`inspect_dataset`), `dataset_report` (`DatasetReport`), `report_figure` (its
picture), `resolve` (`resolve_config`).

TFDS: `oasis_tf.data.tfds_builders` holds the builders oasis_ade20k,
oasis_cityscapes, oasis_coco_stuff and oasis_folder (import it before
`tfds.load`; build with `python -m oasis_tf.data.build_tfds NAME --manual_dir
DIR`); `load_dataset("tfds:oasis_ade20k", data_dir, ...)` reads one.
"""

from oasis_tf.data.layouts import LAYOUTS, DatasetLayout, get_layout
from oasis_tf.data.decoding import BadFileError
from oasis_tf.data.label_mapping import LabelMapping
from oasis_tf.data.class_table import ClassTable, read_class_table
from oasis_tf.data.discovery import find_layout
from oasis_tf.data.dataset_report import DatasetProblemsError, DatasetReport
from oasis_tf.data.inspection import inspect_dataset
from oasis_tf.data.resolve import dataset_options, label_mapping_from_config, resolve_config
from oasis_tf.data.readers import list_pairs
from oasis_tf.data.synthetic import write_synthetic_dataset
from oasis_tf.data.synthetic_scenes import CLASS_NAMES, PALETTE
from oasis_tf.data.synthetic_scenes import NUM_CLASSES as SYNTHETIC_NUM_CLASSES
from oasis_tf.data.pipeline import dataset_num_classes, default_synthetic_root, load_dataset
from oasis_tf.data.decoding import decode_pair, load_resized_pair

__all__ = [
    "load_dataset", "inspect_dataset", "DatasetReport", "DatasetProblemsError",
    "resolve_config", "dataset_options", "label_mapping_from_config", "LabelMapping",
    "ClassTable", "read_class_table", "find_layout", "list_pairs", "decode_pair",
    "load_resized_pair", "BadFileError", "LAYOUTS", "DatasetLayout", "get_layout",
    "dataset_num_classes", "default_synthetic_root", "write_synthetic_dataset",
    "CLASS_NAMES", "PALETTE", "SYNTHETIC_NUM_CLASSES",
]
