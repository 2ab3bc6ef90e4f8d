"""Saving and restoring the full OASIS training state.

A checkpoint is a folder ``<checkpoints>/ckpt-<step, 8 digits>/`` holding::

    generator.weights.h5        G (weights, spectral-norm u/v, BN statistics)
    discriminator.weights.h5    D
    ema_generator.weights.h5    the EMA generator (when the model keeps one)
    optimizers.npz              every variable of both optimizers ("g/0003", "d/0041", ...):
                                iterations, moments (momentum / velocity)
    state.json                  step, data position (epoch, batch in epoch), the
                                optimizer variable paths, an optional metric, time,
                                whether the EMA BatchNorm statistics were refreshed
                                at this step (not in a checkpoint of a stopped run)
    manifest.json               size and SHA-256 of each file above (written last)

It is written into a hidden ``.tmp-ckpt-*`` folder and renamed into place, so a
killed process leaves either a complete checkpoint or none; the leftover
``.tmp-*`` folders of killed writers are removed (and logged) when a run starts
(``CheckpointManager.remove_leftovers``). The last ``max_to_keep`` are kept, plus
a copy of the best one (``best/``, by a metric the caller gives, lower is better
by default).

Nothing is loaded before its manifest is checked (``verify_checkpoint``): a
missing or unreadable manifest, a missing file, a size or SHA-256 that differs,
or a ``state.json`` that is not JSON make the checkpoint *damaged*
(``DamagedCheckpointError``, naming the file and the reason). Restoring the
newest checkpoint (``newest_whole_checkpoint``) skips damaged ones with a
warning and takes the newest whole one; when none is whole,
``NoWholeCheckpointError`` lists every checkpoint found and what is wrong with it.
``oasis_tf.inference.load_generator`` finds a run's checkpoints with the same functions.

Why not ``tf.train.Checkpoint`` / ``tf.train.CheckpointManager`` (re-checked on
Keras 3.15 / TF 2.21, ``tests/test_checkpoint_integrity.py`` shows it): Keras 3
layers held in Python lists (the generator's and the discriminator's residual
blocks) are still not tracked as children, so a ``tf.train.Checkpoint`` of the
generator holds 4 of its 74 variables in a tiny configuration and one of the
discriminator 2 of 130: the blocks' kernels, spectral-norm u/v and BN statistics
are silently left out. Keras' own ``save_weights`` saves every variable; the
optimizers are saved variable by variable in their (deterministic) build order and
checked by count, path and shape when restored.
"""

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np

from oasis_tf.fileio import replace_folder, writing
from oasis_tf.training.manifest import DamagedCheckpointError, verify_manifest, write_manifest

_CKPT = re.compile(r"^ckpt-(\d+)$")
# Files every training checkpoint has (the EMA generator's only with use_ema).
_REQUIRED = ("generator.weights.h5", "discriminator.weights.h5", "optimizers.npz",
             "state.json")
_LEFTOVER = re.compile(r"^\.(tmp|trash)-")
_NETWORKS = (("generator", "generator"), ("discriminator", "discriminator"),
             ("ema_generator", "ema_generator"))
_OPTIMIZERS = (("g", "g_optimizer"), ("d", "d_optimizer"))
# Variables taken from the current run rather than the checkpoint, so a resumed
# run can change them with an override.
_NOT_RESTORED = ("learning_rate",)

logger = logging.getLogger("oasis_tf.training")


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
    write_manifest(folder)
    return folder


