"""Tests for oasis_tf.metrics: FID, mIoU and MS-SSIM diversity (light: CPU, small sizes)."""

import os
import warnings

import numpy as np
import pytest
import tensorflow as tf

from oasis_tf import metrics
from oasis_tf.metrics import extractors
from oasis_tf.metrics import fid as fid_module


# --------------------------------------------------------------------------
# FID
# --------------------------------------------------------------------------

def _psd_sqrt(m):
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def reference_fid(x, y):
    """Independent FID: Tr sqrt(s1 s2) = sum sqrt(eig(sqrt(s1) s2 sqrt(s1))), no sqrtm."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    mu1, mu2 = x.mean(0), y.mean(0)
    xc, yc = x - mu1, y - mu2
    s1 = xc.T @ xc / (len(x) - 1)
    s2 = yc.T @ yc / (len(y) - 1)
    r = _psd_sqrt(s1)
    m = r @ s2 @ r
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def _features(rng, n, d, shift=0.0, scale=1.0):
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return (rng.normal(size=(n, d)) @ mix) * scale + shift


def test_fid_matches_independent_reference():
    rng = np.random.default_rng(0)
    a = _features(rng, 300, 48)
    b = _features(rng, 250, 48, shift=0.3, scale=1.5)
    got = metrics.fid_from_features(a, b)
    want = reference_fid(a, b)
    assert want > 1.0
    assert abs(got - want) / want < 1e-6
    mu1, s1 = metrics.feature_statistics(a)
    mu2, s2 = metrics.feature_statistics(b)
    assert mu1.dtype == np.float64 and s1.dtype == np.float64
    np.testing.assert_allclose(s1, np.cov(a, rowvar=False), rtol=1e-12)
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(got, rel=1e-12)


def test_fid_singular_covariance_is_finite_and_matches_reference():
    # Fewer samples than dimensions: both covariances have rank N-1 < D.
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20, 64))
    b = rng.normal(size=(24, 64)) + 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the eps fallback may fire
        got = metrics.fid_from_features(a, b)
    want = reference_fid(a, b)
    assert np.isfinite(got)
    assert abs(got - want) / want < 1e-6


def test_fid_eps_fallback_when_sqrtm_not_finite(monkeypatch):
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(100, 8)), rng.normal(size=(100, 8)) + 1.0
    mu1, s1 = metrics.feature_statistics(a)
    mu2, s2 = metrics.feature_statistics(b)
    real_sqrtm = fid_module._sqrtm
    calls = []

    def flaky(m):
        calls.append(m)
        return np.full_like(m, np.nan) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(fid_module, "_sqrtm", flaky)
    with pytest.warns(RuntimeWarning, match="singular product"):
        got = metrics.frechet_distance(mu1, s1, mu2, s2, eps=1e-3)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (s1 + 1e-3 * np.eye(8)) @ (s2 + 1e-3 * np.eye(8)))
    assert np.isfinite(got)


def test_fid_large_imaginary_part_raises_small_one_dropped(monkeypatch):
    mu = np.zeros(3)
    sigma = np.eye(3)
    monkeypatch.setattr(fid_module, "_sqrtm", lambda m: np.eye(3) + 0.5j * np.eye(3))
    with pytest.raises(ValueError, match="maginary component"):
        metrics.frechet_distance(mu, sigma, mu, sigma)
    monkeypatch.setattr(fid_module, "_sqrtm", lambda m: np.eye(3) + 1e-9j * np.eye(3))
    assert metrics.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-12)


def test_fid_of_identical_sets_is_zero():
    # sqrtm(S @ S) reproduces S to ~1e-12 relative for a well-conditioned S; the
    # tolerance is relative to Tr(S) (the size of the terms that cancel): 1e-9 of
    # it leaves room for LAPACK differences while catching any real error
    # (a wrong sqrtm or covariance would be O(Tr S)).
    rng = np.random.default_rng(3)
    x = _features(rng, 400, 64)
    trace = np.trace(np.cov(x, rowvar=False))
    assert abs(metrics.fid_from_features(x, x)) < 1e-9 * trace
    # Rank-deficient S (N < D): sqrtm of a singular product is less accurate; 1e-6 of Tr(S).
    y = rng.normal(size=(30, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = metrics.fid_from_features(y, y)
    assert abs(value) < 1e-6 * np.trace(np.cov(y, rowvar=False))


def test_fid_shape_checks():
    with pytest.raises(ValueError, match="equal length"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="covariances"):
        metrics.frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="at least 2"):
        metrics.feature_statistics(np.zeros((1, 4)))


def test_statistics_npz_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    mu, sigma = metrics.feature_statistics(rng.normal(size=(50, 16)))
    path = metrics.save_statistics(tmp_path / "real_stats", mu, sigma)
    assert path.endswith(".npz")
    with np.load(path) as data:
        assert {"mu", "sigma"} <= set(data.files)
        np.testing.assert_array_equal(data["mu"], mu)
    mu2, sigma2 = metrics.load_statistics(path)
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(sigma2, sigma)

    # A pytorch-fid style file (float32, only mu/sigma) loads too.
    np.savez(tmp_path / "pt.npz", mu=mu.astype(np.float32), sigma=sigma.astype(np.float32))
    mu3, sigma3, meta = metrics.load_statistics(tmp_path / "pt.npz", with_metadata=True)
    assert mu3.dtype == np.float64 and meta == {}

    class Fake:
        name = "fake extractor"
        comparable_with_papers = False

    path = metrics.save_statistics(tmp_path / "labelled.npz", mu, sigma, extractor=Fake())
    _, _, meta = metrics.load_statistics(path, with_metadata=True)
    assert meta == {"extractor": "fake extractor", "comparable_with_papers": False}


def test_statistics_loading_errors(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        metrics.load_statistics(missing)
    np.savez(tmp_path / "nokeys.npz", mean=np.zeros(3), cov=np.eye(3))
    with pytest.raises(ValueError, match=r"nokeys\.npz.*\['mu', 'sigma'\]"):
        metrics.load_statistics(tmp_path / "nokeys.npz")
    np.savez(tmp_path / "badshape.npz", mu=np.zeros(3), sigma=np.eye(4))
    with pytest.raises(ValueError, match=r"badshape\.npz.*mismatched shapes"):
        metrics.load_statistics(tmp_path / "badshape.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="garbage.npz"):
        metrics.load_statistics(tmp_path / "garbage.npz")


class _LinearExtractor(metrics.InceptionFeatureExtractor):
    """A stand-in extractor: flattened pixels (tests the streaming, not Inception)."""

    name = "linear test extractor"

    def __init__(self):
        self.batch_sizes = []

    def __call__(self, images):
        images = np.asarray(images, np.float64)
        self.batch_sizes.append(images.shape[0])
        return images.reshape(images.shape[0], -1)


def test_compute_statistics_streams_batches():
    rng = np.random.default_rng(5)
    images = rng.uniform(-1, 1, size=(23, 2, 2, 3)).astype(np.float32)
    chunks = [images[:5], images[5:6], images[6:17], images[17:]]
    ex = _LinearExtractor()
    mu, sigma = metrics.compute_statistics(ex, chunks, batch_size=8)
    assert ex.batch_sizes == [8, 8, 7]
    want_mu, want_sigma = metrics.feature_statistics(images.reshape(23, -1))
    np.testing.assert_allclose(mu, want_mu, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sigma, want_sigma, rtol=1e-10, atol=1e-12)

    # tf.data dict batches (the project's batch format) and a plain array.
    ds = tf.data.Dataset.from_tensor_slices({"image": images}).batch(6)
    mu_ds, sigma_ds = metrics.compute_statistics(_LinearExtractor(), ds, batch_size=10)
    np.testing.assert_allclose(sigma_ds, want_sigma, rtol=1e-6, atol=1e-7)
    mu_arr, _ = metrics.compute_statistics(_LinearExtractor(), images, batch_size=10)
    np.testing.assert_allclose(mu_arr, want_mu, rtol=1e-10, atol=1e-12)


def test_compute_fid_caches_and_labels(tmp_path):
    rng = np.random.default_rng(6)
    real = rng.uniform(-1, 1, size=(12, 2, 2, 1)).astype(np.float32)
    fake = rng.uniform(-1, 1, size=(10, 2, 2, 1)).astype(np.float32)
    stats = tmp_path / "real.npz"
    result = metrics.compute_fid(_LinearExtractor(), real, fake, batch_size=5, real_statistics=stats)
    assert stats.exists()
    assert result["comparable_with_papers"] is False
    assert result["extractor"] == "linear test extractor"
    assert result["fid"] == pytest.approx(reference_fid(real.reshape(12, -1), fake.reshape(10, -1)), rel=1e-6)
    again = metrics.compute_fid(_LinearExtractor(), None, fake, batch_size=5, real_statistics=stats)
    assert again["fid"] == pytest.approx(result["fid"], rel=1e-12)

    class Other(_LinearExtractor):
        name = "another extractor"

    with pytest.raises(ValueError, match="cannot be compared"):
        metrics.compute_fid(Other(), None, fake, real_statistics=stats)


def test_keras_inception_preprocessing():
    x = np.linspace(-1, 1, 2 * 40 * 50 * 3, dtype=np.float32).reshape(2, 40, 50, 3)
    out = metrics.preprocess_keras_inception(x).numpy()
    assert out.shape == (2, 299, 299, 3) and out.dtype == np.float32
    assert out.min() >= -1.0 and out.max() <= 1.0
    const = metrics.preprocess_keras_inception(np.full((1, 8, 8, 3), 0.25, np.float32)).numpy()
    np.testing.assert_allclose(const, 0.25, atol=1e-6)  # bilinear keeps constants, no rescale of [-1, 1]
    u8 = metrics.preprocess_keras_inception(np.array([0, 255], np.uint8).reshape(1, 1, 2, 1).repeat(3, -1))
    assert u8.numpy().min() == pytest.approx(-1.0) and u8.numpy().max() == pytest.approx(1.0)
    keep = metrics.preprocess_keras_inception(np.zeros((1, 299, 299, 3), np.float32))
    assert keep.shape == (1, 299, 299, 3)


def test_keras_inception_missing_weights_error(tmp_path, monkeypatch):
    if os.path.exists(os.path.join("/tmp", ".keras", "models", extractors.KERAS_INCEPTION_WEIGHTS_FILE)):
        pytest.skip("weights are cached in /tmp/.keras on this machine")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError) as info:
        metrics.KerasInceptionV3Extractor()
    message = str(info.value)
    assert str(tmp_path / "keras_home" / "models" / extractors.KERAS_INCEPTION_WEIGHTS_FILE) in message
    assert extractors.KERAS_INCEPTION_WEIGHTS_URL in message and "weights_path" in message
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        metrics.KerasInceptionV3Extractor(weights_path=str(tmp_path / "missing.h5"))
    assert metrics.KerasInceptionV3Extractor.comparable_with_papers is False
    assert metrics.StandardFIDInceptionExtractor.comparable_with_papers is True


_FAKE_W = np.random.default_rng(7).normal(size=(3, 2048)).astype(np.float32)


def _write_fake_fid_graph(path):
    """A tiny GraphDef with the FID Inception graph's tensor names and input plumbing:
    Cast [H, W, 3] -> ExpandDims [1, H, W, 3] -> ResizeBilinear 299 -> Sub 128 -> Mul 1/128
    -> average over 299 x 299 -> (1x1 conv to 2048, relu) = pool_3 [1, 1, 1, 2048]."""
    graph = tf.Graph()
    with graph.as_default():
        decoded = tf.compat.v1.placeholder(tf.float32, [None, None, 3], name="Cast")
        expanded = tf.expand_dims(decoded, 0, name="ExpandDims")
        resized = tf.raw_ops.ResizeBilinear(images=expanded, size=tf.constant([299, 299]), name="ResizeBilinear")
        normed = tf.multiply(tf.subtract(resized, 128.0, name="Sub"), 1.0 / 128.0, name="Mul")
        pooled = tf.nn.avg_pool2d(normed, 299, 1, "VALID")  # [1, 1, 1, 3]; pooling first keeps it cheap
        tf.nn.relu(tf.nn.conv2d(pooled, tf.constant(_FAKE_W.reshape(1, 1, 3, 2048)), 1, "VALID"), name="pool_3")
    assert expanded.shape.as_list()[0] == 1  # the real graph's static batch size, too
    with open(path, "wb") as fh:
        fh.write(graph.as_graph_def().SerializeToString())


def test_standard_fid_extractor_plumbing_with_fake_graph(tmp_path):
    path = tmp_path / "classify_image_graph_def.pb"
    _write_fake_fid_graph(path)
    extractor = metrics.StandardFIDInceptionExtractor(str(tmp_path))  # a folder works too
    assert extractor.comparable_with_papers is True
    assert extractor.describe()["comparable_with_papers"] is True

    images = np.random.default_rng(8).uniform(-1, 1, size=(3, 20, 24, 3)).astype(np.float32)
    feats = extractor(images)  # batch 3 through a graph built for batch 1
    assert feats.shape == (3, 2048) and feats.dtype == np.float64

    # Expected: [-1, 1] -> 0..255, TF1 bilinear resize to 299, (x - 128) / 128, then the fake head.
    x = tf.raw_ops.ResizeBilinear(images=(images + 1.0) * 127.5, size=[299, 299]).numpy()
    x = (x - 128.0) / 128.0
    want = np.maximum(x.mean(axis=(1, 2)) @ _FAKE_W, 0)
    np.testing.assert_allclose(feats, want, rtol=1e-4, atol=1e-5)

    # uint8 images are taken as 0..255.
    u8 = np.round((images + 1.0) * 127.5).astype(np.uint8)
    np.testing.assert_allclose(extractor(u8), extractor(u8.astype(np.float32) / 127.5 - 1.0), rtol=1e-5, atol=1e-6)


def test_standard_fid_extractor_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="inception-2015-12-05.tgz"):
        metrics.StandardFIDInceptionExtractor(str(tmp_path / "classify_image_graph_def.pb"))
    graph = tf.Graph()
    with graph.as_default():
        tf.constant(1.0, name="something_else")
    wrong = tmp_path / "wrong.pb"
    wrong.write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(ValueError, match="no node 'ExpandDims'"):
        metrics.StandardFIDInceptionExtractor(str(wrong))


# --------------------------------------------------------------------------
# mIoU
# --------------------------------------------------------------------------

def test_miou_perfect_prediction():
    true = np.array([[[0, 1, 1], [2, 2, 3]]])
    miou, per_class = metrics.mean_iou(true, true, num_classes=4)
    assert miou == 1.0
    assert np.isnan(per_class[0])  # don't-care class is never scored
    np.testing.assert_array_equal(per_class[1:], [1.0, 1.0, 1.0])


def test_miou_disjoint_prediction():
    true = np.full((1, 4, 4), 1)
    pred = np.full((1, 4, 4), 2)
    miou, per_class = metrics.mean_iou(pred, true, num_classes=3)
    assert miou == 0.0
    np.testing.assert_array_equal(per_class[1:], [0.0, 0.0])


def test_miou_dontcare_pixels_excluded():
    true = np.array([1, 1, 2, 2, 0, 0, 0])
    pred = np.array([1, 1, 2, 2, 1, 2, 3])  # anything predicted on don't-care pixels is ignored
    miou, per_class = metrics.mean_iou(pred, true, num_classes=4)
    assert miou == 1.0
    assert np.isnan(per_class[3])  # only "predicted" on don't-care pixels -> absent
    cm = metrics.confusion_matrix(pred, true, num_classes=4)
    assert cm.sum() == 4 and cm[0].sum() == 0
    # ignore_index=None scores every pixel, class 0 included.
    miou_all, per_all = metrics.mean_iou(pred, true, num_classes=4, ignore_index=None)
    assert per_all[0] == 0.0 and per_all[3] == 0.0 and miou_all < 1.0
    # Predicting the don't-care id on a real pixel is a miss of that class.
    _, per = metrics.mean_iou(np.array([1, 0]), np.array([1, 1]), num_classes=2)
    assert per[1] == 0.5


def test_miou_absent_classes_are_nan_and_not_averaged():
    true = np.array([1, 1, 2, 2])
    pred = np.array([1, 1, 2, 2])
    miou, per_class = metrics.mean_iou(pred, true, num_classes=6)
    assert miou == 1.0
    assert np.isnan(per_class[[0, 3, 4, 5]]).all()
    # A class only predicted (false positives) is present: IoU 0, and it counts.
    miou, per_class = metrics.mean_iou(np.array([1, 2]), np.array([1, 1]), num_classes=3)
    assert per_class[1] == 0.5 and per_class[2] == 0.0 and miou == 0.25
    # Nothing to score at all.
    miou, per_class = metrics.mean_iou(np.array([3]), np.array([0]), num_classes=4)
    assert np.isnan(miou) and np.isnan(per_class).all()


def test_miou_partial_case_by_hand():
    true = np.array([[1, 1, 1], [2, 2, 0]])
    pred = np.array([[1, 1, 2], [2, 1, 3]])
    cm = metrics.confusion_matrix(pred, true, num_classes=4)
    want = np.zeros((4, 4), np.int64)
    want[1, 1], want[1, 2], want[2, 2], want[2, 1] = 2, 1, 1, 1
    np.testing.assert_array_equal(cm, want)
    miou, per_class = metrics.mean_iou(pred, true, num_classes=4)
    # class 1: TP 2, FP 1, FN 1 -> 2/4; class 2: TP 1, FP 1, FN 1 -> 1/3
    assert per_class[1] == pytest.approx(0.5)
    assert per_class[2] == pytest.approx(1 / 3)
    assert miou == pytest.approx((0.5 + 1 / 3) / 2)


def test_miou_accumulator_and_ignore_255():
    rng = np.random.default_rng(9)
    true = rng.integers(0, 5, size=(4, 8, 8))
    pred = rng.integers(0, 5, size=(4, 8, 8))
    acc = metrics.MeanIoUAccumulator(num_classes=5)
    acc.update(pred[:1], true[:1])
    acc.update(pred[1:], true[1:])
    miou, per_class = acc.result()
    want_miou, want_per = metrics.mean_iou(pred, true, num_classes=5)
    assert miou == want_miou
    np.testing.assert_array_equal(per_class, want_per)
    acc.reset()
    assert acc.confusion.sum() == 0

    # Cityscapes-style ignore id outside the class range.
    miou, per_class = metrics.mean_iou(np.array([0, 1, 2]), np.array([0, 1, 255]), num_classes=2, ignore_index=255)
    assert miou == 1.0 and per_class.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="predicted class ids"):
        metrics.mean_iou(np.array([5]), np.array([1]), num_classes=3)
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.mean_iou(np.zeros(3, int), np.zeros(4, int), num_classes=3)


def test_segment_with_keras_callable_and_savedmodel(tmp_path):
    import keras

    images = np.random.default_rng(10).uniform(-1, 1, size=(2, 4, 5, 3)).astype(np.float32)
    want = np.argmax(images, axis=-1)

    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Activation("linear")(inputs))
    np.testing.assert_array_equal(metrics.segment_with(model, images), want)
    np.testing.assert_array_equal(metrics.segment_with(lambda x: np.argmax(x, -1).astype(np.int32), images), want)
    np.testing.assert_array_equal(metrics.segment_with(lambda x: want[..., None], images), want)
    with pytest.raises(ValueError, match="integer ids"):
        metrics.segment_with(lambda x: images[..., 0], images)

    class Segmenter(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def segment(self, images):
            return {"logits": images * 2.0, "ids": tf.argmax(images, axis=-1, output_type=tf.int32)}

    module = Segmenter()
    path = str(tmp_path / "segmenter")
    tf.saved_model.save(module, path, signatures={"segment": module.segment})
    np.testing.assert_array_equal(metrics.segment_with(path, images), want)
    with pytest.raises(FileNotFoundError, match="not_there"):
        metrics.segment_with(str(tmp_path / "not_there"), images)


# --------------------------------------------------------------------------
# Diversity (MS-SSIM)
# --------------------------------------------------------------------------

def test_ms_ssim_scales():
    assert metrics.ms_ssim_scales(161, 200) == 5
    assert metrics.ms_ssim_scales(160, 160) == 4
    assert metrics.ms_ssim_scales(64, 64) == 3
    assert metrics.ms_ssim_scales(32, 48) == 2
    assert metrics.ms_ssim_scales(10, 10) == 0


def test_ms_ssim_diversity_identical_and_different():
    rng = np.random.default_rng(11)
    a = rng.uniform(-1, 1, size=(3, 64, 64, 3)).astype(np.float32)
    b = rng.uniform(-1, 1, size=(3, 64, 64, 3)).astype(np.float32)
    assert metrics.ms_ssim_diversity(a, a) == pytest.approx(1.0, abs=1e-5)
    different = metrics.ms_ssim_diversity(a, b)
    assert 0.0 <= different < 0.5
    # A mild perturbation is in between.
    near = metrics.ms_ssim_diversity(a, np.clip(a + 0.1 * (b - a), -1, 1))
    assert different < near < 1.0


def test_ms_ssim_diversity_full_five_scales_and_too_small():
    rng = np.random.default_rng(12)
    a = rng.uniform(-1, 1, size=(1, 161, 161, 3)).astype(np.float32)
    assert metrics.ms_ssim_diversity(a, a) == pytest.approx(1.0, abs=1e-5)
    # 160 px is one short for 5 scales in TF itself, so `ms_ssim_scales` agrees with TF; 4 are used.
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.image.ssim_multiscale(a[:, :160, :160], a[:, :160, :160], 2.0)
    assert metrics.ms_ssim_diversity(a[:, :160, :160], a[:, :160, :160]) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="smaller than"):
        metrics.ms_ssim_diversity(a[:, :8, :8], a[:, :8, :8])
    with pytest.raises(ValueError, match="equal"):
        metrics.ms_ssim_diversity(a, a[:, :100])
