"""TFDS builders (`oasis_tf.data.tfds_builders`) and reading them in `load_dataset`.

A tiny ADE20K folder (JPEG images, PNG labels) is written by the test, built
with `tfds.load(..., download_and_prepare_kwargs={"download_config":
DownloadConfig(manual_dir=...)})` into a temp data_dir, then read back.
"""

import os

import numpy as np
import pytest
from PIL import Image

tfds = pytest.importorskip("tensorflow_datasets")

from oasis_tf.data import decoding, load_dataset, readers, tfds_builders  # noqa: E402


def _write_ade20k(root, n_train=5, n_val=2, h=24, w=32, classes=151, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("training", n_train), ("validation", n_val)):
        os.makedirs(os.path.join(root, "images", split), exist_ok=True)
        os.makedirs(os.path.join(root, "annotations", split), exist_ok=True)
        for i in range(n):
            name = f"ADE_{split}_{i:08d}"
            image = rng.integers(0, 256, size=(h, w, 3)).astype(np.uint8)
            label = rng.integers(0, classes, size=(h // 4, w // 4)).astype(np.uint8)
            label = np.repeat(np.repeat(label, 4, 0), 4, 1)
            Image.fromarray(image).save(os.path.join(root, "images", split, name + ".jpg"),
                                        quality=95)
            Image.fromarray(label, "L").save(os.path.join(root, "annotations", split,
                                                          name + ".png"))
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    manual = _write_ade20k(str(tmp_path_factory.mktemp("ADEChallengeData2016")))
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    ds = tfds.load("oasis_ade20k", split="val", data_dir=data_dir, shuffle_files=False,
                   download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
                       manual_dir=manual)})
    return manual, data_dir, ds


def test_names_registered():
    names = tfds.list_builders()
    for name in ("oasis_ade20k", "oasis_cityscapes", "oasis_coco_stuff", "oasis_folder"):
        assert name in names
    assert tfds_builders.builder_name("ade20k") == "oasis_ade20k"
    assert tfds_builders.layout_of("oasis_coco_stuff") == "coco_stuff"


def test_tfds_load_matches_files(built):
    manual, data_dir, ds = built
    builder = tfds.builder("oasis_ade20k", data_dir=data_dir)
    assert builder.info.splits["train"].num_examples == 5
    assert builder.info.splits["val"].num_examples == 2
    pairs = dict((os.path.relpath(i, manual), (i, l))
                 for i, l in readers.ade20k_pairs(manual, "val"))
    examples = list(tfds.as_numpy(ds))
    assert len(examples) == 2
    for ex in examples:
        name = ex["file_name"].decode()
        image_path, label_path = pairs[name]
        image, label = decoding.decode_pair(image_path, label_path, 151)
        # TF's and PIL's JPEG decoders differ by a few levels (the bytes are equal below)
        np.testing.assert_allclose(ex["image"].astype(int), image.astype(int), atol=12)
        np.testing.assert_array_equal(ex["label"][..., 0], label)
    # the stored image is the original file, not a re-encoding
    raw = builder.as_dataset(split="val", decoders={"image": tfds.decode.SkipDecoding()})
    stored = {r["file_name"].decode(): r["image"] for r in tfds.as_numpy(raw)}
    for name, data in stored.items():
        with open(pairs[name][0], "rb") as f:
            assert f.read() == data


def test_load_dataset_reads_tfds(built):
    manual, data_dir, _ = built
    kw = dict(image_size=(16, 16), batch_size=2, seed=3)
    ds = load_dataset("tfds:oasis_ade20k", data_dir, split="train", **kw)
    batches = [{k: v.numpy() for k, v in b.items()} for b in ds]
    assert len(batches) == 2  # 5 examples, drop_remainder
    b = batches[0]
    assert b["image"].shape == (2, 16, 16, 3) and b["image"].dtype == np.float32
    assert b["label"].shape == (2, 16, 16) and b["labelmix_bits"].shape == (2, 151)
    assert -1 <= b["image"].min() and b["image"].max() <= 1
    # the same as the folder pipeline (validation: no shuffle / flip; same order)
    a = load_dataset("ade20k", data_dir, split="val", source="tfds", training=False,
                     image_size=(16, 16), batch_size=2)
    f = load_dataset("ade20k", manual, split="val", training=False, image_size=(16, 16),
                     batch_size=2)
    a_b = [{k: v.numpy() for k, v in x.items()} for x in a]
    f_b = [{k: v.numpy() for k, v in x.items()} for x in f]

    def by_label(batches):
        return sorted((x["label"].tobytes(), x["image"].tobytes()) for b in batches
                      for x in [{"label": b["label"][i], "image": b["image"][i]}
                                for i in range(len(b["label"]))])

    assert by_label(a_b) == by_label(f_b)
    with pytest.raises(ValueError, match="source"):
        load_dataset("ade20k", data_dir, source="zip")


def test_builder_checks_labels(tmp_path):
    manual = _write_ade20k(str(tmp_path / "bad"), n_train=2, n_val=0, classes=151)
    lab = os.path.join(manual, "annotations", "training", "ADE_training_00000001.png")
    Image.fromarray(np.full((24, 32), 200, np.uint8), "L").save(lab)
    with pytest.raises(Exception, match="ADE_training_00000001.png"):
        tfds.builder("oasis_ade20k", data_dir=str(tmp_path / "tfds")).download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual))
