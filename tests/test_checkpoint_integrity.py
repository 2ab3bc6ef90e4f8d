"""Checkpoints that prove they are whole (issue 12, item 1).

One tiny run (4 steps, checkpoints at steps 2 and 4) is trained once per module, as
the first start of a ``backup_dir`` job (a fixed folder). Each test copies it and
damages the newest checkpoint the way disks and killed writers do (truncated or
bit-flipped weights, a deleted file, a garbled ``state.json``, no manifest):
restoring names the damaged checkpoint and restores step 2 exactly (the state digest
of every variable of G, D, EMA and both optimizers). Started again, the job continues
from step 2 and ends in the state of the uninterrupted run. With both checkpoints
damaged, ``tools/train.py --resume`` stops with exit status 1 and lists both.

The runs step eagerly (conftest's ``eager_steps``): what is checked here is what the
run folder holds, not the traced step.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from oasis_tf.inference import load_discriminator, load_generator
from oasis_tf.training import CheckpointManager, RunDir, build_model, train
from oasis_tf.training.checkpoints import NoWholeCheckpointError, newest_whole_checkpoint
from oasis_tf.training.manifest import MANIFEST, DamagedCheckpointError
from oasis_tf.training.distribute import state_digest
from oasis_tf.training.startup import resume_or_new_backup_dir
from test_training_run import (TINY, _in_memory_dataset_fn, _overrides,
                               _tiny_config)

# in-process runs: Grappler off, eager steps (tests/conftest.py's `no_grappler` and
# `eager_steps` say why)
pytestmark = pytest.mark.usefixtures("eager_steps")

REPO = Path(__file__).resolve().parents[1]
DIGEST = re.compile(r"step 4: state digest ([0-9a-f]{64})")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted 4-step run, the first start of a ``backup_dir`` job: ``(run
    folder, state digest at step 4)``. The first start creates that very folder (not
    a numbered one)."""
    root = tmp_path_factory.mktemp("straight")
    job = root / "job"
    result = train(_tiny_config(), backup_dir=job, max_steps=4, console=False,
                   dataset_fn=_in_memory_dataset_fn(), name="x")
    assert Path(result.run_dir) == job and sorted(p.name for p in root.iterdir()) == ["job"]
    assert sorted(p.name for p in (job / "checkpoints").iterdir()) == [
        "ckpt-00000002", "ckpt-00000004"]
    return job, DIGEST.findall((job / "train.log").read_text())[-1]


def _copy(run, tmp_path):
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    return copy


def _flip_middle(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4] = bytes(b ^ 0xFF for b in data[middle:middle + 4])
    path.write_bytes(bytes(data))


def _damage(ckpt, how):
    """Damages a checkpoint folder; returns the file the error must name."""
    if how == "truncate":
        path = ckpt / "generator.weights.h5"
        path.write_bytes(path.read_bytes()[:1000])
        return path.name
    if how == "flip":
        _flip_middle(ckpt / "discriminator.weights.h5")
        return "discriminator.weights.h5"
    if how == "delete":
        (ckpt / "optimizers.npz").unlink()
        return "optimizers.npz"
    if how == "garble_state":
        (ckpt / "state.json").write_text('{"step": 4, "epo')
        return "state.json"
    if how == "no_manifest":
        (ckpt / MANIFEST).unlink()
        return MANIFEST
    raise ValueError(how)


@pytest.fixture(scope="module")
def model_at_step_2(straight):
    """A model of the run's config and the state digest of its step-2 checkpoint."""
    run, _ = straight
    model = build_model(_tiny_config())
    CheckpointManager(run / "checkpoints", model).restore(run / "checkpoints" / "ckpt-00000002")
    return model, state_digest(model)


