"""TensorFlow Datasets builders for the OASIS data sets (manual download).

The data sets cannot be downloaded automatically (licences / registration):
put them in their official layouts in a folder (the ``manual_dir``) and build:

    python -m oasis_tf.data.build_tfds oasis_ade20k \\
        --manual_dir /data/ADEChallengeData2016 --data_dir ~/tensorflow_datasets

or, with apache-beam installed (the `tfds` command line of tensorflow-datasets
4.9 imports it):

    tfds build --imports oasis_tf.data.tfds_builders oasis_ade20k \\
        --manual_dir /data/ADEChallengeData2016 --data_dir ~/tensorflow_datasets

or from Python:

    import tensorflow_datasets as tfds
    import oasis_tf.data.tfds_builders  # registers the builders
    ds = tfds.load("oasis_ade20k", split="train", data_dir=data_dir,
                   download_and_prepare_kwargs={"download_config":
                       tfds.download.DownloadConfig(manual_dir=manual_dir)})

Builders (``manual_dir`` = the root the folder readers take):

* ``oasis_ade20k``: ADEChallengeData2016 (``images/``, ``annotations/``), 151 classes.
* ``oasis_cityscapes``: ``leftImg8bit/`` + ``gtFine/*_labelIds.png``, 35 classes.
* ``oasis_coco_stuff``: ``{train,val}_img/`` + ``{train,val}_label/``, 183 classes.
  The labels are stored as in the files (ids 0..181, 255 unlabelled); the
  oasis_tf pipeline maps them (id + 1, 255 -> 0) when it reads them.
* ``oasis_folder``: an own data set in any shape the folder layout reads
  (``<split>/images`` + ``<split>/labels``, one folder with the val split held out,
  VOC, ...; see docs/own_data.md). It takes the options of ``oasis_tf/configs/folder.yaml``
  as builder arguments (``tfds.builder("oasis_folder", ignore_label=255)``,
  ``tfds.load(..., builder_kwargs={...})`` or the flags of ``build_tfds``):
  ``ignore_label`` ("auto"), ``zero_is_dontcare`` (False), ``val_fraction`` (0.1),
  ``num_classes`` and ``label_encoding`` ("auto"). The data set is inspected first
  (`oasis_tf.data.inspect_dataset`: every bad file is named), its masks are stored
  as class ids (ignore label and colours already mapped), and the metadata holds
  ``num_classes``, ``class_names``, ``palette``, ``dontcare_label`` and the mapping;
  ``load_dataset("tfds:oasis_folder", data_dir)`` takes its class count from there.

Splits "train" and "val". Features: ``image`` (the original encoded file, JPEG or
PNG, decoded to uint8 [H, W, 3]), ``label`` (class ids as a single-channel PNG,
uint8 [H, W, 1]), ``file_name`` (the image file name relative to the root).
Every pair is decoded and checked while building (pairing, sizes, label range),
with the same error messages as the file pipeline, so a built data set holds no
bad files.

The training pipeline reads a built data set with
``load_dataset("tfds:oasis_ade20k", data_dir, ...)`` (or
``load_dataset("ade20k", data_dir, source="tfds")``).
"""

from __future__ import annotations

import inspect
import os

import numpy as np
import tensorflow_datasets as tfds

from oasis_tf.data import readers
from oasis_tf.data.decoding import decode_pair
from oasis_tf.data.label_mapping import LabelMapping
from oasis_tf.data.layouts import LAYOUT_TABLE, get_layout, layout_of_tfds_name

_CITATION = """@inproceedings{schonfeld2021you,
  title={You Only Need Adversarial Supervision for Semantic Image Synthesis},
  author={Sch{\\"o}nfeld, Edgar and Sushko, Vadim and Zhang, Dan and Gall, J{\\"u}rgen and
          Schiele, Bernt and Khoreva, Anna},
  booktitle={International Conference on Learning Representations},
  year={2021}}"""


