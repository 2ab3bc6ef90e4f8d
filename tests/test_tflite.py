"""TFLite / LiteRT: float32, float16 and int8 conversions of an export, run in the
LiteRT interpreter (ai_edge_litert, else tf.lite.Interpreter), built-in ops only,
PSNR against the Keras output.

Uses the converted reference fixture (13 classes, 64x64, z_dim 64) when present,
otherwise a tiny stand-in with trained-scale weights and refreshed batch-norm
statistics (`reference.stand_in_generator`); the same bounds hold for both.
"""

import numpy as np
import pytest

from oasis_tf import inference
from oasis_tf.export import (convert_tflite, convert_tflite_variants, export_saved_model,
                             interpreter_backend,
                             load_generator_from_export, make_interpreter, run_tflite,
                             tflite_report)
from reference import small_generator

# every test here traces, converts or exports a model: minutes on 2 cores
pytestmark = pytest.mark.slow

if interpreter_backend() is None:
    pytest.skip("no TFLite interpreter (pip install ai-edge-litert)", allow_module_level=True)

PSNR_MIN = {"float32": 60.0, "float16": 40.0, "int8": None}


@pytest.fixture(scope="module")
def generator():
    return small_generator()


@pytest.fixture(scope="module")
def version_dir(generator, tmp_path_factory):
    return export_saved_model(generator, str(tmp_path_factory.mktemp("exp")), "oasis", 1)


@pytest.fixture(scope="module")
def rebuilt(version_dir):
    # checks itself against the export's generate_with_noise signature (verify=True)
    return load_generator_from_export(version_dir)


@pytest.fixture(scope="module")
def converted(rebuilt, tmp_path_factory):
    # All three from one intermediate SavedModel of the generator rebuilt from the
    # export (convert_tflite(version_dir, ...) does the same for one quantization).
    out = tmp_path_factory.mktemp("tflite")
    return convert_tflite_variants(None, {q: out / f"g_{q}.tflite" for q in PSNR_MIN},
                                   generator=rebuilt)


def test_generator_images_are_not_flat(generator):
    """The PSNR bounds below mean something only for images with detail."""
    label = np.random.RandomState(5).randint(0, generator.num_classes, (1, 64, 64))
    image = inference.generate(generator, label, seed=[5]).numpy()
    assert image.std() > 20.0, image.std()


def test_rebuilt_generator_matches(generator, rebuilt):
    assert [v.path for v in generator.variables] == [v.path for v in rebuilt.variables]
    for a, b in zip(generator.variables, rebuilt.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("quantization", ["float32", "float16", "int8"])
def test_tflite_psnr_and_builtin_ops(generator, converted, quantization):
    path = converted[quantization]
    report = tflite_report(path, generator, num_runs=3, seed=5)
    ops = report["ops"]  # the operators of the file
    assert not [op for op in ops if op.startswith("Flex") or not op.isupper()], ops
    assert "CONV_2D" in ops and "ONE_HOT" in ops
    print(quantization, {k: report[k] for k in ("size_bytes", "latency_ms", "psnr_db",
                                                "max_abs_diff", "backend")})
    assert report["output_shape"] == [1, 64, 64, 3] and report["output_dtype"] == "uint8"
    if PSNR_MIN[quantization] is not None:
        assert report["psnr_db"] > PSNR_MIN[quantization], report
    else:  # dynamic-range int8: reported, loosely bounded
        assert report["psnr_db"] > 20.0, report


def test_sizes_shrink(converted):
    import os
    size = {q: os.path.getsize(p) for q, p in converted.items()}
    assert size["float16"] < 0.6 * size["float32"], size
    assert size["int8"] < 0.6 * size["float16"], size


def test_tflite_signature_and_reproducibility(generator, converted):
    interp = make_interpreter(converted["float32"])
    sig = interp.get_signature_list()["serving_default"]
    assert sorted(sig["inputs"]) == ["label_map", "noise"] and sig["outputs"] == ["image"]
    h, w = generator.image_size
    label = np.random.RandomState(1).randint(0, generator.num_classes, (1, h, w))
    # Seed 9 of the SavedModel == its seeded noise broadcast over the image.
    noise = inference.noise_map(inference.seeded_noise([9], generator.z_dim), (h, w)).numpy()
    a = run_tflite(interp, label, noise)
    b = run_tflite(interp, label, noise)
    np.testing.assert_array_equal(a, b)
    want = inference.generate(generator, label, seed=[9]).numpy()
    assert np.abs(a.astype(int) - want).max() <= 1


def test_bad_quantization(version_dir, tmp_path):
    with pytest.raises(ValueError, match="quantization"):
        convert_tflite(version_dir, str(tmp_path / "x.tflite"), "int4")


def test_old_export_without_collection_is_refused(tmp_path, version_dir):
    import json
    import shutil
    copy = tmp_path / "old"
    shutil.copytree(version_dir, copy)
    meta_path = copy / "assets" / "oasis_export.json"
    meta = json.loads(meta_path.read_text())
    del meta["generator_variables"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="export it again"):
        load_generator_from_export(str(copy))


def test_tflite_files_follow_the_umask(converted):
    """Written via mkstemp (0600) and renamed: the mode must be what the umask gives."""
    import os
    import stat

    from oasis_tf.fileio import current_umask

    for path in converted.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~current_umask(), path
