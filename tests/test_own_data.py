"""Your own data set, the way it comes (issue 22): the inspector, the label mapping, the
folder preset's "auto" values, and your classes in the generator and its export.

Three tiny data sets (48x64 photos) are written once per module, in three shapes:

* ``voc``: the VOC folders, palette-mode masks of ids 0..4 with 255 on lines
  (the ignore label: don't-care class 0, the ids shifted by one), split lists;
* ``colors``: train/ and val/ folders, RGB masks named ``x_mask.png``, a
  ``classes.csv`` whose class 3 is "void" (the ignore label);
* ``grey``: one folder (no val/: held out by ``data.val_fraction``), 16-bit grey
  ids 0..3 where 0 is a real class (no don't-care), names in ``classes.json``.

Each trains one eager step with the documented command (``oasis-train --config folder
--data_root DIR``, in this process, tiny networks) and its generator names the classes;
one is exported for real, the others' export metadata is made without writing the
export (``export_metadata``: the same dict; an export takes ~3.5 s here).
"""

import csv
import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from oasis_tf import data as oasis_data
from oasis_tf.config import load_config
from oasis_tf.data import LabelMapping, discovery, inspect_dataset, resolve_config
from oasis_tf.data.dataset_report import DatasetProblemsError
from oasis_tf.palettes import voc_colormap

H, W = 48, 64
VOC_PALETTE = voc_colormap(256)
TABLE = [(0, "road", (128, 64, 128)), (1, "car", (0, 0, 142)), (2, "sky", (70, 130, 180)),
         (3, "void", (0, 0, 0))]
GREY_NAMES = ["grass", "path", "pond", "bench"]
TINY = ["model.num_res_blocks=2", "model.g_channels=2", "model.d_channels=4", "model.z_dim=4",
        "model.spade_hidden=8", "train.batch_size=2", "train.log_every=1",
        "train.sample_every=50", "train.checkpoint_every=50", "train.ema_bn_refresh_batches=1",
        "data.shuffle_buffer=8"]


