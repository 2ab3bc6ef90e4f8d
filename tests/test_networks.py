"""Construction, configs, saving and input validation of the networks."""

import keras
import numpy as np
import pytest

import oasis_tf
from oasis_tf.models.generator import generator_widths


def tiny_generator(**kw):
    args = dict(num_classes=5, image_size=(32, 64), base_channels=2, z_dim=3,
                num_res_blocks=4, spade_hidden=8)
    args.update(kw)
    return oasis_tf.OASISGenerator(**args)


def _inputs(g, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, g.num_classes, (batch, *g.image_size)).astype(np.int32)
    noise = rng.standard_normal((batch, g.z_dim)).astype(np.float32)
    return {"label": label, "noise": noise}


def test_generator_widths():
    assert generator_widths(64) == [1024, 1024, 1024, 512, 256, 128, 64]
    assert generator_widths(8, 4) == [128, 64, 32, 16, 8]
    assert generator_widths(1, 7) == [16, 16, 16, 16, 8, 4, 2, 1]


@pytest.mark.slow
def test_generator_output_and_noise_forms():
    g = tiny_generator()
    inputs = _inputs(g)
    image = g(inputs, training=False).numpy()
    assert image.shape == (2, 32, 64, 3) and image.dtype == np.float32
    assert np.abs(image).max() <= 1.0
    # [B, z] noise equals the same vector broadcast to [B, H, W, z]
    full = np.broadcast_to(inputs["noise"][:, None, None, :], (2, 32, 64, 3)).copy()
    np.testing.assert_allclose(g({"label": inputs["label"], "noise": full}).numpy(), image,
                               atol=1e-6)
    # noise matters, and a missing noise is drawn
    other = g({"label": inputs["label"], "noise": inputs["noise"] + 1.0}).numpy()
    assert np.abs(other - image).max() > 1e-4
    assert g({"label": inputs["label"]}).shape == (2, 32, 64, 3)


def test_generator_without_3d_noise_ignores_noise():
    g = tiny_generator(use_3d_noise=False)
    inputs = _inputs(g)
    a = g(inputs).numpy()
    b = g({"label": inputs["label"], "noise": inputs["noise"] * 3}).numpy()
    np.testing.assert_array_equal(a, b)
    assert g.fc.kernel.shape[2] == 5


def test_training_mode_updates_state_and_inference_does_not():
    g = tiny_generator()
    inputs = _inputs(g)
    state = [w.numpy().copy() for w in g.non_trainable_weights]
    g(inputs, training=False)
    for w, s in zip(g.non_trainable_weights, state):
        np.testing.assert_array_equal(w.numpy(), s)
    g(inputs, training=True)
    changed = [not np.array_equal(w.numpy(), s) for w, s in zip(g.non_trainable_weights, state)]
    assert all(changed)  # every u, v and running statistic moves once per train forward


@pytest.mark.parametrize("kwargs,message", [
    (dict(image_size=(36, 64)), r"cannot be produced by 4 blocks.*multiples of 2\*\*3 = 8"),
    (dict(image_size=(30, 64)), r"\(30, 64\)"),
    (dict(norm_type="group"), "norm_type` must be one of.*Received: norm_type='group'"),
    (dict(num_classes=0), r"num_classes` must be >= 1\. Received: num_classes=0"),
    (dict(spade_ks=4), "spade_ks` must be a positive odd int. Received: spade_ks=4"),
])
def test_generator_rejects_bad_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_generator(**kwargs)


def test_generator_rejects_bad_inputs():
    g = tiny_generator()
    label = np.zeros((2, 32, 64), np.int32)
    with pytest.raises(ValueError, match=r"got shape \(32, 64\)"):
        g({"label": label[0]})
    with pytest.raises(ValueError, match=r"needs 5 channels.*got shape \(2, 32, 64, 4\)"):
        g({"label": np.zeros((2, 32, 64, 4), np.float32)})
    with pytest.raises(ValueError, match=r"spatial size \(32, 32\)"):
        g({"label": np.zeros((2, 32, 32), np.int32)})
    with pytest.raises(ValueError, match=r"noise must be \[B, 3\].*got shape \(2, 4\)"):
        g({"label": label, "noise": np.zeros((2, 4), np.float32)})
    with pytest.raises(ValueError, match=r"integer class ids"):
        g({"label": label.astype(np.float32)})
    with pytest.raises(ValueError, match=r"unknown keys \['seg'\]"):
        g({"label": label, "seg": label})


def test_discriminator_output_and_validation():
    d = oasis_tf.OASISDiscriminator(num_classes=5, base_channels=4)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 128, 3)).astype(np.float32)
    logits = d(x, training=False)
    assert logits.shape == (2, 64, 128, 6) and logits.dtype == "float32"
    with pytest.raises(ValueError, match=r"multiples of 64.*\(1, 32, 64, 3\)"):
        d(np.zeros((1, 32, 64, 3), np.float32))
    with pytest.raises(ValueError, match=r"images \[B, H, W, 3\]; got shape \(1, 64, 64, 4\)"):
        d(np.zeros((1, 64, 64, 4), np.float32))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", [".keras", ".weights.h5"])
def test_save_and_restore(tmp_path, fmt):
    g = tiny_generator()
    d = oasis_tf.OASISDiscriminator(num_classes=5, base_channels=4)
    inputs = _inputs(g)
    g(inputs, training=True)  # make u, v and BN statistics non-trivial
    x = np.random.default_rng(1).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    d(x, training=True)
    for model, arg in ((g, inputs), (d, x)):
        path = tmp_path / f"{model.name}{fmt}"
        oasis_tf.convert.save_network(model, path)
        if fmt == ".keras":
            restored = keras.saving.load_model(path)
        else:
            restored = type(model).from_config(model.get_config())
            restored.load_weights(path)
        assert restored.get_config() == model.get_config()
        np.testing.assert_array_equal(restored(arg).numpy(), model(arg).numpy())
        for a, b in zip(restored.weights, model.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.slow
def test_save_network_refuses_bad_paths(tmp_path):
    g = tiny_generator()
    with pytest.raises(ValueError, match="must end with one of"):
        oasis_tf.convert.save_network(g, tmp_path / "g.h5")
    oasis_tf.convert.save_network(g, tmp_path / "g.keras")
    with pytest.raises(FileExistsError):
        oasis_tf.convert.save_network(g, tmp_path / "g.keras")
