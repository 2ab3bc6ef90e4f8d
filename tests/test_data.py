"""Tests of oasis_tf.data: synthetic data set, readers and the tf.data pipeline.

Every dataset here is tiny and written by the test into a temp dir.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from oasis_tf import data as oasis_data
from oasis_tf.data import decoding, pipeline, readers, synthetic, synthetic_scenes

SYN_OPTS = dict(num_train=12, num_val=5, size=32, seed=0)


# ---------------------------------------------------------------------------
# helpers


def _save(path, array, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8), mode).save(path)


def _folder_pair(root, name, image, label, split="train", ext=".png"):
    _save(os.path.join(root, split, "images", name + ext), image)
    _save(os.path.join(root, split, "labels", name + ".png"), label, "L")


def _random_pair(rng, h=12, w=16, classes=5):
    image = rng.integers(0, 256, size=(h, w, 3))
    label = rng.integers(0, classes, size=(h, w))
    return image, label


def _batches(ds):
    return [{k: v.numpy() for k, v in b.items()} for b in ds]


def _folder_dataset(tmp_path, n=6, classes=5, h=12, w=16):
    rng = np.random.default_rng(0)
    root = str(tmp_path / "folder")
    for i in range(n):
        _folder_pair(root, f"ex{i}", *_random_pair(rng, h, w, classes))
    return root


@pytest.fixture(scope="module")
def syn_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synthetic"))
    synthetic.write_synthetic_dataset(root, **SYN_OPTS)
    return root


# ---------------------------------------------------------------------------
# synthetic data set


def _tree_bytes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def test_synthetic_layout_and_determinism(tmp_path, syn_root):
    a = _tree_bytes(syn_root)
    assert len([k for k in a if k.startswith(os.path.join("images", "training"))]) == 12
    assert len([k for k in a if k.startswith(os.path.join("annotations", "validation"))]) == 5
    assert synthetic.MARKER_FILE in a
    # same seed: byte-identical files
    same = str(tmp_path / "same")
    synthetic.write_synthetic_dataset(same, **SYN_OPTS)
    assert _tree_bytes(same) == a
    # another seed: different images and labels
    other = str(tmp_path / "other")
    synthetic.write_synthetic_dataset(other, **dict(SYN_OPTS, seed=1))
    b = _tree_bytes(other)
    name = os.path.join("annotations", "training", "synthetic_000000.png")
    assert b[name] != a[name]
    assert sum(b[k] != a[k] for k in a if k != synthetic.MARKER_FILE) >= 30
    # the ADE20K reader reads it
    pairs = readers.ade20k_pairs(syn_root, "train")
    assert len(pairs) == 12 and all(p[0].endswith(".png") for p in pairs)


def test_synthetic_idempotent_and_regenerates(tmp_path):
    root = str(tmp_path / "syn")
    synthetic.write_synthetic_dataset(root, num_train=3, num_val=1, size=16)
    f = os.path.join(root, "images", "training", "synthetic_000000.png")
    os.utime(f, (1, 1))
    synthetic.write_synthetic_dataset(root, num_train=3, num_val=1, size=16)
    assert os.stat(f).st_mtime == 1  # skipped: complete with the same parameters
    synthetic.write_synthetic_dataset(root, num_train=2, num_val=1, size=16)
    assert os.stat(f).st_mtime != 1  # other parameters: rewritten
    assert len(os.listdir(os.path.join(root, "images", "training"))) == 2
    assert synthetic.synthetic_dataset_complete(root, num_train=2, num_val=1, size=16)


def test_load_dataset_reads_an_existing_synthetic_set_as_it_is(tmp_path, caplog):
    """Without ``synthetic_options`` a synthetic set already in the folder is read with
    its own parameters (not rewritten as the 1000-image default); explicit options that
    differ rewrite it; an empty folder gets the default set's parameters."""
    root = str(tmp_path / "syn")
    synthetic.write_synthetic_dataset(root, num_train=3, num_val=2, size=16, seed=5)
    f = os.path.join(root, "images", "training", "synthetic_000000.png")
    os.utime(f, (1, 1))
    assert synthetic.stored_options(root) == {"num_train": 3, "num_val": 2, "size": 16,
                                              "seed": 5}
    assert synthetic.resolve_options((64, 64), None, root) == synthetic.stored_options(root)
    with caplog.at_level("WARNING", logger="oasis_tf.data"):
        val = oasis_data.load_dataset("synthetic", root, split="val", image_size=32,
                                      batch_size=1, training=False)
    assert len(_batches(val)) == 2 and os.stat(f).st_mtime == 1
    assert "written at 16 px and is read at 32x32: its images are enlarged" in caplog.text
    assert len(os.listdir(os.path.dirname(f))) == 3
    oasis_data.load_dataset("synthetic", root, split="val", image_size=16, batch_size=1,
                            training=False, synthetic_options={"num_train": 2, "num_val": 2})
    assert os.stat(f).st_mtime != 1 and len(os.listdir(os.path.dirname(f))) == 2
    empty = str(tmp_path / "none")
    assert synthetic.stored_options(empty) is None
    assert synthetic.resolve_options((48, 64), None, empty) == dict(
        synthetic.DEFAULT_OPTIONS, size=64)


