"""Fréchet Inception Distance (FID).

The distance itself (`frechet_distance`) follows pytorch-fid / TTUR exactly:
float64, ``scipy.linalg.sqrtm`` of ``sigma1 @ sigma2``; when that product is
singular (the square root is not finite) ``eps * I`` is added to both
covariances, with a warning; small imaginary parts from numerical error are
dropped, and a large one (> 1e-3 on the diagonal) raises ``ValueError``.

Features come from one of two extractors:

* `StandardFIDInceptionExtractor` — the 2015-12-05 Inception graph used by
  TTUR, TF-GAN and (ported) pytorch-fid, loaded from a local
  ``classify_image_graph_def.pb``. Numbers are **comparable with papers**.
* `KerasInceptionV3Extractor` — ``keras.applications.InceptionV3`` ImageNet
  weights. Its features differ from the FID network's, so its numbers are
  **not comparable with published FID**; every result says so
  (``comparable_with_papers=False``).

Statistics are stored as ``.npz`` with keys ``mu`` and ``sigma`` — the keys
pytorch-fid reads and writes, so statistics can be exchanged both ways.
"""

from __future__ import annotations

import os
import warnings
import numpy as np
import scipy.linalg

__all__ = [
    "frechet_distance",
    "feature_statistics",
    "fid_from_features",
    "save_statistics",
    "load_statistics",
    "StatisticsAccumulator",
    "InceptionFeatureExtractor",
    "KerasInceptionV3Extractor",
    "StandardFIDInceptionExtractor",
    "compute_statistics",
    "compute_fid",
    "to_unit_range",
    "KERAS_INCEPTION_WEIGHTS_FILE",
    "KERAS_INCEPTION_WEIGHTS_URL",
    "STANDARD_INCEPTION_URL",
]

KERAS_INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_INCEPTION_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
    + KERAS_INCEPTION_WEIGHTS_FILE
)
STANDARD_INCEPTION_URL = "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz"


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

def save_statistics(path, mu, sigma, extractor=None) -> str:
    """Writes ``mu`` and ``sigma`` (float64) to ``path`` (.npz, pytorch-fid keys).

    When ``extractor`` is given its name and ``comparable_with_papers`` flag are
    stored as extra keys (pytorch-fid ignores them). Returns the path written
    (``np.savez`` appends ``.npz`` when missing).
    """
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"mu must be [D] and sigma [D, D]; got {mu.shape} and {sigma.shape}")
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    extra = {}
    if extractor is not None:
        extra["extractor"] = np.asarray(str(getattr(extractor, "name", extractor)))
        extra["comparable_with_papers"] = np.asarray(bool(getattr(extractor, "comparable_with_papers", False)))
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    np.savez(path, mu=mu, sigma=sigma, **extra)
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


# --------------------------------------------------------------------------
# Feature extractors
# --------------------------------------------------------------------------

