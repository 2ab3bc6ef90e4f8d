"""evaluate_generator, the evaluate tool, loading generators and the synthetic segmenter.

No Inception weights are available offline: FID runs with a tiny stand-in
extractor (a fixed random projection of 4x4 block means), which has the
extractor interface of ``oasis_tf.metrics.fid``.
"""

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from oasis_tf.inference import generate, load_generator
from oasis_tf.metrics import (NOT_COMPARABLE, evaluate_generator, fid_from_features,
                              format_class_table, format_report, make_extractor, write_report)
from oasis_tf.models.generator import OASISGenerator
from reference import find_reference_dir

REPO = Path(__file__).resolve().parents[1]

STANDIN_SOURCE = textwrap.dedent('''
    import numpy as np

    class StandInExtractor:
        """Fixed random projection of 4x4 block means: the extractor interface, no weights."""
        name = "stand-in random projection"
        comparable_with_papers = False
        feature_dim = 16

        def __init__(self):
            self.w = np.random.RandomState(0).standard_normal((48, self.feature_dim))

        def __call__(self, images):
            x = np.asarray(images)
            x = x.astype(np.float64) / 127.5 - 1.0 if x.dtype == np.uint8 else x.astype(np.float64)
            b, h, w, c = x.shape
            x = x.reshape(b, 4, h // 4, 4, w // 4, c).mean(axis=(2, 4)).reshape(b, -1)
            return x @ self.w
''')
_ns = {}
exec(STANDIN_SOURCE, _ns)  # noqa: S102 - the same source the subprocess imports
StandInExtractor = _ns["StandInExtractor"]

NUM_CLASSES = 5
COLOURS = np.array([[-1, -1, -1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1]], np.float32)


def colour_segmenter(images):
    """Nearest of COLOURS: perfect on the real images below."""
    x = np.asarray(images, np.float32)
    d = ((x[..., None, :] - COLOURS) ** 2).sum(-1)
    return np.argmin(d, axis=-1).astype(np.int64)


