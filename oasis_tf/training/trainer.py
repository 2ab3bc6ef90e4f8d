"""The OASIS training procedure: data, networks, optimizers, run folder, ``fit``.

    from oasis_tf.config import load_config
    from oasis_tf.training import train

    result = train(load_config("synthetic"), data_root="data/synthetic", runs_root="runs")
    print(result.run_dir)

Library code: no flags (``tools/train.py`` is the command line).

Data position and resuming. The training dataset is ``load_dataset(...)`` (one
pass, seeded shuffle, flips and LabelMix bits) repeated; its order depends only on
``train.seed``, so the global step fixes the position in the data: epoch
``step // steps_per_epoch``, batch ``step % steps_per_epoch``. A resumed run
restores G, D, EMA and both optimizers from the run's newest checkpoint and skips
the ``step`` batches already consumed (``Dataset.skip``: they are read again but not
trained on, so the run sees exactly the batches an uninterrupted run would; for
very long runs this costs one read of the consumed data). ``metrics.jsonl``
records after the checkpoint's step are dropped, since those steps are re-done.
The in-graph noise is derived from the step (``OASIS._stateless_seed``), so it
continues too.

``fit`` epochs are chunks of ``gcd(steps_per_epoch, start_step, total_steps)`` steps,
so the budget may be any number of steps and a resume may start mid-epoch; every
trigger (log, samples, checkpoints) is step based.

Dry run (``dry_run=True``): prints the resolved configuration and the plan (the
run folder that would be created, steps, intervals), builds the data and the
networks, runs ONE training step on a throw-away model and prints its losses;
nothing is written (no run folder, no checkpoint).
"""

import dataclasses
import logging
import math
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

from oasis_tf.config import OFFICIAL_INIT_GAIN, OASISConfig
from oasis_tf.layers.spectral_norm import reinitialize_kernels, spectral_norm_warmup
from oasis_tf.models.factory import discriminator_from_config, generator_from_config
from oasis_tf.models.oasis import OASIS
from oasis_tf.optimizers import make_optimizers
from oasis_tf.training import callbacks as cb
from oasis_tf.training import distribute, precision
from oasis_tf.training.checkpoints import (CheckpointManager, has_checkpoint,
                                           optimizer_checksum)
from oasis_tf.training.init_from import initialize_from
from oasis_tf.training.run_dir import (LOGGER_NAME, RunDir, create_run_dir, create_run_dir_at,
                                       next_run_path)
from oasis_tf.vgg_loss import vgg_loss_from_config

__all__ = ["train", "TrainResult", "build_model", "make_dataset_fn"]


@dataclasses.dataclass
class TrainResult:
    """What ``train`` did.

    Attributes:
        run_dir: the run folder (None for a dry run).
        start_step: the step training started (or resumed) from.
        step: the step reached.
        total_steps: the step budget.
        failed: a NaN / Inf loss stopped training.
        failure: the message when failed.
        last_checkpoint: the newest checkpoint folder written or restored.
        logs: the losses of the last step.
    """

    run_dir: object
    start_step: int
    step: int
    total_steps: int
    failed: bool = False
    failure: object = None
    last_checkpoint: object = None
    logs: dict = dataclasses.field(default_factory=dict)


