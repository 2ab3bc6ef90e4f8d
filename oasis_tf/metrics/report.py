"""An evaluation report: per-class numbers, the printed tables, the JSON file and the class chart.

    report = evaluate_generator(...)
    print(format_report(report))           # FID / mIoU / MS-SSIM table
    print(format_class_table(report))      # per class, worst to best
    write_report(report, "evaluation.json")  # + evaluation-class_iou.png next to it

Per class (`class_report`, from the segmenter's confusion matrices on the
generated and the real images): its name, its pixel count in the ground truth
(don't-care pixels left out), its IoU on the generated and on the real images,
and its pixel accuracy (recall). A class with no ground-truth pixel is
reported as ``"absent": true`` with IoU ``null``, not 0 (the mIoU still follows
`oasis_tf.metrics.miou`'s convention).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from oasis_tf.fileio import atomic_file
from oasis_tf.metrics.miou import iou_from_confusion, pixel_accuracy

NOT_COMPARABLE = "not comparable with published FID"
CLASS_CHART_SUFFIX = "-class_iou.png"


def _finite_or_none(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _completed_names(num_classes, class_names=None) -> list:
    """``num_classes`` names: ``class_names[i]`` where given, else ``class_<i>``.

    Args:
        num_classes: class count incl. don't-care.
        class_names: optional sequence of names (the data set's class list); a
            shorter list is completed with ``class_<i>``, extra names are dropped.
    """
    names = [str(n) for n in (class_names or ())][:num_classes]
    return names + [f"class_{i}" for i in range(len(names), num_classes)]


def class_report(confusion, confusion_real=None, class_names=None, ignore_index=0) -> dict:
    """Pixel accuracy and one entry per class from confusion matrices ``cm[true, pred]``.

    Args:
        confusion: [K, K] counts of the segmenter on the generated images.
        confusion_real: the same on the real images, or None.
        class_names: names (a shorter list is completed with ``class_<i>``).
        ignore_index: the don't-care class (left out of the entries; None: none).

    Returns:
        ``{"pixel_accuracy", "pixel_accuracy_real", "classes": [{"id", "name",
        "pixels", "absent", "iou", "iou_real", "accuracy", "predicted_pixels"}]}``;
        ``iou`` / ``iou_real`` / ``accuracy`` are None for absent classes.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    k = cm.shape[0]
    names = _completed_names(k, class_names)
    _, iou = iou_from_confusion(cm, ignore_index)
    iou_real = iou_from_confusion(confusion_real, ignore_index)[1] if confusion_real is not None else None
    gt = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    classes = []
    for c in range(k):
        if ignore_index is not None and c == ignore_index:
            continue
        absent = bool(gt[c] == 0)
        classes.append({
            "id": c, "name": names[c], "pixels": int(gt[c]), "absent": absent,
            "iou": None if absent else _finite_or_none(iou[c]),
            "iou_real": None if absent or iou_real is None else _finite_or_none(iou_real[c]),
            "accuracy": None if absent else float(cm[c, c] / gt[c]),
            "predicted_pixels": int(predicted[c]),
        })
    return {"pixel_accuracy": _finite_or_none(pixel_accuracy(cm)),
            "pixel_accuracy_real": None if confusion_real is None else _finite_or_none(pixel_accuracy(confusion_real)),
            "classes": classes}


# --------------------------------------------------------------------------
# Printed tables
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
    if report.get("pixel_accuracy") is not None:
        acc = "pixels of the right class"
        if report.get("pixel_accuracy_real") is not None:
            acc += f"; on the real images: {report['pixel_accuracy_real']:.4f}"
        lines.append(f"  {'pixel acc':<9} {_fmt(report.get('pixel_accuracy')):>10}  {acc}")
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


def _sorted_classes(classes):
    """Present classes worst to best IoU (ties by id), then the absent ones by id."""
    present = [c for c in classes if not c["absent"]]
    absent = [c for c in classes if c["absent"]]
    present.sort(key=lambda c: (-1.0 if c["iou"] is None else c["iou"], c["id"]))
    return present + absent


def format_class_table(report, title="Per class (worst to best IoU on the generated images)") -> str:
    """The per-class table of a report, sorted from worst to best; "" when it has none."""
    classes = report.get("classes")
    if not classes:
        return ""
    width = max(5, max(len(c["name"]) for c in classes))
    lines = [title, f"  {'id':>4} {'class':<{width}} {'IoU':>7} {'IoU real':>8} {'acc':>7} {'GT pixels':>11}"]
    for c in _sorted_classes(classes):
        if c["absent"]:
            lines.append(f"  {c['id']:>4} {c['name']:<{width}} {'absent from the ground truth':>35}"
                         + (f" (predicted on {c['predicted_pixels']} px)" if c["predicted_pixels"] else ""))
            continue
        lines.append(f"  {c['id']:>4} {c['name']:<{width}} {_fmt(c['iou']):>7} {_fmt(c['iou_real']):>8} "
                     f"{_fmt(c['accuracy']):>7} {c['pixels']:>11}")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# The class chart
# --------------------------------------------------------------------------

def class_chart_path(report_path) -> str:
    """Where the class chart of the report at ``report_path`` goes: ``<stem>-class_iou.png`` beside it."""
    stem, _ = os.path.splitext(os.fspath(report_path))
    return stem + CLASS_CHART_SUFFIX


def plot_class_iou(report, path, title=None) -> str | None:
    """Bar chart of per-class IoU, generated vs real images (classes present in the ground truth,
    in class-id order), written to ``path`` as PNG; returns the path, or None when the report
    has no present class."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    classes = [c for c in report.get("classes") or () if not c["absent"]]
    if not classes:
        return None
    x = np.arange(len(classes))
    gen = [np.nan if c["iou"] is None else c["iou"] for c in classes]
    real = [np.nan if c["iou_real"] is None else c["iou_real"] for c in classes]
    has_real = any(np.isfinite(real))
    fig = Figure(figsize=(max(6.0, 0.28 * len(classes) + 1.5), 4.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    width = 0.4 if has_real else 0.8
    miou = report.get("miou")
    ax.bar(x - (width / 2 if has_real else 0), gen, width,
           label="generated" + ("" if miou is None else f" (mIoU {miou:.3f})"), color="#1f77b4")
    if has_real:
        miou_real = report.get("miou_real")
        ax.bar(x + width / 2, real, width, color="#bbbbbb",
               label="real" + ("" if miou_real is None else f" (mIoU {miou_real:.3f})"))
    ax.set_xticks(x, [c["name"] for c in classes], rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU")
    ax.set_title(title or f"Per-class IoU ({report.get('segmenter') or 'segmenter'})", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    path = os.fspath(path)
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


# --------------------------------------------------------------------------
# The JSON file
# --------------------------------------------------------------------------

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


def write_report(report, path, chart=True) -> str:
    """Writes the report as JSON (NaN -> null), atomically; returns the path.

    Args:
        report: the dict of `evaluate_generator`.
        path: the ``.json`` file.
        chart: also draw the per-class IoU chart (`plot_class_iou`) at
            `class_chart_path` when the report has per-class numbers.
    """
    path = os.fspath(path)
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(_json_clean(report), f, indent=1, allow_nan=False)
        f.write("\n")
    if chart and report.get("classes"):
        plot_class_iou(report, class_chart_path(path))
    return path