class _OasisBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared implementation: pairs from `oasis_tf.data.readers`, checked with
    `oasis_tf.data.decoding.decode_pair`; class count and label mapping from the
    layout table (`oasis_tf.data.layouts`)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First version (oasis_tf)."}
    LAYOUT = ""
    NUM_CLASSES = None  # each builder's: set from the layout table below
    MANUAL_DOWNLOAD_INSTRUCTIONS = ""
    # The labels are stored mapped to class ids (else as in the files; the pipeline
    # maps them when it reads them).
    STORES_CLASS_IDS = False

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        """This file (TFDS's default looks it up through the `importlib_resources`
        package, which a tensorflow-datasets install does not always bring)."""
        from etils import epath
        return epath.Path(inspect.getfile(cls))

    def _info(self):
        return self.dataset_info_from_configs(
            description=(f"{self.LAYOUT} pairs (image, class-id label map) read from the "
                         f"official layout in manual_dir, for oasis_tf."),
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "label": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
                "file_name": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
            citation=_CITATION,
            metadata=tfds.core.MetadataDict(layout=self.LAYOUT,
                                            num_classes=self.NUM_CLASSES),
        )

    def _label_mapping(self, root):
        """The `LabelMapping` the pairs are checked with (the layout's)."""
        return LabelMapping.for_layout(self.LAYOUT, self.NUM_CLASSES or 65536)

    def _list_pairs(self, root, split):
        return readers.list_pairs(self.LAYOUT, root, split)

    def _split_generators(self, dl_manager):
        root = os.fspath(dl_manager.manual_dir)
        mapping = self._label_mapping(root)
        splits = {}
        for split in ("train", "val"):
            try:
                pairs = self._list_pairs(root, split)
            except ValueError as e:
                if "no images found" in str(e) and split == "val":
                    continue  # a data set without a val split
                raise
            if pairs:
                splits[split] = self._generate_examples(root, pairs, mapping)
        return splits

    def _generate_examples(self, root, pairs, mapping):
        from PIL import Image

        for image_path, label_path in pairs:
            _, label = decode_pair(image_path, label_path, mapping.num_classes,
                                   label_mapping=mapping)
            if not mapping.identity and not self.STORES_CLASS_IDS:
                with Image.open(label_path) as im:  # as in the file; the pipeline maps them
                    label = np.asarray(im)
            if label.max(initial=0) > 255:
                raise ValueError(f"label file {label_path} has class id {label.max()} > 255; "
                                 f"the TFDS builders store 8-bit label maps")
            key = os.path.relpath(image_path, root)
            yield key, {"image": image_path,
                        "label": label.astype(np.uint8)[..., None],
                        "file_name": key}


class OasisAde20k(_OasisBuilder):
    """ADE20K (ADEChallengeData2016) for OASIS, from manual_dir."""

    LAYOUT = "ade20k"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download ADEChallengeData2016.zip (http://sceneparsing.csail.mit.edu), unzip it and "
        "pass the ADEChallengeData2016 folder (with images/ and annotations/) as manual_dir.")


class OasisCityscapes(_OasisBuilder):
    """Cityscapes (leftImg8bit + gtFine labelIds) for OASIS, from manual_dir."""

    LAYOUT = "cityscapes"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from "
        "https://www.cityscapes-dataset.com (registration needed), unzip both into one folder "
        "(leftImg8bit/ and gtFine/) and pass it as manual_dir.")


class OasisCocoStuff(_OasisBuilder):
    """COCO-Stuff (train_img/train_label/val_img/val_label) for OASIS, from manual_dir."""

    LAYOUT = "coco_stuff"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Prepare COCO-Stuff in the SPADE layout (train_img/, train_label/, val_img/, "
        "val_label/ with stuffthingmaps PNGs) and pass that folder as manual_dir.")


