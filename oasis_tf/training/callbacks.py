"""Keras callbacks of an OASIS training run (used with ``model.fit``).

Every trigger is step based: the global step is ``model.d_optimizer.iterations``
(one per ``train_step``; it survives a resume). Put ``NaNGuard`` first in the
callback list: the callbacks after it see ``context.failed`` and neither sample
nor checkpoint from a bad state.

* ``PerStepMetrics``: resets the loss trackers before each batch, so the logs of a
  batch are that step's losses (the trackers otherwise average over the epoch).
* ``NaNGuard``: a NaN or Inf loss stops training with a message naming the step
  and the losses; the last good checkpoint stays.
* ``StopGuard``: a stop request (SIGTERM / SIGINT, ``oasis_tf.training.stop``)
  ends training after the step in flight; on several workers they agree on that
  step. ``Checkpointer`` then saves it; samples and FID are skipped (the grace
  period is short).
* ``ProgressLogger``: every ``every`` steps one line (step, losses, images/s,
  ETA) to the log, one JSON object to ``metrics.jsonl`` and TensorBoard scalars;
  the losses are the means over the steps since the last line. The first step of
  a ``fit`` (tracing and compiling the step) is timed apart, logged once, and left
  out of images/s, s/step and ETA.
* ``SampleGrid``: every ``every`` steps a grid (rows: colourised label | real |
  fake G | fake EMA) for a fixed batch and fixed noise, as PNG in ``samples/`` and
  as a TensorBoard image.
* ``Checkpointer``: every ``every`` steps and at the end, the full training state.

The EMA generator's BatchNorm statistics are refreshed (``refresh_ema_statistics``,
official: 50 batches) once before sampling or saving at a step. Not before the
checkpoint of a stopped run: the refresh changes the state the next step starts
from, and a stopped run resumes exactly as if it had not been stopped only when
its checkpoint holds the state as trained (``state.json`` records
``ema_statistics_refreshed``; the end of a run refreshes them when it was not).
"""

import datetime
import math
import time

import keras
import numpy as np
import tensorflow as tf

from oasis_tf.fileio import writing
from oasis_tf.images import make_grid, to_uint8
from oasis_tf.losses import LOSS_NAMES
from oasis_tf.training.ema import EMAStatisticsRefresh
from oasis_tf.training.stop import CODES
from oasis_tf.training.updates import global_step



def summary_scalar(tag, value, step):
    """A TensorBoard scalar (``tf.summary.scalar``) in the default writer."""
    tf.summary.scalar(tag, float(value), step=step)


def summary_png(tag, image, step):
    """A TensorBoard image (uint8 [H, W, 3], ``tf.summary.image``) in the default writer."""
    tf.summary.image(tag, np.asarray(image, np.uint8)[None], step=step)


def _to_float(value):
    return float(np.asarray(value, dtype=np.float64).reshape(()))


class RunContext:
    """State shared by the callbacks of one run.

    Args:
        model: the compiled ``OASIS`` model.
        logger: a ``logging.Logger``.
        total_steps: the step at which training ends.
        batch_size: global batch size (for images/s).
        steps_per_epoch: batches in one pass over the data (for the epoch shown),
            or None when unknown.
        run: the ``RunDir`` (None: no files written).
        ema_dataset_fn: callable returning an iterable of batches for the EMA
            BatchNorm refresh (None: no refresh).
        ema_refresh_batches: batches per refresh (official 50).
        writer: a ``tf.summary`` writer or None.
    """

    def __init__(self, model, logger, total_steps, batch_size, steps_per_epoch=None,
                 run=None, ema_dataset_fn=None, ema_refresh_batches=50, writer=None):
        self.model = model
        self.logger = logger
        self.total_steps = int(total_steps)
        self.batch_size = int(batch_size)
        self.steps_per_epoch = steps_per_epoch
        self.run = run
        self.ema_refresh = EMAStatisticsRefresh(ema_dataset_fn, num_batches=ema_refresh_batches,
                                                logger=logger)
        self.ema_refresh.set_model(model)
        self.writer = writer
        self.failed = False
        self.failure = None
        self.stopped = None  # the reason of a stop request ("SIGTERM", ...)
        self.last_checkpoint = None

    def position(self, step):
        """(epoch, batch in epoch), both 0-based, after ``step`` steps."""
        if not self.steps_per_epoch:
            return None, None
        return step // self.steps_per_epoch, step % self.steps_per_epoch

    def ema_refreshed(self, step):
        """True when the EMA BatchNorm statistics were refreshed at ``step``."""
        return self.ema_refresh.refreshed(step)

    def mark_ema_refreshed(self, step):
        """Records that the model's EMA statistics are those refreshed at ``step``
        (restored from a checkpoint that holds them)."""
        self.ema_refresh.mark_refreshed(step)

    def refresh_ema(self, step):
        """Refreshes the EMA BatchNorm statistics once per step (no-op without EMA)."""
        self.ema_refresh.refresh(step)


class _StepCallback(keras.callbacks.Callback):
    def __init__(self, context):
        super().__init__()
        self.context = context

    @property
    def step(self):
        return global_step(self.context.model)


