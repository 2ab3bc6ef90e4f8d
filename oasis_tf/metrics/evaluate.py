"""Evaluating a generator on a dataset split: FID, mIoU (overall and per class), MS-SSIM diversity.

    from oasis_tf.metrics.evaluate import evaluate_generator, make_extractor, format_report

    val = oasis_tf.data.load_dataset("ade20k", root, split="val", image_size=(256, 256),
                                     batch_size=16, training=False)
    report = evaluate_generator(G, val, extractor=make_extractor("standard:/path/classify_image_graph_def.pb"),
                                segmenter="/path/to/segmenter_savedmodel",
                                real_stats_path="fid_stats/ade20k-val-256.npz")
    print(format_report(report))

One pass over the split with the shared generation loop
(`oasis_tf.metrics.generation`: image ``i`` from label map ``i`` with noise
seed ``seed + i``, quantised to uint8), fed to the feature extractor
(`oasis_tf.metrics.extractors`) and the segmenter as float [-1, 1]. The
printed tables, the JSON file and the class chart are `oasis_tf.metrics.report`'s.

* FID: the real split's statistics come from ``real_stats_path`` (a pytorch-fid
  style ``.npz`` with ``mu`` / ``sigma``) when it exists (the extractor it was
  made with must match), else they are computed in the same pass and saved
  there. Numbers are comparable with published FID only with the standard
  Inception graph (``comparable_with_papers``), and then only at the paper's
  image size on the full validation split.
* mIoU: the segmenter's predictions on the generated images against the label
  maps they were generated from (confusion matrix over the split, don't-care
  ``ignore_index`` excluded). The same segmenter on the real images gives
  ``miou_real``, its ceiling. Also the pixel accuracy and, per class
  (``classes``), its name, ground-truth pixel count and IoU on generated and
  real images; classes absent from the ground truth are marked absent.
* MS-SSIM: the first ``num_diversity_samples`` label maps are generated
  ``diversity_samples_per_label`` times with different noise; mean MS-SSIM over
  all pairs of samples of the same label map (lower = more diverse).
  ``ms_ssim_real_pairs`` is the MS-SSIM between consecutive (different) real
  images, a reference for unrelated images.
"""

from __future__ import annotations

import os
import re
import time
import warnings

import numpy as np

from oasis_tf.metrics.diversity import ms_ssim_diversity, ms_ssim_scales, MS_SSIM_POWER_FACTORS
from oasis_tf.metrics.extractors import extractor_info, make_extractor
from oasis_tf.metrics.fid import StatisticsAccumulator, frechet_distance, load_statistics_for, save_statistics
from oasis_tf.metrics.generation import generate_images, generated_batches, metrics_pipeline
from oasis_tf.metrics.miou import MeanIoUAccumulator, segment_with
from oasis_tf.metrics.report import NOT_COMPARABLE, class_report, format_class_table, format_report

DIVERSITY_SEED_OFFSET = 1 << 32  # noise seed of sample k of label map i: seed + i + k * offset


def default_real_stats_path(data_root, layout, split, image_size, extractor, max_images=None) -> str:
    """Where a split's real FID statistics are cached by default:
    ``<data_root>/fid_stats/<layout>-<split>-<H>x<W>-<extractor>[-n<max_images>].npz``.

    Args:
        data_root: the data set folder.
        layout: its layout ("ade20k", ...).
        split: "val", ...
        image_size: (H, W) of the evaluated images.
        extractor: the feature extractor (its name, shortened, is in the file name).
        max_images: the image limit of the evaluation, when there is one.
    """
    name = extractor_info(extractor)["fid_extractor"] or "extractor"
    slug = re.sub(r"[^A-Za-z0-9]+", "_", name.split(" ")[0]).strip("_").lower() or "extractor"
    stem = f"{layout}-{split}-{int(image_size[0])}x{int(image_size[1])}-{slug}"
    if max_images:
        stem += f"-n{int(max_images)}"
    return os.path.join(os.fspath(data_root), "fid_stats", stem + ".npz")