class OasisFolder(_OasisBuilder):
    """An own data set (any shape of `oasis_tf.data.discovery`), stored as class ids.

    Args:
        ignore_label, zero_is_dontcare, val_fraction, label_encoding: as the ``data``
            keys of ``oasis_tf/configs/folder.yaml`` ("auto": found from the data set).
        num_classes: as ``model.num_classes`` ("auto": found from the data set).
        **kwargs: the arguments of ``tfds.core.GeneratorBasedBuilder``.
    """

    LAYOUT = "folder"
    STORES_CLASS_IDS = True
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Pass your data set's folder as manual_dir: train/images + train/labels (and "
        "optionally val/...), images/ + masks/ without split folders, or the VOC folders "
        "(docs/own_data.md).")

    def __init__(self, *, ignore_label="auto", zero_is_dontcare=False, val_fraction=0.1,
                 num_classes="auto", label_encoding="auto", **kwargs):
        self.options = {"data.ignore_label": ignore_label,
                        "data.zero_is_dontcare": zero_is_dontcare,
                        "data.val_fraction": val_fraction,
                        "data.label_encoding": label_encoding,
                        "model.num_classes": num_classes}
        super().__init__(**kwargs)

    def _label_mapping(self, root):
        """Inspects the data set (`DatasetProblemsError` names every bad file), records
        its classes in the metadata and returns the mapping to class ids."""
        import json

        from oasis_tf.config import load_config
        from oasis_tf.data.resolve import label_mapping_from_config, resolve_config

        overrides = [f"{k}={json.dumps(v)}" for k, v in self.options.items()]
        config, report = resolve_config(load_config("folder", overrides), root)
        self._val_fraction = config.data.val_fraction
        m = config.model
        self.info.metadata.update(
            num_classes=m.num_classes, class_names=list(m.class_names),
            palette=[list(c) for c in m.palette], dontcare_label=m.dontcare_label,
            label_mapping=report.mapping, ignore_label=config.data.ignore_label,
            zero_is_dontcare=config.data.zero_is_dontcare, val_fraction=self._val_fraction)
        return label_mapping_from_config(config)

    def _list_pairs(self, root, split):
        return readers.list_pairs(self.LAYOUT, root, split, val_fraction=self._val_fraction)


BUILDERS = {name: layout.tfds_name for name, layout in LAYOUT_TABLE.items() if layout.tfds_name}
for _builder in (OasisAde20k, OasisCityscapes, OasisCocoStuff, OasisFolder):
    _builder.NUM_CLASSES = get_layout(_builder.LAYOUT).num_classes  # from the layout table
del _builder
_LAYOUT_OF = {v: k for k, v in BUILDERS.items()}


def builder_name(layout):
    """The TFDS name of a layout ("ade20k" -> "oasis_ade20k")."""
    if layout not in BUILDERS:
        raise ValueError(f"no TFDS builder for layout {layout!r}; builders: "
                         f"{', '.join(f'{k} -> {v}' for k, v in BUILDERS.items())}")
    return BUILDERS[layout]


def layout_of(name):
    """The layout of a builder name ("oasis_ade20k" -> "ade20k")."""
    return layout_of_tfds_name(name).name


def build(name, manual_dir, data_dir=None, **options):
    """Builds (download_and_prepare) the oasis TFDS data set `name` from
    `manual_dir` into `data_dir`; returns the builder. ``options``: the
    oasis_folder builder's arguments (``ignore_label=255``, ...)."""
    if name in BUILDERS:
        name = BUILDERS[name]
    layout_of(name)  # checks the name
    builder = tfds.builder(name, data_dir=data_dir, **options)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)))
    return builder


def main(argv=None):
    """`python -m oasis_tf.data.build_tfds oasis_ade20k --manual_dir DIR
    [--data_dir DIR]`: the same as `tfds build` (whose command line needs
    apache-beam installed) for these builders."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("name", choices=sorted(_LAYOUT_OF) + sorted(BUILDERS),
                        help="builder name (or layout)")
    parser.add_argument("--manual_dir", required=True, help="the data set in its official "
                        "layout")
    parser.add_argument("--data_dir", default=None, help="TFDS data_dir (default "
                        "~/tensorflow_datasets)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="oasis_folder: ignore_label=255|auto|null, zero_is_dontcare=true, "
                        "val_fraction=0.1, num_classes=N, label_encoding=ids|colors "
                        "(repeatable; as oasis_tf/configs/folder.yaml)")
    args = parser.parse_args(argv)
    import yaml

    options = {}
    for text in args.option:
        key, _, value = text.partition("=")
        options[key.strip()] = yaml.safe_load(value)
    builder = build(args.name, args.manual_dir, args.data_dir, **options)
    splits = ", ".join(f"{k}: {v.num_examples}" for k, v in builder.info.splits.items())
    print(f"{builder.name} built in {builder.data_dir} ({splits})")

