"""Generated images as files: what ``oasis-generate`` writes.

``write_generation(pipeline, label_maps, output_dir, ...)`` makes the images of every
label map with an ``OASISPipeline`` (samples, one per seed; local editing of chosen
classes; a noise interpolation strip) and writes them, the colourised label maps beside
them, a grid per label map, ``grid.png`` and ``generation.json``.
``dataset_label_maps`` gives the label maps of a data set split.
"""

import json
import os

import numpy as np
from PIL import Image

from oasis_tf.images import make_grid


def dataset_label_maps(layout, root, image_size, split="val", num_classes=None,
                       max_images=None, label_mapping=None, val_fraction=None):
    """(name, int32 [H, W]) pairs of a dataset split, resized as in evaluation.

    ``label_mapping`` / ``val_fraction``: an own data set's, as its run read it
    (``oasis_tf.data.dataset_options(config)``)."""
    from oasis_tf.data import load_dataset, readers
    from oasis_tf.data.pipeline import default_synthetic_root

    ds = load_dataset(layout, root, split=split, image_size=image_size, batch_size=1,
                      training=False, num_classes=num_classes, label_mapping=label_mapping,
                      val_fraction=val_fraction)
    if layout == "synthetic" and root is None:
        root = default_synthetic_root()
    names = [os.path.splitext(os.path.basename(p[1]))[0]
             for p in readers.list_pairs(layout, root, split, val_fraction=val_fraction)]
    out = []
    for name, batch in zip(names, ds):
        out.append((name, batch["label"][0].numpy().astype(np.int32)))
        if max_images is not None and len(out) >= max_images:
            break
    return out


def _save(path, image):
    Image.fromarray(np.asarray(image, np.uint8)).save(path)
    return path


def write_generation(pipeline, label_maps, output_dir, seeds=(0,), resample_classes=None,
                     base_seed=0, interpolate=None, steps=8, interp_mode="slerp"):
    """Generate with ``pipeline`` (an ``OASISPipeline``) for every (name, label [H, W])
    and write the files.

    Per label map ``<name>``: ``<name>_label.png`` (colourised) and

    * default: ``<name>_s<seed>.png`` per seed;
    * ``resample_classes``: ``<name>_base_s<base_seed>.png`` and
      ``<name>_resample_s<seed>.png`` per seed;
    * ``interpolate=(a, b)``: ``<name>_interp_<a>_<b>.png`` (a strip of ``steps``);

    and ``<name>_grid.png`` (label, then the images). The folder also gets
    ``grid.png`` (one row per label map) and ``generation.json``.

    Returns:
        The manifest dict written to ``generation.json``.
    """
    os.makedirs(output_dir, exist_ok=True)
    seeds = [int(s) for s in seeds]
    mode = ("interpolate" if interpolate is not None
            else "resample" if resample_classes else "sample")
    manifest = {"mode": mode, "seeds": seeds, "num_classes": pipeline.num_classes,
                "dataset": pipeline.dataset, "class_names": list(pipeline.class_names),
                "image_size": list(pipeline.image_size), "items": []}
    if mode == "resample":
        manifest.update(resample_classes=[int(c) for c in resample_classes],
                        base_seed=int(base_seed))
    if mode == "interpolate":
        manifest.update(interpolate=[int(s) for s in interpolate], steps=int(steps),
                        interp_mode=interp_mode)
    grid_rows = []
    for name, label in label_maps:
        label = np.asarray(label, np.int32)
        colour = pipeline.colorize(label)
        item = {"name": name, "label": _save(os.path.join(output_dir, f"{name}_label.png"),
                                             colour), "images": []}
        if mode == "sample":
            images = pipeline.generate(label, seeds)
            files = [os.path.join(output_dir, f"{name}_s{s}.png") for s in seeds]
        elif mode == "resample":
            base = pipeline.generate(label, [base_seed])
            edited = pipeline.resample(label, base_seed, resample_classes, seeds)
            images = np.concatenate([base, edited])
            files = ([os.path.join(output_dir, f"{name}_base_s{base_seed}.png")]
                     + [os.path.join(output_dir, f"{name}_resample_s{s}.png") for s in seeds])
        else:
            a, b = (int(s) for s in interpolate)
            images = pipeline.interpolate(label, a, b, steps, interp_mode)
            strip = make_grid([list(images)], pad=0)
            files = []
            item["strip"] = _save(os.path.join(output_dir, f"{name}_interp_{a}_{b}.png"), strip)
        for path, image in zip(files, images):
            item["images"].append(_save(path, image))
        row = [colour] + list(images)
        item["grid"] = _save(os.path.join(output_dir, f"{name}_grid.png"), make_grid([row]))
        grid_rows.append(row)
        manifest["items"].append(item)
    if grid_rows:
        manifest["grid"] = _save(os.path.join(output_dir, "grid.png"), make_grid(grid_rows))
    with open(os.path.join(output_dir, "generation.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest
