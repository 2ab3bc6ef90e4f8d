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
5. ``<run>/fid.png`` (FID over steps, `oasis_tf.training.plots.plot_fid_curve`) is redrawn.

A resumed run reads the earlier FID records from ``metrics.jsonl`` (the trainer
drops those after the checkpoint's step) and the best value from
``checkpoints/best``.
"""

import logging
import math
import time

import keras

from oasis_tf.training.callbacks import summary_png, summary_scalar
from oasis_tf.training.updates import global_step
from oasis_tf.training.plots import plot_fid_curve

FID_PLOT_NAME = "fid.png"
FID_REAL_STATS_NAME = "fid_real_stats.npz"


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
        from oasis_tf.metrics import GeneratorFID
        from oasis_tf.metrics.extractors import extractor_info, make_extractor

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
        if self.at_end and not self.context.failed and not self.context.stopped:
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