@pytest.mark.parametrize("how", ["truncate", "flip", "delete", "garble_state", "no_manifest"])
def test_damaged_newest_checkpoint_is_named_and_skipped(straight, model_at_step_2, tmp_path,
                                                        caplog, how):
    """What ``train(resume=...)`` restores (``CheckpointManager.restore`` of the newest
    whole checkpoint): the damaged step-4 checkpoint is named, step 2 is restored."""
    model, digest_at_2 = model_at_step_2
    run = _copy(straight[0], tmp_path)
    bad_file = _damage(run / "checkpoints" / "ckpt-00000004", how)
    for v in model.generator.weights[:3]:  # so that a restore that does nothing shows
        v.assign(v + 1.0)
    with caplog.at_level("WARNING", logger="oasis_tf.training"):
        state = CheckpointManager(run / "checkpoints", model).restore()
    assert state["step"] == 2 and state["path"].endswith("ckpt-00000002")
    assert re.search(rf"ckpt-00000004 is damaged: {re.escape(bad_file)}: ", caplog.text), \
        caplog.text
    assert state_digest(model) == digest_at_2
    with pytest.raises(DamagedCheckpointError, match=re.escape(bad_file)):
        CheckpointManager(run / "checkpoints", model).restore(run / "checkpoints" /
                                                               "ckpt-00000004")


@pytest.mark.slow
def test_restart_after_damage_ends_like_the_uninterrupted_run(straight, tmp_path):
    """The ``backup_dir`` job started again with the same call, after its newest
    checkpoint got flipped bytes and a killed writer left a folder: it resumes from the
    previous checkpoint (naming the damaged one), removes the leftover, re-writes the
    newest checkpoint whole and ends in the uninterrupted run's state. (A ``backup_dir``
    with a checkpoint is resumed exactly as ``resume=`` is:
    ``test_backup_dir_with_a_checkpoint_is_resumed``.)"""
    run0, digest = straight
    job = _copy(run0, tmp_path)
    newest = job / "checkpoints" / "ckpt-00000004"
    _damage(newest, "flip")
    leftover = job / "checkpoints" / ".tmp-ckpt-00000006-12345"  # a killed writer's
    leftover.mkdir()
    (leftover / "generator.weights.h5").write_bytes(b"half")

    config = _tiny_config()
    result = train(config, backup_dir=job, max_steps=4, console=False,
                   dataset_fn=_in_memory_dataset_fn(), name="x")
    assert Path(result.run_dir) == job and (result.start_step, result.step) == (2, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job"]
    log = (job / "train.log").read_text()
    assert re.search(r"WARNING .*ckpt-00000004 is damaged: discriminator\.weights\.h5: "
                     r"SHA-256 differs", log), log[-3000:]
    assert re.search(r"resumed from \S*ckpt-00000002 at step 2", log), log[-3000:]
    assert not leftover.exists() and f"removed {leftover}" in log
    assert DIGEST.findall(log)[-1] == digest
    assert newest_whole_checkpoint(job / "checkpoints")[0] == newest  # re-written whole
    # the metrics of the steps done again are not doubled
    assert [r["step"] for r in RunDir(job).read_metrics()] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="not both"):
        train(config, backup_dir=job, resume=job, max_steps=4, console=False,
              dataset_fn=_in_memory_dataset_fn())


def test_backup_dir_with_a_checkpoint_is_resumed(straight, tmp_path):
    """``backup_dir`` is decided before the first step: a folder with a checkpoint is
    resumed (the same ``resume`` argument ``train(resume=...)`` gets), one without is
    created at that path."""
    job = _copy(straight[0], tmp_path)
    assert resume_or_new_backup_dir(None, job) == (job, None)
    assert resume_or_new_backup_dir(job, None) == (job, None)
    empty = tmp_path / "new"
    assert resume_or_new_backup_dir(None, empty) == (None, empty)
    shutil.rmtree(job / "checkpoints" / "ckpt-00000004")
    shutil.rmtree(job / "checkpoints" / "ckpt-00000002")
    assert resume_or_new_backup_dir(None, job) == (None, job)  # no checkpoint left


