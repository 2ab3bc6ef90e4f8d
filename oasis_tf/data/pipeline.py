"""The tf.data input pipeline: files -> dict batches for `OASIS.fit`.

`load_dataset` lists the (image, label) pairs of a split with the layout's
reader (`oasis_tf.data.readers`), then builds:

    pairs -> [shard] -> [shuffle] -> [zip per-example random stream]
          -> decode + check + resize (parallel) -> [drop bad pairs] -> [crop],
          flip, scale, LabelMix bits (parallel) -> batch -> prefetch

Decoding and checking (`oasis_tf.data.decoding`). Each pair is decoded with PIL inside a
`tf.numpy_function` (PIL releases the GIL while decoding, so the parallel map
runs on several cores). Doing it there lets every error name the file:

* an undecodable image or label, or a label file whose bytes are not a PNG
  (e.g. a JPEG saved as .png) -> `ValueError` naming the file (TensorFlow
  surfaces it as `tf.errors.InvalidArgumentError` with the same text when the
  dataset is iterated); with `skip_bad_files=True` such pairs are dropped,
  logged, and their paths appended to `dataset.skipped_files`;
* a label value >= num_classes -> names the file, the value and the count;
* image and label of different sizes -> names both files.

Label checks stop the run even with `skip_bad_files` (they usually mean a
wrong `num_classes` or layout, not a broken file). Labels are single-channel
PNGs (grey or palette indices) or, for an own data set with colour masks, RGB
PNGs. The stored values become class ids in one step, a `LabelMapping`
(`oasis_tf.data.label_mapping`): COCO-Stuff's is id + 1, 255 -> 0; an own data
set's comes from its config (`label_mapping=`, `oasis_tf.data.label_mapping_from_config`).

Resizing (in the same Python call as the decoding, with PIL as the official
code): images bicubic (PIL's BICUBIC, antialiased when downsizing), labels
nearest neighbour (PIL's NEAREST), so a resized label only holds values that
were in the source; nothing is interpolated. Either is skipped when the file
already has the target size. With `load_size` larger than the output width the
files are resized to that width and cropped to `image_size` (random crop in
training, centred otherwise; image and label together).

TFDS. `load_dataset("tfds:oasis_ade20k", data_dir)` (or `source="tfds"`)
reads a data set built by `oasis_tf.data.tfds_builders` instead of the folders;
the encoded files are decoded by the same code (errors name the stored file
name).

Randomness. Shuffling uses `seed`; every example also receives a value from
`tf.data.Dataset.random(seed)` (re-drawn each epoch, identical for the same
seed), from which its flip and LabelMix bits are drawn with stateless ops, so
a training pipeline is deterministic for a seed whatever the parallelism.

The pipeline uses Python (`tf.numpy_function`), so it runs in the process that
iterates it (not in tf.data service workers).
"""

from __future__ import annotations

import logging
import os
from typing import Tuple

import numpy as np
import tensorflow as tf

from oasis_tf.data import readers, synthetic
from oasis_tf.data.decoding import BadFileError, load_resized_pair
from oasis_tf.data.label_mapping import LabelMapping
from oasis_tf.data.layouts import LAYOUT_TABLE, LAYOUTS, get_layout, layout_of_tfds_name

log = logging.getLogger(__name__)

DEFAULT_NUM_CLASSES = {name: layout.num_classes for name, layout in LAYOUT_TABLE.items()
                       if layout.num_classes is not None}



def dataset_num_classes(layout: str) -> int:
    """Class count (with the don't-care class 0) of a layout; "folder" has none."""
    if layout == "folder":
        raise ValueError('The "folder" layout has no default class count: pass num_classes.')
    return get_layout(layout).num_classes


def default_synthetic_root() -> str:
    """Where the synthetic data set goes when no root is given:
    `$OASIS_TF_DATA/synthetic`, default `~/.cache/oasis_tf/synthetic`."""
    base = os.environ.get("OASIS_TF_DATA") or os.path.join(
        os.path.expanduser("~"), ".cache", "oasis_tf")
    return os.path.join(base, "synthetic")


def _as_size(image_size) -> Tuple[int, int]:
    if isinstance(image_size, int):
        return (image_size, image_size)
    size = tuple(int(s) for s in image_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"`image_size` must be an int or (height, width). "
                         f"Received: image_size={image_size!r}")
    return size


