"""Numbered run folders: ``<runs_root>/<name>-0001``, ``-0002``, ...

A run folder holds::

    config.yaml      the resolved configuration (readable by ``load_config``), with
                     the absolute ``data.root`` the run reads
    manifest.json    size and SHA-256 of generator.keras and discriminator.keras,
                     and the step they are from
    train.lock       while a process trains in the folder: its host and PID
                     (``run_lock.py``: one process per run folder)
    train.log        the text log (progress lines, checkpoints, warnings)
    metrics.jsonl    one JSON object per logged step
    samples/         sample grids (PNG)
    checkpoints/     training-state checkpoints (see ``checkpoints.py``)
    tensorboard/     TensorBoard event files
    generator.keras, discriminator.keras   the networks at the end of the run
"""

import json
import logging
import os
import re
import sys
from pathlib import Path

from oasis_tf.config import save_config
from oasis_tf.fileio import atomic_file, writing

LOGGER_NAME = "oasis_tf.training"
_SUBDIRS = ("samples", "checkpoints", "tensorboard")
_LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def open_logger(path=None, console=True):
    """The ``oasis_tf.training`` logger, writing to ``path`` (appended; None: no file)
    and, when ``console``, to stdout. Returns ``(logger, close)``: ``close()``
    flushes and removes exactly the handlers added here."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handlers = []
    if path is not None:
        handlers.append(logging.FileHandler(path, mode="a", encoding="utf-8"))
    if console:
        handlers.append(logging.StreamHandler(sys.stdout))
    formatter = logging.Formatter(_LOG_FORMAT)
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)

    def close():
        for handler in handlers:
            handler.flush()
            logger.removeHandler(handler)
            if isinstance(handler, logging.FileHandler):
                handler.close()
        handlers.clear()

    return logger, close


def _numbered(name):
    return re.compile(rf"^{re.escape(name)}-(\d+)$")


def next_run_path(runs_root, name):
    """The next free ``<runs_root>/<name>-NNNN`` (not created)."""
    root = Path(runs_root)
    pattern = _numbered(name)
    numbers = [int(m.group(1)) for p in (root.iterdir() if root.is_dir() else ())
               if (m := pattern.match(p.name))]
    return root / f"{name}-{max(numbers, default=0) + 1:04d}"


def create_run_dir(runs_root, name, config):
    """Creates the next numbered run folder, writes ``config.yaml``; returns a RunDir."""
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    while True:  # another process may take the same number: retry
        path = next_run_path(root, name)
        try:
            path.mkdir()
            break
        except FileExistsError:
            continue
    run = RunDir(path)
    run.make_subdirs()
    save_config(config, run.config_path)
    return run


def create_run_dir_at(path, config):
    """Creates (or takes over) the run folder ``path`` itself, e.g. the fixed folder
    of a job that gets restarted: writes ``config.yaml`` and drops the metrics
    records of an earlier attempt that died before its first checkpoint."""
    run = RunDir(path)
    run.path.mkdir(parents=True, exist_ok=True)
    run.make_subdirs()
    save_config(config, run.config_path)
    run.truncate_metrics(0)
    return run


class RunDir:
    """Paths of one run folder and its logger / metrics writer.

    Args:
        path: the run folder (existing or new).
    """

    def __init__(self, path):
        self.path = Path(path)
        self._close_logger = None

    # ------------------------------------------------------------ paths
    @property
    def config_path(self):
        return self.path / "config.yaml"

    @property
    def log_path(self):
        return self.path / "train.log"

    @property
    def metrics_path(self):
        return self.path / "metrics.jsonl"

    @property
    def samples_dir(self):
        return self.path / "samples"

    @property
    def checkpoints_dir(self):
        return self.path / "checkpoints"

    @property
    def tensorboard_dir(self):
        return self.path / "tensorboard"

    def make_subdirs(self):
        for sub in _SUBDIRS:
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ logging
    def open_logger(self, console=True):
        """The ``oasis_tf.training`` logger writing to ``train.log`` (appending, so a
        resumed run continues the same log) and, when ``console``, to stdout."""
        logger, self._close_logger = open_logger(self.log_path, console)
        return logger

    def close_logger(self):
        if self._close_logger is not None:
            self._close_logger()
            self._close_logger = None

    # ------------------------------------------------------------ metrics
    def append_metrics(self, record):
        """Appends one JSON object (a line) to ``metrics.jsonl`` and flushes it."""
        with writing("a metrics record", self.metrics_path), \
                open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self):
        """The records of ``metrics.jsonl`` (a torn last line is dropped)."""
        return read_metrics(self.metrics_path)

    def truncate_metrics(self, last_step):
        """Drops records after ``last_step`` (a resumed run re-does those steps);
        rewrites the file atomically. Returns the number of records dropped."""
        records = self.read_metrics()
        kept = [r for r in records if int(r.get("step", 0)) <= last_step]
        if len(kept) == len(records) and self.metrics_path.exists():
            # still rewrite when a torn line was dropped
            with open(self.metrics_path, encoding="utf-8") as f:
                if sum(1 for _ in f) == len(records):
                    return 0
        with atomic_file(self.metrics_path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for r in kept:
                f.write(json.dumps(r) + "\n")
        return len(records) - len(kept)


def read_metrics(path):
    """The records of a ``metrics.jsonl`` file; a torn (half-written) line is dropped.

    Args:
        path: the file; a missing file gives no records.
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
