"""The EMA generator: the weight update every training step runs, and the refresh of
its BatchNorm statistics before sampling, evaluating or saving.

``update_ema_weights`` moves every EMA variable to ``decay * ema + (1 - decay) * g``
(``OASIS.train_step`` calls it through ``OASIS.update_ema``).
``OASIS.refresh_ema_statistics`` runs the EMA generator in training mode over the
official 50 (+1) batches; ``EMAStatisticsRefresh`` decides when: as a callback of a
plain ``model.fit`` (every N steps and at the end), and as the one refresh of a
``train()`` run (its ``RunContext`` asks it before every sample grid, FID, checkpoint
and at the end; once per step).
"""

import time

import keras
import numpy as np
import tensorflow as tf

from oasis_tf.training.updates import global_step


def update_ema_weights(pairs, decay):
    """``ema = decay * ema + (1 - decay) * source`` for every ``(ema, source)`` variable
    pair, in cross-replica context (``merge_call`` from a replica).

    The products are rounded to float32 separately, then summed, like the official
    in-place update.
    """
    # One constant each for the whole update (not two per variable).
    keep_old = tf.constant(np.float32(decay))
    take_new = tf.constant(np.float32(1.0 - decay))

    def update(ema, source):
        # `ema * decay` needs only the EMA weights: in a graph it would run at the start
        # of the training step and hold a copy of the whole generator through both
        # updates, so it waits for `source * (1 - decay)` (the updated generator).
        contribution = source * take_new
        with tf.control_dependencies([contribution]):
            decayed = ema * keep_old
        return ema.assign(decayed + contribution)

    def cross_replica(strategy):
        for ema, source in pairs:
            strategy.extended.update(ema.value, update, args=(source.value,))

    if tf.distribute.in_cross_replica_context():
        cross_replica(tf.distribute.get_strategy())
    else:
        tf.distribute.get_replica_context().merge_call(cross_replica)


def refresh_ema_statistics(model, dataset, num_batches=50, seed=0):
    """Recompute the EMA generator's BN statistics (official behaviour).

    Runs ``model.ema_generator`` in training mode over up to ``num_batches + 1``
    batches (the official loop stops after 51), which continues the momentum updates
    of its running statistics and its power iterations.

    Args:
        model: an ``OASIS`` model.
        dataset: iterable of dict batches with a "label" (e.g. the training
            ``tf.data.Dataset``).
        num_batches: the official 50 (51 forwards).
        seed: seed of the noise.

    Returns:
        The number of forwards run (0 without an EMA generator).
    """
    if model.ema_generator is None:
        return 0
    forward = _refresh_forward(model)
    count = 0
    for batch in dataset:
        forward(tf.cast(batch["label"], tf.int32), tf.constant([seed, count]))
        count += 1
        if count > num_batches:
            break
    return count


def _refresh_forward(model):
    """One train-mode EMA forward as a ``tf.function``, built once per model (a new
    one per call would be traced again every time)."""
    if getattr(model, "_ema_refresh_fn", None) is None:
        ema, z_dim = model.ema_generator, model.generator.z_dim

        def forward(label, seed_pair):
            noise = tf.random.stateless_normal([tf.shape(label)[0], z_dim], seed=seed_pair,
                                               alg="philox")
            ema({"label": label, "noise": noise}, training=True)

        # kept out of Keras' attribute tracking
        object.__setattr__(model, "_ema_refresh_fn", tf.function(forward))
    return model._ema_refresh_fn


class EMAStatisticsRefresh(keras.callbacks.Callback):
    """Refreshes the EMA generator's BatchNorm statistics, at most once per step.

    The official code runs the EMA generator in training mode over 50 (+1) batches
    before every FID computation, image dump or checkpoint. As a ``model.fit`` callback
    it refreshes every ``every_n_steps`` steps and at the end; put it in front of
    callbacks that sample, evaluate or save.

    Args:
        dataset: iterable of training batches (dicts with a "label"; a repeating
            ``tf.data.Dataset`` is best), or a callable returning one (read afresh
            at every refresh).
        every_n_steps: as a callback, refresh after every this many steps (0: only at
            the end of training).
        num_batches: batches per refresh (official 50; 0: no refresh).
        logger: optional ``logging.Logger`` told of every refresh.
    """

    def __init__(self, dataset, every_n_steps=0, num_batches=50, logger=None):
        super().__init__()
        self.dataset = dataset
        self.every_n_steps = int(every_n_steps)
        self.num_batches = int(num_batches)
        self.logger = logger
        self.refreshed_at = None

    def refreshed(self, step):
        """True when the statistics are those refreshed at ``step``."""
        return self.refreshed_at == step

    def mark_refreshed(self, step):
        """Records that the model's statistics are those refreshed at ``step`` (e.g.
        restored from a checkpoint that holds them)."""
        self.refreshed_at = step

    def refresh(self, step=None):
        """Refreshes the statistics unless they are those of ``step`` (default: the
        model's step); a no-op without an EMA generator. Returns the forwards run."""
        model = self.model
        step = global_step(model) if step is None else step
        if (self.refreshed_at == step or self.dataset is None or self.num_batches <= 0
                or getattr(model, "ema_generator", None) is None):
            return 0
        start = time.time()
        dataset = self.dataset() if callable(self.dataset) else self.dataset
        count = model.refresh_ema_statistics(dataset, self.num_batches, seed=step)
        self.refreshed_at = step
        if self.logger is not None:
            self.logger.info("step %d: refreshed the EMA BatchNorm statistics (%d forwards, "
                             "%.1f s)", step, count, time.time() - start)
        return count

    def on_train_batch_end(self, batch, logs=None):
        if self.every_n_steps > 0 and global_step(self.model) % self.every_n_steps == 0:
            self.refresh()

    def on_train_end(self, logs=None):
        self.refresh()
