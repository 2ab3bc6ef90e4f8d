"""Networks trained in mixed precision are saved, exported and converted in float32."""

import numpy as np
import pytest

import oasis_tf
from oasis_tf.export import convert_tflite, export_saved_model
from oasis_tf.models.factory import in_float32


def _tiny_pair(policy):
    g = oasis_tf.OASISGenerator(num_classes=4, image_size=(64, 64), base_channels=4, z_dim=4,
                                num_res_blocks=2, spade_hidden=8, dtype=policy)
    d = oasis_tf.OASISDiscriminator(num_classes=4, base_channels=4, dtype=policy)
    return g, d


def test_in_float32_keeps_a_float32_network_and_copies_a_mixed_one():
    g32, _ = _tiny_pair("float32")
    assert in_float32(g32) is g32
    g, d = _tiny_pair("mixed_bfloat16")
    for net in (g, d):
        copy = in_float32(net)
        assert copy is not net
        assert copy.dtype_policy.name == "float32"
        assert [w.path for w in copy.weights] == [w.path for w in net.weights]
        for a, b in zip(copy.weights, net.weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    label = np.random.default_rng(0).integers(0, 4, (1, 64, 64)).astype(np.int32)
    noise = np.zeros((1, 4), np.float32)
    out32 = np.asarray(in_float32(g)({"label": label, "noise": noise}, training=False))
    out16 = np.asarray(g({"label": label, "noise": noise}, training=False))
    assert out32.dtype == np.float32
    # the same network: bfloat16 rounding apart, the same image
    assert np.abs(out32 - out16).max() < 0.1


@pytest.mark.slow
def test_a_bfloat16_generator_exports_and_converts_to_tflite(tmp_path):
    g, d = _tiny_pair("mixed_bfloat16")
    version_dir = export_saved_model(g, str(tmp_path), discriminator=d)
    path = convert_tflite(version_dir, str(tmp_path / "g.tflite"), quantization="float32")
    assert (tmp_path / "g.tflite").stat().st_size > 0, path