def build_model(config, strategy=None):
    """The compiled ``OASIS`` model of ``config`` (created and built inside
    ``strategy.scope()``; optimizers: PyTorch-style Adam from ``config.train``).

    The networks are built under the Keras dtype policy ``train.mixed_precision``
    (``precision.policy_scope``: the global policy is restored afterwards); under
    ``mixed_float16`` both optimizers get dynamic loss scaling. ``train.jit_compile``
    XLA-compiles the training step."""
    strategy = strategy or tf.distribute.get_strategy()
    m, t = config.model, config.train
    # The initial weights follow train.seed: runs repeat, and every worker of a
    # multi-worker job (which all build the model) starts from the same values.
    keras.utils.set_random_seed(t.seed)
    with strategy.scope(), precision.policy_scope(t.mixed_precision):
        generator = generator_from_config(m, dataset=config.data.dataset)
        discriminator = discriminator_from_config(m)
        if t.init_gain != OFFICIAL_INIT_GAIN:  # opt-in; before the EMA copies G
            for network in (generator, discriminator):
                reinitialize_kernels(network, t.init_gain)
        model = OASIS(generator, discriminator, lambda_labelmix=t.lambda_labelmix,
                      ema_decay=t.ema_decay, dontcare_label=m.dontcare_label,
                      use_labelmix=t.use_labelmix, class_balancing=t.class_balancing,
                      use_ema=t.use_ema, seed=t.seed, vgg_loss=vgg_loss_from_config(t),
                      lambda_vgg=t.lambda_vgg)
        if t.spectral_norm_warmup > 0:  # opt-in; a resume restores u, v afterwards
            for network in (generator, discriminator, model.ema_generator):
                if network is not None:
                    spectral_norm_warmup(network, t.spectral_norm_warmup)
        g_opt, d_opt = make_optimizers(t.lr_g, t.lr_d, beta_1=t.beta_1, beta_2=t.beta_2,
                                       epsilon=t.epsilon, warmup_steps=t.lr_warmup_steps)
        # XLA compiles the whole step on one replica; with several, Keras would
        # nest a jit-compiled tf.function (with the EMA's merge_call and the
        # cross-replica all-reduces) inside strategy.run, which is not supported.
        jit = bool(t.jit_compile) and strategy.num_replicas_in_sync == 1
        if t.jit_compile and not jit:
            logging.getLogger(LOGGER_NAME).warning(
                "train.jit_compile ignored: %d replicas (XLA is used with one replica)",
                strategy.num_replicas_in_sync)
        model.compile(g_optimizer=g_opt, d_optimizer=d_opt, jit_compile=jit)
    return model


def make_dataset_fn(config, data_root=None, synthetic_options=None):
    """``fn(split="train", training=True, batch_size=None, input_context=None)`` ->
    a ``tf.data.Dataset`` from ``oasis_tf.data.load_dataset`` with the config's
    settings (``data_root`` overrides ``config.data.root``; ``synthetic_options``:
    the synthetic data set's parameters, see ``load_dataset``)."""
    from oasis_tf import data as oasis_data

    d, m, t = config.data, config.model, config.train
    root = data_root if data_root is not None else d.root

    def fn(split="train", training=True, batch_size=None, input_context=None):
        return oasis_data.load_dataset(
            d.dataset, root, split=split, image_size=m.image_size,
            batch_size=batch_size or t.batch_size, training=training,
            num_classes=m.num_classes, seed=t.seed, shuffle_buffer=d.shuffle_buffer,
            num_parallel_calls=d.num_parallel_calls, skip_bad_files=d.skip_bad_files,
            flip=d.flip, input_context=input_context, load_size=d.load_size,
            synthetic_options=synthetic_options)

    return fn


