"""Evaluating a generator on a dataset split: FID, mIoU, MS-SSIM diversity.

    from oasis_tf.metrics.evaluate import evaluate_generator, make_extractor, format_report

    val = oasis_tf.data.load_dataset("ade20k", root, split="val", image_size=(256, 256),
                                     batch_size=16, training=False)
    report = evaluate_generator(G, val, extractor=make_extractor("standard:/path/classify_image_graph_def.pb"),
                                segmenter="/path/to/segmenter_savedmodel",
                                real_stats_path="fid_stats/ade20k-val-256.npz")
    print(format_report(report))

One pass over the split: image ``i`` (in dataset order) is generated from the
label map of real image ``i`` with noise ``seeded_noise(seed + i)`` (the
project's seeded noise, `oasis_tf.inference.generate`), so a report is
reproducible. The generated images are quantised to uint8 (as when they are
saved to PNG and read back, what published evaluations do) and fed to the
feature extractor and the segmenter as float [-1, 1].

* FID: the real split's statistics come from ``real_stats_path`` (a pytorch-fid
  style ``.npz`` with ``mu`` / ``sigma``) when it exists (the extractor it was
  made with must match), else they are computed in the same pass and saved
  there. Numbers are comparable with published FID only with the standard
  Inception graph (``comparable_with_papers``), and then only at the paper's
  image size on the full validation split.
* mIoU: the segmenter's predictions on the generated images against the label
  maps they were generated from (confusion matrix over the split, don't-care
  ``ignore_index`` excluded). The same segmenter on the real images gives
  ``miou_real``, its ceiling.
* MS-SSIM: the first ``num_diversity_samples`` label maps are generated
  ``diversity_samples_per_label`` times with different noise; mean MS-SSIM over
  all pairs of samples of the same label map (lower = more diverse).
  ``ms_ssim_real_pairs`` is the MS-SSIM between consecutive (different) real
  images, a reference for unrelated images.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import time
import warnings

import numpy as np

from oasis_tf.images import to_float as _to_float_images
from oasis_tf.loading import load_generator  # the shared loader, public here too
from oasis_tf.metrics.diversity import ms_ssim_diversity, ms_ssim_scales, MS_SSIM_POWER_FACTORS
from oasis_tf.metrics.fid import (
    KerasInceptionV3Extractor,
    StandardFIDInceptionExtractor,
    StatisticsAccumulator,
    find_keras_inception_weights,
    frechet_distance,
    load_statistics,
)
from oasis_tf.metrics.miou import MeanIoUAccumulator, segment_with

__all__ = [
    "evaluate_generator",
    "evaluate_synthetic",
    "synthetic_options",
    "GeneratorFID",
    "make_extractor",
    "extractor_info",
    "format_report",
    "write_report",
    "save_real_statistics",
    "load_generator",
    "default_standard_inception_path",
    "NOT_COMPARABLE",
    "DIVERSITY_SEED_OFFSET",
]

NOT_COMPARABLE = "not comparable with published FID"
DIVERSITY_SEED_OFFSET = 1 << 32  # noise seed of sample k of label map i: seed + i + k * offset
_STANDARD_FILE_NAMES = ("classify_image_graph_def.pb", "inception-2015-12-05.tgz")


# --------------------------------------------------------------------------
# Extractors
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


# --------------------------------------------------------------------------
# Real-set statistics cache
# --------------------------------------------------------------------------

def save_real_statistics(path, mu, sigma, extractor=None, **metadata) -> str:
    """Writes ``mu`` / ``sigma`` (pytorch-fid keys) plus scalar metadata (the extractor's
    name and ``comparable_with_papers``, image count, ...) to ``path`` atomically."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    extra = {k: np.asarray(v) for k, v in metadata.items() if v is not None}
    if extractor is not None:
        info = extractor_info(extractor)
        extra["extractor"] = np.asarray(info["fid_extractor"])
        extra["comparable_with_papers"] = np.asarray(info["comparable_with_papers"])
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}.npz"
    np.savez(tmp, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64), **extra)
    os.replace(tmp, path)
    return path


def _load_real_statistics(path, extractor):
    mu, sigma, meta = load_statistics(path, with_metadata=True)
    stored = meta.get("extractor")
    name = extractor_info(extractor)["fid_extractor"]
    if stored is not None and str(stored) != name:
        raise ValueError(f"{path} was computed with '{stored}', not '{name}'; statistics from different "
                         "extractors cannot be compared (delete it or pass another real_stats_path)")
    return mu, sigma, meta


