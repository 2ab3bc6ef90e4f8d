"""Keras conventions: configs round-trip (dtype policy, trainable), OASIS
serialization, constructor validation with "Received:", one EMA-refresh tf.function."""

import keras
import numpy as np
import pytest

import oasis_tf
from oasis_tf.layers import SNConv2D, DResBlock, ParamFreeNorm, SPADE, SPADEResBlock


def _tiny(num_classes=5, **kwargs):
    g = oasis_tf.OASISGenerator(num_classes=num_classes, image_size=(64, 64), base_channels=2,
                                z_dim=3, num_res_blocks=2, spade_hidden=4, **kwargs)
    d = oasis_tf.OASISDiscriminator(num_classes=num_classes, base_channels=4, **kwargs)
    return g, d


def test_network_configs_keep_dtype_policy_and_trainable():
    for network in _tiny(dtype="mixed_bfloat16", trainable=False):
        config = network.get_config()
        clone = type(network).from_config(config)
        assert clone.dtype_policy.name == "mixed_bfloat16"
        assert clone.trainable is False
        assert clone.get_config() == config
        # the same through Keras' own (de)serialization, as a .keras file does it
        again = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(network))
        assert again.dtype_policy.name == "mixed_bfloat16" and again.trainable is False


def test_oasis_serialization_round_trip(tmp_path):
    g, d = _tiny()
    model = oasis_tf.OASIS(g, d, lambda_labelmix=5.0, ema_decay=0.99, use_labelmix=False,
                           seed=3)
    config = keras.saving.serialize_keras_object(model)
    clone = keras.saving.deserialize_keras_object(config)
    assert isinstance(clone, oasis_tf.OASIS)
    assert keras.saving.serialize_keras_object(clone) == config
    assert (clone.lambda_labelmix, clone.ema_decay, clone.use_labelmix, clone.seed) == \
        (5.0, 0.99, False, 3)
    assert clone.generator.get_config() == g.get_config()
    # whole model to .keras and back: same weights
    path = tmp_path / "oasis.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("build,message", [
    (lambda: SNConv2D(0), "Received: filters=0"),
    (lambda: SNConv2D(4, kernel_size=2), "Received: kernel_size=2"),
    (lambda: ParamFreeNorm("group"), "Received: norm_type='group'"),
    (lambda: ParamFreeNorm(momentum=2.0), "Received: momentum=2.0"),
    (lambda: SPADE(0, 4), "Received: channels=0"),
    (lambda: SPADE(4, 4, kernel_size=4), "Received: kernel_size=4"),
    (lambda: SPADEResBlock(4, 0, 4), "Received: fout=0"),
    (lambda: DResBlock(4, 4, "left"), "Received: direction='left'"),
    (lambda: oasis_tf.OASISGenerator(3, (64, 64), z_dim=0), "Received: z_dim=0"),
    (lambda: oasis_tf.OASISGenerator(3, (64, 64), spade_ks=2), "Received: spade_ks=2"),
    (lambda: oasis_tf.OASISDiscriminator(0), "Received: num_classes=0"),
    (lambda: oasis_tf.OASISDiscriminator(3, base_channels=1), "Received: base_channels=1"),
    (lambda: oasis_tf.OASIS(*_tiny(), ema_decay=1.0), "Received: ema_decay=1.0"),
    (lambda: oasis_tf.OASIS(*_tiny(), lambda_vgg=-1), "Received: lambda_vgg=-1"),
    (lambda: oasis_tf.OASIS(_tiny(4)[0], _tiny(5)[1]),
     "Received: generator.num_classes=4, discriminator.num_classes=5"),
])
def test_constructors_validate_with_received(build, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        build()


def test_old_conv_name_still_loads():
    """.keras files written before the rename name the class oasis_tf>Conv2D."""
    layer = keras.saving.deserialize_keras_object(
        {"module": None, "class_name": "Conv2D", "registered_name": "oasis_tf>Conv2D",
         "config": {"name": "fc", "filters": 4, "kernel_size": 3}})
    assert isinstance(layer, SNConv2D)


def test_refresh_ema_statistics_traces_once():
    g, d = _tiny()
    model = oasis_tf.OASIS(g, d)
    label = np.zeros((2, 64, 64), np.int32)
    dataset = [{"label": label}] * 3
    assert model.refresh_ema_statistics(dataset, num_batches=5) == 3
    forward = model._ema_refresh_fn  # oasis_tf.training.ema keeps it on the model
    assert model.refresh_ema_statistics(dataset, num_batches=1) == 2
    assert model._ema_refresh_fn is forward
    assert forward.experimental_get_tracing_count() == 1
    assert not any(w.path.startswith("_ema") for w in model.weights)