def to_unit_range(images):
    """Images as float32 in [-1, 1]: uint8 input is read as 0..255, floats are taken as already in [-1, 1]."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 127.5 - 1.0
    return tf.cast(images, tf.float32)


def _check_images(images):
    if images.shape.rank != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be [B, H, W, 3], got shape {images.shape}")


class InceptionFeatureExtractor:
    """Base class: ``extractor(images) -> np.ndarray [B, 2048]`` (float64).

    ``images``: [B, H, W, 3], float in [-1, 1] (the generator's range) or uint8 0..255.
    Attributes: ``name``, ``comparable_with_papers``, ``feature_dim``.
    """

    name = "inception"
    comparable_with_papers = False
    feature_dim = 2048

    def __call__(self, images) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"extractor": self.name, "comparable_with_papers": bool(self.comparable_with_papers)}


def _keras_cache_dirs() -> list[str]:
    """Where Keras' ``get_file`` keeps downloaded weights (``<KERAS_HOME or ~/.keras>/models``, or /tmp/.keras)."""
    homes = []
    if os.environ.get("KERAS_HOME"):
        homes.append(os.environ["KERAS_HOME"])
    homes.append(os.path.join(os.path.expanduser("~"), ".keras"))
    homes.append(os.path.join("/tmp", ".keras"))
    seen, out = set(), []
    for h in homes:
        d = os.path.join(h, "models")
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def find_keras_inception_weights() -> str:
    """Path of the cached Keras InceptionV3 no-top weights; FileNotFoundError (saying where it looked) otherwise."""
    looked = []
    for d in _keras_cache_dirs():
        candidate = os.path.join(d, KERAS_INCEPTION_WEIGHTS_FILE)
        looked.append(candidate)
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        "Keras InceptionV3 ImageNet weights are not available offline. Looked for:\n  "
        + "\n  ".join(looked)
        + f"\nDownload {KERAS_INCEPTION_WEIGHTS_URL} into one of those folders "
        "(or run keras.applications.InceptionV3(include_top=False, weights='imagenet') once on a "
        "machine with network access), or pass weights_path=<the .h5 file>."
    )


def preprocess_keras_inception(images):
    """[-1, 1] float (or uint8) [B, H, W, 3] -> float32 [B, 299, 299, 3] in [-1, 1], bilinear resize.

    ``keras.applications.inception_v3.preprocess_input`` maps 0..255 to [-1, 1],
    so the generator's [-1, 1] output is already the range InceptionV3 expects.
    """
    import tensorflow as tf

    x = to_unit_range(images)
    _check_images(x)
    if tuple(x.shape[1:3]) != (299, 299):
        x = tf.image.resize(x, (299, 299), method="bilinear", antialias=False)
    return tf.clip_by_value(x, -1.0, 1.0)


class KerasInceptionV3Extractor(InceptionFeatureExtractor):
    """``keras.applications.InceptionV3(include_top=False, pooling="avg")`` features (2048-d).

    NOT comparable with published FID (different weights and graph from the
    FID Inception network): ``comparable_with_papers = False``.

    ``weights_path``: a local ``.h5`` of the no-top ImageNet weights. When None,
    the file Keras caches for ``weights="imagenet"`` is used if present
    (see `find_keras_inception_weights`); nothing is downloaded.
    """

    name = "keras_inception_v3 (not comparable with published FID)"
    comparable_with_papers = False

    def __init__(self, weights_path=None):
        import keras

        if weights_path is None:
            weights_path = find_keras_inception_weights()
        elif not os.path.isfile(weights_path):
            raise FileNotFoundError(f"InceptionV3 weights file not found: {weights_path}")
        self.weights_path = os.fspath(weights_path)
        self.model = keras.applications.InceptionV3(
            include_top=False, pooling="avg", weights=self.weights_path, input_shape=(299, 299, 3)
        )

    def __call__(self, images) -> np.ndarray:
        x = preprocess_keras_inception(images)
        feats = self.model(x, training=False)
        return np.asarray(feats, dtype=np.float64).reshape(-1, self.feature_dim)