def test_synthetic_class_statistics():
    counts = np.zeros(synthetic_scenes.NUM_CLASSES)
    per_map = []
    top_sky = []
    for i in range(40):
        label, inst, classes = synthetic_scenes.generate_scene([0, 0, i, 0], 64)
        assert label.dtype == np.uint8 and label.shape == (64, 64)
        assert label.max() < synthetic_scenes.NUM_CLASSES
        assert np.array_equal(np.asarray(classes)[inst], label)
        counts += np.bincount(label.ravel(), minlength=synthetic_scenes.NUM_CLASSES)
        per_map.append(len(np.unique(label)))
        top_sky.append(np.isin(label[2], [synthetic_scenes.SKY, synthetic_scenes.CLOUD]).mean())
    frac = counts / counts.sum()
    assert (frac > 0).all(), frac  # every class appears
    assert 0 < frac[0] < 0.05  # don't-care: present, small
    assert frac[synthetic_scenes.SKY] > 0.15
    assert min(per_map) >= 4 and np.mean(per_map) >= 6
    assert np.mean(top_sky) > 0.8  # sky on top
    assert synthetic_scenes.PALETTE.shape == (synthetic_scenes.NUM_CLASSES, 3)
    assert len(synthetic_scenes.CLASS_NAMES) == synthetic_scenes.NUM_CLASSES
    assert synthetic_scenes.colorize_label(label).shape == (64, 64, 3)


def test_one_label_map_many_images():
    label, inst, classes = synthetic_scenes.generate_scene(7, 32)
    images = [synthetic_scenes.render_scene(label, inst, classes, seed=s) for s in range(4)]
    for img in images:
        assert img.dtype == np.uint8 and img.shape == (32, 32, 3)
    assert np.array_equal(images[0], synthetic_scenes.render_scene(label, inst, classes, seed=0))
    for a in range(4):
        for b in range(a + 1, 4):
            assert np.abs(images[a].astype(int) - images[b].astype(int)).mean() > 5
    # rendering without instances works too
    assert synthetic_scenes.render_scene(label, seed=1).shape == (32, 32, 3)


# ---------------------------------------------------------------------------
# pipeline


def test_load_dataset_training_and_validation(syn_root):
    ds = oasis_data.load_dataset("synthetic", syn_root, image_size=(24, 20), batch_size=4,
                                 synthetic_options=SYN_OPTS)
    batches = _batches(ds)
    assert len(batches) == 3
    b = batches[0]
    assert set(b) == {"image", "label", "labelmix_bits"}
    assert b["image"].shape == (4, 24, 20, 3) and b["image"].dtype == np.float32
    assert b["label"].shape == (4, 24, 20) and b["label"].dtype == np.int32
    assert b["labelmix_bits"].shape == (4, 12) and b["labelmix_bits"].dtype == np.int32
    assert set(np.unique(b["labelmix_bits"])) == {0, 1}
    images = np.concatenate([x["image"] for x in batches])
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0.1
    labels = np.concatenate([x["label"] for x in batches])
    assert labels.min() >= 0 and labels.max() < 12
    assert ds.element_spec["image"].shape.as_list() == [4, 24, 20, 3]

    val = oasis_data.load_dataset("synthetic", syn_root, split="val", image_size=32,
                                  batch_size=2, training=False, synthetic_options=SYN_OPTS)
    vb = _batches(val)
    assert [x["image"].shape[0] for x in vb] == [2, 2, 1]  # remainder kept
    assert set(vb[0]) == {"image", "label"}
    # no resize, no flip, no shuffle: exactly the files, in order
    pairs = readers.ade20k_pairs(syn_root, "val")
    img0 = np.asarray(Image.open(pairs[0][0]), np.float32) / 127.5 - 1
    np.testing.assert_allclose(vb[0]["image"][0], img0, atol=1e-6)
    np.testing.assert_array_equal(vb[0]["label"][0], np.asarray(Image.open(pairs[0][1])))


