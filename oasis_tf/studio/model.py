"""The studio's model: one object that generates, resamples and interpolates.

``StudioModel.load(path)`` takes what ``oasis_tf.loading.load_generator`` takes (a
run folder, a ``generator.keras``, an official ``.pth`` with ``image_size``) and,
for an export version folder, the SavedModel itself: its ``serving_default``
signature makes the images of a seed and ``generate_with_noise`` those of a
noise map, so the studio shows exactly what TF Serving returns. Keras generators
go through ``oasis_tf.inference.generate``. Noise for region resampling and
interpolation comes from ``inference.resample_class_noise`` /
``inference.interpolate_noise`` (via ``oasis_tf.generate.resample_noise``).

No Gradio here: the app (``oasis_tf.studio.app``) and the tests use this class.
"""

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from oasis_tf import images, inference

__all__ = ["StudioModel", "newest_run", "canvas_scale"]


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


class StudioModel:
    """A generator with its class names and palette, as the studio needs it.

    Attributes: ``num_classes``, ``image_size`` (H, W), ``z_dim``, ``class_names``,
    ``palette`` (uint8 [C, 3]), ``dataset`` (or None), ``source`` (what was loaded).

    Args:
        from_seeds: ``fn(label int32 [B, H, W], seed int64 [B]) -> uint8 [B, H, W, 3]``.
        from_noise: ``fn(label, noise float32 [B, H, W, z_dim]) -> uint8 images``.
    """

    def __init__(self, from_seeds, from_noise, num_classes, image_size, z_dim,
                 class_names=None, palette=None, dataset=None, source=None):
        self.num_classes = int(num_classes)
        self.image_size = tuple(int(s) for s in image_size)
        self.z_dim = int(z_dim)
        self.dataset = dataset
        self.class_names = images.class_names_for(self.num_classes, dataset, class_names)
        self.palette = images.palette_for(self.num_classes, dataset, palette)
        self.source = source
        self._from_seeds = from_seeds
        self._from_noise = from_noise

    # ------------------------------------------------------------- loading
    @classmethod
    def from_generator(cls, generator, source=None):
        """A Keras ``OASISGenerator``, run through ``inference.generate``."""
        @tf.function(reduce_retracing=True)
        def from_seeds(label, seed):
            return inference.generate(generator, label, seed=seed)

        @tf.function(reduce_retracing=True)
        def from_noise(label, noise):
            return inference.generate(generator, label, noise=noise)

        return cls(from_seeds, from_noise, generator.num_classes, generator.image_size,
                   generator.z_dim, class_names=images.class_names_for(generator),
                   palette=images.palette_for(generator),
                   dataset=getattr(generator, "dataset", None), source=source)

    @classmethod
    def from_export(cls, version_dir):
        """An ``export_saved_model`` folder, run through its signatures."""
        from oasis_tf.export import read_export_metadata

        meta = read_export_metadata(version_dir)
        loaded = tf.saved_model.load(os.fspath(version_dir))
        serve = loaded.signatures["serving_default"]
        with_noise = loaded.signatures["generate_with_noise"]

        def from_seeds(label, seed):
            return serve(label_map=tf.constant(label, tf.int32),
                         seed=tf.constant(seed, tf.int64))["image"]

        def from_noise(label, noise):
            return with_noise(label_map=tf.constant(label, tf.int32),
                              noise=tf.constant(noise, tf.float32))["image"]

        model = cls(from_seeds, from_noise, meta["num_classes"], meta["image_size"],
                    meta["z_dim"], class_names=meta.get("class_names"),
                    palette=meta.get("palette"), dataset=meta.get("dataset"),
                    source=f"export {version_dir}")
        model._loaded = loaded  # keep the SavedModel alive with its signatures
        return model

    @classmethod
    def load(cls, path, image_size=None, z_dim=None, num_classes=None):
        """Whatever ``--model`` names (see the module docstring)."""
        p = Path(path)
        if p.is_dir() and (p / "saved_model.pb").exists():
            return cls.from_export(p)
        from oasis_tf.loading import load_generator

        generator, info = load_generator(p, image_size=image_size, z_dim=z_dim,
                                         num_classes=num_classes)
        return cls.from_generator(generator, source=info.get("source"))

    # ----------------------------------------------------------- generation
    def _labels(self, label, n):
        label = np.asarray(label, np.int32)
        if label.shape != self.image_size:
            raise ValueError(f"the label map is {label.shape[0]}x{label.shape[1]}; the model "
                             f"works on {self.image_size[0]}x{self.image_size[1]}")
        return np.ascontiguousarray(np.broadcast_to(label, (n,) + label.shape))

    def generate(self, label, seeds):
        """uint8 [len(seeds), H, W, 3]: ``label`` [H, W] with each seed (exactly the
        ``serving_default`` images of an export of this generator)."""
        seeds = np.asarray(seeds, np.int64).reshape(-1)
        return np.asarray(self._from_seeds(self._labels(label, len(seeds)), seeds))

    def resample(self, label, base_seed, classes, seeds):
        """uint8 [len(seeds), H, W, 3]: ``base_seed``'s sample with new noise (one per
        seed) on the pixels of ``classes`` only."""
        from oasis_tf.generate import resample_noise

        seeds = np.asarray(seeds, np.int64).reshape(-1)
        noise = resample_noise(self, np.asarray(label, np.int32), int(base_seed),
                               [int(c) for c in classes], seeds)
        return np.asarray(self._from_noise(self._labels(label, len(seeds)), noise))

    def interpolate(self, label, seed_a, seed_b, steps=8, mode="slerp"):
        """uint8 [steps, H, W, 3]: noise from ``seed_a``'s to ``seed_b``'s (both ends
        are exactly those seeds' samples)."""
        z = inference.seeded_noise(np.array([seed_a, seed_b], np.int64), self.z_dim)
        noise = inference.noise_map(inference.interpolate_noise(z[0], z[1], steps, mode=mode),
                                    self.image_size)
        return np.asarray(self._from_noise(self._labels(label, int(steps)), noise))

    # --------------------------------------------------------- label maps
    def read_label(self, path, resize=False):
        """int32 [H, W] from a class-id PNG or an image colour-coded in the palette."""
        return images.read_label_image(path, self.num_classes, self.image_size, resize=resize,
                                       palette=self.palette, class_names=self.class_names)

    def colorize(self, label, scale=1):
        """uint8 [H*scale, W*scale, 3]: the label map in the palette's colours."""
        return images.upscale(images.colorize(label, self.palette), scale)

    def label_from_canvas(self, rgba, scale):
        """Class ids [H, W] of a painted canvas [H*scale, W*scale, 3 or 4].

        Each pixel snaps to the nearest palette colour (brush strokes have blended,
        anti-aliased edges); fully transparent pixels are class 0. The label of a
        cell is that of its centre pixel.
        """
        arr = np.asarray(rgba)
        if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
            raise ValueError(f"the canvas must be an RGB(A) image; got shape {arr.shape}")
        h, w = self.image_size
        if arr.shape[:2] != (h * scale, w * scale):
            from PIL import Image

            mode = "RGBA" if arr.shape[-1] == 4 else "RGB"
            arr = np.asarray(Image.fromarray(arr.astype(np.uint8), mode).resize(
                (w * scale, h * scale), Image.NEAREST))
        centre = arr[scale // 2::scale, scale // 2::scale][:h, :w]
        label = images.labels_from_colors(centre[..., :3], self.palette, max_distance=None)
        if centre.shape[-1] == 4:
            label = np.where(centre[..., 3] == 0, 0, label)
        return label.astype(np.int32)

    def examples(self, count=6):
        """Up to ``count`` example label maps (name, int32 [H, W]): validation scenes of
        the synthetic data set for a synthetic model, else none."""
        if self.dataset not in (None, "synthetic") or self.num_classes != len(
                images.palettes.SYNTHETIC):
            return []
        from oasis_tf.data import synthetic

        out = []
        for i in range(int(count)):
            # the label maps of the data set's validation split (seed 0, split 1)
            label, _, _ = synthetic.generate_scene([0, 1, i, 0], self.image_size)
            out.append((f"val_{i:02d}", np.asarray(label, np.int32)))
        return out