def _labels(n, size=16, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, NUM_CLASSES, (n, size // 4, size // 4))
    return np.repeat(np.repeat(coarse, 4, 1), 4, 2).astype(np.int32)


@pytest.fixture(scope="module")
def tiny():
    generator = OASISGenerator(num_classes=NUM_CLASSES, image_size=(16, 16), base_channels=2, z_dim=4,
                               num_res_blocks=2)
    labels = _labels(7)
    images = COLOURS[labels]
    batches = [{"image": images[i:i + 3], "label": labels[i:i + 3]} for i in range(0, 7, 3)]
    return generator, batches, images, labels


def test_report_keys_types_and_independent_fid(tiny, tmp_path):
    generator, batches, images, labels = tiny
    stats = tmp_path / "real.npz"
    report = evaluate_generator(generator, batches, extractor=StandInExtractor(), segmenter=colour_segmenter,
                                real_stats_path=stats, num_diversity_samples=4, seed=3)
    for key, types in {"fid": float, "fid_extractor": str, "comparable_with_papers": bool, "fid_note": str,
                       "miou": float, "per_class_iou": list, "miou_real": float, "ms_ssim": float,
                       "ms_ssim_real_pairs": float, "num_images": int, "ms_ssim_pairs": int,
                       "ms_ssim_scales": int, "num_diversity_labels": int, "image_size": list,
                       "real_stats_cached": bool, "notes": list, "time_s": float}.items():
        assert isinstance(report[key], types), (key, report[key])
    assert report["num_images"] == 7 and report["num_diversity_labels"] == 4 and report["ms_ssim_pairs"] == 4
    assert report["comparable_with_papers"] is False and report["fid_note"] == NOT_COMPARABLE
    assert report["miou_real"] == pytest.approx(1.0)
    assert len(report["per_class_iou"]) == NUM_CLASSES and report["per_class_iou"][0] is None
    assert 0.0 <= report["miou"] <= 1.0 and -1.0 <= report["ms_ssim"] <= 1.0
    # FID against an independent computation with the same seeds
    fake = np.asarray(generate(generator, labels, seed=np.arange(7) + 3)).astype(np.float32) / 127.5 - 1.0
    ext = StandInExtractor()
    expected = fid_from_features(ext(images), ext(fake))
    # float32 generator and features, run in batches of 3 there and of 7 here: the
    # streamed statistics agree to ~1e-6 relative, not bit for bit
    assert report["fid"] == pytest.approx(expected, rel=1e-5)
    # statistics cached with pytorch-fid keys, then reused
    with np.load(stats) as data:
        assert data["mu"].shape == (16,) and data["sigma"].shape == (16, 16)
    again = evaluate_generator(generator, batches, extractor=StandInExtractor(), real_stats_path=stats,
                               num_diversity_samples=0, seed=3)
    assert again["real_stats_cached"] is True and again["fid"] == pytest.approx(report["fid"], rel=1e-9)
    assert again["ms_ssim"] is None and again["miou"] is None
    other = StandInExtractor()
    other.name = "another extractor"
    with pytest.raises(ValueError, match="cannot be compared"):
        evaluate_generator(generator, batches, extractor=other, real_stats_path=stats)
    # JSON and table
    path = write_report(report, tmp_path / "r.json")
    assert json.loads(Path(path).read_text())["num_images"] == 7
    table = format_report(report)
    assert "FID" in table and "mIoU" in table and "MS-SSIM" in table and NOT_COMPARABLE in table


def test_per_class_report_against_numpy(tiny, tmp_path):
    """Pixel accuracy, named per-class IoU and ground-truth pixel counts against a direct NumPy
    count; class 4 is absent from the ground truth (reported absent, not 0), the table is sorted
    worst to best and the chart lands beside the report."""
    generator, _, _, _ = tiny
    labels = np.minimum(_labels(6, seed=1), 3)  # classes 0..3 only: class 4 is absent
    images = COLOURS[labels]
    batches = [{"image": images[i:i + 4], "label": labels[i:i + 4]} for i in range(0, 6, 4)]
    names = ["dontcare", "red", "green", "blue"]  # shorter than the class count: class_4 fills in
    report = evaluate_generator(generator, batches, segmenter=colour_segmenter, num_diversity_samples=0,
                                seed=5, class_names=names)
    fake = np.asarray(generate(generator, labels, seed=np.arange(6) + 5)).astype(np.float32) / 127.5 - 1.0
    pred = colour_segmenter(fake)
    counted = labels != 0
    assert report["pixel_accuracy"] == pytest.approx(np.sum((pred == labels) & counted) / np.sum(counted))
    assert report["pixel_accuracy_real"] == pytest.approx(1.0)
    by_id = {c["id"]: c for c in report["classes"]}
    assert sorted(by_id) == [1, 2, 3, 4]  # the don't-care class has no entry
    for c in (1, 2, 3):
        gt, pr = (labels == c) & counted, (pred == c) & counted
        entry = by_id[c]
        assert entry["name"] == names[c] and entry["absent"] is False
        assert entry["pixels"] == int(gt.sum()) and entry["predicted_pixels"] == int(pr.sum())
        assert entry["iou"] == pytest.approx((gt & pr).sum() / (gt | pr).sum())
        assert entry["accuracy"] == pytest.approx((gt & pr).sum() / gt.sum())
        assert entry["iou_real"] == pytest.approx(1.0)
    absent = by_id[4]
    assert absent["name"] == "class_4" and absent["absent"] is True and absent["pixels"] == 0
    assert absent["iou"] is None and absent["iou_real"] is None and absent["accuracy"] is None
    assert absent["predicted_pixels"] == int(((pred == 4) & counted).sum())
    # the table: present classes worst to best, then the absent one
    table = format_class_table(report).splitlines()[2:]
    order = [int(line.split()[0]) for line in table]
    ious = [by_id[c]["iou"] for c in (1, 2, 3)]
    assert order[:3] == sorted((1, 2, 3), key=lambda c: (ious[c - 1], c)) and order[3] == 4
    assert "absent" in table[3]
    path = write_report(report, tmp_path / "evaluation.json")
    saved = json.loads(Path(path).read_text())
    assert saved["classes"] == report["classes"] and saved["pixel_accuracy"] == report["pixel_accuracy"]
    chart = tmp_path / "evaluation-class_iou.png"
    from PIL import Image

    with Image.open(chart) as im:
        assert im.format == "PNG" and im.width >= 300 and im.height >= 200


def test_no_metrics_and_max_images(tiny):
    generator, batches, _, _ = tiny
    report = evaluate_generator(generator, batches, max_images=4, num_diversity_samples=2)
    assert report["num_images"] == 4 and report["fid"] is None and report["fid_extractor"] is None
    assert report["miou"] is None and report["segmenter"] is None and report["ms_ssim"] is not None
    assert make_extractor("none") is None and make_extractor(None) is None
    with pytest.raises(ValueError, match="unknown extractor"):
        make_extractor("bogus:1")


def test_load_generator_from_run_folder(tmp_path, caplog):
    from oasis_tf.config import load_config, save_config
    from oasis_tf.training.manifest import DamagedCheckpointError, write_manifest

    config = load_config("synthetic", overrides=["model.num_res_blocks=2", "model.g_channels=2",
                                                 "model.z_dim=4"])
    run = tmp_path / "run-0001"
    save_config(config, run / "config.yaml")
    ckpt = run / "checkpoints" / "ckpt-00000002"
    ckpt.mkdir(parents=True)
    source = OASISGenerator(num_classes=12, image_size=(64, 64), base_channels=2, z_dim=4, num_res_blocks=2,
                            spade_hidden=config.model.spade_hidden)
    source.save_weights(ckpt / "ema_generator.weights.h5")
    (ckpt / "state.json").write_text(json.dumps({"step": 2}))
    write_manifest(ckpt)
    label = _labels(2, size=64) * 2
    want = np.asarray(generate(source, label, seed=[1, 2]))
    loaded, info = load_generator(run)
    assert info["source"].endswith("ema_generator.weights.h5")
    np.testing.assert_array_equal(np.asarray(generate(loaded, label, seed=[1, 2])), want)
    loaded, _ = load_generator(ckpt)
    np.testing.assert_array_equal(np.asarray(generate(loaded, label, seed=[1, 2])), want)
    with pytest.raises(FileNotFoundError):
        load_generator(run, checkpoint="best")
    from oasis_tf.convert import save_network

    save_network(source, run / "generator.keras")  # what a finished run holds
    with caplog.at_level("WARNING", logger="oasis_tf.inference.loading"):  # no run manifest yet
        loaded, info = load_generator(run)
    assert info["source"].endswith("ema_generator.weights.h5")
    assert "manifest.json: missing" in caplog.text
    write_manifest(run, names=["generator.keras"])
    loaded, info = load_generator(run)
    assert info["source"].endswith("generator.keras")
    np.testing.assert_array_equal(np.asarray(generate(loaded, label, seed=[1, 2])), want)
    loaded, info = load_generator(run, checkpoint="latest")
    assert info["source"].endswith("ema_generator.weights.h5")
    # weights of another architecture: the error names the weights and the config
    other = OASISGenerator(num_classes=12, image_size=(64, 64), base_channels=2, z_dim=4, num_res_blocks=2,
                           spade_hidden=config.model.spade_hidden * 2)
    other.save_weights(ckpt / "ema_generator.weights.h5")
    with pytest.raises(DamagedCheckpointError, match=r"ema_generator\.weights\.h5: .*bytes"):
        load_generator(ckpt)  # the digests no longer match: not loaded at all
    write_manifest(ckpt)
    with pytest.raises(ValueError, match=r"ema_generator\.weights\.h5 does not fit .*config\.yaml"):
        load_generator(ckpt)


def _write_folder_dataset(root, n=4, size=64, num_classes=13):
    from PIL import Image

    rng = np.random.default_rng(1)
    for split in ("val",):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for i in range(n):
            coarse = rng.integers(0, num_classes, (size // 16, size // 16))
            label = np.repeat(np.repeat(coarse, 16, 0), 16, 1).astype(np.uint8)
            image = rng.integers(0, 256, (size, size, 3)).astype(np.uint8)
            Image.fromarray(image, "RGB").save(root / split / "images" / f"{i:03d}.png")
            Image.fromarray(label, "L").save(root / split / "labels" / f"{i:03d}.png")


@pytest.mark.slow
def test_tool_end_to_end_on_reference_generator(tmp_path, run_cli, monkeypatch):
    ref = find_reference_dir()
    if ref is None or not (ref / "small" / "G_state.npz").exists():
        pytest.skip("reference fixture small/G_state.npz not found")
    data = tmp_path / "data"
    _write_folder_dataset(data)
    (tmp_path / "standin_mod.py").write_text(STANDIN_SOURCE)
    out = tmp_path / "report.json"
    monkeypatch.syspath_prepend(str(tmp_path))  # the extractor's module
    proc = run_cli("evaluate", "--model", ref / "small" / "G_state.npz", "--image_size", "64,64",
                   "--num_classes", "13", "--dataset", "folder", "--data_root", data,
                   "--split", "val", "--extractor", "py:standin_mod:StandInExtractor",
                   "--segmenter", "none", "--num_diversity_samples", "2", "--batch_size", "3",
                   "--output", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["num_images"] == 4 and report["num_classes"] == 13 and report["image_size"] == [64, 64]
    assert isinstance(report["fid"], float) and report["fid_extractor"] == "stand-in random projection"
    assert report["comparable_with_papers"] is False and report["miou"] is None
    assert isinstance(report["ms_ssim"], float) and report["ms_ssim_scales"] == 3
    assert NOT_COMPARABLE in proc.stdout and "MS-SSIM" in proc.stdout and "images" in proc.stdout
    stats = list((data / "fid_stats").glob("*.npz"))
    assert len(stats) == 1


@pytest.mark.slow
def test_synthetic_segmenter_above_chance_and_cached(tmp_path, capsys):
    from oasis_tf.data import write_synthetic_dataset
    from oasis_tf.metrics.segmenter import get_synthetic_segmenter

    root = tmp_path / "synthetic"
    write_synthetic_dataset(str(root), num_train=48, num_val=8, size=32, seed=0)
    kwargs = dict(image_size=(32, 32), cache_dir=tmp_path / "cache", steps=150, width=8, batch_size=8)
    seg = get_synthetic_segmenter(root, **kwargs)
    printed = capsys.readouterr().out
    assert "mIoU on the 8 real validation images" in printed
    assert seg.val_miou > max(3 * seg.chance_miou, 0.12), (seg.val_miou, seg.chance_miou)  # ~0.22-0.26 vs ~0.035
    assert os.path.isfile(seg.path)
    images = np.zeros((2, 32, 32, 3), np.float32)
    cached = get_synthetic_segmenter(root, **kwargs)
    assert cached.path == seg.path and cached.val_miou == pytest.approx(seg.val_miou)
    assert "loaded" in capsys.readouterr().out
    np.testing.assert_array_equal(cached(images), seg(images))
    assert seg(images).shape == (2, 32, 32) and seg(images).dtype == np.int64
