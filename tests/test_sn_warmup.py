"""The opt-in spectral-norm warm-up (``train.spectral_norm_warmup``): power iterations
on the initial weights, so sigma starts at the largest singular value; off by default."""

import keras
import numpy as np
import pytest

from oasis_tf.config import load_config
from oasis_tf.layers.spectral_norm import SNConv2D, spectral_norm_warmup
from oasis_tf.models.factory import discriminator_from_config, generator_from_config
from oasis_tf.models.oasis import OASIS
from oasis_tf.training.trainer import build_model

TINY = ["model.g_channels=4", "model.d_channels=4", "model.z_dim=4", "model.num_res_blocks=3",
        "train.batch_size=2"]


def _sn_layers(network):
    return [layer for layer in network._flatten_layers()
            if isinstance(layer, SNConv2D) and layer.spectral_norm]


def _true_sigma(layer):
    w = np.asarray(layer.kernel).reshape(-1, layer.filters).T  # [out, kh*kw*in]
    return float(np.linalg.svd(w, compute_uv=False)[0])


def _sn_state(model):
    return [np.asarray(v) for net in (model.generator, model.discriminator, model.ema_generator)
            for layer in _sn_layers(net) for v in (layer.sn_u, layer.sn_v)]


def test_power_iteration_converges_to_largest_singular_value():
    keras.utils.set_random_seed(1)
    layer = SNConv2D(8, 3, spectral_norm=True)
    layer.build((None, 5, 5, 6))
    u0 = np.asarray(layer.sn_u).copy()
    assert float(layer.power_iteration(0)) == pytest.approx(
        float(u0 @ np.asarray(layer.kernel).reshape(-1, 8).T @ np.asarray(layer.sn_v)))
    np.testing.assert_array_equal(np.asarray(layer.sn_u), u0)  # 0 iterations: no change
    sigma = float(layer.power_iteration(200))
    assert sigma == pytest.approx(_true_sigma(layer), rel=1e-4)
    # stored: the inference kernel is W / sigma_max, i.e. spectral norm 1
    w = np.asarray(layer.normalized_kernel(training=False)).reshape(-1, 8).T
    assert np.linalg.svd(w, compute_uv=False)[0] == pytest.approx(1.0, rel=1e-4)
    assert SNConv2D(4, 3).power_iteration(5) is None  # no spectral norm: nothing to do


@pytest.fixture(scope="module")
def warmed_model():
    keras.utils.set_random_seed(0)
    return build_model(load_config("synthetic", overrides=TINY +
                                   ["train.spectral_norm_warmup=100"]))


@pytest.mark.slow
def test_build_model_warmup_sets_sigma_of_every_network(warmed_model):
    model = warmed_model
    for net in (model.generator, model.discriminator, model.ema_generator):
        layers = _sn_layers(net)
        assert layers
        for layer in layers:
            assert layer.power_iteration(0) == pytest.approx(_true_sigma(layer), rel=2e-3)
    # the EMA copy starts identical to the generator (u and v included)
    for a, b in zip(model.generator.weights, model.ema_generator.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_default_is_no_warmup_and_bit_identical(warmed_model):
    cfg = load_config("synthetic", overrides=TINY)
    assert cfg.train.spectral_norm_warmup == 0
    assert load_config("ade20k").train.spectral_norm_warmup == 0
    keras.utils.set_random_seed(0)
    default = _sn_state(build_model(cfg))
    # what build_model did before the warm-up existed: the networks and OASIS, nothing else
    keras.utils.set_random_seed(0)
    by_hand = _sn_state(OASIS(generator_from_config(cfg.model),
                              discriminator_from_config(cfg.model), seed=cfg.train.seed))
    warmed = _sn_state(warmed_model)  # same seed, 100 iterations
    assert len(default) == len(by_hand) == len(warmed) > 0
    for a, b in zip(default, by_hand):
        np.testing.assert_array_equal(a, b)
    assert all(not np.array_equal(a, c) for a, c in zip(default, warmed))
    for x in warmed:  # unit vectors either way
        assert np.linalg.norm(x) == pytest.approx(1.0, rel=1e-5)
    # the helper: 0 iterations touch nothing, otherwise the number of layers warmed up
    model = warmed_model
    assert spectral_norm_warmup(model.discriminator, 0) == 0
    assert spectral_norm_warmup(model.discriminator, 1) == len(_sn_layers(model.discriminator))


def test_negative_warmup_is_rejected():
    with pytest.raises(ValueError, match="spectral_norm_warmup"):
        load_config("synthetic", overrides=["train.spectral_norm_warmup=-1"])
