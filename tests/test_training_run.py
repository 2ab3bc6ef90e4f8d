"""The training run: run folders, checkpoints, kill / resume, the NaN guard.

The subprocess tests run `tools/train.py` on a tiny synthetic data set (16
64x64 examples written with `oasis_tf.data.write_synthetic_dataset`, read with the
ADE20K layout) and tiny networks (2 SPADE blocks, widths 2 / 4).
"""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from oasis_tf.config import load_config
from oasis_tf.training import (CheckpointManager, RunDir, build_model, create_run_dir,
                               next_run_path, train)

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "tools" / "train.py"

TINY = ["data.dataset=ade20k", "model.num_res_blocks=2", "model.g_channels=2",
        "model.d_channels=4", "model.z_dim=4", "train.batch_size=2", "train.log_every=1",
        "train.sample_every=3", "train.checkpoint_every=2", "train.keep_checkpoints=2",
        "train.ema_bn_refresh_batches=1", "data.shuffle_buffer=16"]


def _tiny_config(*extra):
    return load_config("synthetic", overrides=TINY + list(extra))


def _have_data_module():
    try:
        from oasis_tf.data import load_dataset, write_synthetic_dataset  # noqa: F401
    except ImportError:
        return False
    return True


needs_data = pytest.mark.skipif(not _have_data_module(),
                                reason="oasis_tf.data.load_dataset is not there yet")


@pytest.fixture(scope="module", autouse=True)
def _no_grappler():
    """The in-process runs build a fresh model and optimize its traced step each time;
    Grappler's pass over that graph is ~25% of a tiny train() here (measured 104 ->
    76 s) and none of these tests is about it (tools/train.py in the subprocess tests
    keeps it)."""
    previous = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    yield
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": previous.get("disable_meta_optimizer", False)})


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from oasis_tf.data import write_synthetic_dataset
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(str(root), num_train=16, num_val=4, size=64, seed=0)
    return root


def _in_memory_dataset_fn(nan_batch=None, examples=16, batch=2, num_classes=12, size=64):
    """A ``dataset_fn`` of random dict batches; ``nan_batch``: that batch's images are NaN."""
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (examples, size, size, 3)).astype(np.float32)
    label = rng.integers(0, num_classes, (examples, size, size)).astype(np.int32)
    bits = rng.integers(0, 2, (examples, num_classes)).astype(np.int32)
    if nan_batch is not None:
        image[nan_batch * batch:(nan_batch + 1) * batch] = np.nan

    def fn(split="train", training=True, batch_size=None, input_context=None):
        data = {"image": image, "label": label}
        if training:
            data["labelmix_bits"] = bits
        elif split == "train":
            data = {"image": np.nan_to_num(image), "label": label}
        return tf.data.Dataset.from_tensor_slices(data).batch(batch_size or batch,
                                                             drop_remainder=training)
    return fn


def _train_cmd(*args):
    return [sys.executable, str(TRAIN), *args]


def _overrides(items):
    out = []
    for item in items:
        out += ["--override", item]
    return out


def _checkpoint_steps(run):
    return sorted(int(m.group(1)) for p in glob.glob(str(run / "checkpoints" / "ckpt-*"))
                  if (m := re.search(r"ckpt-(\d+)$", p)) and os.path.exists(
                      os.path.join(p, "state.json")))


def _npz_checksum(folder, key):
    state = json.loads((folder / "state.json").read_text())
    paths = state["optimizer_paths"][key]
    with np.load(folder / "optimizers.npz") as data:
        return sum(float(np.abs(data[f"{key}/{i:04d}"].astype(np.float64)).sum())
                   for i, path in enumerate(paths) if not path.endswith("learning_rate"))


# ---------------------------------------------------------------- unit tests
def test_numbered_run_folders(tmp_path):
    config = _tiny_config()
    assert next_run_path(tmp_path, "x").name == "x-0001"
    first = create_run_dir(tmp_path, "x", config)
    second = create_run_dir(tmp_path, "x", config)
    assert (first.path.name, second.path.name) == ("x-0001", "x-0002")
    for sub in ("samples", "checkpoints", "tensorboard"):
        assert (first.path / sub).is_dir()
    assert load_config(first.config_path) == config
    run = RunDir(first.path)
    for step in (1, 2, 3, 4):
        run.append_metrics({"step": step})
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 5, "los')  # torn line of a killed process
    assert run.truncate_metrics(2) == 2
    assert [r["step"] for r in run.read_metrics()] == [1, 2]


