"""The training run: run folders, checkpoints, resume into a fixed folder, the NaN
guard, on tiny networks (2 SPADE blocks, widths 2 / 4) and in-memory data. The
helpers here (TINY, ``_in_memory_dataset_fn``, ...) are shared with the other
training tests; `tools/train.py` killed and resumed: tests/test_run_folder.py.
"""

import glob
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from oasis_tf.config import load_config
from oasis_tf.training import (CheckpointManager, RunDir, build_model, create_run_dir,
                               next_run_path, train)


TINY = ["data.dataset=ade20k", "model.num_res_blocks=2", "model.g_channels=2",
        "model.d_channels=4", "model.z_dim=4", "train.batch_size=2", "train.log_every=1",
        "train.sample_every=3", "train.checkpoint_every=2", "train.keep_checkpoints=2",
        "train.ema_bn_refresh_batches=1", "data.shuffle_buffer=16"]


def _tiny_config(*extra):
    return load_config("synthetic", overrides=TINY + list(extra))


# in-process runs: Grappler off, eager steps (tests/conftest.py's `no_grappler` and
# `eager_steps` say why)
pytestmark = pytest.mark.usefixtures("eager_steps")


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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