def _scene(rng, ids):
    """(photo uint8 [H, W, 3], ids int [H, W]): rectangles of ``ids[1:]`` on ``ids[0]``."""
    label = np.full((H, W), ids[0], np.int64)
    for c in ids[1:]:
        y, x = rng.integers(0, H - 8), rng.integers(0, W - 8)
        label[y:y + rng.integers(6, H // 2), x:x + rng.integers(6, W // 2)] = c
    colours = rng.integers(0, 256, (max(ids) + 1, 3))
    photo = np.clip(colours[label] + rng.normal(0, 8, (H, W, 3)), 0, 255).astype(np.uint8)
    return photo, label


def _save(path, array, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    image.save(path)
    return image


def _write_voc(root, rng):
    names = [f"2007_{i:06d}" for i in range(6)]
    for name in names:
        photo, label = _scene(rng, [0, 1, 2, 3, 4])
        label[::12] = 255  # boundary lines: the ignore label
        _save(os.path.join(root, "JPEGImages", name + ".jpg"), photo)
        mask = Image.fromarray(label.astype(np.uint8), "P")
        mask.putpalette(VOC_PALETTE.reshape(-1).tolist())
        os.makedirs(os.path.join(root, "SegmentationClass"), exist_ok=True)
        mask.save(os.path.join(root, "SegmentationClass", name + ".png"))
    lists = os.path.join(root, "ImageSets", "Segmentation")
    os.makedirs(lists)
    for split, part in (("train", names[:4]), ("val", names[4:])):
        with open(os.path.join(lists, f"{split}.txt"), "w") as f:
            f.write("\n".join(part) + "\n")


def _write_colors(root, rng):
    colours = np.array([c for _, _, c in TABLE], np.uint8)
    for split, count in (("train", 4), ("val", 2)):
        for i in range(count):
            photo, label = _scene(rng, [0, 1, 2, 3])
            _save(os.path.join(root, split, "images", f"c{i}.jpg"), photo)
            _save(os.path.join(root, split, "masks", f"c{i}_mask.png"), colours[label])
    with open(os.path.join(root, "classes.csv"), "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["id", "name", "r", "g", "b"])
        out.writerows([i, n, *c] for i, n, c in TABLE)


def _write_grey(root, rng):
    for i in range(6):
        photo, label = _scene(rng, [0, 1, 2, 3])
        _save(os.path.join(root, "images", f"g{i}.png"), photo)
        _save(os.path.join(root, "labels", f"g{i}.png"), label.astype(np.uint16))  # 16-bit
    with open(os.path.join(root, "classes.json"), "w") as f:
        json.dump([{"id": i, "name": n} for i, n in enumerate(GREY_NAMES)], f)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    base = tmp_path_factory.mktemp("own_data")
    rng = np.random.default_rng(0)
    out = {}
    for name, write in (("voc", _write_voc), ("colors", _write_colors), ("grey", _write_grey)):
        out[name] = str(base / name)
        write(out[name], rng)
    return out


def _mask_ids(path):
    with Image.open(path) as im:
        return np.asarray(im).astype(np.int64)


# ---------------------------------------------------------------- the inspector
def test_voc_palette_masks_with_255(sets):
    """Palette PNGs: indices are the ids, the file's palette the colours; 255 next to
    ids 0..4 is the ignore label (don't-care class 0, ids + 1); every id's pixel count
    is the count in the files."""
    report = inspect_dataset(sets["voc"])
    assert report.problems == [] and report.exit_status == 0
    assert report.shape == "VOC" and report.splits == {"train": 4, "val": 2}
    assert report.mask_kinds == {"palette PNG (indices)": 6}
    p = report.proposed
    assert (p["model.num_classes"], p["data.ignore_label"], p["model.dontcare_label"]) == (6, 255, True)
    assert p["model.class_names"] == ["dont_care"] + [f"class_{i}" for i in range(5)]
    assert p["model.palette"] == [VOC_PALETTE[255].tolist()] + VOC_PALETTE[:5].tolist()
    assert p["model.image_size"] == [64, 64] and p["data.crop_size"] == 64
    masks = [os.path.join(sets["voc"], "SegmentationClass", n) for n in
             sorted(os.listdir(os.path.join(sets["voc"], "SegmentationClass")))]
    counts = np.bincount(np.concatenate([_mask_ids(m).ravel() for m in masks]), minlength=256)
    assert {v["stored"]: v["pixels"] for v in report.values} == {
        i: int(counts[i]) for i in np.flatnonzero(counts)}
    assert {v["stored"]: v["class"] for v in report.values} == {0: 1, 1: 2, 2: 3, 3: 4, 4: 5,
                                                                255: 0}
    text = report.format()
    assert "ignore label 255 -> don't-care class 0, the other ids + 1" in text
    assert "divisible by 64" in text


def test_rgb_masks_with_a_class_table(sets, tmp_path):
    """RGB masks named x_mask.png pair with x.jpg; colours become the table's ids, its
    "void" class is the ignore label; the classes keep the table's names and colours.
    Without the table the colours cannot be read: one problem says so."""
    report = inspect_dataset(sets["colors"])
    assert report.problems == []
    assert report.shape == "split folders" and report.splits == {"train": 4, "val": 2}
    assert report.label_encoding == "colors"
    p = report.proposed
    assert p["model.class_names"] == ["void", "road", "car", "sky"]
    assert p["model.palette"] == [[0, 0, 0], [128, 64, 128], [0, 0, 142], [70, 130, 180]]
    assert (p["data.ignore_label"], p["model.dontcare_label"]) == (3, True)
    assert {v["stored"]: tuple(v["color"]) for v in report.values} == {
        i: c for i, _, c in TABLE}
    shutil.copytree(sets["colors"], tmp_path / "no_table")
    os.remove(tmp_path / "no_table" / "classes.csv")
    (line,) = inspect_dataset(tmp_path / "no_table").problems
    assert "the masks are RGB colours, but there is no class table" in line


def test_grey_ids_without_val_folder(sets):
    """16-bit ids where 0 is a real class: no don't-care, no shift; no val/ folder: the
    val split is held out by a hash of the names, the same every time."""
    report = inspect_dataset(sets["grey"])
    assert report.problems == [] and report.held_out
    assert report.mask_kinds == {"grey 16-bit ids": 6}
    p = report.proposed
    assert (p["model.num_classes"], p["data.ignore_label"], p["model.dontcare_label"]) == (4, None, False)
    assert p["model.class_names"] == GREY_NAMES
    found = discovery.find_layout(sets["grey"])
    train = discovery.split_pairs(found, "train", 0.3)
    val = discovery.split_pairs(found, "val", 0.3)
    assert len(train) + len(val) == 6 and val and not set(train) & set(val)
    assert val == discovery.split_pairs(discovery.find_layout(sets["grey"]), "val", 0.3)
    assert report.splits == {"train": 6 - len(discovery.split_pairs(found, "val", 0.1)),
                             "val": len(discovery.split_pairs(found, "val", 0.1))}


def test_settings_override_what_the_data_implies(sets):
    """zero_is_dontcare (ADE20K's convention) keeps the ids; without an ignore label 255
    is a class (256 of them), and with 5 classes set every VOC mask holds an id beyond
    them, named per file; an explicit image size beats the proposal."""
    report = inspect_dataset(sets["voc"], overrides=["data.zero_is_dontcare=true"])
    assert report.problems == []
    assert (report.proposed["model.num_classes"], report.mapping) == (
        5, "ignore label 255 -> class 0, the other ids as stored")
    report = inspect_dataset(sets["voc"], overrides=["data.ignore_label=null"])
    assert report.problems == [] and report.proposed["model.num_classes"] == 256
    report = inspect_dataset(sets["voc"], overrides=["data.ignore_label=null",
                                                     "model.num_classes=5"])
    assert len(report.problems) == 6
    assert all(" id(s) beyond the 5 classes (ids as stored (0..4)): 255 on " in p
               for p in report.problems)
    config, _ = resolve_config(load_config("folder", ["model.image_size=[128,192]"]),
                               sets["voc"])
    assert config.model.image_size == (128, 192) and config.data.crop_size == 192
    assert config.model.num_classes == 6 and config.auto_fields() == []


def test_broken_copy_names_every_bad_file(sets, tmp_path, run_cli):
    """An unpaired photo, a mask of another size, text bytes named .png, a colour and
    an id outside the class table: one problem line naming each file; resolving (and so
    training) refuses with all of them, before anything is created."""
    colors = str(tmp_path / "colors")
    shutil.copytree(sets["colors"], colors)
    masks = os.path.join(colors, "train", "masks")
    _save(os.path.join(colors, "train", "images", "lonely.jpg"), np.zeros((H, W, 3), np.uint8))
    _save(os.path.join(masks, "c0_mask.png"), np.zeros((H - 8, W, 3), np.uint8))
    with open(os.path.join(masks, "c1_mask.png"), "wb") as f:
        f.write(b"not a mask, just text\n")
    with Image.open(os.path.join(masks, "c2_mask.png")) as im:
        off = np.asarray(im).copy()
    off[:3, :5] = (9, 9, 9)
    _save(os.path.join(masks, "c2_mask.png"), off)
    grey = str(tmp_path / "grey")
    shutil.copytree(sets["grey"], grey)
    label = _mask_ids(os.path.join(grey, "labels", "g0.png"))
    label[:2, :2] = 7
    _save(os.path.join(grey, "labels", "g0.png"), label.astype(np.uint16))

    report = inspect_dataset(colors)
    assert report.exit_status == 1
    expected = {os.path.join("train", "images", "lonely.jpg"): "a photo without a mask",
                os.path.join("train", "masks", "c0_mask.png"): "the mask is 40x64",
                os.path.join("train", "masks", "c1_mask.png"): "is not a PNG",
                os.path.join("train", "masks", "c2_mask.png"): "(9, 9, 9) on 15 pixels"}
    assert len(report.problems) == len(expected), report.problems
    for name, what in expected.items():
        (line,) = [p for p in report.problems if p.startswith(name + ":")]
        assert what in line, line
    assert report.unpaired == [os.path.join("train", "images", "lonely.jpg")]
    command = run_cli("inspect_data", colors, "--output_dir", tmp_path / "report",
                      "--nopicture")
    assert command.returncode == 1 and all(name in command.stdout for name in expected)
    assert json.loads((tmp_path / "report" / "dataset_report.json").read_text())[
        "problems"] == report.problems
    (line,) = inspect_dataset(grey).problems
    assert line == f"{os.path.join('labels', 'g0.png')}: id(s) not in classes.json: 7 on 4 pixels"

    from oasis_tf.training import train

    with pytest.raises(DatasetProblemsError) as error:
        train(load_config("folder", TINY), data_root=colors, runs_root=tmp_path / "runs",
              console=False)
    assert all(name in str(error.value) for name in expected)
    assert not (tmp_path / "runs").exists()


def test_report_files_and_picture(sets, tmp_path):
    report = inspect_dataset(sets["colors"])
    json_path, png_path = report.write(tmp_path)
    saved = json.loads(open(json_path).read())
    assert saved["proposed"] == json.loads(json.dumps(report.proposed))
    assert saved["problems"] == [] and saved["exit_status"] == 0
    with Image.open(png_path) as im:
        assert im.width == 1400 and im.height > 400


# ---------------------------------------------------------------- the pipeline
@pytest.mark.parametrize("name", ["voc", "colors"])
def test_pipeline_maps_the_masks_as_the_config_says(sets, name):
    """load_dataset with the resolved config's mapping: VOC ids + 1 and 255 -> 0,
    colours -> their classes (the val split, in file order, at the files' size)."""
    config, _ = resolve_config(load_config("folder"), sets[name])
    ds = oasis_data.load_dataset("folder", sets[name], split="val", image_size=(H, W),
                                 batch_size=8, training=False,
                                 **oasis_data.dataset_options(config))
    labels = next(iter(ds))["label"].numpy()
    files = sorted(os.listdir(os.path.join(sets[name], "SegmentationClass" if name == "voc"
                                           else os.path.join("val", "masks"))))
    if name == "voc":
        stored = _mask_ids(os.path.join(sets[name], "SegmentationClass", files[-1]))
        np.testing.assert_array_equal(labels[-1], np.where(stored == 255, 0, stored + 1))
    else:
        with Image.open(os.path.join(sets[name], "val", "masks", files[0])) as im:
            rgb = np.asarray(im)
        ids = {c: i for i, (_, _, c) in enumerate(TABLE)}
        expected = np.vectorize(lambda k: [1, 2, 3, 0][k])(
            np.apply_along_axis(lambda c: ids[tuple(c)], -1, rgb))
        np.testing.assert_array_equal(labels[0], expected)


def test_tfds_folder_builder_takes_the_same_options(sets, tmp_path):
    """oasis_folder inspects the data set, stores RGB masks as class ids and records the
    classes; read back it equals the file pipeline. An option (a given ignore label)
    changes the classes it records."""
    tfds = pytest.importorskip("tensorflow_datasets")
    from oasis_tf.data import tfds_builders

    builder = tfds_builders.build("oasis_folder", sets["colors"], str(tmp_path / "a"))
    meta = builder.info.metadata
    assert (meta["num_classes"], meta["class_names"]) == (4, ["void", "road", "car", "sky"])
    kw = dict(split="val", image_size=(H, W), batch_size=8, training=False)
    stored = next(iter(oasis_data.load_dataset("tfds:oasis_folder", str(tmp_path / "a"), **kw)))
    config, _ = resolve_config(load_config("folder"), sets["colors"])
    files = next(iter(oasis_data.load_dataset("folder", sets["colors"], **kw,
                                              **oasis_data.dataset_options(config))))
    assert sorted(l.tobytes() for l in stored["label"].numpy()) == sorted(
        l.tobytes() for l in files["label"].numpy())
    other = tfds.builder("oasis_folder", data_dir=str(tmp_path / "b"), ignore_label=None)
    other.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=sets["colors"]))
    assert other.info.metadata["class_names"] == ["road", "car", "sky", "void"]


def test_label_mapping_refuses_values_naming_file_and_count():
    voc = LabelMapping(6, ignore_label=255, shift=True)
    np.testing.assert_array_equal(voc.apply(np.array([[0, 4, 255]])), [[1, 5, 0]])
    with pytest.raises(ValueError, match=r"m\.png has class id\(s\) that are no class: "
                                         r"7 on 2 pixels"):
        voc.apply(np.array([[7, 7, 0]]), "m.png")
    colours = LabelMapping(2, colors=[(0, 0, 0), (255, 0, 0)])
    rgb = np.array([[[255, 0, 0], [0, 0, 0], [1, 2, 3]]], np.uint8)
    with pytest.raises(ValueError, match=r"\(1, 2, 3\) on 1 pixels"):
        colours.apply(rgb, "c.png")
    np.testing.assert_array_equal(colours.apply(rgb[:, :2]), [[1, 0]])
    assert LabelMapping.for_layout("coco_stuff", 183) == LabelMapping(183, 255, True)


# ---------------------------------------------------------------- training and export
@pytest.fixture(scope="module")
def runs(sets, tmp_path_factory, eager_steps):
    """One eager training step per data set with the documented command,
    ``oasis-train --config folder --data_root DIR`` (tiny networks), in this process."""
    import contextlib
    import io
    from pathlib import Path

    from oasis_tf.cli import train as command

    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, path in sets.items():
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            status = command.run(["oasis-train", "--config", "folder", "--data_root", path,
                                  "--run_dir", str(root), "--max_steps", "1",
                                  *[f"--override={o}" for o in TINY]])
        assert status == 0, printed.getvalue()[-3000:]
        out[name] = Path(printed.getvalue().splitlines()[-1])  # the run folder
    return out


EXPECTED = {"voc": (6, ["dont_care"] + [f"class_{i}" for i in range(5)]),
            "colors": (4, ["void", "road", "car", "sky"]),
            "grey": (4, GREY_NAMES)}


@pytest.mark.slow
def test_folder_preset_trains_and_the_export_names_the_classes(runs, tmp_path):
    from oasis_tf.export import export_metadata, export_saved_model, read_export_metadata
    from oasis_tf.inference import load_generator

    for name, run in runs.items():
        saved = load_config(os.path.join(run, "config.yaml"))
        count, names = EXPECTED[name]
        assert saved.auto_fields() == [] and saved.model.num_classes == count
        assert list(saved.model.class_names) == names
        assert json.loads((run / "dataset_report.json").read_text())["problems"] == []
        generator, _ = load_generator(run)
        assert list(generator.class_names) == names
        if name == "colors":
            meta = read_export_metadata(export_saved_model(generator, tmp_path / "export"))
            # the sample grid's first row: the val label maps in the table's colours
            (grid,) = (run / "samples").glob("*.png")
            with Image.open(grid) as im:
                row = np.asarray(im)[2:2 + 64].reshape(-1, 3)
            assert {tuple(c) for c in np.unique(row, axis=0)} == {
                (255, 255, 255), *[c for _, _, c in TABLE]}
        else:
            meta = export_metadata(generator)
        assert meta["class_names"] == names and meta["num_classes"] == count
        assert meta["palette"] == [list(c) for c in saved.model.palette]


@pytest.mark.slow
def test_resume_reads_the_resolved_values(runs):
    """A resume with configs/folder.yaml takes the "auto" values from the run's
    config.yaml, not from a new inspection (a name edited there survives)."""
    from oasis_tf.config import save_config
    from oasis_tf.training.startup import resolve_from_data, with_data_root

    run = runs["grey"]
    saved = load_config(os.path.join(run, "config.yaml"))
    edited = dataclasses.replace(saved.model, class_names=("a", "b", "c", "d"))
    save_config(dataclasses.replace(saved, model=edited), run / "config.yaml")
    config = with_data_root(load_config("folder", TINY), None, run)  # as train() does
    config, report = resolve_from_data(config, resume=run)
    assert config.model.class_names == ("a", "b", "c", "d")
    assert config.model == edited and report.problems == []


def test_generator_carries_its_classes_through_config_and_front_ends():
    """class_names / palette survive get_config -> from_config; palette_for,
    class_names_for, the studio and the evaluation take them; an old config without
    them still loads."""
    from oasis_tf.images import class_names_for, palette_for
    from oasis_tf.metrics import evaluate_generator
    from oasis_tf.models.generator import OASISGenerator
    from oasis_tf.inference import OASISPipeline

    names, palette = ["sky", "sea", "boat"], [[10, 20, 30], [40, 50, 60], [70, 80, 90]]
    g = OASISGenerator(3, image_size=(8, 8), base_channels=1, z_dim=2, num_res_blocks=2,
                       spade_hidden=2, dataset="folder", class_names=names, palette=palette)
    config = g.get_config()
    assert OASISGenerator.from_config(config).get_config() == config
    assert class_names_for(g) == names and palette_for(g).tolist() == palette
    studio = OASISPipeline.from_generator(g)  # what the studio shows
    assert studio.class_names == names and studio.palette.tolist() == palette
    old = {k: v for k, v in config.items() if k not in ("class_names", "palette")}
    assert OASISGenerator.from_config(old).class_names is None
    label = np.zeros((2, 8, 8), np.int32)
    report = evaluate_generator(g, [{"label": label, "image": np.zeros((2, 8, 8, 3))}],
                                num_diversity_samples=0)
    assert report["class_names"] == names
    with pytest.raises(ValueError, match="one entry per class"):
        OASISGenerator(3, image_size=(8, 8), num_res_blocks=2, class_names=["a"])
