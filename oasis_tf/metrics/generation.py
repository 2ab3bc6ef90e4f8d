"""The generation loop shared by every evaluation: a split's label maps through a pipeline.

    pipeline = OASISPipeline.from_generator(generator, batch_size=None)
    for label, real, fake in generated_batches(pipeline, dataset, max_images=500, seed=0):
        ...  # label int32 [B, H, W], real float [-1, 1] [B, H, W, 3] or None, fake likewise

Image ``i`` (in dataset order) is generated from the label map of real image
``i`` with noise seed ``seed + i`` (``oasis_tf.inference.OASISPipeline.generate``: the
same image as every other front end gives for that seed), so results are
reproducible. The generated images are quantised to uint8 (as when they are saved to
PNG and read back, what published evaluations do) and returned as float [-1, 1].
"""

from __future__ import annotations

import numpy as np

from oasis_tf.images import to_float


def metrics_pipeline(generator):
    """An ``OASISPipeline`` that generates each data set batch in one call (a pipeline
    passes as it is)."""
    from oasis_tf.inference import OASISPipeline

    if isinstance(generator, OASISPipeline):
        return generator
    return OASISPipeline.from_generator(generator, batch_size=None)

def batch_arrays(batch):
    """``(label int32 [B, H, W], image [B, H, W, 3] or None)`` of a dict or ``(image, label)`` batch."""
    if isinstance(batch, dict):
        label = batch["label"]
        image = batch.get("image")
    elif isinstance(batch, (tuple, list)):
        image, label = batch[0], batch[1]
    else:
        raise TypeError(f"dataset batches must be dicts with 'label' (and 'image') or (image, label) "
                        f"tuples; got {type(batch).__name__}")
    label = np.asarray(label)
    if label.ndim == 4 and label.shape[-1] == 1:
        label = label[..., 0]
    if label.ndim == 2:
        label = label[None]
    label = label.astype(np.int32)
    if image is not None:
        image = np.asarray(image)
        if image.ndim == 3:
            image = image[None]
    return label, image


def _iterate(dataset):
    if callable(dataset) and not hasattr(dataset, "__iter__"):
        dataset = dataset()
    return iter(dataset)


def generated_batches(pipeline, dataset, max_images=None, seed=0):
    """Yields ``(label, real, fake)`` per batch of ``dataset``, the whole split or its first ``max_images``.

    Args:
        pipeline: an ``OASISPipeline`` (``metrics_pipeline``).
        dataset: iterable of batches (dicts with "label" and optionally "image", or
            ``(image, label)`` tuples), or a callable returning one.
        max_images: stop after this many images (None: all).
        seed: noise seed of image 0 (image ``i`` uses ``seed + i``).

    ``real`` is the batch's images as float [-1, 1] (None when it has none),
    ``fake`` the generated ones, float [-1, 1] from uint8.
    """
    count = 0
    for batch in _iterate(dataset):
        label, image = batch_arrays(batch)
        if max_images is not None:
            keep = max(int(max_images) - count, 0)
            label = label[:keep]
            image = None if image is None else image[:keep]
        b = label.shape[0]
        if b == 0:
            break
        seeds = np.arange(count, count + b, dtype=np.int64) + int(seed)
        fake = to_float(pipeline.generate(label, seeds))
        real = None if image is None else to_float(image)
        count += b
        yield label, real, fake


def generate_images(pipeline, labels, seeds, batch_size=32) -> np.ndarray:
    """Float [-1, 1] images of ``labels`` [N, H, W] with noise seeds ``seeds`` [N], in batches."""
    out = [pipeline.generate(labels[s:s + batch_size], seeds[s:s + batch_size])
           for s in range(0, len(labels), batch_size)]
    return to_float(np.concatenate(out))
