"""Saving and restoring the full OASIS training state.

A checkpoint is a folder ``<checkpoints>/ckpt-<step, 8 digits>/`` holding::

    generator.weights.h5        G (weights, spectral-norm u/v, BN statistics)
    discriminator.weights.h5    D
    ema_generator.weights.h5    the EMA generator (when the model keeps one)
    optimizers.npz              every variable of both optimizers ("g/0003", "d/0041", ...):
                                iterations, moments (momentum / velocity)
    state.json                  step, data position (epoch, batch in epoch), the
                                optimizer variable paths, an optional metric, time

It is written into a hidden ``.tmp-ckpt-*`` folder and renamed into place, so a
killed process leaves either a complete checkpoint or none. The last
``max_to_keep`` are kept, plus a copy of the best one (``best/``, by a metric the
caller gives, lower is better by default).

Why not ``tf.train.Checkpoint``: under the TF backend Keras 3 models are
trackable, but layers held in Python lists (the generator's and the
discriminator's residual blocks) are not tracked as children, so their
non-trainable variables (spectral-norm u/v, BN statistics) are silently left
out of a ``tf.train.Checkpoint``. Keras' own ``save_weights`` saves every
variable; the optimizers are saved variable by variable in their (deterministic)
build order and checked by count, path and shape when restored.
"""

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np

__all__ = ["CheckpointManager", "save_training_state", "restore_training_state",
           "optimizer_checksum", "read_state"]

_CKPT = re.compile(r"^ckpt-(\d+)$")
_NETWORKS = (("generator", "generator"), ("discriminator", "discriminator"),
             ("ema_generator", "ema_generator"))
_OPTIMIZERS = (("g", "g_optimizer"), ("d", "d_optimizer"))
# Variables taken from the current run rather than the checkpoint, so a resumed
# run can change them with an override.
_NOT_RESTORED = ("learning_rate",)

logger = logging.getLogger("oasis_tf.training")


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def optimizer_checksum(optimizer):
    """sum(|v|) over the optimizer's variables (float64), learning rate excluded:
    a cheap fingerprint for logs and tests."""
    return float(sum(np.abs(np.asarray(v.numpy(), np.float64)).sum()
                     for v in optimizer.variables
                     if not v.path.endswith(_NOT_RESTORED)))


