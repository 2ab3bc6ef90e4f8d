"""The tf.data input pipeline: files -> dict batches for `OASIS.fit`.

`load_dataset` lists the (image, label) pairs of a split with the layout's
reader (`oasis_tf.data.readers`), then builds:

    pairs -> [shard] -> [shuffle] -> [zip per-example random stream]
          -> decode + check (parallel) -> [drop bad pairs] -> resize, flip,
          scale, LabelMix bits (parallel) -> batch -> prefetch

Decoding and checking. Each pair is decoded with PIL inside a
`tf.numpy_function` (PIL releases the GIL while decoding, so the parallel map
runs on several cores). Doing it there lets every error name the file:

* an undecodable image or label -> `ValueError` naming the file (TensorFlow
  surfaces it as `tf.errors.InvalidArgumentError` with the same text when the
  dataset is iterated); with `skip_bad_files=True` such pairs are dropped,
  logged, and their paths appended to `dataset.skipped_files`;
* a label value >= num_classes -> names the file, the value and the count;
* image and label of different sizes -> names both files.

Label checks stop the run even with `skip_bad_files` (they usually mean a
wrong `num_classes` or layout, not a broken file). Labels must be
single-channel PNGs (grey or palette indices). COCO-Stuff labels are mapped
with id + 1, 255 -> 0 before the check.

Resizing. Images: bicubic (antialiased, as PIL's BICUBIC that the official
code used), clipped and scaled to [-1, 1]. Labels: nearest neighbour
(`tf.image.resize(method="nearest")`), so a resized label only holds values
that were in the source; nothing is interpolated. Either is skipped when the
file already has the target size.

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
from PIL import Image

from oasis_tf.data import readers, synthetic

__all__ = ["load_dataset", "dataset_num_classes", "DEFAULT_NUM_CLASSES", "default_synthetic_root",
           "decode_pair"]

log = logging.getLogger(__name__)

DEFAULT_NUM_CLASSES = {
    "ade20k": 151,
    "cityscapes": 35,
    "coco_stuff": 183,
    "synthetic": synthetic.NUM_CLASSES,
}

_SYNTHETIC_DEFAULTS = {"num_train": 1000, "num_val": 100, "size": None, "seed": 0}


def dataset_num_classes(layout: str) -> int:
    """Class count (with the don't-care class 0) of a layout; "folder" has none."""
    if layout == "folder":
        raise ValueError('The "folder" layout has no default class count: pass num_classes.')
    if layout not in DEFAULT_NUM_CLASSES:
        raise ValueError(f"`layout` must be one of {readers.LAYOUTS}. Received: layout={layout!r}")
    return DEFAULT_NUM_CLASSES[layout]


def default_synthetic_root() -> str:
    """Where the synthetic data set goes when no root is given:
    `$OASIS_TF_DATA/synthetic`, default `~/.cache/oasis_tf/synthetic`."""
    base = os.environ.get("OASIS_TF_DATA") or os.path.join(
        os.path.expanduser("~"), ".cache", "oasis_tf")
    return os.path.join(base, "synthetic")


class _BadFile(ValueError):
    """A file that cannot be decoded (`path` names it)."""

    def __init__(self, message, path):
        super().__init__(message)
        self.path = path


def _read_image(path: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode != "RGB":
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8)
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ...
        raise _BadFile(f"cannot decode image file {path}: {type(e).__name__}: {e}",
                       path) from None


def _read_label(path: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            arr = np.asarray(im)
    except Exception as e:
        raise _BadFile(f"cannot decode label file {path}: {type(e).__name__}: {e}",
                       path) from None
    if arr.ndim != 2:
        raise ValueError(f"label file {path} must be a single-channel image of class ids "
                         f"(grey or palette PNG); it has mode {mode} and shape {arr.shape}")
    return arr.astype(np.int32)


def decode_pair(image_path: str, label_path: str, num_classes: int,
                coco_mapping: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Decodes and checks one pair eagerly: (uint8 [H, W, 3], int32 [H, W]).

    Raises `ValueError` naming the file(s) for an undecodable file, a label
    value >= num_classes, or image and label of different sizes.
    """
    image = _read_image(image_path)
    label = _read_label(label_path)
    if coco_mapping:  # COCO-Stuff: stored ids 0..181 and 255 (unlabelled)
        label = np.where(label == 255, 0, label + 1).astype(np.int32)
    if image.shape[:2] != label.shape:
        raise ValueError(f"image and label sizes differ: image {image_path} is "
                         f"{image.shape[0]}x{image.shape[1]} (HxW), label {label_path} is "
                         f"{label.shape[0]}x{label.shape[1]}")
    if label.size:
        high = int(label.max())
        if high >= num_classes:
            raise ValueError(f"label file {label_path} has class id {high} >= num_classes="
                             f"{num_classes} (ids must be in [0, {num_classes}))")
    return image, label


def _as_size(image_size) -> Tuple[int, int]:
    if isinstance(image_size, int):
        return (image_size, image_size)
    size = tuple(int(s) for s in image_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"`image_size` must be an int or (height, width). "
                         f"Received: image_size={image_size!r}")
    return size


def load_dataset(layout, root=None, split="train", image_size=(256, 256), batch_size=32,
                 training=True, num_classes=None, seed=0, shuffle_buffer=1000,
                 num_parallel_calls=tf.data.AUTOTUNE, skip_bad_files=False, flip=True,
                 drop_remainder=None, labelmix=True, input_context=None,
                 synthetic_options=None) -> tf.data.Dataset:
    """A `tf.data.Dataset` of dict batches as `OASIS.train_step` consumes them.

    Args:
        layout: "ade20k", "cityscapes", "coco_stuff", "folder" or "synthetic".
        root: dataset folder. For "synthetic", where the data set is written on
            first use (default `default_synthetic_root()`).
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

    Returns:
        Batches `{"image": float32 [B, H, W, 3] in [-1, 1], "label": int32
        [B, H, W], "labelmix_bits": int32 [B, num_classes]}` (the last key only
        when training and labelmix).
    """
    if layout not in readers.LAYOUTS:
        raise ValueError(f"`layout` must be one of {readers.LAYOUTS}. Received: layout={layout!r}")
    size = _as_size(image_size)
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

    if layout == "synthetic":
        opts = dict(_SYNTHETIC_DEFAULTS)
        opts.update(synthetic_options or {})
        unknown = set(opts) - set(_SYNTHETIC_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown synthetic_options {sorted(unknown)}; "
                             f"known: {sorted(_SYNTHETIC_DEFAULTS)}")
        if opts["size"] is None:
            opts["size"] = max(size)
        root = default_synthetic_root() if root is None else root
        synthetic.write_synthetic_dataset(root, **opts)
    elif root is None:
        raise ValueError(f"layout {layout!r} needs `root`, the dataset folder.")

    pairs = readers.list_pairs(layout, root, split)
    if input_context is not None:
        n = input_context.num_input_pipelines
        pairs = pairs[input_context.input_pipeline_id::n]
        if not pairs:
            raise ValueError(f"input pipeline {input_context.input_pipeline_id} of {n} has no "
                             f"files ({layout} {split} in {root})")
        batch_size = input_context.get_per_replica_batch_size(batch_size)

    image_paths = [p[0] for p in pairs]
    label_paths = [p[1] for p in pairs]
    coco = layout == "coco_stuff"
    skipped = []

    def load(image_path, label_path):
        ip, lp = image_path.decode(), label_path.decode()
        try:
            return decode_pair(ip, lp, num_classes, coco)
        except _BadFile as e:
            if not skip_bad_files:
                raise ValueError(str(e)) from None
            log.warning("skipping bad file (%d so far): %s", len(skipped) + 1, e)
            skipped.append(e.path)
            return np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.int32)

    def tf_load(image_path, label_path, rnd=None):
        image, label = tf.numpy_function(load, [image_path, label_path], [tf.uint8, tf.int32],
                                         stateful=False)
        image.set_shape([None, None, 3])
        label.set_shape([None, None])
        out = {"image": image, "label": label}
        if rnd is not None:
            out["rnd"] = rnd
        return out

    def preprocess(ex):
        image, label = ex["image"], ex["label"]
        same = tf.reduce_all(tf.equal(tf.shape(label), size))
        image = tf.cond(
            same, lambda: tf.cast(image, tf.float32),
            lambda: tf.image.resize(tf.cast(image, tf.float32), size, method="bicubic",
                                    antialias=True))
        label = tf.cond(
            same, lambda: label,
            lambda: tf.image.resize(label[..., None], size, method="nearest")[..., 0])
        image = tf.clip_by_value(image, 0.0, 255.0) / 127.5 - 1.0
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

    ds = tf.data.Dataset.from_tensor_slices((image_paths, label_paths))
    if training and shuffle_buffer and shuffle_buffer > 0:
        ds = ds.shuffle(min(int(shuffle_buffer), len(pairs)), seed=seed,
                        reshuffle_each_iteration=True)
    if training:
        rnd = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, rnd)).map(
            lambda paths, r: (paths[0], paths[1], r))
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
    ds.num_files = len(pairs)
    return ds
