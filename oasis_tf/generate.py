"""Generation from label maps: the library behind ``oasis-generate``.

Every image here comes from ``oasis_tf.inference.generate`` (the function the
SavedModel signatures run too), with noise built by ``inference.seeded_noise``,
``inference.resample_class_noise`` or ``inference.interpolate_noise``:

* ``sample_images``: N samples of one label map, one per seed (seed ``s`` gives the
  same image as the SavedModel's ``serving_default`` with seed ``s``);
* ``resample_images``: local editing. The base noise of ``base_seed`` is kept on
  every pixel except those of the chosen classes, where new noise is drawn per
  seed (a per-pixel noise map [B, H, W, z_dim]);
* ``interpolate_images``: a strip from the noise of one seed to another's (the
  end points are exactly the two seeds' samples).

``write_generation`` runs one of these over label maps (a PNG, a folder of PNGs or
a dataset split) and writes the images, colourised label maps beside them, a grid
per label map, an overall ``grid.png`` and ``generation.json``.
"""

import json
import os

import numpy as np
from PIL import Image

from oasis_tf import inference
from oasis_tf.images import (class_names_for, colorize, list_label_pngs, make_grid, palette_for,
                             read_label_image, read_label_png)
from oasis_tf.loading import load_generator  # the one loader: (generator, info)

__all__ = ["load_generator", "read_label_png", "read_label_image", "list_label_pngs",
           "dataset_label_maps",
           "sample_images", "resample_noise", "resample_images", "interpolate_images", "make_grid",
           "colorize", "palette_for", "class_names_for", "write_generation"]


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


# --------------------------------------------------------------- generation
def _batched(fn, n, batch_size):
    parts = [fn(i, min(n, i + batch_size)) for i in range(0, n, max(1, int(batch_size)))]
    return np.concatenate(parts, axis=0)


def sample_images(generator, label, seeds, batch_size=8):
    """uint8 [len(seeds), H, W, 3]: one sample of ``label`` [H, W] per seed."""
    seeds = np.asarray(seeds, np.int64).reshape(-1)
    label = np.asarray(label, np.int32)

    def run(a, b):
        labels = np.broadcast_to(label, (b - a,) + label.shape)
        return inference.generate(generator, labels, seed=seeds[a:b]).numpy()

    return _batched(run, len(seeds), batch_size)


def resample_noise(generator, label, base_seed, classes, seeds):
    """float32 [len(seeds), H, W, z_dim]: ``base_seed``'s noise, redrawn per seed on
    the pixels of ``classes`` (``inference.resample_class_noise``)."""
    seeds = np.asarray(seeds, np.int64).reshape(-1)
    label = np.asarray(label, np.int32)
    labels = np.broadcast_to(label, (len(seeds),) + label.shape)
    base = inference.seeded_noise(np.full([len(seeds)], base_seed, np.int64), generator.z_dim)
    return inference.resample_class_noise(base, labels, classes, seeds).numpy()


def resample_images(generator, label, base_seed, classes, seeds, batch_size=8):
    """uint8 [len(seeds), H, W, 3]: local editing of ``label``'s sample ``base_seed``.

    Outside the pixels of ``classes`` the noise is the base sample's; the image
    still changes a little there (the generator's receptive field spreads).
    """
    noise = resample_noise(generator, label, base_seed, classes, seeds)
    label = np.asarray(label, np.int32)

    def run(a, b):
        labels = np.broadcast_to(label, (b - a,) + label.shape)
        return inference.generate(generator, labels, noise=noise[a:b]).numpy()

    return _batched(run, len(noise), batch_size)


def interpolate_images(generator, label, seed_a, seed_b, steps, mode="slerp", batch_size=8):
    """uint8 [steps, H, W, 3]: noise interpolated from ``seed_a`` to ``seed_b``."""
    z = inference.seeded_noise(np.array([seed_a, seed_b], np.int64), generator.z_dim)
    noise = inference.interpolate_noise(z[0], z[1], steps, mode=mode).numpy()
    label = np.asarray(label, np.int32)

    def run(a, b):
        labels = np.broadcast_to(label, (b - a,) + label.shape)
        return inference.generate(generator, labels, noise=noise[a:b]).numpy()

    return _batched(run, len(noise), batch_size)


def _save(path, image):
    Image.fromarray(np.asarray(image, np.uint8)).save(path)
    return path


def write_generation(generator, label_maps, output_dir, seeds=(0,), resample_classes=None,
                     base_seed=0, interpolate=None, steps=8, interp_mode="slerp",
                     palette=None, batch_size=8):
    """Generate for every (name, label [H, W]) and write the files.

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
    palette = palette_for(generator, palette=palette)
    seeds = [int(s) for s in seeds]
    mode = ("interpolate" if interpolate is not None
            else "resample" if resample_classes else "sample")
    manifest = {"mode": mode, "seeds": seeds, "num_classes": int(generator.num_classes),
                "dataset": getattr(generator, "dataset", None),
                "class_names": class_names_for(generator),
                "image_size": list(generator.image_size), "items": []}
    if mode == "resample":
        manifest.update(resample_classes=[int(c) for c in resample_classes],
                        base_seed=int(base_seed))
    if mode == "interpolate":
        manifest.update(interpolate=[int(s) for s in interpolate], steps=int(steps),
                        interp_mode=interp_mode)
    grid_rows = []
    for name, label in label_maps:
        label = np.asarray(label, np.int32)
        colour = colorize(label, palette)
        item = {"name": name, "label": _save(os.path.join(output_dir, f"{name}_label.png"),
                                             colour), "images": []}
        if mode == "sample":
            images = sample_images(generator, label, seeds, batch_size)
            files = [os.path.join(output_dir, f"{name}_s{s}.png") for s in seeds]
        elif mode == "resample":
            base = sample_images(generator, label, [base_seed], batch_size)
            edited = resample_images(generator, label, base_seed, resample_classes, seeds,
                                     batch_size)
            images = np.concatenate([base, edited])
            files = ([os.path.join(output_dir, f"{name}_base_s{base_seed}.png")]
                     + [os.path.join(output_dir, f"{name}_resample_s{s}.png") for s in seeds])
        else:
            a, b = (int(s) for s in interpolate)
            images = interpolate_images(generator, label, a, b, steps, interp_mode, batch_size)
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