def _resize_target(size, load_size):
    """(H, W) the files are resized to before the crop: `size` scaled so that its
    width is `load_size` (None or equal to the width: `size`, no crop)."""
    if load_size is None or int(load_size) == size[1]:
        return size
    load_size = int(load_size)
    if load_size < size[1]:
        raise ValueError(f"`load_size` ({load_size}) must be >= the crop width "
                         f"image_size[1] ({size[1]})")
    return (int(round(size[0] * load_size / size[1])), load_size)


def _tfds_source(layout, source):
    """(file layout, TFDS name or None) of a `layout` / `source` pair."""
    if source not in ("files", "tfds"):
        raise ValueError(f'`source` must be "files" or "tfds". Received: source={source!r}')
    if isinstance(layout, str) and layout.startswith("tfds:"):
        name = layout[len("tfds:"):]
        return layout_of_tfds_name(name).name, name
    if source == "tfds":
        name = get_layout(layout).tfds_name
        if name is None:
            builders = ", ".join(f"{k} -> {v.tfds_name}" for k, v in LAYOUT_TABLE.items() if v.tfds_name)
            raise ValueError(f"no TFDS builder for layout {layout!r}; builders: {builders}")
        return layout, name
    return layout, None


def load_dataset(layout, root=None, split="train", image_size=(256, 256), batch_size=32,
                 training=True, num_classes=None, seed=0, shuffle_buffer=1000,
                 num_parallel_calls=tf.data.AUTOTUNE, skip_bad_files=False, flip=True,
                 drop_remainder=None, labelmix=True, input_context=None,
                 synthetic_options=None, load_size=None, source="files", label_mapping=None,
                 val_fraction=None) -> tf.data.Dataset:
    """A `tf.data.Dataset` of dict batches as `OASIS.train_step` consumes them.

    Args:
        layout: "ade20k", "cityscapes", "coco_stuff", "folder" or "synthetic";
            or "tfds:<name>" (e.g. "tfds:oasis_ade20k") to read a data set built
            with `oasis_tf.data.tfds_builders` (`root` is then the TFDS data_dir).
        root: dataset folder. For "synthetic", where the data set is written on
            first use (default `default_synthetic_root()`). With TFDS: the
            `data_dir` (default TFDS's, `~/tensorflow_datasets`).
        split: "train" or "val".
        image_size: int or (height, width) of the output.
        batch_size: global batch size (per replica with `input_context`).
        training: shuffle, flip and LabelMix bits; drop the last partial batch.
            False: none of these, remainder kept.
        num_classes: class count incl. don't-care 0 (default per layout;
            required for "folder").
        seed: seed of the shuffle, flips and LabelMix bits.
        shuffle_buffer: shuffle buffer (file pairs); 0 disables shuffling.
        num_parallel_calls: parallelism of decoding / preprocessing, or
            "autotune".
        skip_bad_files: drop undecodable pairs (logged, and listed in the
            returned dataset's `skipped_files`) instead of failing.
        flip: random horizontal flips in training.
        drop_remainder: default `training`.
        labelmix: add `labelmix_bits` int32 [B, num_classes] (training only).
        input_context: a `tf.distribute.InputContext` (from
            `distribute_datasets_from_function`): the files are sharded by
            input pipeline and batches have the per-replica size.
        synthetic_options: for "synthetic", a dict of `write_synthetic_dataset`
            arguments (num_train 1000, num_val 100, size max(image_size), seed 0).
            None: a synthetic data set already in `root` is read as it is; where
            there is none, the default one is written.
        load_size: `data.load_size`: the width files are resized to (height in
            proportion to `image_size`) before a crop of `image_size`: random in
            training, centred otherwise. None or `image_size[1]`: resize
            straight to `image_size` (the published runs).
        source: "files" (the folders) or "tfds" (the TFDS data set of `layout`,
            e.g. "oasis_ade20k" for "ade20k", in the data_dir `root`).
        label_mapping: a `LabelMapping` from the stored mask values to class ids
            (default: the layout's, `LabelMapping.for_layout`). The folder layout
            (own data sets) takes the config's (`label_mapping_from_config`). Not
            with the oasis_folder TFDS data set, which stores class ids.
        val_fraction: the folder layout without split folders: the share of pairs
            held out as "val" (default `readers.DEFAULT_VAL_FRACTION`).

    Returns:
        Batches `{"image": float32 [B, H, W, 3] in [-1, 1], "label": int32
        [B, H, W], "labelmix_bits": int32 [B, num_classes]}` (the last key only
        when training and labelmix).
    """
    layout, tfds_name = _tfds_source(layout, source)
    if layout not in LAYOUTS:
        raise ValueError(f"`layout` must be one of {LAYOUTS}. Received: layout={layout!r}")
    size = _as_size(image_size)
    resize_to = _resize_target(size, load_size)
    crop = resize_to != size
    if num_classes is None and label_mapping is not None:
        num_classes = label_mapping.num_classes
    if num_classes is None and tfds_name is not None and layout == "folder":
        num_classes = _tfds_num_classes(tfds_name, root)
    if num_classes is None:
        num_classes = dataset_num_classes(layout)
    num_classes = int(num_classes)
    if num_classes < 1 or num_classes > 65536:
        raise ValueError(f"`num_classes` must be in [1, 65536]. Received: {num_classes}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be positive. Received: {batch_size}")
    if num_parallel_calls == "autotune":
        num_parallel_calls = tf.data.AUTOTUNE
    if drop_remainder is None:
        drop_remainder = bool(training)
    mapping = _label_mapping(layout, tfds_name, num_classes, label_mapping)
    skipped = []

    if tfds_name is not None:
        ds, num_files = _tfds_records(tfds_name, root, split, seed, training, input_context)
        if training and shuffle_buffer and shuffle_buffer > 0:
            ds = ds.shuffle(min(int(shuffle_buffer), max(num_files, 1)), seed=seed,
                            reshuffle_each_iteration=True)
        if input_context is not None:
            batch_size = input_context.get_per_replica_batch_size(batch_size)
    else:
        if layout == "synthetic":
            root = default_synthetic_root() if root is None else root
            opts = synthetic.resolve_options(size, synthetic_options, root)
            if opts["size"] < max(size):
                log.warning("the synthetic data set in %s was written at %d px and is "
                            "read at %s: its images are enlarged (write one at this size "
                            "in another folder, or pass synthetic_options)", root,
                            opts["size"], "x".join(map(str, size)))
            synthetic.write_synthetic_dataset(root, **opts)
        elif root is None:
            raise ValueError(f"layout {layout!r} needs `root`, the dataset folder.")

        pairs = readers.list_pairs(layout, root, split, val_fraction=val_fraction)
        if input_context is not None:
            n = input_context.num_input_pipelines
            pairs = pairs[input_context.input_pipeline_id::n]
            if not pairs:
                raise ValueError(f"input pipeline {input_context.input_pipeline_id} of {n} "
                                 f"has no files ({layout} {split} in {root})")
            batch_size = input_context.get_per_replica_batch_size(batch_size)
        num_files = len(pairs)
        ds = tf.data.Dataset.from_tensor_slices(([p[0] for p in pairs], [p[1] for p in pairs]))
        ds = ds.map(lambda i, l: {"image_path": i, "label_path": l})
        if training and shuffle_buffer and shuffle_buffer > 0:
            ds = ds.shuffle(min(int(shuffle_buffer), num_files), seed=seed,
                            reshuffle_each_iteration=True)

    def load(image_path, label_path, image_bytes, label_bytes):
        ip, lp = image_path.decode(), label_path.decode()
        try:
            return load_resized_pair(ip, lp, num_classes, resize_to, mapping,
                                     image_bytes=image_bytes or None,
                                     label_bytes=label_bytes or None)
        except BadFileError as e:
            if not skip_bad_files:
                raise ValueError(str(e)) from None
            log.warning("skipping bad file (%d so far): %s", len(skipped) + 1, e)
            skipped.append(e.path)
            return np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.int32)

    def tf_load(ex, rnd=None):
        empty = tf.constant(b"")
        image, label = tf.numpy_function(
            load, [ex["image_path"], ex["label_path"], ex.get("image_bytes", empty),
                   ex.get("label_bytes", empty)], [tf.uint8, tf.int32], stateful=False)
        image.set_shape([None, None, 3])
        label.set_shape([None, None])
        out = {"image": image, "label": label}
        if rnd is not None:
            out["rnd"] = rnd
        return out

    def preprocess(ex):
        image, label = ex["image"], ex["label"]
        if crop:  # random crop in training, centred otherwise (image and label together)
            dy, dx = resize_to[0] - size[0], resize_to[1] - size[1]
            if training:
                off = tf.random.stateless_uniform([2], seed=tf.stack([ex["rnd"], 2]),
                                                  maxval=2 ** 30, dtype=tf.int32)
                oy, ox = off[0] % (dy + 1), off[1] % (dx + 1)
            else:
                oy, ox = dy // 2, dx // 2
            image = image[oy:oy + size[0], ox:ox + size[1]]
            label = label[oy:oy + size[0], ox:ox + size[1]]
        image = tf.cast(image, tf.float32) / 127.5 - 1.0
        image = tf.ensure_shape(image, [size[0], size[1], 3])
        label = tf.ensure_shape(tf.cast(label, tf.int32), [size[0], size[1]])
        out = {"image": image, "label": label}
        if training:
            rnd = ex["rnd"]
            if flip:
                do_flip = tf.random.stateless_uniform([], seed=tf.stack([rnd, 0])) < 0.5
                image, label = tf.cond(
                    do_flip, lambda: (image[:, ::-1], label[:, ::-1]), lambda: (image, label))
                out = {"image": image, "label": label}
            if labelmix:
                out["labelmix_bits"] = tf.random.stateless_uniform(
                    [num_classes], seed=tf.stack([rnd, 1]), maxval=2, dtype=tf.int32)
        return out

    if training:
        rnd = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, rnd))
    ds = ds.map(tf_load, num_parallel_calls=num_parallel_calls, deterministic=True)
    if skip_bad_files:
        ds = ds.filter(lambda ex: tf.size(ex["label"]) > 0)
    ds = ds.map(preprocess, num_parallel_calls=num_parallel_calls, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF if input_context is not None
        else tf.data.experimental.AutoShardPolicy.DATA)
    ds = ds.with_options(options)
    ds.skipped_files = skipped
    ds.num_files = num_files
    return ds


