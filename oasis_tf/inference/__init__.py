"""Inference: one pipeline for every front end, and the functions it and the exports run.

    pipe = oasis_tf.inference.OASISPipeline.from_pretrained("runs/synthetic-0001")
    images = pipe.generate(label, seeds=[0, 1])          # uint8 [2, H, W, 3]

    # the function under it (and under the SavedModel signatures), for a Keras generator
    images = oasis_tf.inference.generate(G, label_maps, seed=[7])

Modules: ``pipeline`` (``OASISPipeline``: load anything, generate / resample /
interpolate, batching, class names and palette), ``ops`` (``generate``, ``segment``,
the input checks, ``to_uint8``), ``noise`` (seeded, per-class and interpolated noise),
``loading`` (a generator or discriminator from a run folder, checkpoint, export, .keras
or official state dict), ``writing`` (what ``oasis-generate`` writes).
"""

from oasis_tf.inference.loading import OFFICIAL_SUFFIXES, load_discriminator, load_generator
from oasis_tf.inference.noise import (class_seeded_noise, interpolate_noise, noise_map,
                                      resample_class_noise, seeded_noise)
from oasis_tf.inference.ops import (check_finite, check_images, check_label_map, check_noise,
                                    check_seed, generate, segment, to_uint8)
from oasis_tf.inference.pipeline import OASISPipeline
from oasis_tf.inference.writing import dataset_label_maps, write_generation

__all__ = [
    "OASISPipeline", "generate", "segment", "to_uint8", "seeded_noise", "noise_map",
    "class_seeded_noise", "resample_class_noise", "interpolate_noise", "check_label_map",
    "check_seed", "check_noise", "check_finite", "check_images", "load_generator",
    "load_discriminator", "OFFICIAL_SUFFIXES", "dataset_label_maps", "write_generation",
]