def _steps_per_epoch(dataset, batch_size):
    card = int(dataset.cardinality().numpy())
    if card > 0:
        return card
    if card == tf.data.INFINITE_CARDINALITY:
        raise ValueError("the training dataset must be finite (one pass = one epoch); "
                         "it is infinite")
    files = getattr(dataset, "num_files", None)
    if files:
        return max(files // batch_size, 1)
    return sum(1 for _ in dataset)  # unknown cardinality: count once


def _sample_batch(dataset_fn, num):
    for split in ("val", "train"):
        try:
            batch = next(iter(dataset_fn(split=split, training=False, batch_size=num)))
            return {"image": batch["image"].numpy(), "label": batch["label"].numpy()}
        except (ValueError, FileNotFoundError, StopIteration, tf.errors.OpError):
            continue
    raise ValueError("no batch for the sample grid (neither a val nor a train split)")


def _console_logger():
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger, handler


def train(config, data_root=None, runs_root="runs", resume=None, max_steps=None,
          dry_run=False, strategy=None, dataset_fn=None, name=None, metric_fn=None,
          console=True, fid_extractor=None, backup_dir=None, init_from=None):
    """Trains OASIS as configured; returns a ``TrainResult``.

    Args:
        config: an ``OASISConfig`` (for a resume, normally the run's ``config.yaml``).
        data_root: dataset folder (default ``config.data.root``; for "synthetic" the
            data set is written there on first use).
        runs_root: where the numbered run folder is created (``<name>-NNNN``).
        resume: a run folder to continue from its newest checkpoint (no new folder).
        max_steps: step budget (total, counted from step 0); default
            ``num_epochs * steps_per_epoch``.
        dry_run: build everything, run one step, write nothing (see module doc).
        strategy: a ``tf.distribute.Strategy`` (default: the current one).
        dataset_fn: replaces ``make_dataset_fn(config, data_root)`` (same signature),
            e.g. an in-memory dataset in tests.
        name: run folder prefix (default ``config.data.dataset``).
        metric_fn: optional ``step -> float`` for the "best" checkpoint (lower is
            better); None: no best tracking.
        console: also log to stdout.
        fid_extractor: FID during training every ``train.fid_every`` steps: an
            extractor or a spec ("standard:<path>", "keras[:<h5>]", "auto"; see
            ``oasis_tf.metrics.make_extractor``). None: no FID.
        backup_dir: a fixed run folder for jobs that get restarted with the same
            command (the ``keras.callbacks.BackupAndRestore`` pattern): created on the
            first start, continued from its newest checkpoint on every restart (by
            every worker). Replaces ``runs_root``/``resume``.
        init_from: fine-tune: start from the weights in this folder (official
            ``best_*.pth`` set, ``.keras`` files or a run folder; see
            ``oasis_tf.training.init_from``) with fresh optimizers at step 0.
            Ignored when the run resumes from its own checkpoint.
    """
    if not isinstance(config, OASISConfig):
        raise ValueError(f"`config` must be an OASISConfig. Received: {type(config).__name__}")
    t = config.train
    precision.check_policy(t.mixed_precision)  # build_model applies it to the networks
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if t.batch_size % replicas:
        raise ValueError(f"`train.batch_size` ({t.batch_size}) must be divisible by the "
                         f"number of replicas ({replicas})")
    dataset_fn = dataset_fn or make_dataset_fn(config, data_root)
    name = name or config.data.dataset
    chief = distribute.is_chief(strategy)
    _, task_id, _ = distribute.task_info(strategy)
    fixed_path = None
    if backup_dir is not None:
        if resume is not None:
            raise ValueError("give `resume` or `backup_dir`, not both")
        # Decided before the first collective op, so the chief cannot have written a
        # checkpoint that another worker does not see yet.
        if has_checkpoint(backup_dir):
            resume = backup_dir
        else:
            fixed_path = Path(backup_dir)

    # ---------------------------------------------------------------- run folder
    run = None
    handler = None
    worker_log = None
    if dry_run:
        logger, handler = _console_logger()
    elif not chief:
        # A non-chief worker writes only its own log: <run>/worker-<i>.log on a
        # resume, else <runs_root>/<name>-worker-<i>.log. It restores from the
        # chief's checkpoints (shared storage) and trains every step like the chief.
        folder = Path(resume or fixed_path or runs_root)
        prefix = "" if (resume or fixed_path) is not None else f"{name}-"
        folder.mkdir(parents=True, exist_ok=True)
        worker_log = folder / f"{prefix}worker-{task_id}.log"
        logger = _open_worker_logger(worker_log, console)
    elif resume is not None:
        run = RunDir(resume)
        if not run.checkpoints_dir.is_dir():
            raise FileNotFoundError(f"--resume {resume}: not a run folder (no checkpoints/)")
        run.make_subdirs()
        logger = run.open_logger(console=console)
    elif fixed_path is not None:
        run = create_run_dir_at(fixed_path, config)
        logger = run.open_logger(console=console)
    else:
        run = create_run_dir(runs_root, name, config)
        logger = run.open_logger(console=console)
    writer = None
    try:
        steps_per_epoch = _steps_per_epoch(dataset_fn(), t.batch_size)
        total_steps = int(max_steps) if max_steps is not None else t.num_epochs * steps_per_epoch
        if total_steps < 1:
            raise ValueError(f"the step budget must be positive. Received: {total_steps}")

        if dry_run:
            where = Path(resume or fixed_path or next_run_path(runs_root, name))
            logger.info("DRY RUN: nothing is written. Resolved configuration:\n%s",
                        _config_text(config))
            logger.info("DRY RUN: would %s run folder %s; %d steps (%d per epoch, global "
                        "batch %d, %d replica(s)); log every %d, samples every %d, "
                        "checkpoints every %d (keep %d)",
                        "resume" if resume else "create", where, total_steps, steps_per_epoch,
                        t.batch_size, replicas, t.log_every, t.sample_every,
                        t.checkpoint_every, t.keep_checkpoints)

        model = build_model(config, strategy)
        logger.info("model: generator %d parameters, discriminator %d, EMA %s; %d replica(s)",
                    model.generator.count_params(), model.discriminator.count_params(),
                    "on" if model.ema_generator is not None else "off", replicas)
        if init_from is not None and resume is None:  # fine-tuning (not on a resume)
            initialize_from(model, init_from, logger=logger)

        manager = None
        start_step = 0
        last_checkpoint = None
        if run is not None:
            manager = CheckpointManager(run.checkpoints_dir, model,
                                        max_to_keep=t.keep_checkpoints)
        elif not chief and not dry_run:
            manager = _ReadOnlyCheckpoints(
                CheckpointManager(RunDir(resume).checkpoints_dir, model)
                if resume is not None else None)
        if resume is not None and not dry_run:
            latest = manager.latest_checkpoint
            if latest is None:
                raise FileNotFoundError(f"--resume {resume}: no checkpoint in "
                                        f"{run.checkpoints_dir}")
            state = manager.restore(latest)
            start_step = int(state["step"])
            for opt in (model.g_optimizer, model.d_optimizer):
                if int(opt.iterations.numpy()) != start_step:
                    raise ValueError(f"{opt.name}.iterations {int(opt.iterations.numpy())} != "
                                     f"checkpoint step {start_step} in {latest}")
            dropped = run.truncate_metrics(start_step) if chief else 0
            last_checkpoint = str(latest)
            epoch, batch = divmod(start_step, steps_per_epoch)
            logger.info("resumed from %s at step %d (epoch %d, batch %d of %d); "
                        "g_optimizer checksum %.10e, d_optimizer checksum %.10e; dropped %d "
                        "metrics records after step %d", latest, start_step, epoch, batch,
                        steps_per_epoch, optimizer_checksum(model.g_optimizer),
                        optimizer_checksum(model.d_optimizer), dropped, start_step)

        # ---------------------------------------------------------------- data
        def train_dataset(input_context=None):
            ds = dataset_fn(input_context=input_context) if input_context is not None \
                else dataset_fn()
            return ds.repeat().skip(start_step)

        if replicas > 1:
            fit_data = strategy.distribute_datasets_from_function(train_dataset)
        else:
            fit_data = train_dataset()

        if dry_run:
            logs = model.fit(fit_data, epochs=1, steps_per_epoch=1, verbose=0,
                             shuffle=False).history
            logs = {k: float(v[-1]) for k, v in logs.items()}
            logger.info("DRY RUN: one step ran: %s",
                        ", ".join(f"{k}={v:.4f}" for k, v in logs.items()))
            return TrainResult(None, 0, 1, total_steps, logs=logs)

        run_path = run.path if run is not None else None
        if start_step >= total_steps:
            logger.info("nothing to do: step %d >= budget %d", start_step, total_steps)
            return TrainResult(run_path, start_step, start_step, total_steps,
                               last_checkpoint=last_checkpoint)

        # ---------------------------------------------------------------- callbacks
        if chief:
            writer = tf.summary.create_file_writer(str(run.tensorboard_dir))
        context = cb.RunContext(
            model, logger, total_steps, t.batch_size, steps_per_epoch=steps_per_epoch,
            run=run, ema_dataset_fn=lambda: dataset_fn(),
            ema_refresh_batches=t.ema_bn_refresh_batches, writer=writer)
        context.last_checkpoint = last_checkpoint
        sample_batch = _sample_batch(dataset_fn, min(8, t.batch_size))
        checkpointer = cb.Checkpointer(context, manager, every=t.checkpoint_every,
                                       metric_fn=metric_fn if chief else None)
        callbacks = [cb.NaNGuard(context), cb.PerStepMetrics(),
                     cb.ProgressLogger(context, every=t.log_every),
                     cb.SampleGrid(context, sample_batch, every=t.sample_every,
                                   noise_seed=t.seed)]
        if t.fid_every > 0 and fid_extractor is not None and chief:
            from oasis_tf.metrics.evaluate import make_extractor
            from oasis_tf.training.fid_callback import FIDCallback

            extractor = (make_extractor(fid_extractor) if isinstance(fid_extractor, str)
                         else fid_extractor)
            if extractor is None:
                logger.warning("train.fid_every=%d but no FID extractor was found for %r; "
                               "FID is off", t.fid_every, fid_extractor)
            else:
                callbacks.append(FIDCallback(context, extractor, dataset_fn,
                                             every=t.fid_every, manager=manager,
                                             seed=t.seed, batch_size=t.batch_size))
        callbacks.append(checkpointer)

        chunk = math.gcd(math.gcd(steps_per_epoch, start_step), total_steps)
        logger.info("training steps %d..%d of %d (%d per epoch, global batch %d) in %s",
                    start_step + 1, total_steps, total_steps, steps_per_epoch, t.batch_size,
                    run_path if chief else f"worker {task_id} (not the chief: no files)")
        start = time.time()
        history = model.fit(fit_data, epochs=total_steps // chunk,
                            initial_epoch=start_step // chunk, steps_per_epoch=chunk,
                            callbacks=callbacks, verbose=0, shuffle=False)
        step = cb.global_step(model)
        logs = {k: float(v[-1]) for k, v in (history.history or {}).items() if v}
        result = TrainResult(run_path, start_step, step, total_steps, failed=context.failed,
                             failure=context.failure, last_checkpoint=context.last_checkpoint,
                             logs=logs)
        if context.failed:
            logger.error("run stopped: %s; last good checkpoint %s", context.failure,
                         context.last_checkpoint)
            return result
        from oasis_tf.convert.saving import save_network
        context.refresh_ema(step)
        logger.info("step %d: state digest %s", step, distribute.state_digest(model))
        if not chief:
            logger.info("finished at step %d in %.1f s (worker %d)", step,
                        time.time() - start, task_id)
            return result
        network = model.ema_generator if model.ema_generator is not None else model.generator
        path = save_network(network, run.path / "generator.keras", overwrite=True)
        logger.info("finished at step %d in %.1f s; wrote %s", step, time.time() - start, path)
        return result
    finally:
        if writer is not None:
            writer.close()
        if run is not None:
            run.close_logger()
        if worker_log is not None:
            _close_worker_logger()
        if handler is not None:
            logging.getLogger(LOGGER_NAME).removeHandler(handler)


class _ReadOnlyCheckpoints:
    """The checkpoint manager of a non-chief worker: restores the chief's
    checkpoints, writes nothing (``save`` only names the chief's folder)."""

    def __init__(self, manager):
        self.manager = manager

    @property
    def latest_checkpoint(self):
        return self.manager.latest_checkpoint if self.manager is not None else None

    def restore(self, path=None):
        return self.manager.restore(path)

    def save(self, step, state=None, metric=None):
        return self.manager.path_for(step) if self.manager is not None else f"step {step}"


_WORKER_HANDLERS = []


def _open_worker_logger(path, console):
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handlers = [logging.FileHandler(path, mode="a", encoding="utf-8")]
    if console:
        handlers.append(logging.StreamHandler(sys.stdout))
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        _WORKER_HANDLERS.append(handler)
    return logger


def _close_worker_logger():
    logger = logging.getLogger(LOGGER_NAME)
    while _WORKER_HANDLERS:
        handler = _WORKER_HANDLERS.pop()
        handler.flush()
        logger.removeHandler(handler)
        handler.close()


def _config_text(config):
    import yaml
    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)
