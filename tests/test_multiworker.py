"""``tools/train.py --strategy multiworker``: two worker processes on 127.0.0.1
(MultiWorkerMirroredStrategy, TF_CONFIG, free ports picked here).

Same global batch. Each worker reads its shard of the files (``input_context``:
worker k takes files k, k+2, ...) in batches of global/2, so the global batch of
step s is worker 0's batch s plus worker 1's batch s, not the batch a plain
single-device run would read. The single-process reference therefore runs
``train`` on 2 logical CPUs (MirroredStrategy) with a dataset function that hands
replica k exactly worker k's shard (the two shard pipelines interleaved): same
global batch, same replica ids (the in-graph noise depends on them), same data
order. Its final checkpoint must equal the chief's.

Stop and restart. The 2-worker run uses ``--backup_dir`` (a fixed run folder, the
BackupAndRestore pattern); after its first checkpoint worker 1 alone gets SIGTERM
(its machine is preempted). Both workers must stop after the same step (they add
up their stop requests every step), the chief must checkpoint that step, and both
must exit with status 143. Both are started again with the same command. They
must end in one state (the SHA-256 of every variable that each worker logs), and
that state must be the reference's: nothing was lost or repeated. One job, stopped
and restarted, checks these properties: an uninterrupted 2-worker run beside it
would cost two more processes and add no check the reference does not make.
Where worker 1 writes with ``--run_dir`` (a runs root) is checked in-process.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

# two workers and a reference process at once: minutes on 2 cores
pytestmark = [pytest.mark.slow, pytest.mark.processes]

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "tools" / "train.py"
STEPS = 6
TINY = ["data.dataset=ade20k", "model.num_res_blocks=2", "model.g_channels=2",
        "model.d_channels=4", "model.z_dim=4", "train.batch_size=4", "train.log_every=1",
        "train.sample_every=3", "train.checkpoint_every=2", "train.keep_checkpoints=10",
        "train.ema_bn_refresh_batches=1", "data.shuffle_buffer=16"]
WAIT = 480  # seconds per phase: a hang guard (a phase takes ~40-150 s on 2 shared cores)

REFERENCE = textwrap.dedent("""
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from oasis_tf.config import load_config
    from oasis_tf.training import train, make_dataset_fn

    data_root, runs, steps, overrides = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    config = load_config("synthetic", overrides=overrides)
    base = make_dataset_fn(config, data_root)

    def dataset_fn(split="train", training=True, batch_size=None, input_context=None):
        if input_context is None:  # EMA refresh, sample batch: as on every worker
            return base(split, training, batch_size)
        shards = [base(split, training, batch_size,
                       input_context=tf.distribute.InputContext(2, k, 2)) for k in (0, 1)]
        both = tf.data.Dataset.zip(tuple(shards))
        return both.flat_map(lambda a, b: tf.data.Dataset.from_tensors(a).concatenate(
            tf.data.Dataset.from_tensors(b)))

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = train(config, runs_root=runs, max_steps=steps, strategy=strategy,
                   dataset_fn=dataset_fn, name="ade20k", console=False)
    print("RUN", result.run_dir)
