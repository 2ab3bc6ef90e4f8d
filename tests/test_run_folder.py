"""The run folder is the unit a user carries around.

A tiny run is trained with ``--data_root`` (a relative path, from one folder) and
killed after its first checkpoint; ``--resume``, ``tools/evaluate.py`` and
``tools/export.py`` then run on the run folder from another folder without
repeating it and read the same files, and the resumed run continues exactly where
the checkpoint left it. While the first process trains, a second one on its folder
is refused; the resume takes over the lock the killed process left. The files the
tools write follow the umask. (That ``--dry_run`` leaves no file anywhere is checked
with the installed command, tests/test_wheel.py.)
"""

import glob
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from oasis_tf.config import load_config
from oasis_tf.training import RunDir, train
from test_training_run import (TINY, _checkpoint_steps, _in_memory_dataset_fn,
                               _npz_checksum, _overrides, _tiny_config)

# the in-process runs: Grappler off, eager steps (tests/conftest.py's `no_grappler` and
# `eager_steps` say why); the tools in subprocesses keep both
pytestmark = [pytest.mark.usefixtures("eager_steps"), pytest.mark.processes]

REPO = Path(__file__).resolve().parents[1]
UMASK = 0o027  # files 0640, folders 0750: neither the mkstemp 0600 nor a fixed 0644


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.slow
def test_killed_run_resumes_from_another_folder_then_evaluates_and_exports(tmp_path, run_cli,
                                                                           monkeypatch):
    """One user's story, from two folders. tools/train.py with a relative
    --data_root trains; a second tools/train.py --resume on its run folder is refused
    at once, naming the first one's host and PID; the first is killed (SIGKILL) after
    its first checkpoint; --resume from another folder without --data_root takes
    over the killed process's lock (logged) and continues at the checkpoint's step
    with its optimizer state; tools/evaluate.py and tools/export.py then read the
    same files and export both networks (the resume, evaluate and export commands in
    this process, from `second`)."""
    from oasis_tf.data import write_synthetic_dataset

    data = tmp_path / "data"
    write_synthetic_dataset(str(data), num_train=16, num_val=4, size=64, seed=0)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()

    # -- 1. a run from `first` with a relative data folder, killed after a checkpoint
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=str(REPO))
    with open(tmp_path / "first.out", "w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "tools" / "train.py"), "--config", "synthetic",
             "--data_root", "../data", "--run_dir", "runs", "--max_steps", "1000",
             *_overrides(TINY)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=first,
            preexec_fn=lambda: os.umask(UMASK))
        try:
            deadline = time.time() + 300  # a hang guard; the first checkpoint comes within ~60 s
            run = None
            while time.time() < deadline and proc.poll() is None:
                found = glob.glob(str(first / "runs" / "*-0001"))
                if found and _checkpoint_steps(Path(found[0])):
                    run = Path(found[0])
                    break
                time.sleep(0.2)
            assert run is not None, (tmp_path / "first.out").read_text()[-3000:]
            # -- a second process on the run folder in use: refused, naming the holder
            started = time.time()
            other = subprocess.run(
                [sys.executable, str(REPO / "tools" / "train.py"), "--resume", str(run),
                 "--max_steps", "1000"], cwd=second, env=env, capture_output=True,
                text=True, timeout=300)
            refused_in = time.time() - started
            assert proc.poll() is None, (tmp_path / "first.out").read_text()[-3000:]
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == -signal.SIGKILL
    print(f"the second process was refused in {refused_in:.1f} s (importing TensorFlow "
          f"included)")
    assert other.returncode == 1, other.stdout[-2000:] + other.stderr[-2000:]
    assert re.search(rf"oasis-train: error: run folder {re.escape(str(run))} is in use by PID "
                     rf"{proc.pid} on host {re.escape(socket.gethostname())} \(started ",
                     other.stderr), other.stderr[-2000:]
    assert refused_in < 120  # TensorFlow's import, then the lock (a hang guard on 2 cores)
    assert run.name == "ade20k-0001", run  # the name the tools' --help examples use
    assert load_config(run / "config.yaml").data.root == str(data)
    log = (run / "train.log").read_text()
    # start-up says what it does; the first (tracing) step is timed apart
    assert "tracing the training step" in log and "first step took" in log
    steps = _checkpoint_steps(run)
    resumed_from = steps[-1]
    ckpt = run / "checkpoints" / f"ckpt-{resumed_from:08d}"
    saved = json.loads((ckpt / "state.json").read_text())
    assert saved["optimizer_iterations"] == {"g_optimizer": resumed_from,
                                             "d_optimizer": resumed_from}
    sums = {k: _npz_checksum(ckpt, k) for k in ("g", "d")}
    assert not (run / "generator.keras").exists()

    # -- 2. resumed from `second`, without --data_root: the same files (the command in
    # this process, stepping eagerly: the traced step ran in the killed process)
    total = resumed_from + 3
    monkeypatch.chdir(second)
    umask = os.umask(UMASK)  # as the processes of the first part had it
    try:
        out = run_cli("train", "--resume", run, "--max_steps", total)
    finally:
        os.umask(umask)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == str(run)
    log = (run / "train.log").read_text()
    assert "data.root changed" not in log
    # the killed process's lock was taken over, and said so; none is left
    assert re.search(rf"WARNING took over {re.escape(str(run / 'train.lock'))} of PID "
                     rf"{proc.pid} on host \S+ \(started [^)]*\): its process is gone", log), \
        log[-3000:]
    assert not (run / "train.lock").exists()
    # continues at the checkpoint's step, with the saved optimizer state
    m = re.search(r"resumed from (\S+) at step (\d+) .*g_optimizer checksum (\S+), "
                  r"d_optimizer checksum (\S+);", log)
    assert m, log[-3000:]
    assert Path(m.group(1)) == ckpt and int(m.group(2)) == resumed_from
    np.testing.assert_allclose(float(m.group(3)), sums["g"], rtol=1e-9)
    np.testing.assert_allclose(float(m.group(4)), sums["d"], rtol=1e-9)
    records = RunDir(run).read_metrics()
    assert [r["step"] for r in records] == list(range(1, total + 1))
    for r in records:
        assert np.isfinite(r["loss_g"]) and np.isfinite(r["loss_d"])
    final = run / "checkpoints" / f"ckpt-{total:08d}"
    state = json.loads((final / "state.json").read_text())
    assert state["step"] == total
    assert state["optimizer_iterations"] == {"g_optimizer": total, "d_optimizer": total}
    assert state["epoch"] == total // 8 and state["batch_in_epoch"] == total % 8
    with np.load(final / "optimizers.npz") as arrays:
        assert int(arrays["g/0000"]) == total and int(arrays["d/0000"]) == total
    assert len(_checkpoint_steps(run)) <= 2  # keep_checkpoints

    # the rest of the run folder; it records the absolute data folder it read
    assert load_config(run / "config.yaml") == _tiny_config(f"data.root={data}")
    assert glob.glob(str(run / "samples" / "samples-*.png"))
    assert glob.glob(str(run / "tensorboard" / "events.out.tfevents.*"))
    # TensorBoard's own reader sees the losses of both processes and the sample grids
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(str(run / "tensorboard"),
                                                size_guidance={"tensors": 0}).Reload()
    assert {e.step for e in events.Tensors("losses/loss_g")} >= set(
        range(resumed_from + 1, total + 1))
    assert events.SummaryMetadata("losses/loss_g").plugin_data.plugin_name == "scalars"
    assert events.SummaryMetadata(
        "samples/label_real_fake_fakeEMA").plugin_data.plugin_name == "images"
    assert events.Tensors("samples/label_real_fake_fakeEMA")[-1].step == total
    assert (run / "generator.keras").exists()
    assert re.search(r"step +\d+/\d+ .*loss_g .* img/s .*ETA", log)

    # -- 3. evaluated from `second`, without --data_root: the same files
    umask = os.umask(UMASK)
    try:
        report = tmp_path / "report.json"
        out = run_cli("evaluate", "--model", run, "--split", "val", "--extractor", "none",
                      "--segmenter", "none", "--num_diversity_samples", "0", "--output", report)
        assert out.returncode == 0, out.stderr[-3000:]
        evaluation = json.loads(report.read_text())
        assert evaluation["data_root"] == str(data) and evaluation["num_images"] == 4

        # the discriminator is in the run folder too, and exports as `segment`
        out = run_cli("export", "--generator", run, "--discriminator", run, "--export_dir",
                      "exports")
        assert out.returncode == 0, out.stderr[-3000:]
    finally:
        os.umask(umask)
    version = second / "exports" / "oasis" / "1"
    assert "segment" in tf.saved_model.load(str(version)).signatures

    # modes follow the umask (mkstemp / mkdtemp would make them 0600 / 0700)
    for path in (run / "generator.keras", run / "discriminator.keras",
                 version / "saved_model.pb", version / "assets" / "oasis_export.json"):
        assert _mode(path) == 0o666 & ~UMASK, (path, oct(_mode(path)))
    for path in (version, version / "variables"):
        assert _mode(path) == 0o777 & ~UMASK, (path, oct(_mode(path)))