def default_report_path(model, config_path, split) -> str:
    """Where an evaluation's report goes by default: ``<run>/evaluation-<split>.json`` for
    a run folder (``config_path`` its ``config.yaml``), else
    ``evaluation-<model file's stem>-<split>.json`` in the current folder."""
    from oasis_tf.inference import OFFICIAL_SUFFIXES

    model_path = os.path.normpath(os.fspath(model))
    if (os.path.isdir(model_path) and config_path
            and os.path.dirname(os.fspath(config_path)) == model_path):
        return os.path.join(model_path, f"evaluation-{split}.json")
    suffixes = "|".join(re.escape(s) for s in (".keras",) + OFFICIAL_SUFFIXES)
    stem = re.sub(rf"({suffixes})$", "", os.path.basename(model_path))
    return f"evaluation-{stem}-{split}.json"


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
            mu, sigma, _ = load_statistics_for(self.real_stats_path, self.extractor)
            self.real_statistics = (mu, sigma)
            self.real_stats_cached = True

    def __call__(self, generator) -> dict:
        """``{"fid", "fid_extractor", "comparable_with_papers", "num_images", "real_stats_cached"}``."""
        self._load_cached()
        key = id(generator)
        if key not in self._fns:
            self._fns = {key: metrics_pipeline(generator)}
        need_real = self.real_statistics is None
        acc_real = StatisticsAccumulator() if need_real else None
        acc_fake = StatisticsAccumulator()
        count = 0
        for _, real, fake in generated_batches(self._fns[key], self.dataset, self.max_images, self.seed):
            acc_fake.update(self.extractor(fake))
            if need_real:
                if real is None:
                    raise ValueError("the dataset has no 'image' and no real statistics were given")
                acc_real.update(self.extractor(real))
            count += fake.shape[0]
        result = dict(extractor_info(self.extractor), num_images=count,
                      real_stats_cached=self.real_stats_cached)
        if count < 2:
            result["fid"] = None
            return result
        if need_real:
            self.real_statistics = acc_real.result()
            if self.real_stats_path:
                save_statistics(self.real_stats_path, *self.real_statistics, extractor=self.extractor,
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


def _finite_or_none(value):
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


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
        class_names: optional class names (the data set's class list), stored in the report and
            used in ``classes``; ids without a name are called ``class_<id>``. Default: the
            generator's own (an own data set's, ``OASISGenerator(class_names=...)``), if any.
        progress: optional callable ``(num_images_done) -> None``.

    Returns:
        dict with ``fid`` (float or None), ``fid_extractor``, ``comparable_with_papers``,
        ``fid_note``, ``miou``, ``per_class_iou`` (list, None for absent classes),
        ``miou_real``, ``per_class_iou_real``, ``pixel_accuracy``, ``pixel_accuracy_real``,
        ``classes`` (per class: ``id``, ``name``, ``pixels`` in the ground truth, ``absent``,
        ``iou``, ``iou_real``, ``accuracy``, ``predicted_pixels``; see
        `oasis_tf.metrics.report.class_report`), ``segmenter``, ``ms_ssim``,
        ``ms_ssim_scales``, ``ms_ssim_pairs``, ``ms_ssim_real_pairs``, ``num_images``,
        ``num_diversity_labels``, ``num_classes``, ``image_size``, ``seed``,
        ``real_stats_path``, ``real_stats_cached``, ``time_s``, ``notes``.
    """
    start = time.time()
    extractor = make_extractor(extractor) if isinstance(extractor, str) else extractor
    num_classes = int(generator.num_classes)
    if class_names is None:
        class_names = getattr(generator, "class_names", None)
    notes = []
    pipeline = metrics_pipeline(generator)

    # FID set-up
    real_stats = None
    real_stats_cached = False
    real_meta = {}
    if extractor is not None and real_stats_path is not None and os.path.exists(os.fspath(real_stats_path)):
        mu, sigma, real_meta = load_statistics_for(os.fspath(real_stats_path), extractor)
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
    for label, real, fake in generated_batches(pipeline, dataset, max_images, seed):
        b = label.shape[0]
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
                    save_statistics(real_stats_path, *real_stats, extractor=extractor, num_images=count,
                                    image_height=report["image_size"][0], image_width=report["image_size"][1])
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
            report["per_class_iou" + key] = [_finite_or_none(v) for v in per_class]
    report["ignore_index"] = ignore_index
    if class_names is not None:
        report["class_names"] = [str(n) for n in class_names]
        if len(class_names) != num_classes:
            notes.append(f"{len(class_names)} class names for {num_classes} classes; the others are "
                         "called class_<id>")
    if miou_acc is not None and count:
        report.update(class_report(miou_acc.confusion,
                                   None if miou_real_acc is None or not miou_real_acc.confusion.any()
                                   else miou_real_acc.confusion,
                                   class_names=class_names, ignore_index=ignore_index))
    else:
        report.update(pixel_accuracy=None, pixel_accuracy_real=None, classes=None)

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
            samples.append(generate_images(pipeline, labels, idx + k * DIVERSITY_SEED_OFFSET))
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
# The synthetic data set (the demo)
# --------------------------------------------------------------------------

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
                           training=False, num_classes=num_classes)
    report = evaluate_generator(generator, dataset, extractor=extractor, segmenter=segmenter,
                                real_stats_path=real_stats_path, num_diversity_samples=num_diversity_samples,
                                max_images=max_images, seed=seed,
                                class_names=CLASS_NAMES if num_classes == len(CLASS_NAMES) else None)
    if verbose:
        print(format_report(report, title=f"Evaluation on the synthetic {split} split ({report['num_images']} images)"))
        if report.get("classes"):
            print(format_class_table(report))
    return report
