"""SavedModel export: both loader paths (tf.saved_model.load and the TF1 session path
TF Serving's C++ loader takes), saved_model_cli, bad requests, and the export tool.

Uses the converted reference fixture (13 classes, 64x64, z_dim 64) when present,
otherwise a tiny seeded generator/discriminator pair (``reference.stand_in_generator``).
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import oasis_tf
from oasis_tf import inference
from oasis_tf.export import METADATA_FILE, export_saved_model, read_export_metadata
from oasis_tf.layers.spectral_norm import spectral_norm_warmup
from reference import assert_images_match, find_reference_dir, stand_in_generator

# every test here traces, converts or exports a model: minutes on 2 cores
pytestmark = pytest.mark.slow



# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def models():
    ref = find_reference_dir()
    small = ref / "small" if ref is not None else None
    if small is not None and (small / "G_state.npz").exists() and (small / "D_state.npz").exists():
        g = oasis_tf.convert.load_official_generator(str(small / "G_state.npz"),
                                                     image_size=(64, 64))
        d = oasis_tf.convert.load_official_discriminator(str(small / "D_state.npz"))
        label = None
        if (small / "io.npz").exists():
            with np.load(small / "io.npz") as io:
                if "label" in io and io["label"].shape[1:] == (64, 64):
                    label = io["label"].astype(np.int32)
        source = "reference"
    else:
        # seeded and at a trained model's scale (tests/reference.py): an unseeded
        # fresh model (random spectral-norm vectors, saturated output) turned float
        # round-off into up to 5 levels between the export and Keras, depending on
        # what the modules before it had drawn
        g = stand_in_generator()
        keras.utils.set_random_seed(1)
        d = oasis_tf.OASISDiscriminator(num_classes=5, base_channels=2)
        spectral_norm_warmup(d, 15)
        label, source = None, "random"
    if label is None:
        label = np.random.RandomState(0).randint(0, g.num_classes, (2, 64, 64)).astype(np.int32)
    return {"G": g, "D": d, "label": label, "source": source}


@pytest.fixture(scope="module")
def version_dir(models, tmp_path_factory):
    base = tmp_path_factory.mktemp("exports")
    names = [f"c{i}" for i in range(models["G"].num_classes)]
    return export_saved_model(models["G"], str(base), model_name="oasis", version=3,
                              discriminator=models["D"], class_names=names)


@pytest.fixture(scope="module")
def loaded(version_dir):
    return tf.saved_model.load(version_dir)


class Session:
    """The export loaded as TF Serving does: a TF1 session fed by signature tensor names."""

    def __init__(self, version_dir):
        self.graph = tf.Graph()
        self.sess = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            self.meta = tf.compat.v1.saved_model.loader.load(self.sess, ["serve"], version_dir)

    def __call__(self, signature, **inputs):
        sig = self.meta.signature_def[signature]
        assert set(inputs) == set(sig.inputs), (sorted(inputs), sorted(sig.inputs))
        feeds = {sig.inputs[k].name: v for k, v in inputs.items()}
        fetches = {k: t.name for k, t in sig.outputs.items()}
        return self.sess.run(fetches, feed_dict=feeds)


@pytest.fixture(scope="module")
def session(version_dir):
    s = Session(version_dir)
    yield s
    s.sess.close()


def _call(path, loaded, session, signature, **inputs):
    if path == "loaded":
        out = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items()}
    return session(signature, **inputs)


def _seeds(n, start=7):
    return np.arange(start, start + n, dtype=np.int64)


# ------------------------------------------------------- inference function
def test_seeded_noise_is_stateless_normal_per_row():
    noise = inference.seeded_noise(np.array([3, 11], np.int64), 4).numpy()
    for row, s in zip(noise, (3, 11)):
        want = tf.random.stateless_normal([4], seed=tf.constant([s, 0], tf.int64)).numpy()
        np.testing.assert_array_equal(row, want)
    # A row depends on its seed only, not on the rest of the batch.
    np.testing.assert_array_equal(inference.seeded_noise([11], 4).numpy()[0], noise[1])


def test_to_uint8_quantisation():
    x = np.array([-1.5, -1.0, -0.99, 0.0, 0.5, 1.0, 2.0], np.float32)
    want = np.clip(np.round((x + 1) * 127.5), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(inference.to_uint8(x).numpy(), want)


def test_generate_matches_generator(models):
    g, label = models["G"], models["label"]
    noise = inference.seeded_noise(_seeds(len(label)), g.z_dim)
    want = inference.to_uint8(g({"label": label, "noise": noise}, training=False)).numpy()
    np.testing.assert_array_equal(inference.generate(g, label, seed=_seeds(len(label))).numpy(),
                                  want)


def test_generate_rejects_bad_ids_eagerly(models):
    label = models["label"].copy()
    label[0, 0, 0] = models["G"].num_classes
    with pytest.raises(tf.errors.InvalidArgumentError, match="class id"):
        inference.generate(models["G"], label, seed=_seeds(len(label)))


# ------------------------------------------------------------------ layout
def test_layout_and_metadata(models, version_dir):
    assert os.path.basename(version_dir) == "3"
    assert os.path.basename(os.path.dirname(version_dir)) == "oasis"
    assert os.path.exists(os.path.join(version_dir, "saved_model.pb"))
    assert not [n for n in os.listdir(os.path.dirname(version_dir)) if n.startswith(".tmp")]
    meta = read_export_metadata(version_dir)
    g = models["G"]
    assert meta["num_classes"] == g.num_classes
    assert meta["image_size"] == list(g.image_size)
    assert meta["z_dim"] == g.z_dim
    assert meta["class_names"] == [f"c{i}" for i in range(g.num_classes)]
    assert np.asarray(meta["palette"]).shape == (g.num_classes, 3)
    assert set(meta["signatures"]) == {"serving_default", "generate_with_noise",
                                       "generate_png", "segment"}
    with open(os.path.join(version_dir, "assets", METADATA_FILE)) as f:
        assert json.load(f) == meta


def test_existing_version_is_not_overwritten(models, version_dir):
    base = os.path.dirname(os.path.dirname(version_dir))
    with pytest.raises(FileExistsError):
        export_saved_model(models["G"], base, model_name="oasis", version=3)
    with pytest.raises(ValueError, match="version"):
        export_saved_model(models["G"], base, model_name="oasis", version=0)


def test_saved_model_cli_lists_signatures(version_dir):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    cmd = [cli] if os.path.exists(cli) else [sys.executable, "-m",
                                             "tensorflow.python.tools.saved_model_cli"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(cmd + ["show", "--dir", version_dir, "--all"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for name in ("serving_default", "generate_with_noise", "generate_png", "segment"):
        assert f"signature_def['{name}']" in out
    for tensor in ("inputs['label_map']", "inputs['seed']", "inputs['noise']",
                   "inputs['label_png']", "inputs['image']", "outputs['image']",
                   "outputs['image_png']", "outputs['label_map']"):
        assert tensor in out, tensor
    assert "DT_UINT8" in out and "DT_INT64" in out


# -------------------------------------------------------------- signatures
@pytest.mark.parametrize("path", ["loaded", "session"])
def test_serving_default_matches_keras(models, loaded, session, path):
    g, label = models["G"], models["label"]
    seeds = _seeds(len(label))
    got = _call(path, loaded, session, "serving_default", label_map=label, seed=seeds)["image"]
    assert_images_match(got, inference.generate(g, label, seed=seeds).numpy())
    if models["source"] == "reference":
        assert got.std() > 5, "the reference generator should not give flat images"


def test_seeds_are_reproducible(models, loaded):
    label = np.concatenate([models["label"][:1]] * 3)
    sig = loaded.signatures["serving_default"]
    a = sig(label_map=tf.constant(label), seed=tf.constant([5, 5, 6], tf.int64))["image"].numpy()
    b = sig(label_map=tf.constant(label[:1]), seed=tf.constant([5], tf.int64))["image"].numpy()
    np.testing.assert_array_equal(a[0], a[1])  # same seed, same image
    np.testing.assert_array_equal(a[0], b[0])  # whatever else is in the batch
    assert np.abs(a[0].astype(int) - a[2]).mean() > 0.5  # another seed, another image


@pytest.mark.parametrize("path", ["loaded", "session"])
def test_generate_with_noise_matches_keras(models, loaded, session, path):
    g, label = models["G"], models["label"]
    h, w = g.image_size
    noise = np.random.RandomState(1).randn(len(label), h, w, g.z_dim).astype(np.float32)
    got = _call(path, loaded, session, "generate_with_noise", label_map=label, noise=noise)
    assert_images_match(got["image"], inference.generate(g, label, noise=noise).numpy())
    # Noise constant over the image is the seeded signature's noise.
    z = inference.seeded_noise(_seeds(len(label)), g.z_dim).numpy()
    z_map = np.broadcast_to(z[:, None, None, :], noise.shape).copy()
    got = _call(path, loaded, session, "generate_with_noise", label_map=label, noise=z_map)
    assert_images_match(got["image"],
                        inference.generate(g, label, seed=_seeds(len(label))).numpy())


def _png(array):
    array = np.asarray(array)
    return tf.io.encode_png(array if array.ndim == 3 else array[..., None]).numpy()


@pytest.mark.parametrize("path", ["loaded", "session"])
def test_generate_png(models, loaded, session, path):
    label = models["label"]
    pngs = np.array([_png(lab.astype(np.uint8)) for lab in label], dtype=object)
    seeds = _seeds(len(label))
    out = _call(path, loaded, session, "generate_png", label_png=pngs, seed=seeds)["image_png"]
    assert out.shape == (len(label),)
    images = np.stack([tf.io.decode_png(p, channels=3).numpy() for p in out])
    want = _call(path, loaded, session, "serving_default", label_map=label, seed=seeds)
    np.testing.assert_array_equal(images, want["image"])


@pytest.mark.parametrize("path", ["loaded", "session"])
def test_generate_png_reads_16_bit_class_ids(models, loaded, session, path):
    """A 16-bit grey PNG holds the class ids themselves: the same image as 8-bit."""
    label = models["label"][:1]
    seeds = _seeds(1)
    outs = []
    for dtype in (np.uint8, np.uint16):
        png = np.array([_png(label[0].astype(dtype))], dtype=object)
        outs.append(_call(path, loaded, session, "generate_png", label_png=png,
                          seed=seeds)["image_png"][0])
    eight, sixteen = (tf.io.decode_png(p, channels=3).numpy() for p in outs)
    np.testing.assert_array_equal(sixteen, eight)
    want = _call(path, loaded, session, "serving_default", label_map=label, seed=seeds)
    np.testing.assert_array_equal(eight, want["image"][0])


@pytest.mark.parametrize("path", ["loaded", "session"])
def test_segment_matches_discriminator(models, loaded, session, path):
    g, d, label = models["G"], models["D"], models["label"]
    images = inference.generate(g, label, seed=_seeds(len(label))).numpy()
    got = _call(path, loaded, session, "segment", image=images)["label_map"]
    logits = d(images.astype(np.float32) / 127.5 - 1.0, training=False).numpy()
    want = np.argmax(logits[..., 1:], axis=-1)
    assert got.dtype == np.int32 and got.shape == label.shape
    assert (got != want).mean() <= 0.005
    assert got.min() >= 0 and got.max() < g.num_classes


# ------------------------------------------------------------ bad requests
def _bad_cases(models):
    g, label = models["G"], models["label"]
    c, (h, w), z = g.num_classes, g.image_size, g.z_dim
    b = len(label)
    seeds = _seeds(b)
    high, low = label.copy(), label.copy()
    high[-1, 3, 4] = c
    low[0, 1, 2] = -1
    noise = np.zeros((b, h, w, z), np.float32)
    nan_noise = noise.copy()
    nan_noise[0, 0, 0, 0] = np.nan
    inf_noise = noise.copy()
    inf_noise[-1, 1, 2, 0] = -np.inf
    huge_noise = np.full_like(noise, 3e38)  # finite, but the generator overflows
    image = np.zeros((b, h, w, 3), np.uint8)
    ok_png = _png(label[0].astype(np.uint8))
    return {
        "id_too_high": ("serving_default", dict(label_map=high, seed=seeds),
                        rf"label_map has class id {c}; expected 0\.\.{c - 1}"),
        "id_negative": ("serving_default", dict(label_map=low, seed=seeds),
                        rf"label_map has class id -1; expected 0\.\.{c - 1}"),
        "wrong_size": ("serving_default", dict(label_map=label[:, : h // 2], seed=seeds),
                       rf"label_map has spatial size {h // 2}x{w}"),
        "wrong_rank": ("serving_default", dict(label_map=label[0], seed=seeds[:1]),
                       "label_map must have rank 3"),
        "rank_4_label": ("serving_default", dict(label_map=label[..., None], seed=seeds),
                         "label_map must have rank 3"),
        "batch_mismatch": ("serving_default", dict(label_map=label, seed=_seeds(b + 1)),
                           rf"seed has batch size {b + 1} but label_map has batch size {b}"),
        "seed_rank": ("serving_default", dict(label_map=label, seed=seeds[:, None]),
                      "seed must have rank 1"),
        "noise_channels": ("generate_with_noise",
                           dict(label_map=label, noise=noise[..., :1].repeat(z + 1, -1)),
                           f"noise must have {z} channels"),
        "noise_size": ("generate_with_noise", dict(label_map=label, noise=noise[:, ::2]),
                       "noise has spatial size"),
        "noise_rank": ("generate_with_noise", dict(label_map=label, noise=noise[:, 0, 0]),
                       "noise must have rank 4"),
        "noise_batch": ("generate_with_noise", dict(label_map=label, noise=noise[:1]),
                        "noise has batch size 1 but label_map has batch size"),
        "noise_nan": ("generate_with_noise", dict(label_map=label, noise=nan_noise),
                      "noise has NaN or Inf"),
        "png_colour": ("generate_png", dict(label_png=np.array([_png(image[0])], object),
                                            seed=seeds[:1]), "single-channel"),
        "png_size": ("generate_png",
                     dict(label_png=np.array([_png(label[0, ::2].astype(np.uint8))], object),
                          seed=seeds[:1]), "label_png has spatial size"),
        "png_id": ("generate_png",
                   dict(label_png=np.array([_png(np.full((h, w), c, np.uint8))], object),
                        seed=seeds[:1]), rf"class id {c}; expected"),
        "png_rank": ("generate_png", dict(label_png=np.array(ok_png, object), seed=seeds[:1]),
                     "label_png must have rank 1"),
        "png_batch": ("generate_png", dict(label_png=np.array([ok_png], object), seed=seeds),
                      "seed has batch size"),
        "png_garbage": ("generate_png", dict(label_png=np.array([b"not a png"], object),
                                             seed=seeds[:1]), "(?i)png"),
        "segment_size": ("segment", dict(image=image[:, :, : w // 2]), "image has spatial size"),
        "segment_channels": ("segment", dict(image=image[..., :1]), "image must have 3 channels"),
        "segment_rank": ("segment", dict(image=image[0]), "image must have rank 4"),
        # issue 12: nothing that would come back as a plausible image
        "png_empty": ("generate_png", dict(label_png=np.array([b""], object), seed=seeds[:1]),
                      "label_png is an empty string"),
        "png_jpeg": ("generate_png",
                     dict(label_png=np.array([tf.io.encode_jpeg(image[0]).numpy()], object),
                          seed=seeds[:1]), "label_png is not a PNG .JPEG bytes"),
        "png_rgb": ("generate_png", dict(label_png=np.array([_png(image[0])], object),
                                         seed=seeds[:1]), "label_png is a RGB PNG"),
        "png_rgba": ("generate_png",
                     dict(label_png=np.array([_png(np.zeros((h, w, 4), np.uint8))], object),
                          seed=seeds[:1]), "label_png is a RGBA PNG"),
        "png_16bit_id": ("generate_png",
                         dict(label_png=np.array([_png(np.full((h, w), 300, np.uint16))],
                                                 object), seed=seeds[:1]),
                         rf"class id 300; expected 0\.\.{c - 1}"),
        "png_empty_batch": ("generate_png", dict(label_png=np.array([], object),
                                                 seed=seeds[:0]), "label_png is an empty batch"),
        "empty_batch": ("serving_default", dict(label_map=label[:0], seed=seeds[:0]),
                        "label_map is an empty batch"),
        "noise_empty_batch": ("generate_with_noise", dict(label_map=label[:0], noise=noise[:0]),
                              "label_map is an empty batch"),
        "segment_empty_batch": ("segment", dict(image=image[:0]), "image is an empty batch"),
        "noise_inf": ("generate_with_noise", dict(label_map=label, noise=inf_noise),
                      "noise has NaN or Inf"),
        "noise_overflow": ("generate_with_noise", dict(label_map=label, noise=huge_noise),
                           "NaN or Inf"),
    }


_CASES = ["id_too_high", "id_negative", "wrong_size", "wrong_rank", "rank_4_label",
          "batch_mismatch", "seed_rank", "noise_channels", "noise_size", "noise_rank",
          "noise_batch", "noise_nan", "png_colour", "png_size", "png_id", "png_rank",
          "png_batch", "png_garbage", "segment_size", "segment_channels", "segment_rank",
          "png_empty", "png_jpeg", "png_rgb", "png_rgba", "png_16bit_id", "png_empty_batch",
          "empty_batch", "noise_empty_batch", "segment_empty_batch", "noise_inf",
          "noise_overflow"]


@pytest.mark.parametrize("path", ["loaded", "session"])
@pytest.mark.parametrize("case", _CASES)
def test_bad_requests_are_invalid_argument(models, loaded, session, path, case):
    signature, inputs, message = _bad_cases(models)[case]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _call(path, loaded, session, signature, **inputs)


# --------------------------------------------------------------------- tool
def test_export_tool(tmp_path, run_cli):
    # seeded, with statistics that follow its activations: a fresh random generator's
    # image depended on what ran before it in this module, and some of them amplify
    # rounding by 12 uint8 levels between the SavedModel's graph and eager generation
    g = stand_in_generator()
    oasis_tf.convert.save_network(g, str(tmp_path / "g.keras"))
    result = run_cli("export", "--generator", tmp_path / "g.keras", "--export_dir",
                     tmp_path / "exp", "--model_name", "tiny", "--version", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    version_dir = tmp_path / "exp" / "tiny" / "2"
    assert "docker run" in result.stdout and str(version_dir) in result.stdout
    sigs = tf.saved_model.load(str(version_dir)).signatures
    assert "segment" not in sigs
    label = np.random.RandomState(2).randint(0, 5, (1, 64, 64)).astype(np.int32)
    got = sigs["serving_default"](label_map=tf.constant(label),
                                  seed=tf.constant([4], tf.int64))["image"].numpy()
    assert_images_match(got, inference.generate(g, label, seed=[4]).numpy())
