"""The converted official `small` checkpoint reproduces the official outputs.

Every stage is compared, so a failure points at its layer.
"""

import numpy as np
import pytest

import oasis_tf

TOL = 1e-4


def nhwc(a):
    return np.transpose(a, (0, 2, 3, 1))


@pytest.fixture(scope="module")
def small(reference_dir):
    folder = reference_dir / "small"
    return folder, dict(np.load(folder / "io.npz"))


@pytest.fixture(scope="module", params=["npz", "pth"])
def networks(request, small):
    folder, _ = small
    g = oasis_tf.convert.load_official_generator(folder / f"G_state.{request.param}",
                                                 image_size=(64, 64))
    d = oasis_tf.convert.load_official_discriminator(folder / f"D_state.{request.param}")
    return g, d


def _assert_close(actual, expected, what):
    err = float(np.max(np.abs(np.asarray(actual) - expected)))
    assert err < TOL, f"{what}: max abs error {err:.3g} >= {TOL}"


@pytest.mark.slow
def test_inferred_architecture(networks):
    g, d = networks
    assert (g.num_classes, g.z_dim, g.base_channels, g.num_res_blocks) == (13, 64, 8, 6)
    assert g.widths == [128, 128, 128, 64, 32, 16, 8]
    assert g.spectral_norm and g.norm_type == "syncbatch"
    assert (d.num_classes, d.base_channels, d.spectral_norm) == (13, 16, True)
    assert _trainable(g) == 4_822_971  # official parameter counts (fixture config.json)
    assert _trainable(d) == 349_062


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_generator_stages(networks, small):
    g, _ = networks
    _, io = small
    out = g.intermediates({"label": io["label"], "noise": io["z"]}, training=False)
    stages = ["fc_in", "fc_out"] + [f"body{i}_out" for i in range(6)] + ["pre_tanh"]
    for stage in stages:
        _assert_close(out[stage], nhwc(io["g_" + stage]), f"generator {stage}")
    _assert_close(out["image"], nhwc(io["g_out"]), "generator output g_out")


def test_generator_onehot_input(networks, small):
    g, _ = networks
    _, io = small
    image = g({"label": nhwc(io["label_onehot"]), "noise": io["z"]}, training=False)
    _assert_close(image, nhwc(io["g_out"]), "generator output from one-hot labels")


def test_discriminator_stages(networks, small):
    _, d = networks
    _, io = small
    out = d.intermediates(nhwc(io["real_image"]), training=False)
    for i in range(6):
        for kind in ("down", "up"):
            stage = f"{kind}{i}_out"
            _assert_close(out[stage], nhwc(io[f"d_real_{stage}"]), f"discriminator {stage}")


@pytest.mark.slow
@pytest.mark.parametrize("image_key,logits_key", [
    ("real_image", "d_out_real"), ("g_out", "d_out_fake"), ("mixed_image", "d_out_mixed")])
def test_discriminator_logits(networks, small, image_key, logits_key):
    _, d = networks
    _, io = small
    _assert_close(d(nhwc(io[image_key]), training=False), nhwc(io[logits_key]), logits_key)


def test_export_round_trips_the_state_dict(networks, small):
    folder, _ = small
    g, d = networks
    for model, name in ((g, "G_state.npz"), (d, "D_state.npz")):
        original = oasis_tf.convert.read_state_dict(folder / name)
        exported = oasis_tf.convert.export_state_dict(model)
        assert list(exported) == list(original)
        for key, value in original.items():
            np.testing.assert_array_equal(exported[key], value, err_msg=key)
