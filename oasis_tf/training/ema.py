"""Refreshing the EMA generator's BatchNorm statistics from ``model.fit``."""

import keras

from oasis_tf.training.callbacks import global_step


class EMAStatisticsRefresh(keras.callbacks.Callback):
    """Recompute the EMA generator's BN statistics every N steps and at the end.

    The official code runs the EMA generator in training mode over 50 (+1)
    batches before every FID computation, image dump or checkpoint; use this
    callback in front of callbacks that sample, evaluate or save.

    Args:
        dataset: iterable of training batches (dicts with a "label"); a
            repeating ``tf.data.Dataset`` is best.
        every_n_steps: refresh after every this many training steps (0: only at
            the end of training).
        num_batches: batches per refresh (official: 50).
    """

    def __init__(self, dataset, every_n_steps=0, num_batches=50):
        super().__init__()
        self.dataset = dataset
        self.every_n_steps = int(every_n_steps)
        self.num_batches = int(num_batches)
        self.refreshed_at = None

    def _step(self):
        return global_step(self.model)

    def _refresh(self):
        step = self._step()
        if step != self.refreshed_at:
            self.model.refresh_ema_statistics(self.dataset, self.num_batches, seed=step)
            self.refreshed_at = step

    def on_train_batch_end(self, batch, logs=None):
        if self.every_n_steps > 0 and self._step() % self.every_n_steps == 0:
            self._refresh()

    def on_train_end(self, logs=None):
        self._refresh()
