"""The demo (`oasis_tf.demo.run_demo`, the library of `oasis-demo`) end to end with a tiny
budget: data, training, figures."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oasis_tf import demo
from oasis_tf.training.plots import plot_losses


def test_plot_losses_draws_curves(tmp_path):
    records = [{"step": s, "loss_g": 3 - s / 50, "loss_d": 5 - s / 40, "loss_d_fake": 2.0,
                "loss_d_real": 2 + math.sin(s / 10), "loss_d_labelmix": 0.1}
               for s in range(10, 110, 10)]
    path = plot_losses(records, tmp_path / "curves.png", reference=(2.565, "ln(13)"))
    img = np.asarray(Image.open(path))
    assert img.shape[0] > 100 and img.shape[1] > 400
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 5  # more than a blank canvas


@pytest.mark.slow
def test_run_demo_tiny(tmp_path):
    overrides = ["model.image_size=[64,64]", "data.load_size=64", "data.crop_size=64",
                 "model.g_channels=4", "model.d_channels=4", "model.z_dim=4",
                 "model.num_res_blocks=2", "train.batch_size=2", "train.log_every=1",
                 "train.sample_every=2", "train.checkpoint_every=2",
                 "train.ema_bn_refresh_batches=1"]
    out = demo.run_demo(out_dir=tmp_path / "runs", steps=2, data_root=str(tmp_path / "data"),
                        overrides=overrides, console=False, num_rows=3, samples_per_label=4,
                        synthetic_options={"num_train": 8, "num_val": 3},
                        segmenter_steps=3, eval_images=3, tflite_quantizations=("float32",),
                        precision="float32")  # the same run on every CPU (auto: tests/test_hardware.py)
    run = Path(out["run_dir"])
    assert run.parent == tmp_path / "runs" and run.name.startswith("demo-")
    assert out["steps"] == 2
    assert (out["precision"], out["precision_reason"]) == ("float32", "as requested (--precision)")
    for key in ("samples", "loss_curves", "generator", "metrics"):
        assert os.path.isfile(out[key]), key
    assert out["checkpoint"] and os.path.isdir(out["checkpoint"])
    assert list((run / "samples").glob("samples-*.png"))
    # label | real | 4 samples per row, 3 rows (enlarged for viewing)
    grid = np.asarray(Image.open(out["samples"]))
    assert grid.shape[0] > grid.shape[1] * 3 / 6 / 2
    records = [json.loads(line) for line in open(out["metrics"])]
    assert [r["step"] for r in records] == [1, 2]
    assert all(np.isfinite(r["loss_d"]) for r in records)
    # evaluation: mIoU and MS-SSIM of generated and real images
    report = json.loads((run / "evaluation.json").read_text())
    for key in ("miou", "miou_real", "ms_ssim", "num_images"):
        assert key in report and report[key] is not None, key
    assert out["evaluation"]["num_images"] == 3
    # deployment: a SavedModel in TF Serving's layout and a TFLite file
    assert os.path.isfile(os.path.join(out["export_dir"], "saved_model.pb"))
    assert Path(out["export_dir"]).parts[-2:] == ("oasis", "1")
    assert os.path.getsize(out["tflite"]["float32"]) > 0
    # the data set stays for the next demo
    assert os.path.isdir(tmp_path / "data" / "images" / "training")
