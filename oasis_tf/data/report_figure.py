"""The inspector's picture: the class histogram and a few photo | mask overlays.

    plot_dataset_report(report, "dataset_report.png")

Top: pixels per class (log scale), each bar in its class's colour, named. Below:
up to four training pairs, the photo beside the photo overlaid with its classes'
colours, and a legend naming the classes they show. Rendered off-screen
(matplotlib's Agg canvas).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

_OVERLAY_ALPHA = 0.55
_THUMB_HEIGHT = 160


def _class_pixels(report, num_classes):
    pixels = np.zeros(num_classes, np.int64)
    for v in report.values:
        if v["class"] is not None and v["class"] < num_classes:
            pixels[v["class"]] += v["pixels"]
    return pixels


def _overlay(report, pair, palette):
    """(photo, overlay) uint8 thumbnails of one pair and the classes it shows."""
    from oasis_tf.data.decoding import decode_pair

    mapping = report.label_mapping
    image, label = decode_pair(pair[0], pair[1], mapping.num_classes, label_mapping=mapping)
    h, w = label.shape
    size = (max(1, round(w * _THUMB_HEIGHT / h)), _THUMB_HEIGHT)
    photo = np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC), np.float32)
    small = np.asarray(Image.fromarray(label.astype(np.int32)).resize(size, Image.NEAREST))
    colours = palette[np.clip(small, 0, len(palette) - 1)].astype(np.float32)
    mixed = (1 - _OVERLAY_ALPHA) * photo + _OVERLAY_ALPHA * colours
    return photo.astype(np.uint8), mixed.astype(np.uint8), np.unique(label)


def plot_dataset_report(report, path, width=1400):
    """Draws the picture of a `DatasetReport` into ``path`` (PNG); returns ``path``.

    Args:
        report: the `DatasetReport`.
        path: the PNG file to write.
        width: the picture's width in pixels.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    names = report.proposed.get("model.class_names") or []
    palette = np.asarray(report.proposed.get("model.palette") or [[0, 0, 0]], np.uint8)
    samples = report.samples if report.label_mapping is not None else []
    dpi = 100
    columns = max(1, len(samples))
    # the overlays' row: as tall as a (photo | overlay) pair of the mean aspect needs
    aspect = np.mean([h / w for (h, w), _ in report.image_sizes.items()] or [1.0])
    row = (width / dpi / columns) * aspect / 2 + 0.5 if samples else 0
    fig = Figure(figsize=(width / dpi, 4.2 + row + (0.4 if samples else 0)), dpi=dpi)
    grid = fig.add_gridspec(2 if samples else 1, columns,
                            height_ratios=[4.2, row] if samples else [1])
    ax = fig.add_subplot(grid[0, :])
    pixels = _class_pixels(report, len(names))
    shown = np.flatnonzero(pixels)
    if len(shown):
        ax.bar(np.arange(len(shown)), pixels[shown], color=palette[shown] / 255.0,
               edgecolor="black", linewidth=0.5)
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(shown)))
        ax.set_xticklabels([f"{c}: {names[c]}" for c in shown], rotation=45, ha="right",
                           fontsize=8 if len(shown) < 40 else 5)
    ax.set_ylabel("pixels")
    splits = ", ".join(f"{k} {v}" for k, v in report.splits.items() if v is not None)
    ax.set_title(f"{os.path.basename(report.root.rstrip(os.sep))}: {splits} pairs; "
                 f"{len(shown)} of {len(names)} classes present; {report.mapping}; "
                 f"{len(report.problems)} problem(s)", fontsize=10)
    present = set()
    for i, pair in enumerate(samples):
        photo, mixed, classes = _overlay(report, pair, palette)
        present.update(int(c) for c in classes)
        sub = fig.add_subplot(grid[1, i])
        gap = np.full((photo.shape[0], 4, 3), 255, np.uint8)
        sub.imshow(np.concatenate([photo, gap, mixed], axis=1))
        sub.set_title(os.path.basename(pair[0]), fontsize=8)
        sub.axis("off")
    if present:
        handles = [Patch(facecolor=palette[c] / 255.0, edgecolor="black", label=names[c])
                   for c in sorted(present) if c < len(names)]
        fig.legend(handles=handles, loc="lower center", ncol=min(8, len(handles)),
                   fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.4 / fig.get_figheight() if present else 0, 1, 1))
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.savefig(path, format="png")
    return os.fspath(path)
