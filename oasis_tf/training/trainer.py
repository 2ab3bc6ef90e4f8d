"""The OASIS training procedure: data, networks, optimizers, run folder, ``fit``.

    from oasis_tf.config import load_config
    from oasis_tf.training import train

    result = train(load_config("synthetic"), data_root="data/synthetic", runs_root="runs")
    print(result.run_dir)

Library code: no flags (``oasis-train`` is the command line). Where the process
writes (run folder or a worker's log), the data root and the checkpoint to resume
from are decided in ``oasis_tf.training.startup``.

Data position and resuming. The training dataset is ``load_dataset(...)`` (one
pass, seeded shuffle, flips and LabelMix bits) repeated; its order depends only on
``train.seed``, so the global step fixes the position in the data: epoch
``step // steps_per_epoch``, batch ``step % steps_per_epoch``. A resumed run
restores G, D, EMA and both optimizers from the run's newest whole checkpoint
(``checkpoints.newest_whole_checkpoint``: damaged ones are named and skipped) and skips
the ``step`` batches already consumed (``Dataset.skip``: they are read again but not
trained on, so the run sees exactly the batches an uninterrupted run would; for
very long runs this costs one read of the consumed data). ``metrics.jsonl``
records after the checkpoint's step are dropped, since those steps are re-done.
The in-graph noise is derived from the step (``OASIS._stateless_seed``), so it
continues too.

``fit`` epochs are chunks of ``gcd(steps_per_epoch, start_step, total_steps)`` steps,
so the budget may be any number of steps and a resume may start mid-epoch; every
trigger (log, samples, checkpoints) is step based.

The end of a run (``_finish``): the EMA BatchNorm statistics refreshed at the last
step, the state digest logged, ``generator.keras`` / ``discriminator.keras`` and the
run's ``manifest.json`` (which records the step) written. A resume (or a
``backup_dir`` restart) whose checkpoint is at or past the budget does exactly that
when the run folder lacks those files, or they are damaged or from another step (a
process killed between its last checkpoint and its final files); it does nothing
only when they are whole and from that step.

Stopping (``stop_signals``, ``stop``; ``oasis_tf.training.stop``): the step in flight
ends, a checkpoint of that step is written, and ``train`` returns with ``stopped``
set; a resume from it ends in the state of a run that was never stopped.

Dry run (``dry_run=True``): prints the resolved configuration and the plan (the
run folder that would be created, steps, intervals), builds the data and the
networks, runs ONE training step on a throw-away model and prints its losses;
nothing is written (no run folder, no checkpoint; a synthetic data set that is not
there yet is written to a temporary folder and removed at the end).

Start-up says what it does ("writing the synthetic data set...", "tracing the
training step..."); the first step, which traces and compiles the step function,
is timed apart and left out of the s/step and ETA of the progress lines.
"""

import contextlib
import dataclasses
import logging
import math
import time
from pathlib import Path

import keras
import tensorflow as tf

from oasis_tf.config import OFFICIAL_INIT_GAIN, OASISConfig
from oasis_tf.fileio import DiskFullError, no_space_error, writing
from oasis_tf.layers.spectral_norm import reinitialize_kernels, spectral_norm_warmup
from oasis_tf.models.factory import discriminator_from_config, generator_from_config, in_float32
from oasis_tf.optimizers import make_optimizers
from oasis_tf.training import callbacks as cb
from oasis_tf.training import distribute, hardware, precision
from oasis_tf.training.checkpoints import optimizer_checksum, read_state
from oasis_tf.training.manifest import (MANIFEST, DamagedCheckpointError, manifest_step,
                                        verify_manifest, write_manifest)
from oasis_tf.training.init_from import initialize_from
from oasis_tf.training.run_dir import LOGGER_NAME, next_run_path
from oasis_tf.training.startup import (checkpoint_manager, choose_checkpoint, log_data_report,
                                       open_run_output, prepare_synthetic_data, resolve_from_data,
                                       resume_or_new_backup_dir, with_data_root)