def test_resize_keeps_label_values(tmp_path):
    root = str(tmp_path / "f")
    rng = np.random.default_rng(1)
    values = np.array([0, 3, 7, 200])
    for i in range(3):
        label = values[rng.integers(0, 4, size=(30, 40))]
        _folder_pair(root, f"a{i}", rng.integers(0, 256, size=(30, 40, 3)), label)
    for size in [(17, 23), (64, 50)]:
        ds = oasis_data.load_dataset("folder", root, image_size=size, batch_size=3,
                                     num_classes=201, training=False)
        (b,) = _batches(ds)
        assert b["label"].shape == (3,) + size
        assert set(np.unique(b["label"])) <= set(values.tolist())
        assert b["image"].min() >= -1 and b["image"].max() <= 1


def test_resize_is_pil_bicubic_and_nearest(tmp_path):
    """Images as PIL's (antialiased) BICUBIC, labels as PIL's NEAREST: the
    official resizing."""
    root = str(tmp_path / "f")
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, size=(40, 60, 3)).astype(np.uint8)
    label = rng.integers(0, 6, size=(40, 60)).astype(np.uint8)
    _folder_pair(root, "p", image, label)
    ds = oasis_data.load_dataset("folder", root, image_size=(16, 24), batch_size=1,
                                 num_classes=6, training=False)
    (b,) = _batches(ds)
    want = np.asarray(Image.fromarray(image).resize((24, 16), Image.BICUBIC), np.float32)
    np.testing.assert_allclose(b["image"][0], want / 127.5 - 1, atol=1e-6)
    want = np.asarray(Image.fromarray(label, "L").resize((24, 16), Image.NEAREST))
    np.testing.assert_array_equal(b["label"][0], want)


def test_load_size_resizes_then_crops(tmp_path):
    root = str(tmp_path / "f")
    rng = np.random.default_rng(5)
    for i in range(8):
        image = rng.integers(0, 256, size=(30, 30, 3))
        label = np.tile(np.arange(30) % 7, (30, 1))  # class = column % 7
        _folder_pair(root, f"c{i}", image, label)
    kw = dict(image_size=(16, 16), num_classes=7, load_size=24, flip=False)
    train = oasis_data.load_dataset("folder", root, batch_size=8, seed=1, **kw)
    (b,) = _batches(train)
    assert b["image"].shape == (8, 16, 16, 3) and b["label"].shape == (8, 16, 16)
    full = np.asarray(Image.fromarray(np.tile(np.arange(30) % 7, (30, 1)).astype(np.uint8),
                                      "L").resize((24, 24), Image.NEAREST))
    offsets = set()
    for lab in b["label"]:  # every crop is a window of the resized label map
        hits = [ox for ox in range(9) if (full[0, ox:ox + 16] == lab[0]).all()]
        assert hits
        offsets.add(hits[0])
    assert len(offsets) > 1  # random crops
    val = oasis_data.load_dataset("folder", root, batch_size=8, training=False, **kw)
    (v,) = _batches(val)
    np.testing.assert_array_equal(v["label"][0], full[4:20, 4:20])  # centred
    with pytest.raises(ValueError, match="load_size"):
        oasis_data.load_dataset("folder", root, batch_size=8, image_size=16, num_classes=7,
                                load_size=8)


