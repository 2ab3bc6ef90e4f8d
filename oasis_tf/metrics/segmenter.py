"""A small segmentation network for the synthetic data set: the mIoU segmenter of the demo.

    seg = get_synthetic_segmenter("data/synthetic", image_size=(64, 64))
    ids = seg(images)                 # [-1, 1] float (or uint8) [B, H, W, 3] -> int64 [B, H, W]
    seg.val_miou                      # its mIoU on the real validation images

Published OASIS mIoU uses large pretrained segmenters (UperNet for ADE20K,
DRN-D-105 for Cityscapes, DeepLabV2 for COCO-Stuff). The synthetic data set
has none, so a tiny U-Net (two poolings, ~0.1M parameters at width 16) is trained
on its real training images: a minute or two on a CPU, a few seconds on a GPU.
It is cached as a ``.keras`` file next to the data, keyed by the data set's
parameters (``oasis_synthetic.json``), the image size and the training
settings; a sidecar ``.json`` keeps its mIoU on the real validation images
(printed on every load), the ceiling for the mIoU of generated images.

Only standard Keras layers are used, so the file loads without oasis_tf.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np

from oasis_tf.images import to_float as _to_float
from oasis_tf.metrics.miou import MeanIoUAccumulator

SEGMENTER_VERSION = 1


def build_segmenter(num_classes, image_size=(64, 64), width=16, seed=0):
    """A tiny U-Net: [B, H, W, 3] in [-1, 1] -> logits [B, H, W, num_classes] (H, W multiples of 4)."""
    import keras
    from keras import layers

    h, w = (int(s) for s in image_size)
    if h % 4 or w % 4:
        raise ValueError(f"the segmenter needs an image size divisible by 4; got {h}x{w}")
    counter = [seed * 1000]

    def init():
        counter[0] += 1
        return keras.initializers.HeNormal(seed=counter[0])

    def conv(x, ch, k=3, name=None):
        return layers.Conv2D(ch, k, padding="same", activation="relu", kernel_initializer=init(), name=name)(x)

    inp = keras.Input((h, w, 3), name="image")
    s1 = conv(conv(inp, width), width)                                  # H
    x = layers.MaxPooling2D()(s1)
    s2 = conv(conv(x, 2 * width), 2 * width)                            # H/2
    x = layers.MaxPooling2D()(s2)
    x = conv(conv(x, 4 * width), 4 * width)                             # H/4
    x = layers.UpSampling2D(interpolation="bilinear")(x)
    x = conv(layers.Concatenate()([x, s2]), 2 * width)
    x = layers.UpSampling2D(interpolation="bilinear")(x)
    x = conv(layers.Concatenate()([x, s1]), width)
    out = layers.Conv2D(int(num_classes), 1, kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                        name="logits")(x)
    return keras.Model(inp, out, name="synthetic_segmenter")


class SyntheticSegmenter:
    """Callable images -> class ids (int64 [B, H, W]) around the Keras model.

    Attributes: ``model``, ``path`` (the cached ``.keras``), ``val_miou``,
    ``val_per_class_iou``, ``chance_miou`` (mIoU of always predicting the most
    frequent training class), ``description``.
    """

    def __init__(self, model, path=None, val_miou=None, val_per_class_iou=None, chance_miou=None, info=None):
        self.model = model
        self.path = None if path is None else os.fspath(path)
        self.val_miou = val_miou
        self.val_per_class_iou = val_per_class_iou
        self.chance_miou = chance_miou
        self.info = dict(info or {})
        self._predict = None

    @property
    def description(self):
        text = "synthetic U-Net segmenter"
        if self.val_miou is not None:
            text += f" (mIoU {self.val_miou:.3f} on real val images)"
        return text

    def logits(self, images, batch_size=64):
        import tensorflow as tf

        if self._predict is None:
            model = self.model
            self._predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        x = _to_float(images)
        return np.concatenate([np.asarray(self._predict(x[i:i + batch_size]))
                               for i in range(0, len(x), batch_size)]) if len(x) else np.zeros((0,))

    def __call__(self, images):
        return np.argmax(self.logits(images), axis=-1).astype(np.int64)


def load_split_arrays(root, split, image_size, num_classes, layout="ade20k"):
    """(images float32 [N, H, W, 3] in [-1, 1], labels int32 [N, H, W]) of a split, via `load_dataset`."""
    from oasis_tf.data import load_dataset

    ds = load_dataset(layout, root, split=split, image_size=image_size, batch_size=64, training=False,
                      num_classes=num_classes)
    images, labels = [], []
    for batch in ds:
        images.append(batch["image"].numpy())
        labels.append(batch["label"].numpy())
    if not images:
        raise ValueError(f"no {split} images in {root}")
    return np.concatenate(images), np.concatenate(labels).astype(np.int32)


def train_segmenter(images, labels, num_classes, steps=500, batch_size=16, width=16, seed=0,
                    learning_rate=2e-3, ignore_index=0, log=None):
    """Trains `build_segmenter` on arrays (random batches with horizontal flips, Adam,
    cross-entropy with sqrt-inverse-frequency class weights, ``ignore_index`` pixels
    left out); returns the model."""
    import keras
    import tensorflow as tf

    images = _to_float(images)
    labels = np.asarray(labels, np.int32)
    n, h, w = labels.shape
    model = build_segmenter(num_classes, (h, w), width=width, seed=seed)
    counts = np.bincount(labels.reshape(-1), minlength=num_classes).astype(np.float64)
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        counts[ignore_index] = 0
    present = counts > 0
    class_w = np.zeros(num_classes)
    class_w[present] = 1.0 / np.sqrt(counts[present] / counts.sum())
    class_w /= (class_w * counts).sum() / counts.sum()  # mean weight 1 over the counted pixels
    class_w = tf.constant(class_w, tf.float32)
    steps_total = max(int(steps), 1)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps_total, alpha=0.05)
    optimizer = keras.optimizers.Adam(schedule)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            weight = tf.gather(class_w, y)
            loss = tf.reduce_sum(ce * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    rng = np.random.default_rng(seed)
    bs = min(int(batch_size), n)
    start = time.time()
    for i in range(steps_total):
        idx = rng.choice(n, bs, replace=False)
        x, y = images[idx], labels[idx]
        flip = rng.random(bs) < 0.5
        x[flip] = x[flip, :, ::-1]
        y[flip] = y[flip, :, ::-1]
        loss = step(tf.constant(x), tf.constant(y))
        if log is not None and (i + 1) % max(steps_total // 5, 1) == 0:
            log(f"segmenter step {i + 1}/{steps_total}: loss {float(loss):.4f} ({time.time() - start:.1f} s)")
    return model


def evaluate_segmenter(segmenter, images, labels, num_classes, ignore_index=0):
    """(miou, per_class) of a segmenter callable on real images."""
    acc = MeanIoUAccumulator(num_classes, ignore_index)
    for i in range(0, len(images), 64):
        acc.update(segmenter(images[i:i + 64]), np.asarray(labels[i:i + 64]))
    return acc.result()


def _chance_miou(train_labels, val_labels, num_classes, ignore_index=0):
    counts = np.bincount(np.asarray(train_labels).reshape(-1), minlength=num_classes)
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        counts[ignore_index] = 0
    majority = int(np.argmax(counts))
    acc = MeanIoUAccumulator(num_classes, ignore_index)
    acc.update(np.full_like(val_labels, majority), val_labels)
    return acc.result()[0]


def _dataset_key(root):
    marker = os.path.join(os.fspath(root), "oasis_synthetic.json")
    try:
        with open(marker, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        pass
    listing = []
    for sub in ("images", "annotations"):
        for dirpath, _, files in sorted(os.walk(os.path.join(os.fspath(root), sub))):
            for name in sorted(files):
                st = os.stat(os.path.join(dirpath, name))
                listing.append((os.path.relpath(os.path.join(dirpath, name), os.fspath(root)), st.st_size))
    return {"files": listing}


def _nan_list(values):
    return [None if not np.isfinite(v) else float(v) for v in values]


def get_synthetic_segmenter(data_root, image_size=(64, 64), cache_dir=None, steps=500, batch_size=16,
                            width=16, seed=0, num_classes=None, retrain=False, verbose=True,
                            max_train_images=None):
    """The synthetic data set's segmenter: loaded from the cache or trained and cached.

    Args:
        data_root: the synthetic data set (ADE20K layout, written by
            ``write_synthetic_dataset`` / ``load_dataset("synthetic", ...)``).
        image_size: (H, W) the segmenter works at (the generator's size; multiple of 4).
        cache_dir: where the ``.keras`` goes (default: ``data_root``).
        steps, batch_size, width, seed: training settings (part of the cache key).
        num_classes: default: the data set's (``oasis_synthetic.json``), else 12.
        retrain: ignore a cached model.
        verbose: print the training progress and the validation mIoU.
        max_train_images: train on at most this many images (part of the key).

    Returns:
        a `SyntheticSegmenter` (callable images -> int64 class ids) with ``val_miou``
        and ``chance_miou`` set.
    """
    import keras

    from oasis_tf.data.synthetic_scenes import NUM_CLASSES

    log = print if verbose else (lambda *_: None)
    root = os.fspath(data_root)
    size = (int(image_size[0]), int(image_size[1])) if not isinstance(image_size, int) else (image_size,) * 2
    dataset_params = _dataset_key(root)
    if num_classes is None:
        num_classes = int(dataset_params.get("num_classes", NUM_CLASSES))
    key_src = json.dumps({"version": SEGMENTER_VERSION, "data": dataset_params, "size": size,
                          "steps": int(steps), "batch_size": int(batch_size), "width": int(width),
                          "seed": int(seed), "num_classes": int(num_classes),
                          "max_train_images": max_train_images}, sort_keys=True)
    key = hashlib.sha1(key_src.encode()).hexdigest()[:12]
    folder = os.fspath(cache_dir) if cache_dir is not None else root
    path = os.path.join(folder, f"segmenter-{size[0]}x{size[1]}-{key}.keras")
    meta_path = path[: -len(".keras")] + ".json"

    if not retrain and os.path.isfile(path) and os.path.isfile(meta_path):
        try:
            model = keras.saving.load_model(path, compile=False)
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
            seg = SyntheticSegmenter(model, path, meta.get("val_miou"), meta.get("val_per_class_iou"),
                                     meta.get("chance_miou"), meta)
            log(f"synthetic segmenter: loaded {path}; mIoU on the real validation images "
                f"{seg.val_miou:.3f} (majority-class baseline {seg.chance_miou:.3f})")
            return seg
        except Exception as exc:  # noqa: BLE001 - a broken cache is retrained
            log(f"synthetic segmenter: cached {path} unusable ({exc}); retraining")

    train_x, train_y = load_split_arrays(root, "train", size, num_classes)
    if max_train_images is not None:
        train_x, train_y = train_x[:max_train_images], train_y[:max_train_images]
    val_x, val_y = load_split_arrays(root, "val", size, num_classes)
    log(f"synthetic segmenter: training a tiny U-Net on {len(train_x)} real training images "
        f"({size[0]}x{size[1]}, {steps} steps)")
    start = time.time()
    model = train_segmenter(train_x, train_y, num_classes, steps=steps, batch_size=batch_size, width=width,
                            seed=seed, log=log)
    train_time = time.time() - start
    seg = SyntheticSegmenter(model, path)
    miou, per_class = evaluate_segmenter(seg, val_x, val_y, num_classes)
    chance = _chance_miou(train_y, val_y, num_classes)
    train_miou, _ = evaluate_segmenter(seg, train_x[:256], train_y[:256], num_classes)
    meta = {"val_miou": float(miou), "val_per_class_iou": _nan_list(per_class), "chance_miou": float(chance),
            "train_miou": float(train_miou), "num_train": int(len(train_x)), "num_val": int(len(val_x)),
            "train_time_s": round(train_time, 2), "key": json.loads(key_src)}
    seg.val_miou, seg.val_per_class_iou, seg.chance_miou, seg.info = meta["val_miou"], meta[
        "val_per_class_iou"], meta["chance_miou"], meta
    log(f"synthetic segmenter: mIoU on the {len(val_x)} real validation images {miou:.3f} "
        f"(train {train_miou:.3f}; majority-class baseline {chance:.3f}); trained in {train_time:.1f} s")
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".partial-{os.getpid()}-{os.path.basename(path)}")
        model.save(tmp)
        os.replace(tmp, path)
        with open(meta_path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1)
        os.replace(meta_path + ".tmp", meta_path)
        log(f"synthetic segmenter: cached as {path}")
    except OSError as exc:
        log(f"synthetic segmenter: could not cache it in {folder}: {exc}")
    return seg


def load_segmenter(spec, layout, data_root, image_size, num_classes, steps=500):
    """The mIoU segmenter a text spec names (the ``--segmenter`` of the tools), or None.

    Args:
        spec: a SavedModel folder (returned as its path, loaded by `segment_with`),
            a ``.keras`` model file, "synthetic" (the cached tiny U-Net of the
            synthetic data set, `get_synthetic_segmenter`), "none", or "auto"
            (synthetic for the synthetic layout, else none).
        layout: the data set layout ("synthetic", "ade20k", ...).
        data_root: the data set folder (where the synthetic segmenter is cached).
        image_size: (H, W) of the images to segment.
        num_classes: class count incl. don't-care.
        steps: training steps of the synthetic segmenter.
    """
    text = (spec or "none").strip()
    if text.lower() == "auto":
        text = "synthetic" if layout == "synthetic" else "none"
    if text.lower() == "none":
        return None
    if text.lower() == "synthetic":
        if layout not in ("synthetic", "ade20k"):
            raise ValueError(f"segmenter 'synthetic' works with the synthetic data set only, not {layout!r}")
        return get_synthetic_segmenter(data_root, image_size=image_size, steps=steps, num_classes=num_classes)
    if text.endswith(".keras"):
        import keras

        if not os.path.isfile(text):
            raise FileNotFoundError(f"segmenter {text}: no such .keras file")
        return keras.saving.load_model(text, compile=False)
    if not os.path.isdir(text):
        raise FileNotFoundError(f"segmenter {text}: no SavedModel folder there (expected a SavedModel "
                                "folder, a .keras file, synthetic, auto or none)")
    return text