class StandardFIDInceptionExtractor(InceptionFeatureExtractor):
    """The standard FID network: the 2015-12-05 Inception frozen graph (TTUR / TF-GAN).

    ``path``: ``classify_image_graph_def.pb`` from
    http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz
    (or that ``.tgz`` itself / the folder it was extracted to). pytorch-fid's
    ``pt_inception-2015-12-05-*.pth`` is a PyTorch state dict, not a GraphDef,
    and is not read here.

    Plumbing (as TTUR's ``fid.py``): images are fed to ``ExpandDims:0`` as
    float32 in 0..255 at any size; the graph itself then resizes them to
    299x299 (its own ``ResizeBilinear``, TF1 semantics), computes
    ``(x - 128) / 128`` (``Sub`` / ``Mul``) and the 2048-d ``pool_3:0`` is read.
    The graph is re-imported with ``ExpandDims:0`` mapped to a placeholder of
    unknown batch size, so batches of any size run (TTUR patches static shapes
    for the same reason). Generator output in [-1, 1] is mapped with
    ``(x + 1) * 127.5``; uint8 images are used as they are.
    ``comparable_with_papers = True``.
    """

    name = "fid_inception_2015-12-05 (standard, comparable with papers)"
    comparable_with_papers = True
    input_tensor = "ExpandDims:0"
    output_tensor = "pool_3:0"

    def __init__(self, path):
        import tensorflow as tf

        self.path = self._resolve(os.fspath(path))
        graph_def = self._read_graph_def(self.path)
        names = {node.name for node in graph_def.node}
        for tensor in (self.input_tensor, self.output_tensor):
            if tensor.split(":")[0] not in names:
                raise ValueError(
                    f"{self.path} has no node '{tensor.split(':')[0]}': not the 2015-12-05 FID Inception graph "
                    f"(expected input {self.input_tensor} and output {self.output_tensor})"
                )

        input_name, output_name = self.input_tensor, self.output_tensor

        def _imported(images):
            (pool3,) = tf.compat.v1.import_graph_def(
                graph_def, input_map={input_name: images}, return_elements=[output_name], name="FID_Inception_Net"
            )
            return pool3

        self._fn = tf.compat.v1.wrap_function(_imported, [tf.TensorSpec([None, None, None, 3], tf.float32)])

    @staticmethod
    def _resolve(path: str) -> str:
        if os.path.isdir(path):
            candidate = os.path.join(path, "classify_image_graph_def.pb")
            if not os.path.isfile(candidate):
                raise FileNotFoundError(
                    f"no classify_image_graph_def.pb in {path}; download and extract {STANDARD_INCEPTION_URL}"
                )
            return candidate
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"FID Inception graph not found: {path}. Download {STANDARD_INCEPTION_URL} and pass the "
                "extracted classify_image_graph_def.pb (or the .tgz)"
            )
        return path

    @staticmethod
    def _read_graph_def(path: str):
        import tarfile

        import tensorflow as tf

        if tarfile.is_tarfile(path):
            with tarfile.open(path) as tar:
                member = next((m for m in tar.getmembers() if m.name.endswith("classify_image_graph_def.pb")), None)
                if member is None:
                    raise ValueError(f"{path} holds no classify_image_graph_def.pb")
                data = tar.extractfile(member).read()
        else:
            with open(path, "rb") as fh:
                data = fh.read()
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(data)
        except Exception as exc:
            raise ValueError(f"{path} is not a TensorFlow GraphDef: {exc}") from exc
        return graph_def

    @staticmethod
    def preprocess(images):
        """[-1, 1] float (or uint8) [B, H, W, 3] -> float32 0..255, the range ``ExpandDims:0`` takes."""
        import tensorflow as tf

        x = to_unit_range(images)
        _check_images(x)
        return tf.clip_by_value((x + 1.0) * 127.5, 0.0, 255.0)

    def __call__(self, images) -> np.ndarray:
        pool3 = self._fn(self.preprocess(images))
        return np.asarray(pool3, dtype=np.float64).reshape(-1, self.feature_dim)


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
        mu_r, sigma_r, meta = load_statistics(real_statistics, with_metadata=True)
        stored = meta.get("extractor")
        if stored is not None and stored != extractor.name:
            raise ValueError(
                f"{real_statistics} was computed with '{stored}', not '{extractor.name}'; "
                "statistics from different extractors cannot be compared"
            )
    else:
        mu_r, sigma_r = compute_statistics(extractor, real_images, batch_size)
        if real_statistics is not None:
            save_statistics(real_statistics, mu_r, sigma_r, extractor=extractor)
    mu_f, sigma_f = compute_statistics(extractor, fake_images, batch_size)
    result = {"fid": frechet_distance(mu_r, sigma_r, mu_f, sigma_f)}
    result.update(extractor.describe())
    return result
