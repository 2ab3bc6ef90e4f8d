"""FID feature extractors, and the text specs that choose one.

* `StandardFIDInceptionExtractor` — the 2015-12-05 Inception graph used by
  TTUR, TF-GAN and (ported) pytorch-fid, loaded from a local
  ``classify_image_graph_def.pb``. Numbers are **comparable with papers**.
* `KerasInceptionV3Extractor` — ``keras.applications.InceptionV3`` ImageNet
  weights. Its features differ from the FID network's, so its numbers are
  **not comparable with published FID**; every result says so
  (``comparable_with_papers=False``).
* `make_extractor` builds one from the tools' ``--extractor`` text
  (``standard:<path>``, ``keras[:<weights>]``, ``auto``, ``none``,
  ``py:<module>:<attribute>``); `extractor_info` labels any extractor.

An extractor is a callable ``images [B, H, W, 3] (float [-1, 1] or uint8) ->
float64 [B, 2048]`` with ``name`` and ``comparable_with_papers`` attributes.
"""

from __future__ import annotations

import importlib
import os

import numpy as np

KERAS_INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_INCEPTION_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
    + KERAS_INCEPTION_WEIGHTS_FILE
)
STANDARD_INCEPTION_URL = "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz"
_STANDARD_FILE_NAMES = ("classify_image_graph_def.pb", "inception-2015-12-05.tgz")


# --------------------------------------------------------------------------
# The extractors
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
# Choosing one
# --------------------------------------------------------------------------

def extractor_info(extractor) -> dict:
    """``{"fid_extractor": name, "comparable_with_papers": bool}`` of any extractor object."""
    if extractor is None:
        return {"fid_extractor": None, "comparable_with_papers": False}
    name = getattr(extractor, "name", None) or type(extractor).__name__
    return {"fid_extractor": str(name),
            "comparable_with_papers": bool(getattr(extractor, "comparable_with_papers", False))}


def default_standard_inception_path():
    """The standard FID Inception file when found at ``$OASIS_TF_FID_INCEPTION`` or in
    ``$OASIS_TF_DATA`` / ``~/.cache/oasis_tf`` (``classify_image_graph_def.pb`` or the
    ``inception-2015-12-05.tgz``); None otherwise."""
    env = os.environ.get("OASIS_TF_FID_INCEPTION")
    if env and os.path.exists(env):
        return env
    bases = [os.environ.get("OASIS_TF_DATA"), os.path.join(os.path.expanduser("~"), ".cache", "oasis_tf")]
    for base in bases:
        if not base:
            continue
        for name in _STANDARD_FILE_NAMES:
            candidate = os.path.join(base, name)
            if os.path.isfile(candidate):
                return candidate
    return None


def make_extractor(spec):
    """A FID feature extractor from a text spec (the ``--extractor`` of the tools).

    * ``"standard:<path>"``: `StandardFIDInceptionExtractor` (the 2015-12-05 graph;
      ``classify_image_graph_def.pb``, its ``.tgz`` or the folder): comparable with papers.
    * ``"keras"`` / ``"keras:<weights .h5>"``: `KerasInceptionV3Extractor` (cached or
      given weights): NOT comparable with published FID.
    * ``"none"`` (or None / ""): no FID (returns None).
    * ``"auto"``: the standard graph if `default_standard_inception_path` finds it, else
      the Keras weights if cached, else None.
    * ``"py:<module>:<attribute>"``: ``attribute()`` of an importable module (a custom
      extractor: a callable images -> [B, D] features with ``name`` and
      ``comparable_with_papers`` attributes).

    An object that is not a string is returned unchanged.
    """
    if spec is None:
        return None
    if not isinstance(spec, str):
        return spec
    text = spec.strip()
    kind, _, arg = text.partition(":")
    kind = kind.lower()
    if kind in ("", "none"):
        return None
    if kind == "standard":
        if not arg:
            arg = default_standard_inception_path()
            if arg is None:
                raise ValueError("--extractor standard needs a path: standard:<classify_image_graph_def.pb "
                                 "or inception-2015-12-05.tgz>")
        return StandardFIDInceptionExtractor(arg)
    if kind == "keras":
        return KerasInceptionV3Extractor(arg or None)
    if kind == "auto":
        path = default_standard_inception_path()
        if path is not None:
            return StandardFIDInceptionExtractor(path)
        try:
            return KerasInceptionV3Extractor(find_keras_inception_weights())
        except FileNotFoundError:
            return None
    if kind == "py":
        module_name, _, attr = arg.partition(":")
        if not module_name or not attr:
            raise ValueError(f"extractor spec {spec!r}: expected py:<module>:<attribute>")
        factory = getattr(importlib.import_module(module_name), attr)
        return factory() if isinstance(factory, type) or not hasattr(factory, "name") else factory
    raise ValueError(f"unknown extractor spec {spec!r}; expected standard:<path>, keras[:<weights>], "
                     "auto, none or py:<module>:<attribute>")