def save_training_state(model, folder, state):
    """Writes G, D, EMA, both optimizers and ``state`` (a JSON-able dict with at least
    ``step``) into ``folder`` (created; must not exist)."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    for attr, name in _NETWORKS:
        network = getattr(model, attr, None)
        if network is not None:
            network.save_weights(folder / f"{name}.weights.h5")
    arrays, paths = {}, {}
    for key, attr in _OPTIMIZERS:
        optimizer = getattr(model, attr)
        paths[key] = [v.path for v in optimizer.variables]
        for i, v in enumerate(optimizer.variables):
            arrays[f"{key}/{i:04d}"] = np.asarray(v.numpy())
    np.savez(folder / "optimizers.npz", **arrays)
    state = dict(state)
    state.update(optimizer_paths=paths,
                 optimizer_iterations={attr: int(getattr(model, attr).iterations.numpy())
                                       for _, attr in _OPTIMIZERS},
                 saved_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
    with open(folder / "state.json", "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    return folder


def read_state(folder):
    """The ``state.json`` of a checkpoint folder."""
    with open(Path(folder) / "state.json", encoding="utf-8") as f:
        return json.load(f)


def restore_training_state(model, folder):
    """Loads a checkpoint written by ``save_training_state`` into ``model`` (built and
    compiled, with the same architecture and optimizers); returns its state dict.

    Raises:
        ValueError: when the optimizer variables do not match (count, path, shape).
    """
    folder = Path(folder)
    state = read_state(folder)
    for attr, name in _NETWORKS:
        network = getattr(model, attr, None)
        path = folder / f"{name}.weights.h5"
        if network is None:
            continue
        if not path.exists():
            raise ValueError(f"checkpoint {folder} has no {path.name}, but the model has "
                             f"a {attr} (use_ema differs from the checkpointed run?)")
        network.load_weights(path)
    with np.load(folder / "optimizers.npz") as data:
        for key, attr in _OPTIMIZERS:
            optimizer = getattr(model, attr)
            # Variables taken from the current run are left out on both sides: a
            # learning-rate schedule (e.g. train.lr_warmup_steps) has none.
            saved = [(i, path) for i, path in enumerate(state["optimizer_paths"][key])
                     if not path.endswith(_NOT_RESTORED)]
            variables = [v for v in optimizer.variables if not v.path.endswith(_NOT_RESTORED)]
            if len(saved) != len(variables):
                raise ValueError(
                    f"{attr}: the checkpoint {folder} has {len(saved)} variables, "
                    f"the model's optimizer {len(variables)}; the architecture differs")
            for variable, (i, saved_path) in zip(variables, saved):
                value = data[f"{key}/{i:04d}"]
                if tuple(value.shape) != tuple(variable.shape) or (
                        saved_path.split("/")[-1] != variable.path.split("/")[-1]):
                    raise ValueError(
                        f"{attr}: variable {i} of {folder} is {saved_path} {value.shape}, "
                        f"the model's is {variable.path} {tuple(variable.shape)}")
                variable.assign(value)
    return state


def has_checkpoint(run_folder):
    """True when ``<run_folder>/checkpoints`` holds a complete checkpoint."""
    folder = Path(run_folder) / "checkpoints"
    if not folder.is_dir():
        return False
    return any(_CKPT.match(p.name) and (p / "state.json").exists() for p in folder.iterdir())


class CheckpointManager:
    """Keeps the last ``max_to_keep`` training-state checkpoints and the best one.

    Args:
        directory: the run's ``checkpoints/`` folder.
        model: the compiled ``OASIS`` model.
        max_to_keep: int. Checkpoints kept (older ones are deleted).
        best_mode: "min" or "max": which metric value is better.
    """

    def __init__(self, directory, model, max_to_keep=3, best_mode="min"):
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1. Received: max_to_keep={max_to_keep}")
        if best_mode not in ("min", "max"):
            raise ValueError(f'best_mode must be "min" or "max". Received: {best_mode!r}')
        self.directory = Path(directory)
        self.model = model
        self.max_to_keep = int(max_to_keep)
        self.best_mode = best_mode
        self.directory.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ queries
    @property
    def checkpoints(self):
        """Complete checkpoint folders, oldest first."""
        found = []
        for path in self.directory.iterdir():
            m = _CKPT.match(path.name)
            if m and (path / "state.json").exists():
                found.append((int(m.group(1)), path))
        return [p for _, p in sorted(found)]

    @property
    def latest_checkpoint(self):
        """The newest complete checkpoint folder, or None."""
        found = self.checkpoints
        return found[-1] if found else None

    @property
    def best_path(self):
        return self.directory / "best"

    def best_metric(self):
        path = self.best_path / "state.json"
        if not path.exists():
            return None
        return read_state(self.best_path).get("metric")

    def path_for(self, step):
        return self.directory / f"ckpt-{int(step):08d}"

    # ------------------------------------------------------------ writing
    def save(self, step, state=None, metric=None):
        """Writes the checkpoint of ``step`` atomically, prunes old ones and updates
        ``best/`` when ``metric`` (a float or None) is better. Returns the folder."""
        state = dict(state or {})
        state["step"] = int(step)
        state["metric"] = None if metric is None else float(metric)
        final = self.path_for(step)
        tmp = self.directory / f".tmp-{final.name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        try:
            save_training_state(self.model, tmp, state)
            self._replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        if metric is not None and self._is_better(float(metric)):
            self._copy_to_best(final)
        self._prune()
        return final

    def restore(self, path=None):
        """Restores ``path`` (default: the latest checkpoint); returns its state dict."""
        path = Path(path) if path is not None else self.latest_checkpoint
        if path is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        return restore_training_state(self.model, path)

    # ------------------------------------------------------------ internals
    def _is_better(self, metric):
        best = self.best_metric()
        if best is None:
            return True
        return metric < best if self.best_mode == "min" else metric > best

    def _replace(self, tmp, final):
        _fsync_dir(tmp)
        if final.exists():  # e.g. the same step saved again after a resume
            trash = final.with_name(f".trash-{final.name}-{os.getpid()}")
            os.replace(final, trash)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(self.directory)

    def _copy_to_best(self, source):
        tmp = self.directory / f".tmp-best-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(source, tmp)
        self._replace(tmp, self.best_path)
        logger.info("new best checkpoint (metric %s) -> %s",
                    read_state(self.best_path).get("metric"), self.best_path)

    def _prune(self):
        for path in self.checkpoints[:-self.max_to_keep]:
            shutil.rmtree(path, ignore_errors=True)
