"""A procedural "outdoor scene" data set: label maps and images, no download.

Every example is made from a seed (the scenes: `oasis_tf.data.synthetic_scenes`).
`write_synthetic_dataset` writes a split pair in the ADE20K layout
(`images/{training,validation}/*.png`, `annotations/{training,validation}/*.png`
with class ids as 8-bit values), so the ADE20K reader is what reads it, and a marker
file with its parameters; `resolve_options` decides which parameters a data set is
read with (an existing one as it is).

Only numpy and PIL are used; 400 images of 64x64 take about a second.
"""

from __future__ import annotations

import json
import os

from PIL import Image

from oasis_tf.data.synthetic_scenes import CLASS_NAMES, NUM_CLASSES, make_example

MARKER_FILE = "oasis_synthetic.json"
_FORMAT_VERSION = 1
_SPLITS = (("training", 0), ("validation", 1))


# ---------------------------------------------------------------------------
# Writing the data set.


# The one set of defaults of the synthetic data set (the demo's and the training pipeline's);
# `size` None: the largest side of the image size it is read at.
DEFAULT_OPTIONS = {"num_train": 1000, "num_val": 100, "size": None, "seed": 0}


def stored_options(root):
    """The parameters (num_train, num_val, size, seed) of the synthetic data set in
    ``root``, read from its marker file; None when ``root`` holds none (no marker, or
    one of another format or version)."""
    try:
        with open(os.path.join(os.fspath(root), MARKER_FILE), encoding="utf-8") as f:
            stored = json.load(f)
        if stored.get("format") != "oasis_tf.synthetic" or \
                stored.get("version") != _FORMAT_VERSION:
            return None
        return {k: int(stored[k]) for k in DEFAULT_OPTIONS}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def resolve_options(image_size=(64, 64), options=None, root=None) -> dict:
    """The `write_synthetic_dataset` arguments for reading the synthetic data set.

    Without ``options``, a synthetic data set already in ``root`` is read as it is
    (its own parameters: it is never rewritten with other ones); else
    `DEFAULT_OPTIONS` updated with ``options``, ``size`` defaulting to
    ``max(image_size)``. Unknown keys raise ValueError.

    Args:
        image_size: (H, W) the data set is read at.
        options: a dict of num_train, num_val, size, seed (any subset) or None.
        root: the data set's folder, or None.
    """
    if options is None and root is not None:
        stored = stored_options(root)
        if stored is not None:
            return stored
    opts = dict(DEFAULT_OPTIONS)
    opts.update(options or {})
    unknown = set(opts) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ValueError(f"unknown synthetic_options {sorted(unknown)}; known: {sorted(DEFAULT_OPTIONS)}")
    if opts["size"] is None:
        opts["size"] = max(int(s) for s in image_size)
    return opts


def _params(num_train, num_val, size, seed):
    return {"format": "oasis_tf.synthetic", "version": _FORMAT_VERSION,
            "num_train": int(num_train), "num_val": int(num_val), "size": int(size),
            "seed": int(seed), "num_classes": NUM_CLASSES, "class_names": list(CLASS_NAMES)}


def _file_name(index):
    return f"synthetic_{index:06d}"


def synthetic_dataset_complete(root, num_train=DEFAULT_OPTIONS["num_train"], num_val=DEFAULT_OPTIONS["num_val"],
                               size=64, seed=DEFAULT_OPTIONS["seed"]) -> bool:
    """Whether `root` holds a complete synthetic data set with these parameters."""
    marker = os.path.join(root, MARKER_FILE)
    try:
        with open(marker) as f:
            stored = json.load(f)
    except (OSError, ValueError):
        return False
    if stored != _params(num_train, num_val, size, seed):
        return False
    for split, count in (("training", num_train), ("validation", num_val)):
        for sub, in_dir in (("images", True), ("annotations", False)):
            folder = os.path.join(root, sub, split)
            if not os.path.isdir(folder):
                return False
            names = {n for n in os.listdir(folder) if n.startswith("synthetic_")}
            if len(names) != count:
                return False
    return True


def write_synthetic_dataset(root, num_train=DEFAULT_OPTIONS["num_train"], num_val=DEFAULT_OPTIONS["num_val"],
                            size=64, seed=DEFAULT_OPTIONS["seed"]) -> str:
    """Writes the synthetic data set under `root` in the ADE20K layout.

    `images/{training,validation}/synthetic_NNNNNN.png` (RGB) and
    `annotations/{training,validation}/synthetic_NNNNNN.png` (class ids as
    8-bit grey values, 0 = don't care), plus `oasis_synthetic.json` recording
    the parameters. Idempotent: returns at once when `root` already holds a
    complete data set with the same parameters; otherwise (re)writes it,
    removing stale `synthetic_*` files. Example `i` of a split depends only on
    (seed, split, i, size), not on the counts.

    Returns:
        `root`.
    """
    if num_train < 0 or num_val < 0 or size < 8:
        raise ValueError(f"write_synthetic_dataset: need num_train, num_val >= 0 and "
                         f"size >= 8. Received: num_train={num_train}, num_val={num_val}, "
                         f"size={size}")
    root = os.fspath(root)
    if synthetic_dataset_complete(root, num_train, num_val, size, seed):
        return root
    marker = os.path.join(root, MARKER_FILE)
    if os.path.exists(marker):
        os.remove(marker)
    for split, split_id in _SPLITS:
        count = num_train if split == "training" else num_val
        img_dir = os.path.join(root, "images", split)
        ann_dir = os.path.join(root, "annotations", split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        keep = {_file_name(i) + ".png" for i in range(count)}
        for folder in (img_dir, ann_dir):
            for name in os.listdir(folder):
                if name.startswith("synthetic_") and name not in keep:
                    os.remove(os.path.join(folder, name))
        for i in range(count):
            image, label = make_example(seed, i, split_id, size)
            name = _file_name(i) + ".png"
            Image.fromarray(image, "RGB").save(os.path.join(img_dir, name), compress_level=1)
            Image.fromarray(label, "L").save(os.path.join(ann_dir, name), compress_level=1)
    tmp = marker + ".tmp"
    with open(tmp, "w") as f:
        json.dump(_params(num_train, num_val, size, seed), f, indent=1)
    os.replace(tmp, marker)
    return root