class PerStepMetrics(keras.callbacks.Callback):
    """Resets the model's metrics before every batch: batch logs become per-step."""

    def on_train_batch_begin(self, batch, logs=None):
        self.model.reset_metrics()


class NaNGuard(_StepCallback):
    """Stops training at the first NaN or Inf loss (``model.stop_training``), logs
    the step and the losses and marks the run failed so nothing is saved after."""

    def on_train_batch_end(self, batch, logs=None):
        if self.context.failed or not logs:
            return
        values = {k: _to_float(v) for k, v in logs.items()}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if not bad:
            return
        step = self.step
        ctx = self.context
        ctx.failed = True
        ctx.failure = (f"non-finite loss at step {step}: "
                       + ", ".join(f"{k}={v}" for k, v in sorted(bad.items())))
        kept = ctx.last_checkpoint or "none written yet"
        ctx.logger.error("%s (all losses: %s). Training stopped; the state after this step "
                         "is NOT saved. Last good checkpoint: %s", ctx.failure,
                         ", ".join(f"{k}={v:.4g}" for k, v in values.items()), kept)
        ctx.model.stop_training = True


class StopGuard(_StepCallback):
    """Ends training after the step in flight once a stop is requested.

    Args:
        context: the ``RunContext`` (its ``stopped`` gets the reason).
        stop: the ``oasis_tf.training.stop.StopRequest``.
        agree: ``fn(list of ints) -> list of ints``, the requests of this process
            added up over the workers (``distribute.sum_over_workers``): every
            worker calls it after every step, so all stop after the same one.
    """

    def __init__(self, context, stop, agree=None):
        super().__init__(context)
        self.stop = stop
        self.agree = agree

    def on_train_batch_end(self, batch, logs=None):
        if self.context.failed or self.context.stopped:
            return
        reason = agreed_stop(self.stop, self.agree)
        if reason is not None:
            self.context.stopped = reason
            self.context.logger.info("step %d: %s received: ending training after this "
                                     "step with a checkpoint", self.step, reason)
            self.context.model.stop_training = True


def agreed_stop(stop, agree=None):
    """The reason of a stop requested in this process or (with ``agree``) in any
    worker of the job; None when none is. Every worker must call it together."""
    votes = [0] * len(CODES)
    code = stop.code() if stop is not None else None
    if code is not None:
        votes[code] = 1
    if agree is not None:
        votes = agree(votes)
    if stop is not None and stop.requested:
        return stop.reason
    for name, slot in CODES.items():
        if votes[slot]:
            return name if name != "request" else "a stop request"
    return None


class ProgressLogger(_StepCallback):
    """One progress line, one metrics record and TensorBoard scalars per tick."""

    def __init__(self, context, every=100):
        super().__init__(context)
        self.every = int(every)
        self._sums = {}
        self._count = 0
        self._tick_time = None
        self._tick_step = None

    def on_train_begin(self, logs=None):
        self._tick_time = time.time()
        self._tick_step = self.step
        self._start_time = self._tick_time
        self._first = True

    def on_train_batch_end(self, batch, logs=None):
        if self.context.failed:
            return
        for k, v in (logs or {}).items():
            self._sums[k] = self._sums.get(k, 0.0) + _to_float(v)
        self._count += 1
        step = self.step
        if self._first:  # tracing + compiling: timed apart from the speed
            self._first = False
            now = time.time()
            self.context.logger.info("step %d: first step took %.2f s (tracing and "
                                     "compiling the training step; not counted in s/step "
                                     "and ETA)", step, now - self._tick_time)
            self._tick_time, self._tick_step = now, step
        if step % self.every == 0 or step >= self.context.total_steps:
            self._emit(step)

    def on_train_end(self, logs=None):
        if self._count and not self.context.failed:
            self._emit(self.step)

    def _emit(self, step):
        ctx = self.context
        now = time.time()
        steps = step - self._tick_step
        remaining = max(ctx.total_steps - step, 0)
        if steps > 0:  # no timed step yet: only the first (tracing) step ran
            steps_per_s = steps / max(now - self._tick_time, 1e-9)
            images_per_s = steps_per_s * ctx.batch_size
            sec_per_step = 1.0 / steps_per_s
            eta = datetime.timedelta(seconds=round(remaining / steps_per_s))
        else:
            images_per_s = sec_per_step = None
            eta = "?"
        losses = {k: v / self._count for k, v in self._sums.items()}
        epoch, batch = ctx.position(step)
        where = f"step {step:>7d}/{ctx.total_steps}"
        if epoch is not None:
            where += f" ep {epoch:>3d}"
        ordered = [k for k in LOSS_NAMES if k in losses] + sorted(set(losses) - set(LOSS_NAMES))
        loss_text = " ".join(f"{k} {losses[k]:8.4f}" for k in ordered)
        speed = ("%7.1f img/s | %.3f s/step" % (images_per_s, sec_per_step)
                 if sec_per_step is not None else "      - img/s |     - s/step")
        ctx.logger.info("%s | %s | %s | ETA %s", where, loss_text, speed, eta)
        record = {"step": step, "epoch": epoch, "batch_in_epoch": batch,
                  "time": round(now, 3),
                  "images_per_sec": None if images_per_s is None else round(images_per_s, 3),
                  "sec_per_step": None if sec_per_step is None else round(sec_per_step, 5),
                  "steps_averaged": self._count}
        record.update({k: losses[k] for k in ordered})
        if ctx.run is not None:
            ctx.run.append_metrics(record)
        if ctx.writer is not None:
            with ctx.writer.as_default(step=step):
                for k in ordered:
                    summary_scalar(f"losses/{k}", losses[k], step)
                if images_per_s is not None:
                    summary_scalar("speed/images_per_sec", images_per_s, step)
            ctx.writer.flush()
        self._sums, self._count = {}, 0
        self._tick_time, self._tick_step = now, step