def test_all_damaged_is_a_clear_error_with_exit_status_1(straight, tmp_path):
    run0, _ = straight
    run = _copy(run0, tmp_path)
    _damage(run / "checkpoints" / "ckpt-00000004", "flip")
    _damage(run / "checkpoints" / "ckpt-00000002", "no_manifest")
    with pytest.raises(NoWholeCheckpointError) as info:
        newest_whole_checkpoint(run / "checkpoints")
    assert [p.name for p, _ in info.value.problems] == ["ckpt-00000004", "ckpt-00000002"]

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run([sys.executable, str(REPO / "tools" / "train.py"), "--resume", str(run),
                          "--max_steps", "6", *_overrides(TINY)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    assert re.search(r"train: error: no whole checkpoint in \S+checkpoints: found 2, all "
                     r"damaged \(ckpt-00000004: discriminator\.weights\.h5: SHA-256 differs.*; "
                     r"ckpt-00000002: manifest\.json: missing", out.stderr), out.stderr[-2000:]
    assert "Traceback" not in out.stderr


def test_best_and_final_networks_are_checked_too(straight, tmp_path, caplog):
    """``best/``, ``generator.keras`` / ``discriminator.keras`` (and so
    ``tools/export.py`` and ``load_generator`` on a run folder) are verified."""
    run0, _ = straight
    run = _copy(run0, tmp_path)
    for name in ("generator.keras", "discriminator.keras", MANIFEST):
        assert (run / name).exists(), name
    generator, info = load_generator(run)
    assert info["source"].endswith("generator.keras")
    discriminator, info = load_discriminator(run)
    assert info["source"].endswith("discriminator.keras")
    from_checkpoint, info = load_discriminator(run, checkpoint="latest")
    assert info["source"].endswith("ckpt-00000004/discriminator.weights.h5")
    for a, b in zip(discriminator.weights, from_checkpoint.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)

    _flip_middle(run / "generator.keras")
    with caplog.at_level("WARNING", logger="oasis_tf.inference.loading"):
        _, info = load_generator(run)
    assert info["source"].endswith("ckpt-00000004/ema_generator.weights.h5")
    assert "generator.keras: SHA-256 differs" in caplog.text

    best = run / "checkpoints" / "best"
    shutil.copytree(run / "checkpoints" / "ckpt-00000002", best)
    _damage(best, "truncate")
    with pytest.raises(DamagedCheckpointError, match=r"best is damaged: generator\.weights\.h5"):
        load_generator(run, checkpoint="best")
    manager = CheckpointManager(run / "checkpoints", model=None)
    with caplog.at_level("WARNING", logger="oasis_tf.training"):
        assert manager.best_metric() is None  # replaced by the next best checkpoint
    assert "best is damaged" in caplog.text


def test_tf_train_checkpoint_still_misses_variables(tmp_path):
    """Why checkpoints.py does not use ``tf.train.Checkpoint`` (re-checked on Keras 3 /
    TF 2.21): the residual blocks live in Python lists, which Keras does not track as
    checkpoint children, so a ``tf.train.Checkpoint`` of each network leaves most of its
    variables out (the optimizers' slots then have no network variables to attach to).
    When this test fails, Keras tracks them: switch to ``tf.train.Checkpoint`` /
    ``CheckpointManager``, keeping the atomic write, the manifest and ``best/``. What
    oasis_tf writes instead holds every variable (see
    ``test_training_run.test_checkpoint_round_trip_restores_networks_and_optimizers``)."""
    model = build_model(_tiny_config())
    for network in (model.generator, model.discriminator):
        path = tf.train.Checkpoint(net=network).write(str(tmp_path / network.name))
        saved = [n for n, _ in tf.train.list_variables(path) if "VARIABLE_VALUE" in n]
        assert len(saved) < len(network.variables) // 2, (network.name, len(saved),
                                                          len(network.variables))


# ------------------------------------------------- stop signals, unfinished runs, full disks
def _keras_arrays(path):
    """The weight arrays inside a ``.keras`` file (its ``model.weights.h5``), by path;
    the file's own bytes differ between two saves (its metadata holds the time)."""
    import io
    import zipfile

    import h5py

    arrays = {}
    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(data), "r") as f:
        f.visititems(lambda key, obj: arrays.__setitem__(key, np.array(obj))
                     if isinstance(obj, h5py.Dataset) else None)
    return arrays


def _same_networks(run, reference):
    for name in ("generator.keras", "discriminator.keras"):
        got, want = _keras_arrays(run / name), _keras_arrays(reference / name)
        assert sorted(got) == sorted(want), name
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name}: {key}")


