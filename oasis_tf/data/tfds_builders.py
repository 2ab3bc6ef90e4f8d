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
* ``oasis_folder``: ``<split>/images`` + ``<split>/labels``; the class count is
  not stored (give ``num_classes`` to ``load_dataset``).

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
from oasis_tf.data.layouts import LAYOUT_TABLE, get_layout, layout_of_tfds_name

__all__ = ["OasisAde20k", "OasisCityscapes", "OasisCocoStuff", "OasisFolder", "BUILDERS",
           "builder_name"]

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

    def _split_generators(self, dl_manager):
        root = os.fspath(dl_manager.manual_dir)
        splits = {}
        for split in ("train", "val"):
            try:
                pairs = readers.list_pairs(self.LAYOUT, root, split)
            except ValueError as e:
                if "no images found" in str(e) and split == "val":
                    continue  # a data set without a val split
                raise
            splits[split] = self._generate_examples(root, pairs)
        return splits

    def _generate_examples(self, root, pairs):
        from PIL import Image

        num_classes = self.NUM_CLASSES or 65536
        coco = get_layout(self.LAYOUT).label_mapping == "coco_stuff"
        for image_path, label_path in pairs:
            _, label = decode_pair(image_path, label_path, num_classes, coco_mapping=coco)
            if coco:  # store the ids as in the file; the pipeline maps them
                with Image.open(label_path) as im:
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
    """A custom data set: `<split>/images/*` with `<split>/labels/*.png`."""

    LAYOUT = "folder"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Pass a folder with train/images, train/labels (and optionally val/...) as "
        "manual_dir.")


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


def build(name, manual_dir, data_dir=None):
    """Builds (download_and_prepare) the oasis TFDS data set `name` from
    `manual_dir` into `data_dir`; returns the builder."""
    if name in BUILDERS:
        name = BUILDERS[name]
    layout_of(name)  # checks the name
    builder = tfds.builder(name, data_dir=data_dir)
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
    args = parser.parse_args(argv)
    builder = build(args.name, args.manual_dir, args.data_dir)
    splits = ", ".join(f"{k}: {v.num_examples}" for k, v in builder.info.splits.items())
    print(f"{builder.name} built in {builder.data_dir} ({splits})")