def test_flip_applies_to_image_and_label_together(tmp_path):
    root = str(tmp_path / "f")
    h, w = 8, 12
    image = np.zeros((h, w, 3), np.uint8)
    image[:, :3] = [255, 0, 0]  # left quarter red, the rest blue
    image[:, 3:] = [0, 0, 255]
    label = np.full((h, w), 2)
    label[:, :3] = 1
    for i in range(16):
        _folder_pair(root, f"x{i:02d}", image, label)
    ds = oasis_data.load_dataset("folder", root, image_size=(h, w), batch_size=16,
                                 num_classes=3, seed=3)
    (b,) = _batches(ds)
    flipped = b["label"][:, 0, -1] == 1
    assert 0 < flipped.sum() < 16  # both cases occur for this seed
    red = b["image"][..., 0] > 0.5
    np.testing.assert_array_equal(red, b["label"] == 1)
    # flip=False: never flipped
    (b,) = _batches(oasis_data.load_dataset("folder", root, image_size=(h, w), batch_size=16,
                                            num_classes=3, seed=3, flip=False))
    assert (b["label"][:, :, :3] == 1).all()


def test_training_pipeline_is_deterministic(tmp_path):
    root = _folder_dataset(tmp_path, n=10)

    def run(seed):
        ds = oasis_data.load_dataset("folder", root, image_size=(12, 16), batch_size=4,
                                     num_classes=5, seed=seed, num_parallel_calls=4)
        return _batches(ds) + _batches(ds)  # two epochs

    a, b, c = run(0), run(0), run(1)
    assert len(a) == 4
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert any(not np.array_equal(x["label"], y["label"]) for x, y in zip(a, c))
    assert any(not np.array_equal(x["labelmix_bits"], y["labelmix_bits"]) for x, y in zip(a, c))
    # the second epoch is reshuffled / redrawn
    assert not all(np.array_equal(a[i]["labelmix_bits"], a[i + 2]["labelmix_bits"])
                   for i in range(2))


def test_labelmix_option_and_num_classes(tmp_path):
    root = _folder_dataset(tmp_path, n=4)
    ds = oasis_data.load_dataset("folder", root, image_size=8, batch_size=2, num_classes=9)
    b = _batches(ds)[0]
    assert b["labelmix_bits"].shape == (2, 9)
    assert set(np.unique(b["labelmix_bits"])) <= {0, 1}
    ds = oasis_data.load_dataset("folder", root, image_size=8, batch_size=2, num_classes=9,
                                 labelmix=False)
    assert "labelmix_bits" not in ds.element_spec
    with pytest.raises(ValueError, match="num_classes"):
        oasis_data.load_dataset("folder", root)
    assert oasis_data.dataset_num_classes("ade20k") == 151
    assert oasis_data.dataset_num_classes("cityscapes") == 35
    assert oasis_data.dataset_num_classes("coco_stuff") == 183
    assert oasis_data.dataset_num_classes("synthetic") == 12
    with pytest.raises(ValueError, match="layout"):
        oasis_data.load_dataset("imagenet", root)


def test_sharding_with_input_context(tmp_path):
    root = _folder_dataset(tmp_path, n=8)
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                     num_replicas_in_sync=2)
    ds = oasis_data.load_dataset("folder", root, image_size=(12, 16), batch_size=4,
                                 num_classes=5, training=False, input_context=ctx)
    batches = _batches(ds)
    assert [x["label"].shape[0] for x in batches] == [2, 2]  # per-replica batch, half the files
    pairs = readers.folder_pairs(root, "train")[1::2]
    got = np.concatenate([x["label"] for x in batches])
    want = np.stack([np.asarray(Image.open(p[1])) for p in pairs])
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# pairing and bad data


def test_pairing_errors_list_unmatched_names(tmp_path):
    root = _folder_dataset(tmp_path, n=2)
    rng = np.random.default_rng(0)
    img, lab = _random_pair(rng)
    _save(os.path.join(root, "train", "images", "orphan.png"), img)
    _save(os.path.join(root, "train", "labels", "lonely.png"), lab, "L")
    with pytest.raises(ValueError, match="orphan.png") as e:
        readers.folder_pairs(root, "train")
    assert "lonely.png" in str(e.value) and "without a label" in str(e.value)
    with pytest.raises(ValueError, match="orphan.png"):
        oasis_data.load_dataset("folder", root, num_classes=5)
    for i in range(7):
        _save(os.path.join(root, "train", "images", f"extra{i}.png"), img)
    with pytest.raises(ValueError, match=r"8 image\(s\).*and 3 more"):
        readers.folder_pairs(root, "train")


