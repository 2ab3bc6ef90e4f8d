"""FIDCallback: FID every N steps on the refreshed EMA generator, best checkpoint, curve.

A tiny OASIS model (64x64, widths 2 / 4), an in-memory dataset and a stand-in
extractor (fixed random projection of 4x4 block means; no Inception weights
offline). Steps are simulated by setting the optimizer's iteration counter and
calling the hooks, so no training step has to be compiled.
"""

import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from oasis_tf.config import load_config
from oasis_tf.metrics import GeneratorFID
from oasis_tf.training import CheckpointManager, build_model, create_run_dir
from oasis_tf.training.callbacks import RunContext
from oasis_tf.training.checkpoints import read_state
from oasis_tf.training.fid_callback import FIDCallback, plot_fid_curve


class StandInExtractor:
    name = "stand-in random projection"
    comparable_with_papers = False

    def __init__(self):
        self.w = np.random.RandomState(0).standard_normal((48, 16))

    def __call__(self, images):
        x = np.asarray(images, np.float64)
        b, h, w, c = x.shape
        return x.reshape(b, 4, h // 4, 4, w // 4, c).mean(axis=(2, 4)).reshape(b, -1) @ self.w


TINY = ["model.num_res_blocks=2", "model.g_channels=2", "model.d_channels=4", "model.z_dim=4",
        "model.image_size=[64, 64]", "data.crop_size=64", "data.load_size=64", "train.batch_size=2",
        "train.ema_bn_refresh_batches=1"]


def _dataset_fn(examples=6, num_classes=12, size=64):
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (examples, size, size, 3)).astype(np.float32)
    label = rng.integers(0, num_classes, (examples, size, size)).astype(np.int32)

    def fn(split="train", training=True, batch_size=None, input_context=None):
        if split == "val":
            raise FileNotFoundError("no val split")  # the callback falls back to "train"
        return tf.data.Dataset.from_tensor_slices({"image": image, "label": label}).batch(batch_size or 2)

    return fn


@pytest.fixture()
def setup(tmp_path):
    config = load_config("synthetic", overrides=TINY)
    model = build_model(config)
    run = create_run_dir(tmp_path, "fid", config)
    logger = logging.getLogger("test_fid_callback")
    writer = tf.summary.create_file_writer(str(run.tensorboard_dir))
    dataset_fn = _dataset_fn()
    context = RunContext(model, logger, total_steps=10, batch_size=2, steps_per_epoch=3, run=run,
                         ema_dataset_fn=lambda: dataset_fn(), ema_refresh_batches=1, writer=writer)
    manager = CheckpointManager(run.checkpoints_dir, model, max_to_keep=5)
    yield model, run, context, manager, dataset_fn
    writer.close()


def _at(model, step):
    model.d_optimizer.iterations.assign(step)


@pytest.mark.slow
def test_fid_every_n_steps_best_checkpoint_and_curve(setup, monkeypatch):
    model, run, context, manager, dataset_fn = setup
    events = []
    original = model.refresh_ema_statistics

    def spy(dataset, num_batches=50, seed=0):
        events.append(("refresh", seed))
        return original(dataset, num_batches, seed=seed)

    monkeypatch.setattr(model, "refresh_ema_statistics", spy)
    cb = FIDCallback(context, StandInExtractor(), dataset_fn, every=2, manager=manager, batch_size=4)
    cb.on_train_begin()
    _at(model, 1)
    cb.on_train_batch_end(0)
    assert events == []  # not a FID step
    _at(model, 2)
    cb.on_train_batch_end(1)
    assert events == [("refresh", 2)]
    first = cb.metric_at(2)
    assert isinstance(first, float) and np.isfinite(first)
    # the value is the FID of the (refreshed) EMA generator with the callback's fixed seeds
    check = GeneratorFID(StandInExtractor(), dataset_fn(split="train", training=False, batch_size=4))
    assert check(model.ema_generator)["fid"] == pytest.approx(first, rel=1e-6)
    assert (run.path / "fid_real_stats.npz").exists()

    real_fid = cb.fid
    values = iter([first + 1.0, first - 1.0])

    def fake_fid(generator):
        assert generator is model.ema_generator
        events.append(("fid", None))
        return {"fid": next(values), "num_images": 6}

    cb.fid = fake_fid
    _at(model, 4)
    cb.on_train_batch_end(0)
    _at(model, 6)
    cb.on_train_batch_end(0)
    assert events[-4:] == [("refresh", 4), ("fid", None), ("refresh", 6), ("fid", None)]
    cb.on_train_end()  # step 6 already measured: nothing new
    assert len(cb.history) == 3 and cb.best == (6, pytest.approx(first - 1.0))

    records = [r for r in run.read_metrics() if "fid" in r]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert records[1]["fid_best_step"] == 2 and records[2]["fid_best"] == pytest.approx(first - 1.0)
    assert records[0]["fid_extractor"] == "stand-in random projection"
    assert records[0]["comparable_with_papers"] is False
    # best slot: steps 2 and 6 were saved, 4 (worse) was not
    names = {p.name for p in manager.checkpoints}
    assert names == {"ckpt-00000002", "ckpt-00000006"}
    assert read_state(manager.best_path)["step"] == 6
    assert manager.best_metric() == pytest.approx(first - 1.0)
    assert context.last_checkpoint.endswith("ckpt-00000006")
    # the curve and TensorBoard
    png = Image.open(run.path / "fid.png")
    assert png.size == (640, 400) and png.mode == "RGB"
    context.writer.flush()
    assert list(run.tensorboard_dir.glob("events.out.tfevents.*"))
    # read back with TensorBoard's own reader: scalars (tf.summary.scalar) and the curve image
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(str(run.tensorboard_dir), size_guidance={"tensors": 0}).Reload()
    fid_events = events.Tensors("metrics/fid")
    assert [e.step for e in fid_events] == [2, 4, 6]
    assert [float(tf.make_ndarray(e.tensor_proto)) for e in fid_events] == pytest.approx(
        [v for _, v in cb.history], rel=1e-6)
    assert events.SummaryMetadata("metrics/fid").plugin_data.plugin_name == "scalars"
    curve = events.Tensors("metrics/fid_curve")[-1]
    assert events.SummaryMetadata("metrics/fid_curve").plugin_data.plugin_name == "images"
    width, height, png = tf.make_ndarray(curve.tensor_proto)
    assert (int(width), int(height)) == (640, 400) and png.startswith(b"\x89PNG")

    # a resumed run knows the history and the best value
    cb.fid = real_fid
    resumed = FIDCallback(context, StandInExtractor(), dataset_fn, every=2, manager=manager, batch_size=4)
    resumed.on_train_begin()
    assert [s for s, _ in resumed.history] == [2, 4, 6] and resumed.best[0] == 6
    # a failed run measures nothing
    context.failed = True
    _at(model, 8)
    resumed.on_train_batch_end(0)
    resumed.on_train_end()
    assert resumed.metric_at(8) is None


def test_plot_fid_curve(tmp_path):
    arr = plot_fid_curve([0, 100, 200, 300], [80.0, 55.5, 60.25, 41.0], tmp_path / "c.png")
    assert arr.shape == (400, 640, 3) and arr.dtype == np.uint8
    assert (arr != 255).any(axis=-1).sum() > 500  # something was drawn
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c.png")), arr)
    single = plot_fid_curve([5], [12.0])
    assert single.shape == (400, 640, 3)
    empty = plot_fid_curve([], [])
    assert empty.shape == (400, 640, 3)