""")


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _env(extra=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TF_CONFIG", None)
    env.update(extra or {})
    return env


def _overrides():
    out = []
    for item in TINY:
        out += ["--override", item]
    return out


def _start_workers(tmp, tag, args):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for k in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": k}})
        out = open(tmp / f"{tag}-worker{k}.out", "w")
        procs.append(subprocess.Popen(
            [sys.executable, str(TRAIN), "--strategy", "multiworker", *args],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
            env=_env({"TF_CONFIG": tf_config})))
    return procs


def _wait(procs, tmp, tag):
    try:
        for p in procs:
            p.wait(timeout=WAIT)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    outputs = [(tmp / f"{tag}-worker{k}.out").read_text() for k in range(len(procs))]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    return outputs


def _digest(log_text, step):
    found = re.findall(rf"step {step}: state digest ([0-9a-f]{{64}})", log_text)
    assert found, log_text[-2000:]
    return found[-1]


def _checkpoint_arrays(folder):
    import h5py

    arrays = {}
    for name in ("generator", "discriminator", "ema_generator"):
        with h5py.File(folder / f"{name}.weights.h5", "r") as f:
            f.visititems(lambda key, obj, n=name: arrays.__setitem__(
                f"{n}/{key}", np.array(obj)) if isinstance(obj, h5py.Dataset) else None)
    with np.load(folder / "optimizers.npz") as data:
        arrays.update({f"opt/{k}": data[k] for k in data.files})
    return arrays


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from oasis_tf.data import write_synthetic_dataset
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(str(root), num_train=8, num_val=2, size=64, seed=0)
    return root


def test_two_workers_stopped_by_sigterm_and_restarted_end_like_one_process(tmp_path, data_root):
    common = ["--config", "synthetic", "--data_root", str(data_root), *_overrides()]

    # the single-process reference runs beside the whole 2-worker job
    ref = subprocess.Popen([sys.executable, "-c", REFERENCE, str(data_root),
                            str(tmp_path / "ref"), str(STEPS), *TINY],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           cwd=tmp_path, env=_env())

    # -- 1. a restartable run: one worker gets SIGTERM after the first checkpoint ...
    job = tmp_path / "runs" / "job"
    command = [*common, "--backup_dir", str(job), "--max_steps", str(STEPS)]
    procs = _start_workers(tmp_path, "run1", command)
    ckpts = job / "checkpoints"
    deadline = time.time() + WAIT
    try:
        while time.time() < deadline and all(p.poll() is None for p in procs):
            if list(ckpts.glob("ckpt-*/state.json")):
                break
            time.sleep(0.1)
        assert list(ckpts.glob("ckpt-*/state.json")), "no checkpoint before the deadline"
        procs[1].send_signal(signal.SIGTERM)  # worker 1's machine is preempted
        signalled = time.time()
        for p in procs:
            p.wait(timeout=WAIT)
        stopped_in = time.time() - signalled
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait()
    outputs = [(tmp_path / f"run1-worker{k}.out").read_text() for k in range(2)]
    assert [p.returncode for p in procs] == [143, 143], [o[-2000:] for o in outputs]
    log = (job / "train.log").read_text()
    stop = re.search(r"stopped by SIGTERM at step (\d+); checkpoint (\S+); continue with "
                     rf"--resume {re.escape(str(job))}", log)
    assert stop, log[-3000:]
    stopped_at = int(stop.group(1))
    assert Path(stop.group(2)) == ckpts / f"ckpt-{stopped_at:08d}"
    assert f"stopped by SIGTERM at step {stopped_at} (worker 1;" in \
        (job / "worker-1.log").read_text()
    saved = sorted(int(p.parent.name.split("-")[1]) for p in ckpts.glob("ckpt-*/state.json"))
    assert saved[-1] == stopped_at, saved
    print(f"worker 1 got SIGTERM; both workers stopped after step {stopped_at} of {STEPS} "
          f"and exited {stopped_in:.1f} s after the signal")
    assert stopped_in < 60  # a hang guard; clusters give ~30 s (tiny steps here)

    # -- 2. ... started again with the same command: both workers continue from
    # the newest checkpoint (at the budget: they finish the run)
    procs = _start_workers(tmp_path, "run2", command)
    _wait(procs, tmp_path, "run2")
    ref_out, _ = ref.communicate(timeout=WAIT)
    assert ref.returncode == 0, ref_out[-3000:]

    # the chief wrote the run folder; worker 1 only its log (in it: a fixed folder)
    assert sorted(p.name for p in job.parent.iterdir()) == ["job"]
    assert (job / "generator.keras").exists()
    assert list((job / "samples").glob("*.png"))
    log = (job / "train.log").read_text()
    assert re.search(rf"resumed from \S*ckpt-{saved[-1]:08d} at step {saved[-1]}", log), log[-3000:]
    worker_log = (job / "worker-1.log").read_text()
    assert f"at step {saved[-1]}" in worker_log
    assert _digest(worker_log, STEPS) == _digest(log, STEPS)

    # nothing lost or repeated: the final state is the single process's (a step
    # moves the weights by ~lr = 1e-4 .. 4e-4; the two agree to 1e-6)
    final = f"checkpoints/ckpt-{STEPS:08d}"
    got = _checkpoint_arrays(job / final)
    want = _checkpoint_arrays(tmp_path / "ref" / "ade20k-0001" / final)
    assert sorted(got) == sorted(want)
    worst = max(float(np.max(np.abs(got[k].astype(np.float64) - want[k])))
                if got[k].size else 0.0 for k in got)
    assert worst <= 1e-6, worst


def test_a_worker_writes_only_its_log_beside_the_chiefs_run_folder(tmp_path, monkeypatch):
    """With ``--run_dir`` (a runs root), the chief creates the numbered run folder and
    worker 1 writes ``<name>-worker-1.log`` beside it, nothing else (the decision
    ``tools/train.py`` takes from ``TF_CONFIG`` before the first collective op)."""
    from contextlib import ExitStack
    from types import SimpleNamespace

    from oasis_tf.config import load_config
    from oasis_tf.training.startup import open_run_output

    config = load_config("synthetic", overrides=TINY)
    strategy = SimpleNamespace(num_replicas_in_sync=2)  # no resolver: TF_CONFIG decides
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    sessions = []
    for index in (1, 0):
        monkeypatch.setenv("TF_CONFIG", json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        with ExitStack() as stack:
            session = open_run_output(config, strategy, tmp_path, "ade20k", None, None, False,
                                   False, stack)
            session.logger.info("worker %d here", index)
            sessions.append(session)
    worker, chief = sessions
    assert (worker.chief, worker.task_id, worker.run) == (False, 1, None)
    assert chief.chief and chief.run is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ade20k-0001", "ade20k-worker-1.log"]
    assert "worker 1 here" in (tmp_path / "ade20k-worker-1.log").read_text()
