"""The opt-in initialisation gain (``train.init_gain``): every conv kernel of G and D
redrawn from xavier_normal(gain); the official 0.02 (the default) changes nothing."""

import numpy as np
import pytest

from oasis_tf.config import OFFICIAL_INIT_GAIN, load_config
from oasis_tf.layers.spectral_norm import SNConv2D
from oasis_tf.training.trainer import build_model

TINY = ["model.g_channels=4", "model.d_channels=4", "model.z_dim=4", "model.num_res_blocks=3",
        "train.batch_size=2"]


def _kernels(network):
    return [layer.kernel for layer in network._flatten_layers() if isinstance(layer, SNConv2D)]


def _xavier_std(kernel, gain):
    kh, kw, cin, cout = kernel.shape
    return gain * np.sqrt(2.0 / (kh * kw * (cin + cout)))


@pytest.mark.slow
@pytest.mark.parametrize("gain", [OFFICIAL_INIT_GAIN, 1.0])
def test_kernels_follow_the_gain_and_the_ema_copies_them(gain):
    model = build_model(load_config("synthetic", overrides=TINY + [f"train.init_gain={gain}"]))
    for network in (model.generator, model.discriminator):
        big = [k for k in _kernels(network) if np.prod(k.shape) >= 2000]
        assert big
        for k in big:
            ratio = float(np.std(np.asarray(k))) / _xavier_std(k, gain)
            assert 0.8 < ratio < 1.2, (k.path, ratio)
    for a, b in zip(model.generator.weights, model.ema_generator.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_same_seed_same_weights_and_official_default():
    overrides = TINY + ["train.init_gain=1.0"]
    a = build_model(load_config("synthetic", overrides=overrides))
    b = build_model(load_config("synthetic", overrides=overrides))
    for x, y in zip(a.discriminator.weights, b.discriminator.weights):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert load_config("ade20k").train.init_gain == OFFICIAL_INIT_GAIN
    with pytest.raises(ValueError, match="init_gain"):
        load_config("synthetic", overrides=["train.init_gain=0"])