@pytest.fixture
def signal_at_step(monkeypatch):
    """``signal_at_step(signum, step)``: the signal reaches this process while the step
    ``step`` is in flight (sent as that step's batch begins). The handlers are the
    same afterwards."""
    import signal as signal_module
    import threading

    from oasis_tf.training import callbacks as cb
    from oasis_tf.training.updates import global_step

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread; this test runs in another")
    handlers = [signal_module.getsignal(s) for s in (signal_module.SIGTERM,
                                                     signal_module.SIGINT)]
    original = cb.PerStepMetrics.on_train_batch_begin

    def arm(signum, step):
        def begin(self, batch, logs=None):
            if global_step(self.model) + 1 == step:
                os.kill(os.getpid(), signum)
            return original(self, batch, logs)

        monkeypatch.setattr(cb.PerStepMetrics, "on_train_batch_begin", begin)

    yield arm
    assert [signal_module.getsignal(s) for s in (signal_module.SIGTERM,
                                                  signal_module.SIGINT)] == handlers


@pytest.mark.slow
def test_stop_signals_checkpoint_the_step_reached_and_the_run_ends_as_if_never_stopped(
        straight, tmp_path, run_cli, monkeypatch, signal_at_step):
    """The uninterrupted job of ``straight``, started anew as ``oasis-train`` with a
    SIGTERM while step 1 runs (before the step-2 checkpoint): a checkpoint of step 1,
    the line, exit status 143. Started again (``train(stop_signals=...)``) with a
    SIGINT during the last step: it ends after step 4 (its regular checkpoint, no
    final files). The third start finds the run at its budget but unfinished and
    finishes it: the uninterrupted run's state digest and networks."""
    import signal

    from oasis_tf.training import trainer

    run0, digest = straight
    job = tmp_path / "job"
    monkeypatch.setattr(trainer, "make_dataset_fn",
                        lambda config, *args, **kwargs: _in_memory_dataset_fn())

    # -- SIGTERM (oasis-train, in this process: its handlers are this process's)
    signal_at_step(signal.SIGTERM, 1)
    out = run_cli("train", "--config", "synthetic", *_overrides(TINY), "--backup_dir", job,
                  "--max_steps", 4)
    assert out.returncode == 143, out.stdout[-3000:] + out.stderr[-2000:]
    line = re.search(r"stopped by SIGTERM at step 1; checkpoint (\S+); continue with "
                     rf"--resume {re.escape(str(job))}", out.stdout)
    assert line, out.stdout[-3000:]
    assert Path(line.group(1)) == job / "checkpoints" / "ckpt-00000001"
    assert newest_whole_checkpoint(job / "checkpoints")[0].name == "ckpt-00000001"
    state = json.loads((job / "checkpoints" / "ckpt-00000001" / "state.json").read_text())
    # the state as trained: the EMA statistics are refreshed at steps 2, 3, 4 only
    assert state["step"] == 1 and state["ema_statistics_refreshed"] is False
    assert not (job / "train.lock").exists() and not (job / "generator.keras").exists()
    assert out.stdout.strip().splitlines()[-1] == str(job)

    # -- SIGINT (train() told to handle it) during the last step
    signal_at_step(signal.SIGINT, 4)
    result = train(_tiny_config(), backup_dir=job, max_steps=4, console=False,
                   dataset_fn=_in_memory_dataset_fn(), stop_signals=("SIGINT",))
    assert (result.start_step, result.step, result.stopped) == (1, 4, "SIGINT")
    assert result.last_checkpoint.endswith("ckpt-00000004")
    assert not (job / "generator.keras").exists()
    assert "stopped by SIGINT at step 4; checkpoint" in (job / "train.log").read_text()

    # -- started again at its budget: finished as the uninterrupted run ends
    monkeypatch.undo()
    result = train(_tiny_config(), backup_dir=job, max_steps=4, console=False,
                   dataset_fn=_in_memory_dataset_fn())
    assert (result.start_step, result.step, result.stopped) == (4, 4, None)
    log = (job / "train.log").read_text()
    assert "step 4 >= budget 4, but the run was not finished (manifest.json: missing" in log
    assert DIGEST.findall(log) == [digest]
    assert re.findall(r"finished at step \d+", log) == ["finished at step 4"]
    _same_networks(job, run0)
    assert json.loads((job / MANIFEST).read_text())["step"] == 4
    assert [r["step"] for r in RunDir(job).read_metrics()] == [1, 2, 3, 4]