def _label_mapping(layout, tfds_name, num_classes, label_mapping):
    """The `LabelMapping` the pipeline applies (see `load_dataset`)."""
    if tfds_name is not None and layout == "folder":
        if label_mapping is not None and not label_mapping.identity:
            raise ValueError(f"the {tfds_name} TFDS data set stores class ids (mapped when it "
                             f"was built); `label_mapping` does not apply to it")
        return LabelMapping(num_classes)
    if label_mapping is None:
        return LabelMapping.for_layout(layout, num_classes)
    if layout != "folder" and label_mapping != LabelMapping.for_layout(layout, num_classes):
        raise ValueError(f"`label_mapping` applies to the folder layout (own data sets); "
                         f"{layout} has its own. Received: {label_mapping}")
    if label_mapping.num_classes != num_classes:
        raise ValueError(f"`label_mapping` is for {label_mapping.num_classes} classes, not "
                         f"num_classes={num_classes}")
    return label_mapping


def _tfds_num_classes(name, data_dir):
    """The class count stored in a built oasis_folder TFDS data set's metadata."""
    import tensorflow_datasets as tfds

    from oasis_tf.data import tfds_builders  # noqa: F401 - registers the builders

    count = (tfds.builder(name, data_dir=data_dir).info.metadata or {}).get("num_classes")
    if count is None:
        raise ValueError(f"the {name} TFDS data set in {data_dir} records no class count: "
                         f"pass num_classes")
    return int(count)