def test_checkpoint_round_trip_restores_networks_and_optimizers(tmp_path):
    config = _tiny_config()
    model = build_model(config)
    rng = np.random.default_rng(1)
    everything = lambda m: (m.generator.weights + m.discriminator.weights  # noqa: E731
                            + m.ema_generator.weights + m.g_optimizer.variables
                            + m.d_optimizer.variables)
    for v in everything(model):  # random values for every variable, incl. moments
        if v.path.endswith("learning_rate"):
            continue
        if "iteration" in v.path:
            v.assign(7)
        else:
            v.assign(rng.standard_normal(v.shape).astype(v.dtype))
    manager = CheckpointManager(tmp_path, model, max_to_keep=2)
    for step, metric in ((1, 5.0), (2, 3.0), (3, 4.0)):
        manager.save(step, state={"epoch": 0, "batch_in_epoch": step}, metric=metric)
    assert [p.name for p in manager.checkpoints] == ["ckpt-00000002", "ckpt-00000003"]
    assert manager.best_metric() == 3.0
    assert not list(tmp_path.glob(".tmp-*"))

    fresh = build_model(config)
    state = CheckpointManager(tmp_path, fresh).restore()
    assert state["step"] == 3 and state["batch_in_epoch"] == 3
    assert state["optimizer_iterations"] == {"g_optimizer": 7, "d_optimizer": 7}
    pairs = list(zip(everything(model), everything(fresh)))
    assert len(pairs) == len(everything(model))
    for a, b in pairs:
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_resume_may_switch_the_learning_rate_warmup_on_or_off(tmp_path):
    # A learning-rate schedule has no learning_rate variable; the rate is never
    # restored anyway, so a checkpoint written with constant rates resumes with a
    # warm-up (and back), with the moments and the step counter restored.
    model = build_model(_tiny_config("train.lr_warmup_steps=0"))
    for v in model.g_optimizer.variables + model.d_optimizer.variables:
        if "iteration" in v.path:
            v.assign(5)
        elif not v.path.endswith("learning_rate"):
            v.assign(np.full(v.shape, 0.25, v.dtype))
    CheckpointManager(tmp_path / "a", model).save(5, state={"epoch": 0, "batch_in_epoch": 5})
    warm_config = _tiny_config("train.lr_warmup_steps=10")
    warm = build_model(warm_config)
    assert len(warm.g_optimizer.variables) == len(model.g_optimizer.variables) - 1
    state = CheckpointManager(tmp_path / "a", warm).restore()
    assert state["optimizer_iterations"] == {"g_optimizer": 5, "d_optimizer": 5}
    momentum = [v for v in warm.d_optimizer.variables if "momentum" in v.path][0]
    np.testing.assert_array_equal(momentum.numpy(), 0.25)
    # the warm-up rate at step 5 of 10: 6/10 of lr_d
    assert float(warm.d_optimizer.learning_rate) == pytest.approx(0.6 * warm_config.train.lr_d)
    CheckpointManager(tmp_path / "b", warm).save(5, state={"epoch": 0, "batch_in_epoch": 5})
    plain_config = _tiny_config("train.lr_warmup_steps=0")
    plain = build_model(plain_config)
    CheckpointManager(tmp_path / "b", plain).restore()
    assert int(plain.g_optimizer.iterations) == 5
    assert float(plain.g_optimizer.learning_rate) == pytest.approx(plain_config.train.lr_g)


def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(tmp_path):
    """Batch 3 (step 4) has NaN images: the run stops at step 4 and the step-2
    checkpoint is the last one, unchanged; no final checkpoint, no generator.keras."""
    config = _tiny_config()
    seen = {}

    def metric_fn(step):
        seen[step] = True
        return None

    result = train(config, runs_root=tmp_path, max_steps=8, console=False,
                   dataset_fn=_in_memory_dataset_fn(nan_batch=3), name="nan",
                   metric_fn=metric_fn)
    run = Path(result.run_dir)
    assert result.failed and result.step == 4
    assert "step 4" in result.failure and "nan" in result.failure.lower()
    assert _checkpoint_steps(run) == [2]
    assert result.last_checkpoint.endswith("ckpt-00000002")
    assert sorted(seen) == [2]
    assert not (run / "generator.keras").exists()
    log = (run / "train.log").read_text()
    assert "non-finite loss at step 4" in log and "NOT saved" in log
    state = json.loads((run / "checkpoints" / "ckpt-00000002" / "state.json").read_text())
    assert state["optimizer_iterations"] == {"g_optimizer": 2, "d_optimizer": 2}
    assert max(r["step"] for r in RunDir(run).read_metrics()) == 3


