"""Checkpoint conversion for official configurations without a stored fixture,
checked against an independent PyTorch forward (tests/torch_reference.py),
plus the error paths and the command-line tool."""

import os

import numpy as np
import pytest

import oasis_tf
from oasis_tf.convert import CheckpointMismatchError

torch = pytest.importorskip("torch", reason="the PyTorch reference forward needs torch")
import torch_reference as ref  # noqa: E402


def _random_label(num_classes, size, seed):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, num_classes, (2, size[0] // 8, size[1] // 8))
    label = np.repeat(np.repeat(coarse, 8, 1), 8, 2)
    return label.astype(np.int32)


def _torch_generator(sd, label, z, num_classes, latent):
    onehot = torch.nn.functional.one_hot(torch.as_tensor(label).long(), num_classes)
    onehot = onehot.permute(0, 3, 1, 2).float()
    zt = None if z is None else torch.as_tensor(z)
    with torch.no_grad():
        return ref.generator(sd, onehot, zt, latent).permute(0, 2, 3, 1).numpy()


GENERATOR_CASES = {
    # name: (num_classes, ch, z_dim, image_size, use_3d_noise, spectral_norm, batch_norm, hint,
    #        spade_ks)
    "cityscapes_aspect2": (35, 4, 64, (64, 128), True, True, True, {}, 3),
    "ade20k_classes_z16": (151, 2, 16, (64, 64), True, True, True, {"num_classes": 151}, 3),
    "no_3d_noise_no_sn_instance": (20, 2, 64, (32, 64), False, False, False,
                                   {"use_3d_noise": False}, 3),
    # official --spade_ks 5 (inferred from the SPADE weights' shapes)
    "spade_ks5": (13, 2, 8, (64, 64), True, True, True, {"num_classes": 13}, 5),
}


@pytest.mark.parametrize("case", sorted(GENERATOR_CASES))
def test_generator_matches_reference_forward(case):
    c, ch, z_dim, size, noise3d, sn, bn, hint, spade_ks = GENERATOR_CASES[case]
    sd = ref.random_state_dict(ref.generator_shapes(c, ch, z_dim, noise3d, sn, bn, spade_ks),
                               seed=1)
    g = oasis_tf.convert.load_official_generator(sd, image_size=size, **hint)
    assert (g.num_classes, g.base_channels, g.spectral_norm) == (c, ch, sn)
    assert g.spade_ks == spade_ks
    assert oasis_tf.convert.export_state_dict(g).keys() == sd.keys()
    assert g.norm_type == ("syncbatch" if bn else "instance")
    if noise3d:
        assert g.z_dim == z_dim
    label = _random_label(c, size, seed=2)
    z = np.random.default_rng(3).standard_normal((2, z_dim)).astype(np.float32)
    latent = (size[0] // 32, size[1] // 32)
    expected = _torch_generator(sd, label, z if noise3d else None, c, latent)
    actual = g({"label": label, "noise": z}, training=False).numpy()
    assert actual.shape == (2, *size, 3)
    assert np.abs(actual - expected).max() < 1e-4
    assert expected.std() > 0.05  # the comparison is not between two constants


@pytest.mark.parametrize("num_classes,base,sn,size", [
    (35, 128, True, (64, 128)),    # the full-width official discriminator, Cityscapes aspect
    (183, 8, False, (64, 64)),     # COCO-Stuff class count, no spectral norm
])
def test_discriminator_matches_reference_forward(num_classes, base, sn, size):
    sd = ref.random_state_dict(ref.discriminator_shapes(num_classes, base, sn), seed=4)
    d = oasis_tf.convert.load_official_discriminator(sd)
    assert (d.num_classes, d.base_channels, d.spectral_norm) == (num_classes, base, sn)
    image = np.random.default_rng(5).uniform(-1, 1, (2, *size, 3)).astype(np.float32)
    with torch.no_grad():
        expected = ref.discriminator(sd, torch.as_tensor(image).permute(0, 3, 1, 2))
    expected = expected.permute(0, 2, 3, 1).numpy()
    actual = d(image, training=False).numpy()
    assert actual.shape == (2, *size, num_classes + 1)
    scale = np.abs(expected).max()
    assert np.abs(actual - expected).max() < 1e-4 * max(1.0, scale)


def test_full_width_discriminator_parameter_count():
    d = oasis_tf.OASISDiscriminator(num_classes=151)
    shapes = ref.discriminator_shapes(151, 128)
    expected = sum(int(np.prod(s)) for k, s in shapes.items()
                   if not k.endswith(("weight_u", "weight_v")))
    assert sum(int(np.prod(w.shape)) for w in d.trainable_weights) == expected
    assert 22.0e6 < expected < 22.6e6  # "~22.3M parameters" (fixture README)


def test_every_problem_is_reported_at_once_and_nothing_is_loaded():
    shapes = ref.discriminator_shapes(13, 16)
    sd = ref.random_state_dict(shapes, seed=6)
    d = oasis_tf.OASISDiscriminator(num_classes=13, base_channels=16)
    before = [w.numpy().copy() for w in d.weights]
    bad = dict(sd)
    del bad["body_down.3.conv2.1.bias"]
    bad["body_down.9.conv1.1.bias"] = np.zeros(4, np.float32)
    bad["body_up.2.conv1.2.weight_orig"] = np.zeros((1, 2, 3, 3), np.float32)
    with pytest.raises(CheckpointMismatchError) as info:
        oasis_tf.convert.assign_state_dict(d, bad, source="bad_D.pth")
    message = str(info.value)
    assert "bad_D.pth" in message and "nothing was loaded" in message
    assert "body_down.3.conv2.1.bias" in message          # missing
    assert "body_down.9.conv1.1.bias" in message          # unexpected
    assert "body_up.2.conv1.2.weight_orig: expected [32, 64, 3, 3], got [1, 2, 3, 3]" in message
    for w, b in zip(d.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)


def test_class_and_noise_split_is_validated():
    sd = ref.random_state_dict(ref.generator_shapes(13, 2, 64), seed=7)
    with pytest.raises(CheckpointMismatchError, match="77 input channels"):
        oasis_tf.convert.load_official_generator(sd, image_size=(64, 64), z_dim=64,
                                                 num_classes=20)
    with pytest.raises(CheckpointMismatchError, match="cannot be split"):
        oasis_tf.convert.load_official_generator(sd, image_size=(64, 64), z_dim=100)
    with pytest.raises(ValueError, match="image_size is needed"):
        oasis_tf.convert.load_official_generator(sd)
    with pytest.raises(ValueError, match="holds a generator"):
        oasis_tf.convert.load_official_discriminator(sd)


@pytest.mark.slow
def test_tool_converts_and_the_output_reloads(tmp_path, reference_dir, run_cli):
    small = reference_dir / "small"
    out = tmp_path / "g.keras"
    result = run_cli("convert", "--input", str(small / "G_state.pth"), "--output", str(out),
                     "--image_size", "64,64")
    assert result.returncode == 0, result.stderr
    assert "4,822,971 parameters" in result.stdout
    io = np.load(small / "io.npz")
    g = oasis_tf.convert.load_official_generator(small / "G_state.npz", image_size=(64, 64))
    loaded = __import__("keras").saving.load_model(out)
    inputs = {"label": io["label"], "noise": io["z"]}
    np.testing.assert_allclose(loaded(inputs).numpy(), g(inputs).numpy(), atol=1e-6)

    out_d = tmp_path / "d.weights.h5"
    result = run_cli("convert", "--input", str(small / "D_state.npz"), "--output", str(out_d))
    assert result.returncode == 0, result.stderr
    d = oasis_tf.OASISDiscriminator(num_classes=13, base_channels=16)
    d.load_weights(out_d)
    expected = oasis_tf.convert.load_official_discriminator(small / "D_state.npz")
    image = np.transpose(io["real_image"], (0, 2, 3, 1))
    np.testing.assert_allclose(d(image).numpy(), expected(image).numpy(), atol=1e-6)


@pytest.mark.slow
def test_tool_writes_nothing_on_a_bad_checkpoint(tmp_path, run_cli):
    sd = ref.random_state_dict(ref.discriminator_shapes(13, 16), seed=8)
    sd["layer_up_last.weight"] = np.zeros((14, 3, 1, 1), np.float32)
    src = tmp_path / "bad_D.npz"
    oasis_tf.convert.write_state_dict_npz(sd, src)
    out = tmp_path / "d.keras"
    result = run_cli("convert", "--input", str(src), "--output", str(out))
    assert result.returncode == 1
    assert "layer_up_last.weight: expected [14, 8, 1, 1], got [14, 3, 1, 1]" in result.stderr
    assert not out.exists() and os.listdir(tmp_path) == ["bad_D.npz"]


@pytest.mark.slow
def test_tool_num_classes_must_agree_with_the_weights(tmp_path, run_cli):
    """--num_classes that contradicts a discriminator's weights is refused; for a
    generator (whose first layer takes z_dim + num_classes channels) the split used
    is printed, and one that leaves no noise channels is refused."""
    d_src = tmp_path / "D.npz"
    oasis_tf.convert.write_state_dict_npz(
        ref.random_state_dict(ref.discriminator_shapes(13, 16), seed=9), d_src)
    result = run_cli("convert", "--input", str(d_src), "--output", str(tmp_path / "d.keras"),
                     "--num_classes", "20")
    assert result.returncode == 1
    assert "--num_classes 20 contradicts the weights" in result.stderr
    assert "num_classes=13" in result.stderr and not (tmp_path / "d.keras").exists()

    g_src = tmp_path / "G.npz"
    oasis_tf.convert.write_state_dict_npz(
        ref.random_state_dict(ref.generator_shapes(13, 2, 64), seed=10), g_src)
    result = run_cli("convert", "--input", str(g_src), "--output", str(tmp_path / "g.keras"),
                     "--image_size", "64,64", "--num_classes", "13")
    assert result.returncode == 0, result.stderr
    assert "split used: num_classes=13, z_dim=64 (from --num_classes)" in result.stdout
    result = run_cli("convert", "--input", str(g_src), "--output", str(tmp_path / "g2.keras"),
                     "--image_size", "64,64", "--num_classes", "77")
    assert result.returncode == 1 and "cannot be split" in result.stderr
