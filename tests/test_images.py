"""oasis_tf.images and oasis_tf.palettes: conversions, palettes, colour-coded label maps."""

import io

import numpy as np
import pytest
from PIL import Image

from oasis_tf import images, inference, palettes
from oasis_tf.models.generator import OASISGenerator


def test_to_uint8_matches_inference_and_round_trips():
    x = np.linspace(-1.2, 1.2, 999, dtype=np.float32).reshape(1, 9, 37, 3)
    np.testing.assert_array_equal(images.to_uint8(x), inference.to_uint8(x).numpy())
    u8 = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, -1)
    np.testing.assert_array_equal(images.to_uint8(images.to_float(u8)), u8)
    assert images.to_float(x).dtype == np.float32


def test_dataset_tables():
    for dataset, count in (("ade20k", 151), ("cityscapes", 35), ("coco_stuff", 183),
                           ("synthetic", 12)):
        names, palette = palettes.dataset_classes(dataset, count)
        assert len(names) == count and palette.shape == (count, 3) and palette.dtype == np.uint8
        assert len(set(names)) == count, dataset
        assert tuple(palette[0]) == (0, 0, 0)
    names, palette = palettes.dataset_classes("ade20k", 151)
    assert names[1:4] == ["wall", "building", "sky"] and tuple(palette[1]) == (120, 120, 120)
    names, _ = palettes.dataset_classes("coco_stuff", 183)
    assert names[1] == "person" and names[-1] == "wood"
    # tfds names, other counts and unknown datasets
    assert palettes.dataset_classes("tfds:oasis_cityscapes", 35)[0][7] == "road"
    names, palette = palettes.dataset_classes("ade20k", 5)
    assert names == ["class_0", "class_1", "class_2", "class_3", "class_4"]
    np.testing.assert_array_equal(palette, [[0, 0, 0], [128, 0, 0], [0, 128, 0],
                                            [128, 128, 0], [0, 0, 128]])


def test_cityscapes_against_cityscapesscripts():
    labels = pytest.importorskip(
        "cityscapesscripts.helpers.labels",
        reason="cityscapesscripts not installed (pip install cityscapesscripts)").labels
    names, palette = palettes.dataset_classes("cityscapes", 35)
    for label in labels:
        i = label.id if label.id >= 0 else 34  # license plate (-1) is the 35th class
        assert names[i] == label.name and tuple(palette[i]) == tuple(label.color), label


def test_generator_carries_its_dataset(tmp_path):
    import keras

    g = OASISGenerator(35, (16, 32), base_channels=4, z_dim=4, num_res_blocks=2,
                       spade_hidden=8, dataset="cityscapes")
    g({"label": np.zeros((1, 16, 32), np.int32), "noise": np.zeros((1, 4), np.float32)})
    g.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras", compile=False)
    assert loaded.dataset == "cityscapes"
    assert images.class_names_for(loaded)[26] == "car"
    assert tuple(images.palette_for(loaded)[7]) == (128, 64, 128)
    # no dataset name: the synthetic set when the count is its, else generic
    assert images.class_names_for(12)[1] == "sky"
    assert images.class_names_for(13)[1] == "class_1"
    with pytest.raises(ValueError, match="num_classes=3"):
        images.class_names_for(3, class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"\[num_classes=3, 3\]"):
        images.palette_for(3, palette=[[0, 0, 0]])


def test_labels_from_colors():
    names, palette = palettes.dataset_classes("synthetic", 12)
    label = np.random.RandomState(0).randint(0, 12, (20, 24))
    rgb = images.colorize(label, palette)
    np.testing.assert_array_equal(images.labels_from_colors(rgb, palette), label)
    noisy = np.clip(rgb.astype(int) + np.random.RandomState(1).randint(-8, 9, rgb.shape), 0, 255)
    np.testing.assert_array_equal(images.labels_from_colors(noisy.astype(np.uint8), palette),
                                  label)
    bad = rgb.copy()
    bad[:3, :5] = (255, 0, 255)  # 15 pixels of magenta
    with pytest.raises(ValueError) as err:
        images.labels_from_colors(bad, palette, names)
    msg = str(err.value)
    assert "(255, 0, 255)" in msg and "15 pixels" in msg and "mountain (id 3" in msg
    # without a limit the far colour snaps to its nearest class
    assert images.labels_from_colors(bad, palette, max_distance=None)[0, 0] == 3
    # repeated colours (Cityscapes: 0..4 are black) map to the lowest id
    _, city = palettes.dataset_classes("cityscapes", 35)
    assert images.labels_from_colors(np.zeros((2, 2, 3), np.uint8), city).max() == 0


def test_read_label_image_ids_and_colours(tmp_path):
    names, palette = palettes.dataset_classes("synthetic", 12)
    label = np.random.RandomState(0).randint(0, 12, (8, 8))
    Image.fromarray(label.astype(np.uint8)).save(tmp_path / "ids.png")
    Image.fromarray(images.colorize(label, palette)).save(tmp_path / "rgb.png")
    Image.fromarray(images.colorize(label, palette)).convert("RGBA").save(tmp_path / "rgba.png")
    for f in ("ids.png", "rgb.png", "rgba.png"):
        got = images.read_label_image(tmp_path / f, 12, (8, 8), palette=palette)
        np.testing.assert_array_equal(got, label)
    big = images.read_label_image(tmp_path / "rgb.png", 12, (16, 16), resize=True,
                                  palette=palette)
    np.testing.assert_array_equal(big, images.upscale(label, 2))
    with pytest.raises(ValueError, match="resize_labels"):
        images.read_label_image(tmp_path / "rgb.png", 12, (16, 16), palette=palette)
    with pytest.raises(ValueError, match="class id 11"):
        images.read_label_image(tmp_path / "ids.png", 5)
    data = images.encode_label_png(label)
    np.testing.assert_array_equal(images.read_label_png(io.BytesIO(data), 12), label)
    np.testing.assert_array_equal(images.read_label_png(data), label)


def test_make_grid():
    a = np.zeros((4, 5, 3), np.uint8)
    grid = images.make_grid([[a, a, a], [a]], pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 6 + 1, 3)
    assert grid[0].min() == 255 and grid[1, 1].max() == 0 and grid[6, 8].min() == 255
    gapped = images.make_grid([np.stack([a, a, a])], pad=2, gap_after=1)
    assert gapped.shape == (4 + 4, 3 * 7 + 2 + 4, 3)
    assert gapped[2, 2 + 2 * 7 + 4].max() == 0 and gapped[2, 2 + 2 * 7].min() == 255