def test_empty_split_names_folder(tmp_path):
    with pytest.raises(ValueError, match="no images found in .*validation"):
        readers.ade20k_pairs(str(tmp_path), "val")
    with pytest.raises(ValueError, match="split"):
        readers.ade20k_pairs(str(tmp_path), "test")


def test_label_out_of_range_names_file_value_and_count(tmp_path):
    root = str(tmp_path / "f")
    rng = np.random.default_rng(0)
    img, lab = _random_pair(rng, classes=3)
    lab[0, 0] = 9
    _folder_pair(root, "bad_label", img, lab)
    ds = oasis_data.load_dataset("folder", root, image_size=8, batch_size=1, num_classes=5,
                                 skip_bad_files=True)
    with pytest.raises(tf.errors.OpError) as e:
        _batches(ds)
    msg = str(e.value)
    assert "bad_label.png" in msg and "class id 9" in msg and "num_classes=5" in msg


def _fails_then_skipped(root, match, bad_path):
    """Iterating the 3-pair folder data set fails naming the bad file; with skip_bad_files
    its pair is dropped and listed."""
    ds = oasis_data.load_dataset("folder", root, image_size=8, batch_size=1, num_classes=5,
                                 training=False)
    with pytest.raises(tf.errors.OpError, match=match):
        _batches(ds)
    ds = oasis_data.load_dataset("folder", root, image_size=8, batch_size=1, num_classes=5,
                                 training=False, skip_bad_files=True)
    assert len(_batches(ds)) == 2
    assert ds.skipped_files == [bad_path]