# --------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------

def _generation_fn(generator):
    """``fn(label int32 [B, H, W], seeds int64 [B]) -> uint8 [B, H, W, 3]`` (a tf.function)."""
    import tensorflow as tf

    from oasis_tf.inference import generate

    @tf.function(reduce_retracing=True)
    def fn(label, seeds):
        return generate(generator, label, seed=seeds)

    return fn


def _batch_arrays(batch):
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


def _nan_to_none(values):
    return [None if (v is None or not math.isfinite(float(v))) else float(v) for v in values]


def _finite_or_none(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class GeneratorFID:
    """FID of a generator on a fixed split, repeatedly (the FID callback uses it).

    The real statistics are computed once (or read from ``real_stats_path``) and kept.

    Args:
        extractor: the feature extractor.
        dataset: an iterable of batches (dicts with "image" and "label"), or a
            callable returning one, iterated in the same order every time.
        real_stats_path: optional ``.npz`` cache of the real statistics.
        max_images: use at most this many images (None: all).
        seed: noise seed of image 0 (image ``i`` uses ``seed + i``).
    """

    def __init__(self, extractor, dataset, real_stats_path=None, max_images=None, seed=0):
        if extractor is None:
            raise ValueError("GeneratorFID needs an extractor")
        self.extractor = extractor
        self.dataset = dataset
        self.real_stats_path = None if real_stats_path is None else os.fspath(real_stats_path)
        self.max_images = max_images
        self.seed = int(seed)
        self.real_statistics = None
        self.real_stats_cached = False
        self._fns = {}

    def _load_cached(self):
        if self.real_statistics is None and self.real_stats_path and os.path.exists(self.real_stats_path):
            mu, sigma, _ = _load_real_statistics(self.real_stats_path, self.extractor)
            self.real_statistics = (mu, sigma)
            self.real_stats_cached = True

    def __call__(self, generator) -> dict:
        """``{"fid", "fid_extractor", "comparable_with_papers", "num_images", "real_stats_cached"}``."""
        self._load_cached()
        key = id(generator)
        if key not in self._fns:
            self._fns = {key: _generation_fn(generator)}
        gen = self._fns[key]
        need_real = self.real_statistics is None
        acc_real = StatisticsAccumulator() if need_real else None
        acc_fake = StatisticsAccumulator()
        count = 0
        for batch in _iterate(self.dataset):
            label, image = _batch_arrays(batch)
            if self.max_images is not None:
                label = label[: max(self.max_images - count, 0)]
            b = label.shape[0]
            if b == 0:
                break
            seeds = np.arange(count, count + b, dtype=np.int64) + self.seed
            fake = _to_float_images(np.asarray(gen(label, seeds)))
            acc_fake.update(self.extractor(fake))
            if need_real:
                if image is None:
                    raise ValueError("the dataset has no 'image' and no real statistics were given")
                acc_real.update(self.extractor(_to_float_images(image[:b])))
            count += b
        result = dict(extractor_info(self.extractor), num_images=count,
                      real_stats_cached=self.real_stats_cached)
        if count < 2:
            result["fid"] = None
            return result
        if need_real:
            self.real_statistics = acc_real.result()
            if self.real_stats_path:
                save_real_statistics(self.real_stats_path, *self.real_statistics, extractor=self.extractor,
                                     num_images=count)
        mu_f, sigma_f = acc_fake.result()
        result["fid"] = float(frechet_distance(*self.real_statistics, mu_f, sigma_f))
        return result


# --------------------------------------------------------------------------
# The evaluation
# --------------------------------------------------------------------------

def _describe_segmenter(segmenter):
    if segmenter is None:
        return None
    if isinstance(segmenter, (str, os.PathLike)):
        return f"SavedModel {os.fspath(segmenter)}"
    desc = getattr(segmenter, "description", None) or getattr(segmenter, "name", None)
    return str(desc) if desc else type(segmenter).__name__


def evaluate_generator(generator, dataset, extractor=None, segmenter=None, real_stats_path=None,
                       num_diversity_samples=50, max_images=None, seed=0, diversity_samples_per_label=2,
                       ignore_index=0, segment_real=True, class_names=None, progress=None) -> dict:
    """FID, mIoU and MS-SSIM diversity of ``generator`` on a split; a JSON-able dict.

    Args:
        generator: an ``OASISGenerator`` (anything `oasis_tf.inference.generate` takes).
        dataset: iterable of batches (e.g. ``load_dataset(..., split="val", training=False)``):
            dicts with "label" int [B, H, W] and "image" [-1, 1] float (or uint8)
            [B, H, W, 3], or ``(image, label)`` tuples; or a callable returning one.
        extractor: FID feature extractor (see `make_extractor`; any callable
            images -> [B, D] with ``name`` / ``comparable_with_papers``), a spec
            string, or None (no FID).
        segmenter: for mIoU: a SavedModel path, a Keras model or a callable returning
            class ids or logits (see `segment_with`); None: no mIoU.
        real_stats_path: ``.npz`` cache of the real split's statistics (read when it
            exists, else written).
        num_diversity_samples: label maps used for MS-SSIM (the first ones); 0: none.
        max_images: evaluate at most this many images (None: the whole split).
        seed: noise seed of image 0.
        diversity_samples_per_label: samples per label map for MS-SSIM (all pairs compared).
        ignore_index: don't-care class for mIoU (None: none).
        segment_real: also segment the real images (``miou_real``).
        class_names: optional names, stored in the report.
        progress: optional callable ``(num_images_done) -> None``.

    Returns:
        dict with ``fid`` (float or None), ``fid_extractor``, ``comparable_with_papers``,
        ``fid_note``, ``miou``, ``per_class_iou`` (list, None for absent classes),
        ``miou_real``, ``per_class_iou_real``, ``segmenter``, ``ms_ssim``,
        ``ms_ssim_scales``, ``ms_ssim_pairs``, ``ms_ssim_real_pairs``, ``num_images``,
        ``num_diversity_labels``, ``num_classes``, ``image_size``, ``seed``,
        ``real_stats_path``, ``real_stats_cached``, ``time_s``, ``notes``.
    """
    start = time.time()
    extractor = make_extractor(extractor) if isinstance(extractor, str) else extractor
    num_classes = int(generator.num_classes)
    notes = []
    gen = _generation_fn(generator)

    # FID set-up
    real_stats = None
    real_stats_cached = False
    real_meta = {}
    if extractor is not None and real_stats_path is not None and os.path.exists(os.fspath(real_stats_path)):
        mu, sigma, real_meta = _load_real_statistics(os.fspath(real_stats_path), extractor)
        real_stats, real_stats_cached = (mu, sigma), True
    acc_real = StatisticsAccumulator() if extractor is not None and real_stats is None else None
    acc_fake = StatisticsAccumulator() if extractor is not None else None

    # mIoU set-up
    miou_acc = MeanIoUAccumulator(num_classes, ignore_index) if segmenter is not None else None
    miou_real_acc = MeanIoUAccumulator(num_classes, ignore_index) if segmenter is not None and segment_real else None

    # diversity set-up
    num_div = max(int(num_diversity_samples or 0), 0)
    k_div = max(int(diversity_samples_per_label), 2)
    div_labels, div_first, real_keep = [], [], []

    count = 0
    for batch in _iterate(dataset):
        label, image = _batch_arrays(batch)
        if max_images is not None:
            keep = max(int(max_images) - count, 0)
            label = label[:keep]
            image = None if image is None else image[:keep]
        b = label.shape[0]
        if b == 0:
            break
        seeds = np.arange(count, count + b, dtype=np.int64) + int(seed)
        fake_u8 = np.asarray(gen(label, seeds))
        fake = _to_float_images(fake_u8)
        real = None if image is None else _to_float_images(image)
        if acc_fake is not None:
            acc_fake.update(extractor(fake))
            if acc_real is not None:
                if real is None:
                    raise ValueError("the dataset batches have no 'image'; give real_stats_path with cached "
                                     "statistics or batches with images")
                acc_real.update(extractor(real))
        if miou_acc is not None:
            miou_acc.update(segment_with(segmenter, fake), label)
            if miou_real_acc is not None and real is not None:
                miou_real_acc.update(segment_with(segmenter, real), label)
        if len(div_labels) < num_div:
            take = min(num_div - len(div_labels), b)
            div_labels.extend(label[:take])
            div_first.extend(fake[:take])
        if real is not None and len(real_keep) < num_div + 1:
            real_keep.extend(real[: num_div + 1 - len(real_keep)])
        count += b
        if progress is not None:
            progress(count)

    report = {"num_images": count, "num_classes": num_classes,
              "image_size": [int(s) for s in generator.image_size],
              "seed": int(seed)}

    # FID
    report.update(extractor_info(extractor))
    report["fid"] = None
    report["real_stats_path"] = None if real_stats_path is None else os.fspath(real_stats_path)
    report["real_stats_cached"] = real_stats_cached
    if extractor is None:
        report["fid_note"] = "no FID (no feature extractor)"
    elif count < 2:
        report["fid_note"] = "no FID: fewer than 2 images"
    else:
        if real_stats is None:
            real_stats = acc_real.result()
            if real_stats_path is not None:
                try:
                    save_real_statistics(real_stats_path, *real_stats, extractor=extractor, num_images=count,
                                         image_height=report["image_size"][0],
                                         image_width=report["image_size"][1])
                except OSError as exc:
                    warnings.warn(f"could not cache the real FID statistics at {real_stats_path}: {exc}")
        else:
            cached_n = real_meta.get("num_images")
            if cached_n is not None and int(cached_n) != count:
                notes.append(f"the cached real statistics ({real_stats_path}) were computed from {int(cached_n)} "
                             f"images, this evaluation generated {count}")
        report["fid"] = float(frechet_distance(*real_stats, *acc_fake.result()))
        if report["comparable_with_papers"]:
            report["fid_note"] = ("standard FID Inception graph: comparable with published FID when computed on "
                                  "the full validation split at the paper's image size")
        else:
            report["fid_note"] = NOT_COMPARABLE
        if count < 2048:
            notes.append(f"FID from {count} images (< 2048, the feature size) is biased upwards; compare only "
                         "numbers computed on the same number of images")

    # mIoU
    report["segmenter"] = _describe_segmenter(segmenter)
    for key, acc in (("", miou_acc), ("_real", miou_real_acc)):
        if acc is None or count == 0:
            report["miou" + key], report["per_class_iou" + key] = None, None
        else:
            miou, per_class = acc.result()
            report["miou" + key] = _finite_or_none(miou)
            report["per_class_iou" + key] = _nan_to_none(per_class)
    report["ignore_index"] = ignore_index
    if class_names is not None:
        report["class_names"] = [str(n) for n in class_names]

    # MS-SSIM diversity
    report["ms_ssim"] = None
    report["ms_ssim_pairs"] = 0
    report["ms_ssim_real_pairs"] = None
    report["num_diversity_labels"] = len(div_labels)
    h, w = report["image_size"]
    scales = ms_ssim_scales(h, w) if count else 0
    report["ms_ssim_scales"] = scales
    if div_labels and scales == 0:
        notes.append(f"no MS-SSIM: {h}x{w} images are smaller than the 11 px SSIM filter")
    elif div_labels:
        labels = np.stack(div_labels)
        samples = [np.stack(div_first)]
        idx = np.arange(len(labels), dtype=np.int64) + int(seed)
        for k in range(1, k_div):
            out = []
            for s in range(0, len(labels), 32):
                out.append(np.asarray(gen(labels[s:s + 32], idx[s:s + 32] + k * DIVERSITY_SEED_OFFSET)))
            samples.append(_to_float_images(np.concatenate(out)))
        a = np.concatenate([samples[i] for i in range(k_div) for j in range(i + 1, k_div)])
        b = np.concatenate([samples[j] for i in range(k_div) for j in range(i + 1, k_div)])
        report["ms_ssim"] = ms_ssim_diversity(a, b)
        report["ms_ssim_pairs"] = int(a.shape[0])
        if len(real_keep) >= 2:
            real_arr = np.stack(real_keep)
            report["ms_ssim_real_pairs"] = ms_ssim_diversity(real_arr[:-1], real_arr[1:])
        if scales < len(MS_SSIM_POWER_FACTORS):
            notes.append(f"MS-SSIM on {scales} of 5 scales ({h}x{w} images; 5 need >= 161 px): not comparable "
                         "with 5-scale numbers in papers")
    report["diversity_samples_per_label"] = k_div
    report["notes"] = notes
    report["time_s"] = round(time.time() - start, 3)
    return report


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def _fmt(value, digits=4):
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_report(report, title=None) -> str:
    """The printed table of a report."""
    lines = []
    if title:
        lines.append(title)
    lines.append(f"  {'metric':<9} {'value':>10}  details")
    fid_detail = report.get("fid_extractor") or report.get("fid_note") or ""
    if report.get("fid_extractor") and not report.get("comparable_with_papers"):
        if NOT_COMPARABLE not in fid_detail:
            fid_detail += f" -- {NOT_COMPARABLE}"
    elif report.get("fid_extractor"):
        fid_detail += " -- comparable with published FID (full val split, paper's image size)"
    lines.append(f"  {'FID':<9} {_fmt(report.get('fid'), 3):>10}  {fid_detail}")
    seg = report.get("segmenter") or "no segmenter"
    if report.get("miou_real") is not None:
        seg += f"; on the real images: {report['miou_real']:.4f}"
    lines.append(f"  {'mIoU':<9} {_fmt(report.get('miou')):>10}  {seg}")
    div = (f"{report.get('ms_ssim_pairs', 0)} pairs from {report.get('num_diversity_labels', 0)} label maps, "
           f"{report.get('ms_ssim_scales', 0)} scales; lower = more diverse")
    if report.get("ms_ssim_real_pairs") is not None:
        div += f"; different real images: {report['ms_ssim_real_pairs']:.4f}"
    lines.append(f"  {'MS-SSIM':<9} {_fmt(report.get('ms_ssim')):>10}  {div}")
    size = report.get("image_size") or ["?", "?"]
    lines.append(f"  {'images':<9} {report.get('num_images', 0):>10}  {size[0]}x{size[1]}, "
                 f"{report.get('num_classes')} classes, seed {report.get('seed')}")
    for note in report.get("notes") or ():
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def _json_clean(obj):
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _finite_or_none(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return _json_clean(obj.tolist())
    return obj


def write_report(report, path) -> str:
    """Writes the report as JSON (NaN -> null), atomically; returns the path."""
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(_json_clean(report), f, indent=1, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------
# The synthetic data set (the demo)
# --------------------------------------------------------------------------

def synthetic_options(data_root):
    """The ``synthetic_options`` of the synthetic data set already in ``data_root``
    (from its ``oasis_synthetic.json``), so ``load_dataset("synthetic", ...)`` reads it
    instead of rewriting it with other parameters; None when there is none."""
    marker = os.path.join(os.fspath(data_root), "oasis_synthetic.json")
    if not os.path.isfile(marker):
        return None
    with open(marker, encoding="utf-8") as f:
        params = json.load(f)
    return {k: params[k] for k in ("num_train", "num_val", "size", "seed") if k in params}


def evaluate_synthetic(generator, data_root, extractor=None, split="val", batch_size=16, max_images=None,
                       num_diversity_samples=50, seed=0, segmenter_steps=500, real_stats_path=None,
                       verbose=True) -> dict:
    """`evaluate_generator` on the synthetic data set in ``data_root`` with its tiny U-Net
    segmenter (`get_synthetic_segmenter`: trained and cached on first use, prints its mIoU
    on the real validation images). Prints the table when ``verbose``; returns the report.

    The report's ``miou_real`` / ``ms_ssim_real_pairs`` are the real validation images'
    numbers (segmenter on real images; MS-SSIM between different real images), printed next
    to the generated images' ``miou`` / ``ms_ssim``.
    """
    from oasis_tf.data import CLASS_NAMES, load_dataset
    from oasis_tf.metrics.segmenter import get_synthetic_segmenter

    size = tuple(int(s) for s in generator.image_size)
    num_classes = int(generator.num_classes)
    segmenter = get_synthetic_segmenter(data_root, image_size=size, steps=segmenter_steps,
                                        num_classes=num_classes, verbose=verbose)
    dataset = load_dataset("synthetic", data_root, split=split, image_size=size, batch_size=batch_size,
                           training=False, num_classes=num_classes, synthetic_options=synthetic_options(data_root))
    report = evaluate_generator(generator, dataset, extractor=extractor, segmenter=segmenter,
                                real_stats_path=real_stats_path, num_diversity_samples=num_diversity_samples,
                                max_images=max_images, seed=seed,
                                class_names=CLASS_NAMES if num_classes == len(CLASS_NAMES) else None)
    if verbose:
        print(format_report(report, title=f"Evaluation on the synthetic {split} split ({report['num_images']} images)"))
    return report
