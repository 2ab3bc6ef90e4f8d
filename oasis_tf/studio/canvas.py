"""What the studio's page needs beyond the pipeline: the canvas and its example maps.

``label_from_canvas`` turns a painted canvas into class ids; ``example_label_maps``
gives a model's example maps; ``canvas_scale`` and ``newest_run`` size the canvas and
find the model to open. The images themselves come from
``oasis_tf.inference.OASISPipeline``, as everywhere.
"""

import logging
from pathlib import Path

import numpy as np

from oasis_tf import images

log = logging.getLogger("oasis_tf.studio")

def canvas_scale(image_size, target=512):
    """Integer enlargement of the canvas: the longer side near ``target`` pixels."""
    return max(1, int(target) // max(int(s) for s in image_size))


def newest_run(runs_dir, prefix="demo-"):
    """The newest ``<runs_dir>/<prefix>NNNN`` folder with a ``generator.keras``."""
    runs = Path(runs_dir)
    found = sorted(p for p in (runs.iterdir() if runs.is_dir() else ())
                   if p.name.startswith(prefix) and p.name[len(prefix):].isdigit()
                   and (p / "generator.keras").exists())
    if not found:
        raise FileNotFoundError(f"no finished {prefix}NNNN run (with generator.keras) in "
                                f"{runs}: run `make demo` first, or pass --model")
    return found[-1]


def label_from_canvas(pipeline, rgba, scale):
    """Class ids [H, W] of a canvas [H*scale, W*scale, 3 or 4] painted in the palette of
    ``pipeline`` (an ``OASISPipeline``).

    Each pixel snaps to the nearest palette colour (brush strokes have blended,
    anti-aliased edges); fully transparent pixels are class 0. The label of a
    cell is that of its centre pixel.
    """
    arr = np.asarray(rgba)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ValueError(f"the canvas must be an RGB(A) image; got shape {arr.shape}")
    h, w = pipeline.image_size
    if arr.shape[:2] != (h * scale, w * scale):
        from PIL import Image

        mode = "RGBA" if arr.shape[-1] == 4 else "RGB"
        arr = np.asarray(Image.fromarray(arr.astype(np.uint8), mode).resize(
            (w * scale, h * scale), Image.NEAREST))
    centre = arr[scale // 2::scale, scale // 2::scale][:h, :w]
    label = images.labels_from_colors(centre[..., :3], pipeline.palette, max_distance=None)
    if centre.shape[-1] == 4:
        label = np.where(centre[..., 3] == 0, 0, label)
    return label.astype(np.int32)


def example_label_maps(pipeline, count=6):
    """Up to ``count`` example label maps (name, int32 [H, W]): the synthetic data set's
    validation scenes for a synthetic model; else the validation label maps of the
    model's training run (its data set, read as the run read it) when the data set is
    there; else none."""
    if pipeline.dataset in (None, "synthetic") and pipeline.num_classes == len(
            images.palettes.SYNTHETIC):
        from oasis_tf.data.synthetic_scenes import generate_scene

        # the label maps of the data set's validation split (seed 0, split 1)
        return [(f"val_{i:02d}", np.asarray(generate_scene(
            [0, 1, i, 0], pipeline.image_size)[0], np.int32)) for i in range(int(count))]
    if pipeline.config_path is None:
        return []
    from oasis_tf.data.resolve import model_data
    from oasis_tf.inference import dataset_label_maps

    try:
        layout, root, options = model_data(pipeline.config_path)
        return dataset_label_maps(layout, root, pipeline.image_size, split="val",
                                  num_classes=pipeline.num_classes, max_images=count,
                                  **options)
    except (OSError, ValueError) as error:  # the data set moved: no examples, say why
        log.warning("studio: no example label maps from %s: %s", pipeline.config_path, error)
        return []
