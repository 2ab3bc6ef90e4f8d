"""FID during training: every N steps on the EMA generator, best checkpoint, curve.

    fid_cb = FIDCallback(context, extractor, dataset_fn, every=t.fid_every, manager=manager)
    callbacks = [cb.NaNGuard(context), ..., fid_cb, checkpointer]

At each FID step (``step % every == 0``, and at the end of training unless that
step was measured):

1. the EMA generator's BatchNorm statistics are refreshed
   (``context.refresh_ema(step)``, which runs ``model.refresh_ema_statistics``
   once per step; the official code does the same before its FID);
2. FID of the EMA generator (the generator without EMA) on the validation split
   is computed with fixed noise seeds (`oasis_tf.metrics.evaluate.GeneratorFID`;
   the real statistics once per run, cached in ``<run>/fid_real_stats.npz``);
3. a record ``{"step", "fid", "fid_best", "fid_best_step", "fid_extractor",
   "comparable_with_papers", "fid_num_images", "fid_time_s"}`` goes to
   ``metrics.jsonl`` and the scalars ``metrics/fid`` and ``metrics/fid_best`` plus
   the curve image ``metrics/fid_curve`` to TensorBoard;
4. when it is the lowest FID so far, the training state is saved through the
   ``CheckpointManager`` with ``metric=fid``, which updates ``checkpoints/best``;
5. ``<run>/fid.png`` (FID over steps, drawn with PIL) is redrawn.

A resumed run reads the earlier FID records from ``metrics.jsonl`` (the trainer
drops those after the checkpoint's step) and the best value from
``checkpoints/best``.
"""

import logging
import math
import os
import time

import keras
import numpy as np

from oasis_tf.training.callbacks import global_step, summary_png, summary_scalar

__all__ = ["FIDCallback", "plot_fid_curve", "FID_PLOT_NAME", "FID_REAL_STATS_NAME"]

FID_PLOT_NAME = "fid.png"
FID_REAL_STATS_NAME = "fid_real_stats.npz"


def _nice_ticks(lo, hi, count=5):
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    ticks = []
    v = start
    while v <= hi + 1e-9 * step:
        ticks.append(v)
        v += step
    return ticks


def _label(v):
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-2:
        return f"{v:.1e}"
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.3g}"


