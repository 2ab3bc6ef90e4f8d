"""What a training process decides when it starts, before its first step: where it
writes (``RunOutput``: the chief's run folder, a new numbered one, a ``backup_dir`` or
the one resumed, locked for this process by ``run_lock.py``; another worker's log
only), the data root the run reads, the values found from an own data set, the
synthetic data set on first use, the checkpoint to resume from and the checkpoint
manager."""

import dataclasses
import logging
import os
from pathlib import Path

from oasis_tf.config import load_config, save_config
from oasis_tf.training import distribute
from oasis_tf.training.checkpoints import (CheckpointManager, NoWholeCheckpointError,
                                           has_checkpoint, newest_whole_checkpoint)
from oasis_tf.training.run_dir import RunDir, create_run_dir, create_run_dir_at, open_logger
from oasis_tf.training.run_lock import RunLock


def resume_or_new_backup_dir(resume, backup_dir):
    """``(resume, new_backup_dir)``: a ``backup_dir`` with a checkpoint is resumed, one
    without is created at that path. Decided before the first collective op, so the
    chief cannot have written a checkpoint that another worker does not see yet."""
    if backup_dir is None:
        return resume, None
    if resume is not None:
        raise ValueError("give `resume` or `backup_dir`, not both")
    if has_checkpoint(backup_dir):
        return backup_dir, None
    return None, Path(backup_dir)


def with_data_root(config, data_root, resume):
    """``config`` with the absolute data root the run reads in ``data.root``
    (``oasis_tf.data.resolve.with_data_root``).

    ``data_root`` wins over ``config.data.root``; on a resume without ``data_root``
    the run's own ``config.yaml`` decides (a ``config`` from elsewhere cannot
    silently switch the data)."""
    from oasis_tf.data.resolve import with_data_root as resolved

    if data_root is None and resume is not None:
        saved = RunDir(resume).config_path
        if saved.exists():
            data_root = load_config(saved).data.root
    return resolved(config, data_root)


def resolve_from_data(config, resume, dataset_fn=None):
    """``(config, report)``: an own data set (the folder layout) is inspected before
    anything is built and the config's "auto" values are filled from it
    (``oasis_tf.data.resolve_config``); ``report`` is the ``DatasetReport`` (None when
    nothing was inspected).

    On a resume the "auto" values come from the run's own ``config.yaml``: nothing is
    decided again (the data is still checked against them). With a ``dataset_fn``
    (in-memory data) a config without "auto" values is not inspected.

    Raises:
        oasis_tf.data.DatasetProblemsError: the data set has problems (one line each).
    """
    from oasis_tf.data import resolve

    auto = config.auto_fields()
    if auto and resume is not None and RunDir(resume).config_path.exists():
        saved = load_config(RunDir(resume).config_path).to_dict()
        values = config.to_dict()
        for key in auto:
            section, name = key.split(".")
            values[section][name] = saved[section][name]
        config = type(config).from_dict(values)
    if not resolve.needs_inspection(config) or (dataset_fn is not None and not auto):
        return config, None
    return resolve.resolve_config(config)


def log_data_report(report, run_output):
    """Logs what the inspector found and writes its ``dataset_report.json`` into the run
    folder (the chief's)."""
    if report is None:
        return
    for line in report.summary_lines():
        run_output.logger.info(line)
    if run_output.run is not None:
        report.write(run_output.run.path, picture=False)


@dataclasses.dataclass
class RunOutput:
    """Where this process writes: the run folder (chief) or nothing but a log."""

    logger: logging.Logger
    run: object = None          # RunDir of the chief, else None
    chief: bool = True
    task_id: int = 0
    replicas: int = 1


