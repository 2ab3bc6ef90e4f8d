"""Fréchet Inception Distance (FID).

The distance itself (`frechet_distance`) follows pytorch-fid / TTUR exactly:
float64, ``scipy.linalg.sqrtm`` of ``sigma1 @ sigma2``; when that product is
singular (the square root is not finite) ``eps * I`` is added to both
covariances, with a warning; small imaginary parts from numerical error are
dropped, and a large one (> 1e-3 on the diagonal) raises ``ValueError``.

Features come from the extractors of `oasis_tf.metrics.extractors`: only
`StandardFIDInceptionExtractor` gives numbers comparable with papers.

Statistics are stored as ``.npz`` with keys ``mu`` and ``sigma`` — the keys
pytorch-fid reads and writes, so statistics can be exchanged both ways. The
same files are the cache of a real split's statistics (`save_statistics` with
the extractor's name and other metadata; `load_statistics_for` refuses a file
made with another extractor).
"""

from __future__ import annotations

import os
import warnings
import numpy as np
import scipy.linalg

from oasis_tf.fileio import atomic_file
from oasis_tf.metrics.extractors import extractor_info


# --------------------------------------------------------------------------
# The distance
# --------------------------------------------------------------------------

def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """``scipy.linalg.sqrtm(matrix, disp=False)[0]`` across SciPy versions.

    SciPy 1.16 deprecated ``disp`` (removal planned for 1.18); the deprecation
    warning is silenced here and newer SciPy is called without it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            out = scipy.linalg.sqrtm(matrix, disp=False)
        except TypeError:  # SciPy without `disp`
            out = scipy.linalg.sqrtm(matrix)
    if isinstance(out, tuple):
        out = out[0]
    return np.asarray(out)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

        d^2 = |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2))

    Same algorithm as pytorch-fid's ``calculate_frechet_distance``.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"mean vectors must be 1-D and of equal length, got {mu1.shape} and {mu2.shape}")
    dim = mu1.shape[0]
    if sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(
            f"covariances must be [{dim}, {dim}] to match the means, got {sigma1.shape} and {sigma2.shape}"
        )

    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        warnings.warn(
            f"FID calculation produces a singular product; adding {eps} to the diagonal of the covariance estimates",
            RuntimeWarning,
            stacklevel=2,
        )
        offset = np.eye(dim) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))

    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            m = np.max(np.abs(covmean.imag))
            raise ValueError(f"FID: imaginary component {m} in sqrtm(sigma1 @ sigma2) is too large")
        covmean = covmean.real

    tr_covmean = np.trace(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``np.cov(rowvar=False)``, N-1 normalised) of [N, D] features, float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {features.shape}")
    if features.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {features.shape[0]}")
    mu = np.mean(features, axis=0)
    sigma = np.atleast_2d(np.cov(features, rowvar=False))
    return mu, sigma


def fid_from_features(features_a, features_b, eps: float = 1e-6) -> float:
    """FID between two [N, D] feature sets (N may differ, D must not)."""
    mu1, sigma1 = feature_statistics(features_a)
    mu2, sigma2 = feature_statistics(features_b)
    return frechet_distance(mu1, sigma1, mu2, sigma2, eps=eps)


class StatisticsAccumulator:
    """Streaming mean / covariance of feature batches, float64.

    Sums are taken around a shift (the first batch's mean) so the result
    matches ``np.cov`` to round-off even when features are far from zero.
    """

    def __init__(self):
        self.count = 0
        self._shift = None
        self._sum = None
        self._outer = None

    def update(self, features) -> None:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(f"features must be [N, D], got shape {features.shape}")
        if features.shape[0] == 0:
            return
        if self._shift is None:
            dim = features.shape[1]
            self._shift = features.mean(axis=0)
            self._sum = np.zeros(dim)
            self._outer = np.zeros((dim, dim))
        elif features.shape[1] != self._shift.shape[0]:
            raise ValueError(f"feature size changed from {self._shift.shape[0]} to {features.shape[1]}")
        centred = features - self._shift
        self._sum += centred.sum(axis=0)
        self._outer += centred.T @ centred
        self.count += features.shape[0]

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if self.count < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance, got {self.count}")
        mean_c = self._sum / self.count
        mu = self._shift + mean_c
        sigma = (self._outer - self.count * np.outer(mean_c, mean_c)) / (self.count - 1)
        return mu, sigma


# --------------------------------------------------------------------------
# .npz statistics (pytorch-fid compatible)
# --------------------------------------------------------------------------

def save_statistics(path, mu, sigma, extractor=None, **metadata) -> str:
    """Writes ``mu`` and ``sigma`` (float64) to ``path`` (.npz, pytorch-fid keys), atomically.

    When ``extractor`` is given its name and ``comparable_with_papers`` flag are
    stored as extra keys (pytorch-fid ignores them), as are the scalar ``metadata``
    (e.g. ``num_images``; None values are skipped). Returns the path written
    (``.npz`` is appended when missing).
    """
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"mu must be [D] and sigma [D, D]; got {mu.shape} and {sigma.shape}")
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    extra = {k: np.asarray(v) for k, v in metadata.items() if v is not None}
    if extractor is not None:
        info = extractor_info(extractor)
        extra["extractor"] = np.asarray(info["fid_extractor"])
        extra["comparable_with_papers"] = np.asarray(info["comparable_with_papers"])
    with atomic_file(path, suffix=".npz") as tmp:
        np.savez(tmp, mu=mu, sigma=sigma, **extra)
    return path


def load_statistics(path, with_metadata: bool = False):
    """Reads ``(mu, sigma)`` from a pytorch-fid style ``.npz``.

    With ``with_metadata=True`` returns ``(mu, sigma, metadata)``, metadata being
    the extra keys written by `save_statistics` (empty for pytorch-fid files).
    Raises FileNotFoundError / ValueError naming the file on any problem.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"FID statistics file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:  # not an npz / corrupt
        raise ValueError(f"cannot read FID statistics from {path}: {exc}") from exc
    if not hasattr(data, "files"):
        raise ValueError(f"{path} is a single .npy array, expected an .npz with keys 'mu' and 'sigma'")
    with data:
        missing = [k for k in ("mu", "sigma") if k not in data.files]
        if missing:
            raise ValueError(
                f"FID statistics file {path} lacks key(s) {missing}; it has {sorted(data.files)} "
                "(expected 'mu' and 'sigma', as pytorch-fid writes)"
            )
        mu = np.asarray(data["mu"], dtype=np.float64)
        sigma = np.asarray(data["sigma"], dtype=np.float64)
        metadata = {k: data[k].item() for k in data.files if k not in ("mu", "sigma") and data[k].ndim == 0}
    if mu.ndim != 1 or sigma.ndim != 2 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(
            f"FID statistics file {path} has mismatched shapes: mu {mu.shape}, sigma {sigma.shape} "
            "(expected mu [D] and sigma [D, D])"
        )
    if with_metadata:
        return mu, sigma, metadata
    return mu, sigma


def load_statistics_for(path, extractor):
    """`load_statistics` ``(mu, sigma, metadata)`` of a cache made with ``extractor``.

    Raises ValueError naming the file when it was computed with another
    extractor (statistics of different networks cannot be compared).
    """
    mu, sigma, meta = load_statistics(path, with_metadata=True)
    stored = meta.get("extractor")
    name = extractor_info(extractor)["fid_extractor"]
    if stored is not None and str(stored) != name:
        raise ValueError(f"{os.fspath(path)} was computed with '{stored}', not '{name}'; statistics from "
                         "different extractors cannot be compared (delete it or pass another real_stats_path)")
    return mu, sigma, meta


# --------------------------------------------------------------------------
# Streaming statistics and a one-call FID
# --------------------------------------------------------------------------

def _iter_image_arrays(images_iterable):
    """Yields [b, H, W, 3] arrays from arrays, tensors, dict batches ({"image": ...}) or single images."""
    is_tensor = hasattr(images_iterable, "numpy") and not hasattr(images_iterable, "element_spec")
    if isinstance(images_iterable, np.ndarray) or is_tensor:
        yield np.asarray(images_iterable)
        return
    for item in images_iterable:
        if isinstance(item, dict):
            item = item["image"]
        elif isinstance(item, (tuple, list)) and len(item) and not np.isscalar(item[0]):
            item = item[0]
        arr = np.asarray(item)
        if arr.ndim == 3:
            arr = arr[None]
        yield arr


def compute_statistics(extractor, images_iterable, batch_size: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Streams images through ``extractor`` in batches of ``batch_size``; returns (mu, sigma), float64.

    ``images_iterable``: an [N, H, W, 3] array, or an iterable (e.g. tf.data) of
    image batches, single images, ``(image, ...)`` tuples or ``{"image": ...}``
    dicts. Images are float in [-1, 1] or uint8 0..255.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    acc = StatisticsAccumulator()
    pending, pending_n = [], 0
    for arr in _iter_image_arrays(images_iterable):
        pending.append(arr)
        pending_n += arr.shape[0]
        while pending_n >= batch_size:
            stacked = np.concatenate(pending, axis=0)
            acc.update(extractor(stacked[:batch_size]))
            rest = stacked[batch_size:]
            pending, pending_n = ([rest] if rest.shape[0] else []), rest.shape[0]
    if pending_n:
        acc.update(extractor(np.concatenate(pending, axis=0)))
    return acc.result()


def compute_fid(extractor, real_images, fake_images, batch_size: int = 50, real_statistics=None) -> dict:
    """FID between real and generated images, labelled with the extractor used.

    ``real_statistics``: optional ``.npz`` path; loaded when it exists, else
    computed from ``real_images`` and saved there. Returns a dict with ``fid``,
    ``extractor``, ``comparable_with_papers``.
    """
    if real_statistics is not None and os.path.exists(os.fspath(real_statistics)):
        mu_r, sigma_r, _ = load_statistics_for(real_statistics, extractor)
    else:
        mu_r, sigma_r = compute_statistics(extractor, real_images, batch_size)
        if real_statistics is not None:
            save_statistics(real_statistics, mu_r, sigma_r, extractor=extractor)
    mu_f, sigma_f = compute_statistics(extractor, fake_images, batch_size)
    result = {"fid": frechet_distance(mu_r, sigma_r, mu_f, sigma_f)}
    result.update(extractor.describe())
    return result