def test_backup_dir_creates_then_continues_the_same_folder(tmp_path):
    """``backup_dir``: the first start creates that folder (not a numbered one), a
    second start of the same call continues from its newest checkpoint and ends in
    the state of one uninterrupted run (the initial weights follow train.seed)."""
    config = _tiny_config()
    job = tmp_path / "job"
    first = train(config, backup_dir=job, max_steps=2, console=False,
                  dataset_fn=_in_memory_dataset_fn(), name="x")
    assert Path(first.run_dir) == job and _checkpoint_steps(job) == [2]
    second = train(config, backup_dir=job, max_steps=4, console=False,
                   dataset_fn=_in_memory_dataset_fn(), name="x")
    assert (second.start_step, second.step) == (2, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job"]
    log = (job / "train.log").read_text()
    assert re.search(r"resumed from \S*ckpt-00000002 at step 2", log), log[-2000:]
    digests = re.findall(r"step 4: state digest ([0-9a-f]{64})", log)
    straight = train(config, runs_root=tmp_path / "straight", max_steps=4, console=False,
                     dataset_fn=_in_memory_dataset_fn(), name="x")
    straight_log = (Path(straight.run_dir) / "train.log").read_text()
    assert digests == re.findall(r"step 4: state digest ([0-9a-f]{64})", straight_log)
    assert [r["step"] for r in RunDir(job).read_metrics()] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="not both"):
        train(config, backup_dir=job, resume=job, max_steps=4, console=False,
              dataset_fn=_in_memory_dataset_fn())


# ---------------------------------------------------------------- tools/train.py
@needs_data
def test_train_kill_and_resume(tmp_path, data_root):
    """tools/train.py is killed (SIGKILL) after its first checkpoint, resumed with
    --resume, and continues at the checkpoint's step with its optimizer state."""
    runs = tmp_path / "runs"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    log1 = open(tmp_path / "first.out", "w")
    proc = subprocess.Popen(
        _train_cmd("--config", "synthetic", "--data_root", str(data_root), "--run_dir",
                   str(runs), "--max_steps", "1000", *_overrides(TINY)),
        stdout=log1, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        deadline = time.time() + 300  # a hang guard; the first checkpoint comes within ~60 s
        run = None
        while time.time() < deadline and proc.poll() is None:
            found = glob.glob(str(runs / "*-0001"))
            if found and _checkpoint_steps(Path(found[0])):
                run = Path(found[0])
                break
            time.sleep(0.2)
        assert run is not None, (tmp_path / "first.out").read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log1.close()
    assert proc.returncode == -signal.SIGKILL
    steps = _checkpoint_steps(run)
    resumed_from = steps[-1]
    ckpt = run / "checkpoints" / f"ckpt-{resumed_from:08d}"
    saved = json.loads((ckpt / "state.json").read_text())
    assert saved["optimizer_iterations"] == {"g_optimizer": resumed_from,
                                             "d_optimizer": resumed_from}
    sums = {k: _npz_checksum(ckpt, k) for k in ("g", "d")}
    assert not (run / "generator.keras").exists()

    total = resumed_from + 3
    out = subprocess.run(
        _train_cmd("--resume", str(run), "--data_root", str(data_root), "--max_steps",
                   str(total)),
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=240)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == str(run)

    # continues at the checkpoint's step, with the saved optimizer state
    log = (run / "train.log").read_text()
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
    with np.load(final / "optimizers.npz") as data:
        assert int(data["g/0000"]) == total and int(data["d/0000"]) == total
    assert len(_checkpoint_steps(run)) <= 2  # keep_checkpoints

    # the rest of the run folder
    # the run records the absolute data folder it read (the resume did not repeat it)
    assert load_config(run / "config.yaml") == _tiny_config(f"data.root={data_root}")
    assert glob.glob(str(run / "samples" / "samples-*.png"))
    assert glob.glob(str(run / "tensorboard" / "events.out.tfevents.*"))
    # TensorBoard's own reader sees the losses of both processes and the sample grids
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(str(run / "tensorboard"), size_guidance={"tensors": 0}).Reload()
    assert {e.step for e in events.Tensors("losses/loss_g")} >= set(range(resumed_from + 1, total + 1))
    assert events.SummaryMetadata("losses/loss_g").plugin_data.plugin_name == "scalars"
    assert events.SummaryMetadata("samples/label_real_fake_fakeEMA").plugin_data.plugin_name == "images"
    assert events.Tensors("samples/label_real_fake_fakeEMA")[-1].step == total
    assert (run / "generator.keras").exists()
    assert re.search(r"step +\d+/\d+ .*loss_g .* img/s .*ETA", log)