def open_run_output(config, strategy, runs_root, name, resume, new_backup_dir, dry_run, console,
                  stack):
    """Creates or reopens the run folder (chief) or a worker's log, and the logger.

    The chief locks the run folder before its first write there (``RunLock``;
    released when ``stack`` closes): a second process on a folder in use stops with
    ``RunFolderInUseError``. A non-chief worker takes no lock and writes only its own
    log: ``<run>/worker-<i>.log`` on a resume, else ``<runs_root>/<name>-worker-<i>.log``.
    It restores from the chief's checkpoints (shared storage) and trains every step
    like the chief."""
    chief = distribute.is_chief(strategy)
    _, task_id, _ = distribute.task_info(strategy)
    replicas = strategy.num_replicas_in_sync
    run = None
    if dry_run:
        logger, close = open_logger(None, console=True)
    elif not chief:
        folder = Path(resume or new_backup_dir or runs_root)
        prefix = "" if (resume or new_backup_dir) is not None else f"{name}-"
        folder.mkdir(parents=True, exist_ok=True)
        logger, close = open_logger(folder / f"{prefix}worker-{task_id}.log", console)
    else:
        lock = None
        if resume is not None:
            run = RunDir(resume)
            if not run.checkpoints_dir.is_dir():
                raise FileNotFoundError(f"--resume {resume}: not a run folder (no checkpoints/)")
            lock = _lock(run.path, stack)
            run.make_subdirs()
        elif new_backup_dir is not None:
            Path(new_backup_dir).mkdir(parents=True, exist_ok=True)
            lock = _lock(new_backup_dir, stack)
            run = create_run_dir_at(new_backup_dir, config)
        else:
            run = create_run_dir(runs_root, name, config)
            lock = _lock(run.path, stack)
        logger, close = open_logger(run.log_path, console)
        if lock.takeover:
            logger.warning("%s", lock.takeover)
        if resume is not None:
            _record_data_root(run, config, logger)
    stack.callback(close)
    logger.info("%s", package_location())
    return RunOutput(logger, run, chief, task_id, replicas)


def _lock(folder, stack):
    """The run folder's lock, held until ``stack`` closes."""
    lock = RunLock(folder).acquire()
    stack.callback(lock.release)
    return lock


def package_location():
    """Which code runs: ``oasis_tf <version> (<folder>)`` (logged when a run starts;
    ``--version`` of every command)."""
    import oasis_tf

    return f"oasis_tf {oasis_tf.__version__} ({os.path.dirname(oasis_tf.__file__)})"


def _record_data_root(run, config, logger):
    """On a resume: a data root other than the one in ``config.yaml`` is logged and
    stored (it only differs when ``data_root`` was given)."""
    if not run.config_path.exists():
        save_config(config, run.config_path)
        return
    saved = load_config(run.config_path)
    if saved.data.root != config.data.root:
        logger.warning("data.root changed from %s to %s (given explicitly); config.yaml "
                       "now records the new one", saved.data.root, config.data.root)
        save_config(dataclasses.replace(saved, data=dataclasses.replace(
            saved.data, root=config.data.root)), run.config_path)


def prepare_synthetic_data(config, dry_run, logger, stack):
    """Says when the synthetic data set is about to be written (first use of its
    folder). A dry run writes it into a temporary folder, removed at the end, so it
    leaves no file behind."""
    d = config.data
    if d.dataset != "synthetic" or d.root is None:
        return config
    from oasis_tf.data import synthetic

    if synthetic.stored_options(d.root) is not None:  # read as it is (load_dataset)
        return config
    if dry_run:
        import tempfile

        root = stack.enter_context(tempfile.TemporaryDirectory(prefix="oasis_tf-dry-run-"))
        logger.info("DRY RUN: writing the synthetic data set to the temporary folder %s "
                    "(removed at the end)...", root)
        return dataclasses.replace(config, data=dataclasses.replace(d, root=root))
    logger.info("writing the synthetic data set to %s (first use; later runs read it "
                "there)...", d.root)
    return config


def choose_checkpoint(resume, dry_run, logger):
    """The newest whole checkpoint of the run to resume (damaged ones are named and
    skipped), or None when not resuming.

    Raises:
        NoWholeCheckpointError: none is whole.
    """
    if resume is None or dry_run:
        return None
    directory = RunDir(resume).checkpoints_dir
    try:
        path, _ = newest_whole_checkpoint(directory, log=logger)
    except NoWholeCheckpointError as exc:
        logger.error("--resume %s: %s", resume, exc)
        raise
    return path


def checkpoint_manager(run_output, model, resume, dry_run, keep):
    """The run's ``CheckpointManager`` (chief; the leftovers of killed writers are
    removed first), a read-only one (other workers), or None (dry run)."""
    if run_output.run is not None:
        manager = CheckpointManager(run_output.run.checkpoints_dir, model, max_to_keep=keep)
        manager.remove_leftovers()
        return manager
    if dry_run:
        return None
    return ReadOnlyCheckpoints(CheckpointManager(RunDir(resume).checkpoints_dir, model)
                               if resume is not None else None)


class ReadOnlyCheckpoints:
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