def _tfds_records(name, data_dir, split, seed, training, input_context):
    """The records of a built oasis TFDS data set as {image_path, label_path,
    image_bytes, label_bytes} (the paths are the stored file names, used in error
    messages); the files are not decoded by TFDS. Returns (dataset, examples)."""
    import tensorflow_datasets as tfds

    from oasis_tf.data import tfds_builders  # noqa: F401 - registers the builders

    builder = tfds.builder(name, data_dir=data_dir)
    if split not in builder.info.splits:
        raise ValueError(f"TFDS data set {name} in {builder.data_dir} has no split {split!r} "
                         f"(splits: {sorted(builder.info.splits)})")
    read_config = tfds.ReadConfig(shuffle_seed=seed, input_context=input_context)
    ds = builder.as_dataset(split=split, shuffle_files=bool(training), read_config=read_config,
                            decoders={"image": tfds.decode.SkipDecoding(),
                                      "label": tfds.decode.SkipDecoding()})
    where = f"{name}:{split}:"
    ds = ds.map(lambda ex: {"image_path": where + ex["file_name"],
                            "label_path": where + ex["file_name"] + " (label)",
                            "image_bytes": ex["image"], "label_bytes": ex["label"]})
    num = builder.info.splits[split].num_examples
    if input_context is not None:
        num = num // input_context.num_input_pipelines
    return ds, num