# ---------------------------------------------------------------- sample grids
class SampleGrid(_StepCallback):
    """Sample grids for a fixed batch and fixed noise: rows label | real | generator |
    EMA generator, image ``i`` with noise seed ``noise_seed + i`` (made by
    ``oasis_tf.inference.OASISPipeline``, as every front end makes a seed's image).

    Args:
        context: the ``RunContext``.
        batch: dict with "image" [N, H, W, 3] and "label" [N, H, W] (numpy or tensors).
        every: int. Interval in steps (also at the end of training).
        noise_seed: seed of image 0's noise.
    """

    def __init__(self, context, batch, every=1000, noise_seed=0):
        from oasis_tf.inference import OASISPipeline

        super().__init__(context)
        self.every = int(every)
        self.label = np.asarray(batch["label"]).astype(np.int32)
        self.image = np.asarray(batch["image"], np.float32)
        self.seeds = np.arange(len(self.label), dtype=np.int64) + int(noise_seed)
        model = context.model
        self.pipelines = [OASISPipeline.from_generator(network, batch_size=None)
                          for network in (model.generator,
                                          getattr(model, "ema_generator", None))
                          if network is not None]
        self._last = None

    def on_train_batch_end(self, batch, logs=None):
        step = self.step
        if step % self.every == 0 and not self.context.failed:
            self.write(step)

    def on_train_end(self, logs=None):
        step = self.step
        if not self.context.failed and not self.context.stopped and self._last != step:
            self.write(step)

    def render(self):
        """The grid, uint8 [4*(H+2)+2, N*(W+2)+2, 3]."""
        first = self.pipelines[0]
        rows = [[first.colorize(x) for x in self.label], to_uint8(self.image)]
        rows += [pipeline.generate(self.label, self.seeds) for pipeline in self.pipelines]
        return make_grid(rows)

    def write(self, step):
        ctx = self.context
        ctx.refresh_ema(step)
        grid = self.render()
        self._last = step
        if ctx.run is not None:
            path = ctx.run.samples_dir / f"samples-{step:08d}.png"
            with writing(f"sample grid {path.name}", path):
                tf.io.write_file(str(path), tf.io.encode_png(grid))
            ctx.logger.info("step %d: wrote %s", step, path)
        if ctx.writer is not None:
            with ctx.writer.as_default(step=step):
                summary_png("samples/label_real_fake_fakeEMA", grid, step)
            ctx.writer.flush()


# ---------------------------------------------------------------- checkpoints
class Checkpointer(_StepCallback):
    """Saves the training state every ``every`` steps and at the end of training
    (never after a NaN / Inf loss; after a stop request, the state as trained,
    without the EMA statistics refresh and the metric).

    Args:
        context: the ``RunContext``.
        manager: a ``CheckpointManager``.
        every: int. Interval in steps.
        metric_fn: optional callable ``step -> float or None`` giving the metric of
            the best checkpoint; None: no best tracking.
    """

    def __init__(self, context, manager, every=5000, metric_fn=None):
        super().__init__(context)
        self.manager = manager
        self.every = int(every)
        self.metric_fn = metric_fn
        self._last = None

    def on_train_batch_end(self, batch, logs=None):
        step = self.step
        if step % self.every == 0 and not self.context.failed:
            self.save(step)

    def on_train_end(self, logs=None):
        step = self.step
        if self.context.failed:
            self.context.logger.error("training stopped early (%s); no final checkpoint. "
                                      "Last good checkpoint: %s", self.context.failure,
                                      self.context.last_checkpoint)
            return
        if self._last != step:
            self.save(step, stopping=bool(self.context.stopped))

    def save(self, step, stopping=False):
        ctx = self.context
        if not stopping:
            ctx.refresh_ema(step)
        epoch, batch = ctx.position(step)
        metric = self.metric_fn(step) if self.metric_fn is not None and not stopping else None
        start = time.time()
        path = self.manager.save(step, state={"epoch": epoch, "batch_in_epoch": batch,
                                              "steps_per_epoch": ctx.steps_per_epoch,
                                              "total_steps": ctx.total_steps,
                                              "ema_statistics_refreshed":
                                                  ctx.ema_refreshed(step)},
                                 metric=metric)
        self._last = step
        ctx.last_checkpoint = str(path)
        ctx.logger.info("step %d: saved checkpoint %s (%.1f s)", step, path,
                        time.time() - start)
