"""Generation: region resampling (per-pixel noise), noise interpolation, and the
`oasis-generate` command on a tiny model (in this process: ``run_cli``).

Uses the converted reference fixture (13 classes, 64x64, z_dim 64) when present
(its images vary with the noise), otherwise a tiny random generator.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

import oasis_tf
from oasis_tf import images, inference
from oasis_tf.inference import OASISPipeline
from reference import assert_images_match, small_generator, stand_in_generator



@pytest.fixture(scope="module")
def generator():
    return small_generator()


@pytest.fixture(scope="module")
def pipeline(generator):
    return OASISPipeline.from_generator(generator)


def _two_region_label(num_classes):
    label = np.full((64, 64), 1, np.int32)
    label[:, 40:] = 2  # the region to resample: the right 24 columns
    label[:4, :4] = min(3, num_classes - 1)
    return label


# ------------------------------------------------------------ noise helpers
def test_resample_noise_changes_only_the_chosen_classes(generator, pipeline):
    label = _two_region_label(generator.num_classes)
    base = inference.seeded_noise([0], generator.z_dim).numpy()
    noise = pipeline.resample_noise(label, base_seed=0, classes=[2], seeds=[5, 6])
    assert noise.shape == (2, 64, 64, generator.z_dim)
    inside = label == 2
    for n in noise:
        np.testing.assert_array_equal(n[~inside], np.broadcast_to(base[0], n[~inside].shape))
        assert np.all(np.any(n[inside] != base[0], axis=-1))
        # one new vector per class, constant over its pixels
        np.testing.assert_array_equal(n[inside], np.broadcast_to(n[inside][0], n[inside].shape))
    assert not np.array_equal(noise[0][inside], noise[1][inside])  # per seed
    # several classes: each gets its own vector
    two = pipeline.resample_noise(label, 0, [1, 2], [5])[0]
    assert not np.array_equal(two[label == 1][0], two[label == 2][0])


def test_resample_class_noise_accepts_noise_maps():
    label = np.zeros((1, 8, 8), np.int32)
    label[0, 2:4, 2:4] = 1
    noise = np.random.RandomState(0).standard_normal((1, 8, 8, 3)).astype(np.float32)
    out = inference.resample_class_noise(noise, label, [1], seed=[3]).numpy()
    np.testing.assert_array_equal(out[label == 0], noise[label == 0])
    np.testing.assert_array_equal(
        out[label == 1], np.broadcast_to(inference.class_seeded_noise([3], 1, 3).numpy(),
                                         (4, 3)))


def test_resampled_region_changes_more_than_far_pixels(generator, pipeline):
    label = _two_region_label(generator.num_classes)
    base = pipeline.generate(label, [0]).astype(np.float64)
    edited = pipeline.resample(label, 0, [2], [11, 12]).astype(np.float64)
    diff = np.abs(edited - base).mean(axis=(0, 3))  # [H, W]
    inside = diff[:, 40:].mean()
    far = diff[:, :16].mean()  # >= 24 pixels from the region
    print(f"mean |diff| inside {inside:.3f}, far outside {far:.3f}")
    if generator.num_classes == 13:  # the reference generator reacts to its noise
        assert inside > 1.0
    assert inside > 2.0 * far + 1e-9, (inside, far)


def test_interpolation_endpoints_are_the_seeds(generator, pipeline):
    label = _two_region_label(generator.num_classes)
    strip = pipeline.interpolate(label, 3, 8, steps=5)
    assert strip.shape == (5, 64, 64, 3) and strip.dtype == np.uint8
    ends = pipeline.generate(label, [3, 8])
    assert_images_match(strip[[0, -1]], ends)  # a batch of 5 against one of 2
    for mode in ("slerp", "linear"):
        z = inference.seeded_noise([3, 8], 4).numpy()
        path = inference.interpolate_noise(z[0], z[1], 4, mode=mode).numpy()
        np.testing.assert_array_equal(path[0], z[0])
        np.testing.assert_array_equal(path[-1], z[1])
    with pytest.raises(ValueError, match="steps"):
        inference.interpolate_noise(z[0], z[1], 1)


def test_samples_match_seeded_generate(generator):
    label = _two_region_label(generator.num_classes)
    got = OASISPipeline.from_generator(generator, batch_size=2).generate(label, [4, 5, 6])
    want = inference.generate(generator, np.stack([label] * 3), seed=[4, 5, 6]).numpy()
    assert_images_match(got, want)  # batches of 2 against one of 3


def test_read_label_png_checks(tmp_path):
    grey = tmp_path / "ok.png"
    Image.fromarray(np.full((8, 8), 2, np.uint8)).save(grey)
    assert images.read_label_png(str(grey), 3, (8, 8)).dtype == np.int32
    with pytest.raises(ValueError, match="class id"):
        images.read_label_png(str(grey), 2, (8, 8))
    with pytest.raises(ValueError, match="resize_labels"):
        images.read_label_png(str(grey), 3, (16, 16))
    assert images.read_label_png(str(grey), 3, (16, 16), resize=True).shape == (16, 16)
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(rgb)
    with pytest.raises(ValueError, match="single-channel"):
        images.read_label_png(str(rgb), 3)


@pytest.mark.slow
def test_dataset_label_maps_synthetic(tmp_path):
    from oasis_tf.data import write_synthetic_dataset

    # a small set written first: read as it is (a missing folder would get the default set)
    write_synthetic_dataset(str(tmp_path / "syn"), num_train=2, num_val=3, size=64, seed=0)
    maps = inference.dataset_label_maps("synthetic", str(tmp_path / "syn"), (64, 64), split="val",
                                  max_images=2)
    assert len(maps) == 2 and maps[0][1].shape == (64, 64) and maps[0][1].dtype == np.int32
    assert len(os.listdir(tmp_path / "syn" / "images" / "training")) == 2  # not rewritten


# --------------------------------------------------------------------- tool
@pytest.fixture(scope="module")
def tool_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    g = stand_in_generator()  # seeded: the same model whatever ran before
    oasis_tf.convert.save_network(g, str(root / "g.keras"))
    labels = root / "labels"
    labels.mkdir()
    rng = np.random.RandomState(0)
    for name in ("a", "b"):
        Image.fromarray(rng.randint(0, 5, (64, 64)).astype(np.uint8)).save(labels / f"{name}.png")
    return root


@pytest.mark.slow
def test_tool_samples_resample_and_interpolate(tool_inputs, tmp_path, run_cli):
    g = str(tool_inputs / "g.keras")
    out = tmp_path / "samples"
    r = run_cli("generate", "--generator", g, "--labels", str(tool_inputs / "labels"),
                "--num_samples", "2", "--seed", "3", "--output_dir", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("a", "b"):
        for suffix in ("label", "s3", "s4", "grid"):
            assert (out / f"{name}_{suffix}.png").exists(), (name, suffix)
    assert (out / "grid.png").exists()
    manifest = json.loads((out / "generation.json").read_text())
    assert manifest["mode"] == "sample" and manifest["seeds"] == [3, 4]
    # the tool's image is the shared inference function's
    g_model, _ = inference.load_generator(g)
    label = images.read_label_png(str(tool_inputs / "labels" / "a.png"), 5, (64, 64))
    want = inference.generate(g_model, label[None], seed=[3]).numpy()[0]
    assert_images_match(np.asarray(Image.open(out / "a_s3.png")), want)
    colour = np.asarray(Image.open(out / "a_label.png"))
    np.testing.assert_array_equal(colour, images.colorize(label, images.palette_for(g_model)))

    out2 = tmp_path / "edit"
    r = run_cli("generate", "--generator", g, "--labels", str(tool_inputs / "labels" / "a.png"),
                "--resample_classes", "1,3", "--num_samples", "2", "--output_dir", str(out2))
    assert r.returncode == 0, r.stderr[-3000:]
    for f in ("a_base_s0.png", "a_resample_s0.png", "a_resample_s1.png", "a_label.png",
              "grid.png"):
        assert (out2 / f).exists(), f

    out3 = tmp_path / "interp"
    r = run_cli("generate", "--generator", g, "--labels", str(tool_inputs / "labels" / "a.png"),
                "--interpolate", "1,2", "--steps", "4", "--output_dir", str(out3))
    assert r.returncode == 0, r.stderr[-3000:]
    strip = np.asarray(Image.open(out3 / "a_interp_1_2.png"))
    assert strip.shape == (64, 4 * 64, 3)


@pytest.mark.slow
def test_tool_refuses_bad_flags(tool_inputs, tmp_path, run_cli):
    r = run_cli("generate", "--generator", str(tool_inputs / "g.keras"), "--labels",
                str(tool_inputs / "labels"), "--resample_classes", "9",
                "--output_dir", str(tmp_path / "x"))
    assert r.returncode != 0 and "out of range" in r.stderr
