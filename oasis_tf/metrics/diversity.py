"""Diversity of multi-modal synthesis: mean MS-SSIM between pairs of images generated
from the same label map with different noise (as in the OASIS paper). Lower = more diverse.
"""

from __future__ import annotations

import numpy as np

# The standard 5-scale weights (Wang et al. 2003), tf.image.ssim_multiscale's default.
MS_SSIM_POWER_FACTORS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim_scales(height: int, width: int, filter_size: int = 11) -> int:
    """How many of the 5 MS-SSIM scales fit: each scale halves the image (SAME
    pooling, so ceil), and the coarsest must still be >= ``filter_size``. With
    the default 11 px filter all 5 scales need a shorter side >= 161 px."""
    side = min(int(height), int(width))
    scales = 0
    while scales < len(MS_SSIM_POWER_FACTORS) and side >= filter_size:
        scales += 1
        side = -(-side // 2)
    return scales


def ms_ssim_diversity(images_a, images_b, max_val: float = 2.0, filter_size: int = 11, batch_size: int = 32) -> float:
    """Mean MS-SSIM over pairs ``(images_a[i], images_b[i])``, [N, H, W, C] each.

    ``max_val``: the dynamic range, 2.0 for the project's [-1, 1] images (255 for uint8).
    Uses ``tf.image.ssim_multiscale``. For images smaller than 161 px (shorter
    side) the 5 standard scales do not fit; the first ``s`` power factors that
    do fit (`ms_ssim_scales`) are used, renormalised to sum to 1, so identical
    images still give 1.0 — such values are not comparable with the 5-scale
    numbers in papers. Raises ValueError below ``filter_size`` pixels.
    """
    import tensorflow as tf

    a = tf.convert_to_tensor(images_a)
    b = tf.convert_to_tensor(images_b)
    if a.shape != b.shape or a.shape.rank != 4:
        raise ValueError(f"image pairs must have equal [N, H, W, C] shapes, got {a.shape} and {b.shape}")
    a = tf.cast(a, tf.float32)
    b = tf.cast(b, tf.float32)
    scales = ms_ssim_scales(a.shape[1], a.shape[2], filter_size)
    if scales == 0:
        raise ValueError(f"images of {a.shape[1]}x{a.shape[2]} px are smaller than the {filter_size} px SSIM filter")
    factors = np.asarray(MS_SSIM_POWER_FACTORS[:scales], dtype=np.float64)
    factors = tuple(float(f) for f in factors / factors.sum())
    values = []
    for start in range(0, int(a.shape[0]), batch_size):
        values.append(
            tf.image.ssim_multiscale(
                a[start:start + batch_size], b[start:start + batch_size], max_val,
                power_factors=factors, filter_size=filter_size,
            ).numpy()
        )
    if not values:
        raise ValueError("no image pairs given")
    return float(np.mean(np.concatenate(values)))
