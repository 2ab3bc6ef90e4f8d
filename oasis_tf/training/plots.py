"""Curves of a training run, drawn with matplotlib: the losses and the FID over steps.

    plot_losses(read_metrics("runs/x/metrics.jsonl"), "runs/x/loss_curves.png")
    image = plot_fid_curve(steps, values, "runs/x/fid.png")  # also uint8 [H, W, 3] for TensorBoard

Both render off-screen (matplotlib's Agg canvas, no display needed) to an
image of exactly ``size`` pixels, written as PNG when a path is given.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from oasis_tf.fileio import atomic_file

CURVE_COLOURS = {
    "loss_g": "#1f77b4",
    "loss_d": "#000000",
    "loss_d_fake": "#d62728",
    "loss_d_real": "#2ca02c",
    "loss_d_labelmix": "#9467bd",
}
_DPI = 100


def _figure(size):
    from matplotlib.figure import Figure

    width, height = size
    return Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)


def _render(fig) -> np.ndarray:
    """The figure as RGB uint8 [H, W, 3] (Agg canvas, off-screen)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _save_png(image, path):
    from PIL import Image

    with atomic_file(path, suffix=".png") as tmp:
        Image.fromarray(image, "RGB").save(tmp)


def plot_fid_curve(steps, values, path=None, size=(640, 400), title="FID (lower is better)", best=None):
    """FID over steps as an RGB uint8 image [H, W, 3] (``size`` is (width, height)), written to
    ``path`` as PNG when given.

    Args:
        steps: the steps measured.
        values: the FID at each step (None / non-finite ones are left out).
        path: optional PNG to write.
        size: (width, height) in pixels.
        title: the figure title.
        best: (step, value) marked in red (default: the minimum).
    """
    pts = [(int(s), float(v)) for s, v in zip(steps, values) if v is not None and math.isfinite(float(v))]
    fig = _figure(size)
    ax = fig.add_axes((0.11, 0.13, 0.85, 0.77))
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if pts:
        xs, ys = zip(*pts)
        ax.plot(xs, ys, "o-", color="#1f77b4", lw=2, ms=4)
        if best is None:
            best = min(pts, key=lambda p: p[1])
        if best is not None and best[1] is not None:
            ax.plot([best[0]], [best[1]], "o", ms=11, mfc="none", mec="#d62728", mew=2)
            ax.set_title(f"best {best[1]:.3f} @ {best[0]}", fontsize=9, loc="right", color="#d62728")
    else:
        ax.text(0.02, 0.95, "no FID yet", transform=ax.transAxes, va="top")
    image = _render(fig)
    if path is not None:
        _save_png(image, path)
    return image


def plot_losses(records, path, keys=None, size=(900, 420), reference=None):
    """Draws loss curves (one line per key against "step"); writes a PNG and returns its Path.

    Args:
        records: list of dicts (the lines of ``metrics.jsonl``).
        path: output PNG.
        keys: losses to draw (default: the known loss keys present).
        size: (width, height) of one panel in pixels.
        reference: optional ``(value, text)`` horizontal dashed line (e.g. ln(C)).

    Two panels side by side: the discriminator's losses (real, fake, total,
    LabelMix) and the generator's. The y range ignores the top 3 % of values,
    so an early spike does not flatten the rest.
    """
    records = [r for r in records if "step" in r]
    keys = keys or [k for k in CURVE_COLOURS if any(k in r for r in records)]
    panels = [("discriminator", [k for k in keys if k.startswith("loss_d")]),
              ("generator", [k for k in keys if not k.startswith("loss_d")])]
    panels = [p for p in panels if p[1]]
    width, height = size
    fig = _figure((width * max(len(panels), 1), height))
    for p, (title, names) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), p + 1)
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        values = [r[k] for r in records for k in names if k in r]
        for k in names:
            pts = [(r["step"], r[k]) for r in records if k in r]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, "-" if len(pts) > 1 else "o", color=CURVE_COLOURS.get(k, "#ff7f0e"), lw=1.5,
                        label=k)
        if reference is not None:
            ax.axhline(reference[0], color="#787878", ls="--", lw=1, label=reference[1])
        if values:
            ordered = sorted(values)
            low = min(ordered[0], 0.0, reference[0] if reference else 0.0)
            q = ordered[min(len(ordered) - 1, int(0.97 * len(ordered)))]
            high = min(ordered[-1], max(q * 1.5, low + 1e-3))
            ax.set_ylim(low, high + 0.05 * (high - low))
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    _save_png(_render(fig), path)
    return Path(path)