def plot_fid_curve(steps, values, path=None, size=(640, 400), title="FID (lower is better)", best=None):
    """FID over steps as an RGB uint8 image [H, W, 3] (PIL drawing), written to ``path`` as
    PNG when given. ``best``: (step, value) marked in red (default: the minimum)."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = size
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    left, right, top, bottom = 64, 20, 30, 44
    pw, ph = width - left - right, height - top - bottom
    draw.text((left, 8), title, fill="black", font=font)
    pts = [(int(s), float(v)) for s, v in zip(steps, values) if v is not None and math.isfinite(float(v))]
    draw.rectangle([left, top, left + pw, top + ph], outline="black")
    if pts:
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if x1 == x0:
            x0, x1 = x0 - 1, x1 + 1
        pad = (y1 - y0) * 0.08 or max(abs(y0) * 0.1, 1.0)
        y0, y1 = y0 - pad, y1 + pad

        def px(s, v):
            return (left + (s - x0) / (x1 - x0) * pw, top + ph - (v - y0) / (y1 - y0) * ph)

        for t in _nice_ticks(y0, y1):
            _, y = px(x0, t)
            draw.line([left, y, left + pw, y], fill=(225, 225, 225))
            draw.line([left - 4, y, left, y], fill="black")
            draw.text((4, y - 6), _label(t), fill="black", font=font)
        for t in _nice_ticks(x0, x1):
            if t < x0 or t > x1:
                continue
            x, _ = px(t, y0)
            draw.line([x, top + ph, x, top + ph + 4], fill="black")
            draw.text((x - 3 * len(_label(t)), top + ph + 6), _label(t), fill="black", font=font)
        draw.text((left + pw // 2 - 12, height - 16), "step", fill="black", font=font)
        line = [px(s, v) for s, v in pts]
        if len(line) > 1:
            draw.line(line, fill=(31, 119, 180), width=2)
        for x, y in line:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(31, 119, 180))
        if best is None:
            best = min(pts, key=lambda p: p[1])
        if best is not None and best[1] is not None:
            bx, by = px(best[0], best[1])
            draw.ellipse([bx - 5, by - 5, bx + 5, by + 5], outline=(214, 39, 40), width=2)
            text = f"best {best[1]:.3f} @ {best[0]}"
            draw.text((left + pw - 7 * len(text), 8), text, fill=(214, 39, 40), font=font)
    else:
        draw.text((left + 10, top + 10), "no FID yet", fill="black", font=font)
    arr = np.asarray(img, dtype=np.uint8)
    if path is not None:
        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}.png"
        img.save(tmp)
        os.replace(tmp, path)
    return arr


class FIDCallback(keras.callbacks.Callback):
    """FID of the EMA generator every ``every`` steps; keeps the best checkpoint.

    Args:
        context: the run's ``RunContext`` (model, logger, run folder, writer, EMA refresh).
        extractor: a FID feature extractor or a spec string (`make_extractor`).
        dataset: the images and label maps to measure on: an iterable of dict batches,
            a callable returning one, or the trainer's ``dataset_fn`` (called as
            ``dataset_fn(split="val", training=False, batch_size=...)``, falling back
            to the "train" split when there is no "val").
        every: interval in steps (0: only at the end of training).
        manager: the run's ``CheckpointManager`` (None: no best checkpoint).
        max_images: FID on at most this many images (None: the whole split).
        batch_size: batch size for ``dataset_fn``.
        seed: noise seed of image 0 (fixed over the run, so values are comparable).
        real_stats_path: cache of the real statistics (default ``<run>/fid_real_stats.npz``).
        at_end: also measure at the end of training.
        plot_path: the PNG (default ``<run>/fid.png``).
    """

    def __init__(self, context, extractor, dataset, every=5000, manager=None, max_images=None,
                 batch_size=16, seed=0, real_stats_path=None, at_end=True, plot_path=None):
        super().__init__()
        from oasis_tf.metrics.evaluate import GeneratorFID, extractor_info, make_extractor

        self.context = context
        self.extractor = make_extractor(extractor)
        if self.extractor is None:
            raise ValueError("FIDCallback needs a feature extractor (got none)")
        self.info = extractor_info(self.extractor)
        self.every = int(every)
        self.manager = manager
        self.at_end = bool(at_end)
        run = context.run
        if real_stats_path is None and run is not None:
            real_stats_path = run.path / FID_REAL_STATS_NAME
        if plot_path is None and run is not None:
            plot_path = run.path / FID_PLOT_NAME
        self.plot_path = plot_path
        self.fid = GeneratorFID(self.extractor, self._dataset_source(dataset, batch_size),
                                real_stats_path=real_stats_path, max_images=max_images, seed=seed)
        self.history = []  # [(step, fid)]
        self.best = None   # (step, fid)
        self.last_step = None
        self._loaded = False

    # ------------------------------------------------------------ set-up
    @staticmethod
    def _dataset_source(dataset, batch_size):
        if not callable(dataset) or hasattr(dataset, "__iter__"):
            return dataset
        try:
            import inspect

            params = inspect.signature(dataset).parameters
        except (TypeError, ValueError):
            params = {}
        if "split" not in params:
            return dataset

        def source():
            import tensorflow as tf

            errors = []
            for split in ("val", "train"):
                try:
                    ds = dataset(split=split, training=False, batch_size=batch_size)
                    iter(ds)
                    return ds
                except (ValueError, FileNotFoundError, tf.errors.OpError) as exc:
                    errors.append(f"{split}: {exc}")
            raise ValueError("FIDCallback: no dataset split to measure on (" + "; ".join(errors) + ")")

        return source

    def _load_history(self):
        if self._loaded:
            return
        self._loaded = True
        run = self.context.run
        if run is not None:
            for record in run.read_metrics():
                if record.get("fid") is not None and "step" in record:
                    self.history.append((int(record["step"]), float(record["fid"])))
        best_metric = self.manager.best_metric() if self.manager is not None else None
        if best_metric is not None:
            from oasis_tf.training.checkpoints import read_state

            step = read_state(self.manager.best_path).get("step")
            self.best = (int(step) if step is not None else -1, float(best_metric))
        elif self.history:
            self.best = min(self.history, key=lambda p: p[1])

    @property
    def logger(self):
        return self.context.logger or logging.getLogger("oasis_tf.training")

    @property
    def step(self):
        return global_step(self.context.model)

    # ------------------------------------------------------------ hooks
    def on_train_begin(self, logs=None):
        self._load_history()

    def on_train_batch_end(self, batch, logs=None):
        if self.every > 0 and not self.context.failed:
            step = self.step
            if step % self.every == 0 and step != self.last_step:
                self.measure(step)

    def on_train_end(self, logs=None):
        if self.at_end and not self.context.failed:
            step = self.step
            if step != self.last_step:
                self.measure(step)

    def metric_at(self, step):
        """The FID measured at ``step`` (None when not measured there): a ``metric_fn``."""
        return next((v for s, v in reversed(self.history) if s == int(step)), None)

    # ------------------------------------------------------------ work
    def _network(self):
        model = self.context.model
        ema = getattr(model, "ema_generator", None)
        return ema if ema is not None else model.generator

    def measure(self, step):
        """Refresh the EMA statistics, compute FID, log it, update best / plot; returns the FID."""
        self._load_history()
        ctx = self.context
        ctx.refresh_ema(step)
        start = time.time()
        result = self.fid(self._network())
        elapsed = time.time() - start
        self.last_step = step
        value = result["fid"]
        if value is None or not math.isfinite(value):
            self.logger.warning("step %d: FID not computed (%s images)", step, result["num_images"])
            return None
        self.history = [(s, v) for s, v in self.history if s != step] + [(step, value)]
        improved = self.best is None or value < self.best[1]
        if improved:
            self.best = (step, value)
        note = "" if self.info["comparable_with_papers"] else " (not comparable with published FID)"
        self.logger.info("step %d: FID %.4f on %d images%s, best %.4f at step %d (%.1f s)%s", step, value,
                         result["num_images"], " -- new best" if improved else "", self.best[1], self.best[0],
                         elapsed, note)
        record = {"step": step, "fid": value, "fid_best": self.best[1], "fid_best_step": self.best[0],
                  "fid_extractor": self.info["fid_extractor"],
                  "comparable_with_papers": self.info["comparable_with_papers"],
                  "fid_num_images": result["num_images"], "fid_time_s": round(elapsed, 3)}
        if ctx.run is not None:
            ctx.run.append_metrics(record)
        if improved and self.manager is not None:
            self._save_best(step, value)
        curve = plot_fid_curve([s for s, _ in self.history], [v for _, v in self.history], self.plot_path,
                               best=self.best)
        if ctx.writer is not None:
            with ctx.writer.as_default(step=step):
                summary_scalar("metrics/fid", value, step)
                summary_scalar("metrics/fid_best", self.best[1], step)
                summary_png("metrics/fid_curve", curve, step)
            ctx.writer.flush()
        return value

    def _save_best(self, step, value):
        ctx = self.context
        epoch, batch = ctx.position(step)
        path = self.manager.save(step, state={"epoch": epoch, "batch_in_epoch": batch,
                                              "steps_per_epoch": ctx.steps_per_epoch,
                                              "total_steps": ctx.total_steps, "fid": value,
                                              "fid_extractor": self.info["fid_extractor"]},
                                 metric=value)
        ctx.last_checkpoint = str(path)
        self.logger.info("step %d: saved checkpoint %s (FID %.4f); best: %s", step, path, value,
                         self.manager.best_path)