@pytest.mark.slow
def test_changing_the_data_root_on_resume_is_explicit_and_logged(tmp_path):
    config = _tiny_config()
    result = train(config, data_root=tmp_path / "a", runs_root=tmp_path, max_steps=2,
                   console=False, dataset_fn=_in_memory_dataset_fn(), name="x")
    run = Path(result.run_dir)
    assert load_config(run / "config.yaml").data.root == str(tmp_path / "a")
    # a config from elsewhere (root None) does not switch it silently...
    again = train(config, resume=run, max_steps=2, console=False,
                  dataset_fn=_in_memory_dataset_fn())
    assert again.start_step == 2
    assert load_config(run / "config.yaml").data.root == str(tmp_path / "a")
    # ...an explicit data_root does, and says so
    train(config, resume=run, data_root=tmp_path / "b", max_steps=2, console=False,
          dataset_fn=_in_memory_dataset_fn())
    assert load_config(run / "config.yaml").data.root == str(tmp_path / "b")
    assert f"data.root changed from {tmp_path / 'a'} to {tmp_path / 'b'}" in \
        (run / "train.log").read_text()


def test_import_oasis_tf_reaches_the_subpackages(tmp_path):
    code = ("import oasis_tf\n"
            "for name in ('training', 'data', 'export', 'metrics', 'convert', 'inference'):\n"
            "    assert hasattr(oasis_tf, name), name\n"
            "oasis_tf.training.train, oasis_tf.data.load_dataset\n"
            "oasis_tf.export.export_saved_model, oasis_tf.metrics.fid_from_features\n"
            "oasis_tf.inference.OASISPipeline, oasis_tf.inference.generate\n"
            "# one home for the loader: no alias left elsewhere\n"
            "assert not hasattr(oasis_tf.metrics, 'load_generator')\n"
            "assert not hasattr(oasis_tf, 'loading') and not hasattr(oasis_tf, 'generate')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2"))
    assert out.returncode == 0, out.stderr[-2000:]