def read_state(folder):
    """The ``state.json`` of a checkpoint folder."""
    with open(Path(folder) / "state.json", encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------- integrity
class NoWholeCheckpointError(FileNotFoundError):
    """No checkpoint of a folder is whole; ``problems`` lists ``(path, reason)``."""

    def __init__(self, directory, problems):
        self.directory, self.problems = Path(directory), list(problems)
        if self.problems:
            found = "; ".join(f"{Path(p).name}: {reason}" for p, reason in self.problems)
            text = (f"no whole checkpoint in {self.directory}: found {len(self.problems)}, "
                    f"all damaged ({found})")
        else:
            text = f"no checkpoint in {self.directory}"
        super().__init__(text)


def verify_checkpoint(folder, required=_REQUIRED):
    """Checks a checkpoint folder (``verify_manifest``; ``required``: by default G,
    D, the optimizers and ``state.json``) and reads its state; returns the state dict.

    Raises:
        DamagedCheckpointError: see ``verify_manifest``; also a ``state.json`` that is
            not JSON or holds no step.
    """
    folder = Path(folder)
    verify_manifest(folder, tuple(required) + ("state.json",))
    try:
        state = read_state(folder)
    except (OSError, ValueError) as exc:
        raise DamagedCheckpointError(folder, "state.json", f"unreadable ({exc})") from None
    if not isinstance(state, dict) or "step" not in state:
        raise DamagedCheckpointError(folder, "state.json", "holds no step")
    return state


def list_checkpoints(directory):
    """``ckpt-N`` folders of a ``checkpoints/`` folder, oldest first (whole or not)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir()
             if p.is_dir() and (m := _CKPT.match(p.name))]
    return [p for _, p in sorted(found)]


def newest_whole_checkpoint(directory, log=None, required=_REQUIRED):
    """The newest checkpoint of ``directory`` that passes ``verify_checkpoint``
    (with ``required``).

    Damaged ones are skipped, each named with a warning on ``log`` (a
    ``logging.Logger``; default the ``oasis_tf.training`` logger).

    Returns:
        ``(folder, state)``.

    Raises:
        NoWholeCheckpointError: no checkpoint at all, or all damaged (listed).
    """
    log = log or logger
    problems = []
    for path in reversed(list_checkpoints(directory)):
        try:
            state = verify_checkpoint(path, required)
        except DamagedCheckpointError as exc:
            problems.append((path, f"{exc.file}: {exc.reason}"))
            log.warning("%s; skipping it (trying the previous checkpoint)", exc)
            continue
        return path, state
    raise NoWholeCheckpointError(directory, problems)


def restore_training_state(model, folder, verify=True):
    """Loads a checkpoint written by ``save_training_state`` into ``model`` (built and
    compiled, with the same architecture and optimizers); returns its state dict.

    Args:
        model: the compiled ``OASIS`` model.
        folder: the checkpoint folder.
        verify: check the files against the manifest first (``verify_checkpoint``);
            False only when the caller has just done so.

    Raises:
        DamagedCheckpointError: the files do not match the manifest.
        ValueError: when the optimizer variables do not match (count, path, shape).
    """
    folder = Path(folder)
    state = verify_checkpoint(folder) if verify else read_state(folder)
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
    """True when ``<run_folder>/checkpoints`` holds a ``ckpt-N`` folder (whole or
    damaged: restoring it then says which; a killed writer's ``.tmp-*`` folder does
    not count)."""
    return bool(list_checkpoints(Path(run_folder) / "checkpoints"))


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
        """``ckpt-N`` folders, oldest first (see ``list_checkpoints``)."""
        return list_checkpoints(self.directory)

    @property
    def latest_checkpoint(self):
        """The newest whole checkpoint folder (damaged ones skipped, with a
        warning), or None."""
        try:
            return newest_whole_checkpoint(self.directory)[0]
        except NoWholeCheckpointError:
            return None

    @property
    def best_path(self):
        return self.directory / "best"

    def best_metric(self):
        """The metric of ``best/``; None when there is none or it is damaged
        (logged: the next better checkpoint replaces it)."""
        if not self.best_path.exists():
            return None
        try:
            return verify_checkpoint(self.best_path).get("metric")
        except DamagedCheckpointError as exc:
            logger.warning("%s; it will be replaced by the next best checkpoint", exc)
            return None

    def remove_leftovers(self):
        """Removes the ``.tmp-*`` / ``.trash-*`` folders of killed writers (call it
        on the one process that writes checkpoints, before it writes); logs each.
        Returns the removed paths."""
        removed = []
        for path in sorted(self.directory.iterdir()):
            if _LEFTOVER.match(path.name):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink()
                logger.info("removed %s, left by a checkpoint writer that did not finish",
                            path)
                removed.append(path)
        return removed

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
            # a full disk: the half-written folder goes, the older checkpoints stay
            with writing(f"checkpoint {final.name}", self.directory):
                save_training_state(self.model, tmp, state)
                replace_folder(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        if metric is not None and self._is_better(float(metric)):
            self._copy_to_best(final)
        self._prune()
        return final

    def restore(self, path=None):
        """Restores ``path`` (default: the newest whole checkpoint, see
        ``newest_whole_checkpoint``); returns its state dict, with the folder
        restored under the key ``"path"``.

        Raises:
            DamagedCheckpointError: ``path`` given and damaged.
            NoWholeCheckpointError: no ``path`` and no whole checkpoint.
        """
        if path is None:
            path, _ = newest_whole_checkpoint(self.directory)
            state = restore_training_state(self.model, path, verify=False)
        else:
            path = Path(path)
            state = restore_training_state(self.model, path)
        return dict(state, path=str(path))

    # ------------------------------------------------------------ internals
    def _is_better(self, metric):
        best = self.best_metric()
        if best is None:
            return True
        return metric < best if self.best_mode == "min" else metric > best

    def _copy_to_best(self, source):
        tmp = self.directory / f".tmp-best-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        try:
            with writing("the best checkpoint (best/)", self.directory):
                shutil.copytree(source, tmp)
                replace_folder(tmp, self.best_path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        logger.info("new best checkpoint (metric %s) -> %s",
                    read_state(self.best_path).get("metric"), self.best_path)

    def _prune(self):
        for path in self.checkpoints[:-self.max_to_keep]:
            shutil.rmtree(path, ignore_errors=True)