from oasis_tf.training.stop import StopRequest, handle_signals
from oasis_tf.training.updates import global_step
from oasis_tf.losses.vgg import vgg_loss_from_config


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
        stopped: the reason when a stop request ended training early ("SIGTERM",
            "SIGINT", ...; in any worker of the job); the checkpoint of the step
            reached is ``last_checkpoint``. None otherwise.
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
    stopped: object = None
    logs: dict = dataclasses.field(default_factory=dict)


def build_model(config, strategy=None):
    """The compiled ``OASIS`` model of ``config`` (created and built inside
    ``strategy.scope()``; optimizers: PyTorch-style Adam from ``config.train``).

    The networks are built under the Keras dtype policy ``train.mixed_precision``
    (``precision.policy_scope``: the global policy is restored afterwards); under
    ``mixed_float16`` both optimizers get dynamic loss scaling. ``train.jit_compile``
    XLA-compiles the training step."""
    # imported here: the model's training step uses this package's helpers (replicas,
    # updates), so the model module imports oasis_tf.training, not the reverse at import
    from oasis_tf.models.oasis import OASIS

    strategy = strategy or tf.distribute.get_strategy()
    config.require_resolved("build_model")
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
    the synthetic data set's parameters, see ``load_dataset``). An own data set's
    label mapping and val split come from its resolved config."""
    from oasis_tf import data as oasis_data

    d, m, t = config.data, config.model, config.train
    root = data_root if data_root is not None else d.root
    own = oasis_data.dataset_options(config)  # an own data set's mapping; refuses "auto"

    def fn(split="train", training=True, batch_size=None, input_context=None):
        return oasis_data.load_dataset(
            d.dataset, root, split=split, image_size=m.image_size,
            batch_size=batch_size or t.batch_size, training=training,
            num_classes=m.num_classes, seed=t.seed, shuffle_buffer=d.shuffle_buffer,
            num_parallel_calls=d.num_parallel_calls, skip_bad_files=d.skip_bad_files,
            flip=d.flip, input_context=input_context, load_size=d.load_size,
            synthetic_options=synthetic_options, **own)

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


def train(config, data_root=None, runs_root="runs", resume=None, max_steps=None,
          dry_run=False, strategy=None, dataset_fn=None, name=None, metric_fn=None,
          console=True, fid_extractor=None, backup_dir=None, init_from=None,
          stop_signals=(), stop=None):
    """Trains OASIS as configured; returns a ``TrainResult``.

    The procedure, one named step each: check the arguments, decide the data root,
    inspect an own data set (its "auto" values found, every bad file named: see
    ``oasis_tf.data.resolve_config``), open the run folder (or a worker's log), prepare
    the data, build the model,
    restore the newest whole checkpoint (on a resume), make the callbacks, fit, save
    the networks.

    Args:
        config: an ``OASISConfig`` (for a resume, normally the run's ``config.yaml``).
        data_root: dataset folder (default ``config.data.root``; for "synthetic"
            ``oasis_tf.data.default_synthetic_root()``, where the data set is written
            on first use). Stored, absolute, in the run's ``config.yaml``; on a resume
            a different ``data_root`` is logged and stored.
        runs_root: where the numbered run folder is created (``<name>-NNNN``).
        resume: a run folder to continue from its newest whole checkpoint (no new
            folder).
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
        stop_signals: signals (numbers or names, e.g. ``("SIGTERM", "SIGINT")``)
            that stop the run cleanly while it trains: the step in flight ends, its
            checkpoint is written, ``stopped`` is set. The handlers are installed for
            the training loop only (main thread) and the previous ones put back; a
            second signal acts as before. Default none: the process's handlers
            are left alone (``oasis-train`` passes SIGTERM and SIGINT).
        stop: a ``oasis_tf.training.stop.StopRequest``: ``stop.request()`` from
            another thread stops the run the same way.

    Raises:
        oasis_tf.data.DatasetProblemsError: an own data set with problems (its message
            lists them, one line per bad file); nothing is created.
        oasis_tf.training.checkpoints.NoWholeCheckpointError: a resume whose
            checkpoints are all damaged (each is listed with its problem).
        oasis_tf.training.run_lock.RunFolderInUseError: another process trains in
            the run folder (it is named).
        oasis_tf.fileio.DiskFullError: a file could not be written for lack of space
            (the message says which, where, the space free, the last whole
            checkpoint and how to continue).
    """
    strategy = _check_arguments(config, strategy)
    resume, new_backup_dir = resume_or_new_backup_dir(resume, backup_dir)
    config = with_data_root(config, data_root, resume)
    config, data_report = resolve_from_data(config, resume, dataset_fn)
    name = name or config.data.dataset
    stop = stop if stop is not None else StopRequest()
    with contextlib.ExitStack() as stack:
        run_output = open_run_output(config, strategy, runs_root, name, resume, new_backup_dir,
                               dry_run, console, stack)
        logger = run_output.logger
        log_data_report(data_report, run_output)
        progress = stack.enter_context(_FullDiskAdvice(run_output))
        # On a resume the checkpoint is chosen (and verified) first, so a run whose
        # checkpoints are all damaged stops at once.
        checkpoint = choose_checkpoint(resume, dry_run, logger)
        progress.checkpoint = checkpoint
        if dataset_fn is None:
            config = prepare_synthetic_data(config, dry_run, logger, stack)
            dataset_fn = make_dataset_fn(config)
        t = config.train
        steps_per_epoch = _steps_per_epoch(dataset_fn(), t.batch_size)
        total_steps = int(max_steps) if max_steps is not None else t.num_epochs * steps_per_epoch
        if total_steps < 1:
            raise ValueError(f"the step budget must be positive. Received: {total_steps}")
        if dry_run:
            _log_dry_run_plan(config, logger, resume or new_backup_dir or
                              next_run_path(runs_root, name), resume, total_steps,
                              steps_per_epoch, strategy.num_replicas_in_sync)
        run_path = run_output.run.path if run_output.run is not None else None
        if checkpoint is not None and not dry_run:
            saved_step = int(read_state(checkpoint)["step"])  # verified by choose_checkpoint
            if saved_step >= total_steps:
                unfinished = _unfinished(resume, saved_step, strategy)
                if unfinished is None:
                    logger.info("nothing to do: step %d >= budget %d, and the run's final "
                                "networks (step %d) are whole (manifest.json checked)",
                                saved_step, total_steps, saved_step)
                    return TrainResult(run_path, saved_step, saved_step, total_steps,
                                       last_checkpoint=str(checkpoint))
                logger.info("step %d >= budget %d, but the run was not finished (%s): "
                            "finishing it as a run ends", saved_step, total_steps,
                            unfinished)
        model = build_model(config, strategy)
        logger.info("model: generator %d parameters, discriminator %d, EMA %s; %d replica(s)",
                    model.generator.count_params(), model.discriminator.count_params(),
                    "on" if model.ema_generator is not None else "off",
                    strategy.num_replicas_in_sync)
        slow_precision = hardware.emulated_bfloat16_warning(
            t.mixed_precision, on_gpu=bool(tf.config.list_logical_devices("GPU")))
        if slow_precision:
            logger.warning("%s", slow_precision)
        if init_from is not None and checkpoint is None:  # fine-tuning (not on a resume)
            initialize_from(model, init_from, logger=logger)
        manager = checkpoint_manager(run_output, model, resume, dry_run, t.keep_checkpoints)
        start_step, state = 0, {}
        if checkpoint is not None:
            start_step, state = _restore(model, manager, checkpoint, run_output, steps_per_epoch,
                                         logger)
        fit_data = _training_data(dataset_fn, strategy, start_step)
        if dry_run:
            return _dry_run_step(model, fit_data, total_steps, logger)
        if start_step >= total_steps:  # a run killed before its end: finish it
            context = cb.RunContext(
                model, logger, total_steps, t.batch_size, steps_per_epoch=steps_per_epoch,
                run=run_output.run, ema_dataset_fn=dataset_fn,
                ema_refresh_batches=t.ema_bn_refresh_batches)
            if state.get("ema_statistics_refreshed", True):  # every checkpoint but a stop's
                context.mark_ema_refreshed(start_step)
            _finish(model, context, run_output, start_step, 0.0, logger)
            return TrainResult(run_path, start_step, start_step, total_steps,
                               last_checkpoint=str(checkpoint))
        agree = lambda votes: distribute.sum_over_workers(strategy, votes)  # noqa: E731
        context, callbacks = _make_callbacks(
            config, model, run_output, manager, dataset_fn, total_steps, steps_per_epoch,
            metric_fn, fid_extractor, stack, stop, agree)
        context.last_checkpoint = str(checkpoint) if checkpoint is not None else None
        progress.context = context
        with handle_signals(stop, stop_signals):
            step, logs, seconds = _fit(model, fit_data, callbacks, start_step, total_steps,
                                       steps_per_epoch, t.batch_size, run_output, logger)
            if not context.failed and not context.stopped:
                # a request that came after the last step's check (all workers ask)
                context.stopped = cb.agreed_stop(stop, agree)
        result = TrainResult(run_path, start_step, step, total_steps, failed=context.failed,
                             failure=context.failure, last_checkpoint=context.last_checkpoint,
                             logs=logs, stopped=context.stopped)
        if context.failed:
            logger.error("run stopped: %s; last good checkpoint %s", context.failure,
                         context.last_checkpoint)
            return result
        if context.stopped:
            _log_stop(context, run_output, resume or new_backup_dir, backup_dir is not None, step,
                      logger)
            return result
        _finish(model, context, run_output, step, seconds, logger)
        return result


# ---------------------------------------------------------------- the steps of train()
def _check_arguments(config, strategy):
    """The strategy to train under, once the config fits it."""
    if not isinstance(config, OASISConfig):
        raise ValueError(f"`config` must be an OASISConfig. Received: {type(config).__name__}")
    t = config.train
    precision.check_policy(t.mixed_precision)  # build_model applies it to the networks
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if t.batch_size % replicas:
        raise ValueError(f"`train.batch_size` ({t.batch_size}) must be divisible by the "
                         f"number of replicas ({replicas})")
    return strategy


def _log_dry_run_plan(config, logger, where, resume, total_steps, steps_per_epoch, replicas):
    t = config.train
    logger.info("DRY RUN: nothing is written. Resolved configuration:\n%s",
                _config_text(config))
    logger.info("DRY RUN: would %s run folder %s; %d steps (%d per epoch, global "
                "batch %d, %d replica(s)); log every %d, samples every %d, "
                "checkpoints every %d (keep %d)",
                "resume" if resume else "create", where, total_steps, steps_per_epoch,
                t.batch_size, replicas, t.log_every, t.sample_every,
                t.checkpoint_every, t.keep_checkpoints)


def _unfinished(resume, step, strategy):
    """Why the run folder ``resume`` is not a finished run at ``step`` (its final
    networks missing, damaged, or from another step), or None when it is. All
    workers of a job take the same decision (they read the same files; a vote makes
    sure, since finishing runs collective ops)."""
    reason = None
    try:
        verify_manifest(resume, required=("generator.keras", "discriminator.keras"))
        saved = manifest_step(resume)
        if saved is None:
            reason = f"{MANIFEST} records no step (written by an older oasis_tf)"
        elif saved != step:
            reason = f"the final networks are from step {saved}"
    except DamagedCheckpointError as exc:
        reason = f"{exc.file}: {exc.reason}"
    if distribute.sum_over_workers(strategy, [reason is not None])[0] and reason is None:
        reason = "another worker found the final networks missing or damaged"
    return reason


def _log_stop(context, run_output, folder, backup, step, logger):
    """The line a stopped run ends with: where its checkpoint is, how to continue."""
    folder = run_output.run.path if run_output.run is not None else folder
    how = f"--resume {folder}" if folder is not None else \
        "--resume <the chief's run folder>"
    if backup:
        how += " (or the same command: --backup_dir continues it)"
    if not run_output.chief:
        logger.warning("stopped by %s at step %d (worker %d; the chief wrote checkpoint "
                       "%s); continue with %s", context.stopped, step, run_output.task_id,
                       context.last_checkpoint, how)
        return
    logger.warning("stopped by %s at step %d; checkpoint %s; continue with %s",
                   context.stopped, step, context.last_checkpoint, how)


class _FullDiskAdvice:
    """Adds to a full-disk error what is still safe and how to continue (the last
    whole checkpoint, ``--resume``), and logs it; a bare ``OSError`` ENOSPC from a
    write no helper wrapped becomes a ``DiskFullError`` too."""

    def __init__(self, run_output):
        self.run_output = run_output
        self.checkpoint = None  # the one restored
        self.context = None     # the run's RunContext once training starts

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or no_space_error(exc) is None or not self.run_output.chief:
            return False
        run = self.run_output.run.path if self.run_output.run is not None else None
        last = (self.context.last_checkpoint if self.context is not None else None) \
            or self.checkpoint
        if last is not None and Path(last).exists():
            advice = (f"the last whole checkpoint {last} is still there; free some space, "
                      f"then continue with --resume {run}")
        else:
            advice = "no checkpoint was written yet; free some space and start the run again"
        if isinstance(exc, DiskFullError):
            exc.add_advice(advice)
            self.run_output.logger.error("%s", exc)
            return False
        error = DiskFullError("the run's files", getattr(exc, "filename", None) or run or ".",
                              None, advice)
        self.run_output.logger.error("%s", error)
        raise error from exc


def _restore(model, manager, checkpoint, run_output, steps_per_epoch, logger):
    """Restores G, D, EMA and both optimizers from ``checkpoint``; returns ``(its
    step, its state dict)``. ``metrics.jsonl`` records after it are dropped (those
    steps are re-done)."""
    state = manager.restore(checkpoint)
    start_step = int(state["step"])
    for opt in (model.g_optimizer, model.d_optimizer):
        if int(opt.iterations.numpy()) != start_step:
            raise ValueError(f"{opt.name}.iterations {int(opt.iterations.numpy())} != "
                             f"checkpoint step {start_step} in {checkpoint}")
    dropped = run_output.run.truncate_metrics(start_step) if run_output.run is not None else 0
    epoch, batch = divmod(start_step, steps_per_epoch)
    logger.info("resumed from %s at step %d (epoch %d, batch %d of %d); "
                "g_optimizer checksum %.10e, d_optimizer checksum %.10e; dropped %d "
                "metrics records after step %d", checkpoint, start_step, epoch, batch,
                steps_per_epoch, optimizer_checksum(model.g_optimizer),
                optimizer_checksum(model.d_optimizer), dropped, start_step)
    return start_step, state


def _training_data(dataset_fn, strategy, start_step):
    """The repeated training data, the ``start_step`` batches already consumed skipped
    (see the module doc), distributed over the replicas."""
    def train_dataset(input_context=None):
        ds = dataset_fn(input_context=input_context) if input_context is not None \
            else dataset_fn()
        return ds.repeat().skip(start_step)

    if strategy.num_replicas_in_sync > 1:
        return strategy.distribute_datasets_from_function(train_dataset)
    return train_dataset()


def _dry_run_step(model, fit_data, total_steps, logger):
    logger.info("DRY RUN: tracing the training step and running it once...")
    logs = model.fit(fit_data, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False).history
    logs = {k: float(v[-1]) for k, v in logs.items()}
    logger.info("DRY RUN: one step ran: %s", ", ".join(f"{k}={v:.4f}" for k, v in logs.items()))
    return TrainResult(None, 0, 1, total_steps, logs=logs)


def _make_callbacks(config, model, run_output, manager, dataset_fn, total_steps,
                    steps_per_epoch, metric_fn, fid_extractor, stack, stop=None, agree=None):
    """The ``RunContext`` and the callback list (NaN guard first, then the stop
    guard; checkpoints last)."""
    t = config.train
    logger = run_output.logger
    writer = None
    if run_output.chief:
        writer = tf.summary.create_file_writer(str(run_output.run.tensorboard_dir))
        stack.callback(writer.close)
    context = cb.RunContext(
        model, logger, total_steps, t.batch_size, steps_per_epoch=steps_per_epoch,
        run=run_output.run, ema_dataset_fn=dataset_fn,
        ema_refresh_batches=t.ema_bn_refresh_batches, writer=writer)
    sample_batch = _sample_batch(dataset_fn, min(8, t.batch_size))
    callbacks = [cb.NaNGuard(context), cb.StopGuard(context, stop, agree), cb.PerStepMetrics(),
                 cb.ProgressLogger(context, every=t.log_every),
                 cb.SampleGrid(context, sample_batch, every=t.sample_every,
                               noise_seed=t.seed)]
    if t.fid_every > 0 and fid_extractor is not None and run_output.chief:
        from oasis_tf.metrics import make_extractor
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
    callbacks.append(cb.Checkpointer(context, manager, every=t.checkpoint_every,
                                     metric_fn=metric_fn if run_output.chief else None))
    return context, callbacks


def _fit(model, fit_data, callbacks, start_step, total_steps, steps_per_epoch, batch_size,
         run_output, logger):
    """Runs ``model.fit`` from ``start_step`` to ``total_steps``; returns ``(step, the
    last step's losses, seconds)``. ``fit`` epochs are chunks of ``gcd(steps_per_epoch,
    start_step, total_steps)`` steps (see the module doc)."""
    chunk = math.gcd(math.gcd(steps_per_epoch, start_step), total_steps)
    where = run_output.run.path if run_output.chief else \
        f"worker {run_output.task_id} (not the chief: no files)"
    logger.info("training steps %d..%d of %d (%d per epoch, global batch %d) in %s",
                start_step + 1, total_steps, total_steps, steps_per_epoch, batch_size, where)
    logger.info("tracing the training step (the first step includes it; it is not "
                "counted in s/step and ETA)...")
    start = time.time()
    history = model.fit(fit_data, epochs=total_steps // chunk,
                        initial_epoch=start_step // chunk, steps_per_epoch=chunk,
                        callbacks=callbacks, verbose=0, shuffle=False)
    logs = {k: float(v[-1]) for k, v in (history.history or {}).items() if v}
    return global_step(model), logs, time.time() - start


def _finish(model, context, run_output, step, seconds, logger):
    """The end of a run that did not fail: EMA BatchNorm refresh, the state digest,
    and (chief) the networks with their manifest in the run folder."""
    context.refresh_ema(step)
    logger.info("step %d: state digest %s", step, distribute.state_digest(model))
    if not run_output.chief:
        logger.info("finished at step %d in %.1f s (worker %d)", step, seconds,
                    run_output.task_id)
        return
    paths = save_final_networks(model, run_output.run.path, step=step)
    logger.info("finished at step %d in %.1f s; wrote %s", step, seconds,
                ", ".join(str(p) for p in paths))


def save_final_networks(model, run_path, step=None):
    """Writes ``generator.keras`` (the EMA generator when there is one) and
    ``discriminator.keras`` (in float32 whatever the training precision) into the run
    folder, then ``manifest.json`` with their
    sizes and SHA-256 digests (``oasis_tf.inference.load_generator`` checks them) and
    ``step``. The old manifest goes first, so a process killed in between leaves files
    that are not trusted (and a resume at the budget writes them again).

    Returns:
        The two paths.
    """
    from oasis_tf.convert.saving import save_network

    run_path = Path(run_path)
    manifest = run_path / MANIFEST
    if manifest.exists():
        manifest.unlink()
    network = model.ema_generator if model.ema_generator is not None else model.generator
    # float32 files whatever the training precision (in_float32: same weights)
    with writing("the final networks (generator.keras, discriminator.keras)", run_path):
        paths = [save_network(in_float32(network), run_path / "generator.keras",
                              overwrite=True),
                 save_network(in_float32(model.discriminator),
                              run_path / "discriminator.keras", overwrite=True)]
        write_manifest(run_path, names=["generator.keras", "discriminator.keras"],
                       extra=None if step is None else {"step": int(step)})
    return [Path(p) for p in paths]


def _config_text(config):
    import yaml
    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)