def test_run_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path):
    """``train.lock``: a lock of a live process is refused, naming its host and PID;
    one whose process is gone (this host) or whose heartbeat stopped (another host)
    is taken over, and says why; the holder's heartbeat moves its modification time."""
    from oasis_tf.training.run_lock import LOCK_NAME, RunFolderInUseError, RunLock

    lock_file = tmp_path / LOCK_NAME
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    record = RunLock(tmp_path)._record()
    lock_file.write_text(json.dumps(dict(record, pid=gone.pid, pid_start=None)))
    lock = RunLock(tmp_path, heartbeat_seconds=0.2).acquire()
    assert lock.takeover.endswith("its process is gone") and f"PID {gone.pid} " in \
        lock.takeover
    first_beat = lock_file.stat().st_mtime_ns
    with pytest.raises(RunFolderInUseError, match=rf"in use by PID {os.getpid()} on host "
                       rf"{re.escape(socket.gethostname())} "):
        RunLock(tmp_path).acquire()
    time.sleep(0.7)
    assert lock_file.stat().st_mtime_ns > first_beat  # the heartbeat
    lock.release()
    assert not lock_file.exists()

    # another host (shared storage): its heartbeat decides
    lock_file.write_text(json.dumps(dict(record, host="node-elsewhere", pid=1)))
    with pytest.raises(RunFolderInUseError, match="by PID 1 on host node-elsewhere"):
        RunLock(tmp_path).acquire()
    old = time.time() - 1000
    os.utime(lock_file, (old, old))
    lock = RunLock(tmp_path).acquire()
    assert "no heartbeat for 1000 s" in lock.takeover
    lock.release()
