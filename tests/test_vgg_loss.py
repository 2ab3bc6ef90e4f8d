"""VGGLoss against the official definition in PyTorch (models/losses.py, vggloss.py).

The reference is torchvision's VGG19 ``features`` layout built here as an
``nn.Sequential`` in tests/torch_train_reference.py (not torchvision) on random weights, with the official
slices, slice weights, L1 means and detached real features."""

import numpy as np
import pytest
import tensorflow as tf

from oasis_tf import losses
from oasis_tf.losses.vgg import VGGLoss, vgg_loss_from_config

torch = pytest.importorskip("torch")

from torch_train_reference import official_vgg_loss, vgg19_features, vgg19_state_dict  # noqa: E402


@pytest.fixture(scope="module")
def reference():
    features = vgg19_features()
    state = vgg19_state_dict(features)
    state["classifier.0.weight"] = np.zeros((4, 2), np.float32)  # ignored
    rng = np.random.default_rng(0)
    fake = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    real = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    x = torch.tensor(fake.transpose(0, 3, 1, 2), requires_grad=True)
    y = torch.tensor(real.transpose(0, 3, 1, 2), requires_grad=True)
    loss = official_vgg_loss(features, x, y)
    loss.backward()
    assert y.grad is None or float(y.grad.abs().max()) == 0.0
    return dict(state=state, fake=fake, real=real, loss=float(loss.detach()),
                grad=x.grad.numpy().transpose(0, 2, 3, 1))


def _ours(vgg, fake, real):
    fake = tf.constant(fake)
    real = tf.constant(real)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([fake, real])
        loss = vgg(fake, real)
    return float(loss), tape.gradient(loss, fake).numpy(), tape.gradient(loss, real)


def test_matches_official_loss_and_gradient(reference):
    vgg = losses.VGGLoss(weights=reference["state"])
    loss, grad, real_grad = _ours(vgg, reference["fake"], reference["real"])
    assert reference["loss"] > 0
    assert abs(loss - reference["loss"]) <= 1e-4 * abs(reference["loss"]), \
        (loss, reference["loss"])
    scale = np.max(np.abs(reference["grad"]))
    np.testing.assert_allclose(grad, reference["grad"], rtol=0, atol=1e-4 * scale)
    # the real image's features are held constant
    assert real_grad is None or not np.any(real_grad.numpy())


def test_reads_pth_and_npz_files(reference, tmp_path):
    pth = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save({k: torch.from_numpy(v) for k, v in reference["state"].items()}, pth)
    npz = tmp_path / "vgg19.npz"
    np.savez(npz, **reference["state"])
    for path in (pth, npz):
        vgg = VGGLoss(weights=str(path))
        assert vgg.get_config()["weights"] == str(path)
        loss = float(vgg(reference["fake"], reference["real"]))
        assert abs(loss - reference["loss"]) <= 1e-4 * reference["loss"], path


def test_global_batch_size_gives_each_replica_its_share(reference):
    vgg = VGGLoss(weights=reference["state"])
    full = float(vgg(reference["fake"], reference["real"]))
    half_a = float(vgg(reference["fake"][:1], reference["real"][:1], batch_size=2))
    half_b = float(vgg(reference["fake"][1:], reference["real"][1:], batch_size=2))
    assert abs(half_a + half_b - full) <= 1e-5 * full


def test_missing_and_mis_shaped_keys_are_named(reference):
    state = dict(reference["state"])
    del state["features.21.bias"]
    state["features.5.weight"] = state["features.5.weight"][:, :3]
    with pytest.raises(ValueError) as info:
        VGGLoss(weights=state)
    message = str(info.value)
    assert "features.21.bias" in message and "features.5.weight" in message
    assert "[128, 3, 3, 3]" in message


def test_no_weights_names_the_file_and_where_to_get_it(tmp_path):
    with pytest.raises(ValueError, match="vgg19-dcbb9e9d.pth.*model zoo"):
        VGGLoss(weights=None)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        VGGLoss(weights=str(tmp_path / "nope.pth"))
    from oasis_tf.config import load_config

    with pytest.raises(ValueError, match="train.vgg_loss.*vgg19-dcbb9e9d.pth.*model zoo"):
        load_config("synthetic", ["train.vgg_loss=true"])
    assert vgg_loss_from_config(load_config("synthetic").train) is None


def test_keras_imagenet_layers_map_to_torchvision_indices(monkeypatch):
    """The explicit Keras choice takes every conv in order (weights=None here: the
    ImageNet file is a download) and preprocesses like Keras' VGG19 expects."""
    import keras

    from oasis_tf.losses import vgg as vgg_loss

    original = keras.applications.VGG19
    monkeypatch.setattr(keras.applications, "VGG19",
                        lambda include_top, weights: original(include_top=include_top,
                                                              weights=None))
    vgg = VGGLoss(weights="keras_imagenet")
    assert vgg.get_config()["weights"] == "keras_imagenet"
    assert sorted(vgg.kernels) == sorted(vgg_loss._CONV_CHANNELS)
    for index, (cin, cout) in vgg_loss._CONV_CHANNELS.items():
        assert tuple(vgg.kernels[index][0].shape) == (3, 3, cin, cout)
    x = vgg._prepare(tf.fill([1, 2, 2, 3], -1.0))
    np.testing.assert_allclose(x.numpy()[0, 0, 0], [-103.939, -116.779, -123.68], rtol=1e-6)