def test_the_first_signal_requests_a_stop_and_the_second_acts_as_before():
    """``handle_signals``: the first signal becomes a stop request naming it, the
    second reaches the handler that was there before, which is back afterwards."""
    import signal
    import threading

    from oasis_tf.training.stop import StopRequest, handle_signals

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    try:
        stop = StopRequest()
        with handle_signals(stop, ("SIGUSR1",)):
            os.kill(os.getpid(), signal.SIGUSR1)
            assert (stop.reason, seen) == ("SIGUSR1", [])
            os.kill(os.getpid(), signal.SIGUSR1)
            assert seen == [signal.SIGUSR1] and stop.reason == "SIGUSR1"
        os.kill(os.getpid(), signal.SIGUSR1)
        assert seen == [signal.SIGUSR1] * 2
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_resume_finishes_a_run_with_a_damaged_manifest_and_leaves_a_finished_one(
        straight, tmp_path):
    """A run whose ``manifest.json`` is damaged is finished by ``--resume`` at its
    budget (the uninterrupted run's digest and networks); a whole finished run is
    left as it is, without building a model."""
    run0, digest = straight
    damaged = _copy(run0, tmp_path)
    (damaged / MANIFEST).write_text('{"format": 1, "fi')
    result = train(_tiny_config(), resume=damaged, max_steps=4, console=False,
                   dataset_fn=_in_memory_dataset_fn())
    assert (result.start_step, result.step) == (4, 4)
    log = (damaged / "train.log").read_text()
    assert "not finished (manifest.json: unreadable" in log
    assert DIGEST.findall(log)[-1] == digest
    _same_networks(damaged, run0)

    finished = tmp_path / "finished"
    shutil.copytree(damaged, finished)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in finished.rglob("*")
              if p.is_file() and p.name != "train.log"}
    result = train(_tiny_config(), resume=finished, max_steps=4, console=False,
                   dataset_fn=_in_memory_dataset_fn())
    assert (result.start_step, result.step) == (4, 4)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in finished.rglob("*")
             if p.is_file() and p.name != "train.log"}
    assert after == before
    log = (finished / "train.log").read_text()
    assert "nothing to do: step 4 >= budget 4, and the run's final networks (step 4) " \
           "are whole" in log
    assert len(DIGEST.findall(log)) == len(DIGEST.findall((damaged / "train.log").read_text()))


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_the_last_checkpoint_stays(straight, tmp_path, run_cli,
                                                              monkeypatch, capsys):
    """The step-5 checkpoint of a resumed run (its last) cannot be written (ENOSPC,
    as on a full disk): one line says what, where, the space free, that the step-4
    checkpoint is still there and how to continue; exit status 1, no traceback,
    no half-written folder. A bare ENOSPC of any command is one line too."""
    import errno

    from oasis_tf.cli import common
    from oasis_tf.training import checkpoints, trainer

    run = _copy(straight[0], tmp_path)
    monkeypatch.setattr(trainer, "make_dataset_fn",
                        lambda config, *args, **kwargs: _in_memory_dataset_fn())

    def full(path, **arrays):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(checkpoints.np, "savez", full)
    out = run_cli("train", "--resume", run, "--max_steps", 5)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    ckpts = run / "checkpoints"
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(
        rf"oasis-train: error: no space left on device: could not write checkpoint "
        rf"ckpt-00000005 to {re.escape(str(ckpts))} \({FREE} free there\); the last whole "
        rf"checkpoint {re.escape(str(ckpts / 'ckpt-00000004'))} is still there; free some "
        rf"space, then continue with --resume {re.escape(str(run))}", lines[0]), lines
    assert "Traceback" not in out.stdout + out.stderr
    assert sorted(p.name for p in ckpts.iterdir()) == ["ckpt-00000002", "ckpt-00000004"]
    assert newest_whole_checkpoint(ckpts)[0].name == "ckpt-00000004"
    assert "no space left on device: could not write checkpoint ckpt-00000005" in \
        (run / "train.log").read_text()
    assert not (run / "train.lock").exists()

    # any command: a bare ENOSPC (here from an export's write) is one line as well
    def main(argv):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x.tflite"))

    capsys.readouterr()
    assert common.run_command("oasis-x", "doc", common.new_flags(), main, ["oasis-x"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(
        rf"oasis-x: error: no space left on device: could not write "
        rf"{re.escape(str(tmp_path / 'x.tflite'))} \({FREE} free there\); free some space, "
        rf"then run the command again", lines[0]), lines


FREE = r"(\d+ bytes|\d+\.\d (KB|MB|GB|TB))"
