"""``OASISPipeline``: the one object that makes images, whatever the model came as.

    pipe = OASISPipeline.from_pretrained("runs/synthetic-0001")   # or a .keras file, an
    images = pipe.generate(label, seeds=[0, 1, 2])                # official .pth, an export
    edited = pipe.resample(label, base_seed=0, classes=[3], seeds=[7, 8])
    strip = pipe.interpolate(label, seed_a=0, seed_b=1, steps=8)

Every front end calls it: ``oasis-generate``, the studio, the demo's figure, the
metrics' generation loop and the training's sample grids. A Keras generator runs
through ``ops.generate`` (the function the SavedModel signatures run); an export
runs through its own signatures (``serving_default`` for seeds, ``generate_with_noise``
for noise maps), exactly what TF Serving returns. Seed ``s`` is the noise
``noise.seeded_noise(s)`` everywhere, so it gives the same image through every front
end and through ``serving_default``. (Computed with another batch size, a value on a
uint8 rounding boundary can land one level off: TensorFlow's CPU kernels sum in an
order that depends on the problem size.)
"""

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from oasis_tf import images
from oasis_tf.inference import noise as noises
from oasis_tf.inference import ops


class OASISPipeline:
    """A generator with its class names and palette, and the verbs that make images.

    Build one with ``from_pretrained`` (anything a user has), ``from_generator`` (a
    Keras ``OASISGenerator``) or ``from_export`` (a SavedModel version folder).

    Attributes:
        num_classes, image_size (H, W), z_dim: the model's.
        class_names: ``num_classes`` names; palette: uint8 [num_classes, 3].
        dataset: the data set the model was trained on, or None.
        source: what was loaded (a file, a checkpoint, an export).
        config_path: the training run's ``config.yaml``, or None.
        generator: the Keras generator (None for an export).
        batch_size: images per generator call (None: as many as given).

    Args:
        from_seeds: ``fn(label int32 [B, H, W], seed int64 [B]) -> uint8 [B, H, W, 3]``.
        from_noise: ``fn(label, noise float32 [B, H, W, z_dim]) -> uint8 images``.
        num_classes, image_size, z_dim: the model's.
        class_names, palette: default: the generator's own, else its data set's.
        dataset, source, config_path, generator: as the attributes.
        batch_size: images per call of ``from_seeds`` / ``from_noise`` (None: all the
            images of a call at once, e.g. when a data set's batches already size them).
    """

    def __init__(self, from_seeds, from_noise, num_classes, image_size, z_dim,
                 class_names=None, palette=None, dataset=None, source=None,
                 config_path=None, generator=None, batch_size=8):
        self.num_classes = int(num_classes)
        self.image_size = tuple(int(s) for s in image_size)
        self.z_dim = int(z_dim)
        self.dataset = dataset
        owner = generator if generator is not None else self.num_classes
        self.class_names = images.class_names_for(owner, dataset, class_names)
        self.palette = images.palette_for(owner, dataset, palette)
        self.source = source
        self.config_path = config_path
        self.generator = generator
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError(f"`batch_size` must be >= 1 or None. Received: {batch_size}")
        self.batch_size = None if batch_size is None else int(batch_size)
        self._from_seeds = from_seeds
        self._from_noise = from_noise

    # ------------------------------------------------------------- loading
    @classmethod
    def from_generator(cls, generator, source=None, config_path=None, batch_size=8):
        """A Keras ``OASISGenerator``, run through ``ops.generate`` (traced once per
        input shape)."""
        @tf.function(reduce_retracing=True)
        def from_seeds(label, seed):
            return ops.generate(generator, label, seed=seed)

        @tf.function(reduce_retracing=True)
        def from_noise(label, noise):
            return ops.generate(generator, label, noise=noise)

        return cls(from_seeds, from_noise, generator.num_classes, generator.image_size,
                   generator.z_dim, dataset=getattr(generator, "dataset", None),
                   source=source, config_path=config_path, generator=generator,
                   batch_size=batch_size)

    @classmethod
    def from_export(cls, version_dir, batch_size=8):
        """An ``export_saved_model`` version folder, run through its signatures."""
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

        pipeline = cls(from_seeds, from_noise, meta["num_classes"], meta["image_size"],
                       meta["z_dim"], class_names=meta.get("class_names"),
                       palette=meta.get("palette"), dataset=meta.get("dataset"),
                       source=f"export {version_dir}", batch_size=batch_size)
        pipeline._loaded = loaded  # keeps the SavedModel alive with its signatures
        return pipeline

    @classmethod
    def from_pretrained(cls, path, image_size=None, z_dim=None, num_classes=None,
                        checkpoint=None, batch_size=8):
        """Whatever a user has: a training run folder (its ``generator.keras``, or
        ``checkpoint``: "latest", "best", "ckpt-N"), a checkpoint folder, an export
        version folder, a ``.keras`` generator, or an official ``.pth`` / ``.pt`` /
        ``.npz`` state dict (with ``image_size``; see ``loading.load_generator``)."""
        p = Path(path)
        if p.is_dir() and (p / "saved_model.pb").exists():
            return cls.from_export(p, batch_size=batch_size)
        from oasis_tf.inference.loading import load_generator

        generator, info = load_generator(p, image_size=image_size, z_dim=z_dim,
                                         num_classes=num_classes, checkpoint=checkpoint)
        return cls.from_generator(generator, source=info.get("source"),
                                  config_path=info.get("config"), batch_size=batch_size)

    # ----------------------------------------------------------- generation
    def _labels(self, label, n):
        """int32 [n, H, W]: one map for every image, or one map per image."""
        label = np.asarray(label, np.int32)
        if label.ndim == 2:
            label = np.broadcast_to(label, (n,) + label.shape)
        if label.ndim != 3 or label.shape[0] != n:
            raise ValueError(f"labels must be one map [H, W] or one per image [{n}, H, W]; "
                             f"got shape {label.shape}")
        if label.shape[1:] != self.image_size:
            raise ValueError(f"the label map is {label.shape[1]}x{label.shape[2]}; the model "
                             f"works on {self.image_size[0]}x{self.image_size[1]}")
        return np.ascontiguousarray(label)

    def _batched(self, fn, label, values):
        step = self.batch_size or max(len(values), 1)
        parts = [np.asarray(fn(label[i:i + step], values[i:i + step]))
                 for i in range(0, len(values), step)]
        return np.concatenate(parts, axis=0)

    def generate(self, labels, seeds):
        """uint8 [len(seeds), H, W, 3]: image ``i`` from noise seed ``seeds[i]``.

        Args:
            labels: int [H, W] class ids (every seed on the same map), or
                [len(seeds), H, W] (one map per seed).
            seeds: ints (or one int).
        """
        seeds = np.asarray(seeds, np.int64).reshape(-1)
        return self._batched(self._from_seeds, self._labels(labels, len(seeds)), seeds)

    def generate_with_noise(self, labels, noise):
        """uint8 [N, H, W, 3] from explicit noise [N, z_dim] or [N, H, W, z_dim]."""
        noise = np.asarray(noise, np.float32)
        noise = np.asarray(noises.noise_map(noise, self.image_size))
        return self._batched(self._from_noise, self._labels(labels, len(noise)), noise)

    def resample_noise(self, label, base_seed, classes, seeds):
        """float32 [len(seeds), H, W, z_dim]: ``base_seed``'s noise, redrawn per seed on
        the pixels of ``classes`` (``noise.resample_class_noise``)."""
        seeds = np.asarray(seeds, np.int64).reshape(-1)
        labels = self._labels(label, len(seeds))
        base = noises.seeded_noise(np.full([len(seeds)], int(base_seed), np.int64),
                                   self.z_dim)
        return noises.resample_class_noise(base, labels, [int(c) for c in classes],
                                           seeds).numpy()

    def resample(self, label, base_seed, classes, seeds):
        """uint8 [len(seeds), H, W, 3]: local editing. ``base_seed``'s sample of
        ``label`` [H, W] with new noise (one draw per seed) on the pixels of
        ``classes`` only; the image still changes a little elsewhere (the generator's
        receptive field spreads)."""
        return self.generate_with_noise(label, self.resample_noise(label, base_seed,
                                                                   classes, seeds))

    def interpolate(self, label, seed_a, seed_b, steps=8, mode="slerp"):
        """uint8 [steps, H, W, 3]: noise from ``seed_a``'s to ``seed_b``'s
        (``noise.interpolate_noise``; both ends are exactly those seeds' noise)."""
        z = noises.seeded_noise(np.array([seed_a, seed_b], np.int64), self.z_dim)
        path = noises.interpolate_noise(z[0], z[1], steps, mode=mode).numpy()
        return self.generate_with_noise(label, path)

    # --------------------------------------------------------- label maps
    def read_label(self, path, resize=False):
        """int32 [H, W] from a class-id PNG or an image colour-coded in the palette
        (``oasis_tf.images.read_label_image``)."""
        return images.read_label_image(path, self.num_classes, self.image_size,
                                       resize=resize, palette=self.palette,
                                       class_names=self.class_names)

    def colorize(self, label, scale=1):
        """uint8 [H*scale, W*scale, 3]: the label map in the palette's colours."""
        return images.upscale(images.colorize(label, self.palette), scale)