def test_bad_image_names_file_and_skip(tmp_path):
    root = _folder_dataset(tmp_path, n=3)
    bad = os.path.join(root, "train", "images", "ex1.png")
    with open(bad, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\nthis is not a png")
    _fails_then_skipped(root, "ex1.png", bad)
    # a truncated label file
    lab = os.path.join(root, "train", "labels", "ex2.png")
    with open(lab, "rb") as f:
        head = f.read()[:40]
    with open(lab, "wb") as f:
        f.write(head)
    with pytest.raises(ValueError, match="ex2.png"):
        decoding.decode_pair(os.path.join(root, "train", "images", "ex2.png"), lab, 5)


def test_label_that_is_not_a_png_is_refused(tmp_path):
    """A JPEG saved as .png (lossy: wrong class ids) is refused naming the file, in the
    pipeline, in decode_pair and from bytes (TFDS records); skip_bad_files drops it."""
    root = _folder_dataset(tmp_path, n=3)
    lab = os.path.join(root, "train", "labels", "ex1.png")
    with Image.open(lab) as im:
        im.convert("L").save(lab, format="JPEG", quality=90)
    image = os.path.join(root, "train", "images", "ex1.png")
    with pytest.raises(ValueError, match=r"label file .*ex1\.png is not a PNG \(a JPEG file\)"):
        decoding.decode_pair(image, lab, 5)
    with open(lab, "rb") as f:
        data = f.read()
    with pytest.raises(ValueError, match="stored-name is not a PNG"):
        pipeline.load_resized_pair(image, "stored-name", 5, label_bytes=data)
    _fails_then_skipped(root, "ex1.png is not a PNG", lab)


def test_layout_table_is_the_one_source():
    """Config, pipeline, readers and TFDS builders read the class counts, readers, TFDS
    names and label mapping from oasis_tf.data.layouts."""
    from oasis_tf.config import DATASETS
    from oasis_tf.data import layouts

    assert DATASETS == layouts.LAYOUTS
    for name, layout in layouts.LAYOUT_TABLE.items():
        assert callable(getattr(readers, layout.reader)), layout
        if layout.num_classes is not None:
            assert pipeline.dataset_num_classes(name) == layout.num_classes
    assert pipeline.DEFAULT_NUM_CLASSES == {"ade20k": 151, "cityscapes": 35, "coco_stuff": 183,
                                            "synthetic": synthetic_scenes.NUM_CLASSES}
    assert [n for n, x in layouts.LAYOUT_TABLE.items() if x.label_mapping] == ["coco_stuff"]
    assert synthetic.resolve_options((32, 48)) == dict(synthetic.DEFAULT_OPTIONS, size=48)
    with pytest.raises(ValueError, match="unknown synthetic_options"):
        synthetic.resolve_options((32, 32), {"num_trian": 3})


def test_size_mismatch_names_both_files(tmp_path):
    root = str(tmp_path / "f")
    rng = np.random.default_rng(0)
    img, _ = _random_pair(rng, 12, 16)
    _, lab = _random_pair(rng, 10, 16)
    _folder_pair(root, "mismatch", img, lab)
    ds = oasis_data.load_dataset("folder", root, image_size=8, batch_size=1, num_classes=5)
    with pytest.raises(tf.errors.OpError) as e:
        _batches(ds)
    msg = str(e.value)
    assert os.path.join("images", "mismatch.png") in msg
    assert os.path.join("labels", "mismatch.png") in msg


# ---------------------------------------------------------------------------
# other layouts


def test_ade20k_reader_accepts_jpg_and_png(tmp_path):
    root = str(tmp_path)
    rng = np.random.default_rng(0)
    for name, ext in [("ADE_train_1", ".jpg"), ("ADE_train_2", ".png")]:
        img, lab = _random_pair(rng)
        _save(os.path.join(root, "images", "training", name + ext), img)
        _save(os.path.join(root, "annotations", "training", name + ".png"), lab, "L")
    pairs = readers.ade20k_pairs(root, "train")
    assert [os.path.basename(p[0]) for p in pairs] == ["ADE_train_1.jpg", "ADE_train_2.png"]
    ds = oasis_data.load_dataset("ade20k", root, image_size=8, batch_size=2, training=False)
    assert _batches(ds)[0]["image"].shape == (2, 8, 8, 3)


def test_cityscapes_reader(tmp_path):
    root = str(tmp_path)
    rng = np.random.default_rng(0)
    for city, frame in [("aachen", "aachen_000000_000019"), ("bonn", "bonn_000001_000019"),
                        ("bonn", "bonn_000002_000019")]:
        img, lab = _random_pair(rng, 8, 16, classes=35)
        _save(os.path.join(root, "leftImg8bit", "val", city, frame + "_leftImg8bit.png"), img)
        gt = os.path.join(root, "gtFine", "val", city, frame)
        _save(gt + "_gtFine_labelIds.png", lab, "L")
        _save(gt + "_gtFine_color.png", img)  # other gtFine files are ignored
        _save(gt + "_gtFine_instanceIds.png", lab, "L")
    pairs = readers.cityscapes_pairs(root, "val")
    assert len(pairs) == 3
    for image_path, label_path in pairs:
        assert image_path.endswith("_leftImg8bit.png")
        assert label_path.endswith("_gtFine_labelIds.png")
        assert os.path.basename(image_path)[:-16] == os.path.basename(label_path)[:-20]
    ds = oasis_data.load_dataset("cityscapes", root, split="val", image_size=(8, 16),
                                 batch_size=3, training=False)
    assert _batches(ds)[0]["label"].shape == (3, 8, 16)
    os.remove(os.path.join(root, "gtFine", "val", "bonn", "bonn_000002_000019_gtFine_labelIds.png"))
    with pytest.raises(ValueError, match="bonn_000002_000019_leftImg8bit.png"):
        readers.cityscapes_pairs(root, "val")
    with pytest.raises(ValueError, match="leftImg8bit"):
        readers.cityscapes_pairs(root, "train")


def test_coco_stuff_reader_and_label_mapping(tmp_path):
    root = str(tmp_path)
    rng = np.random.default_rng(0)
    stored = np.array([[0, 5, 181, 255]], np.uint8).repeat(4, 0)
    img = rng.integers(0, 256, size=(4, 4, 3))
    _save(os.path.join(root, "val_img", "000000000139.jpg"), img)
    _save(os.path.join(root, "val_label", "000000000139.png"), stored, "L")
    pairs = readers.coco_stuff_pairs(root, "val")
    assert [os.path.basename(p[0]) for p in pairs] == ["000000000139.jpg"]
    ds = oasis_data.load_dataset("coco_stuff", root, split="val", image_size=4, batch_size=1,
                                 training=False)
    (b,) = _batches(ds)
    np.testing.assert_array_equal(b["label"][0], np.array([[1, 6, 182, 0]]).repeat(4, 0))
    with pytest.raises(ValueError, match="train_img"):
        readers.coco_stuff_pairs(root, "train")
