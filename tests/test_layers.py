"""Spectral norm and the parameter-free batch norm against NumPy."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from oasis_tf.layers import SNConv2D, ParamFreeNorm, resize_nearest
from oasis_tf.layers.resize import torch_nearest_indices


def _normalize(x):
    return x / max(np.linalg.norm(x), 1e-12)


def _sn_layer(kernel_size=3, cin=5, cout=4, seed=0):
    layer = SNConv2D(cout, kernel_size, spectral_norm=True)
    layer.build((None, None, None, cin))
    rng = np.random.default_rng(seed)
    layer.kernel.assign(rng.standard_normal(layer.kernel.shape).astype(np.float32))
    layer.sn_u.assign(_normalize(rng.standard_normal(cout)).astype(np.float32))
    layer.sn_v.assign(_normalize(rng.standard_normal(layer.sn_v.shape[0])).astype(np.float32))
    return layer


def test_spectral_norm_training_step_matches_numpy():
    layer = _sn_layer()
    kernel = layer.kernel.numpy().astype(np.float64)
    w = kernel.reshape(-1, kernel.shape[-1]).T           # [out, kh*kw*in]
    u0 = layer.sn_u.numpy().astype(np.float64)
    # one power iteration, then sigma = u^T W v with u, v constant
    v = _normalize(w.T @ u0)
    u = _normalize(w @ v)
    sigma = u @ w @ v
    r = np.random.default_rng(1).standard_normal(kernel.shape)
    # loss = sum(W/sigma * R): dL/dW = R/sigma - sum(W*R)/sigma^2 * (u v^T) (matrix form)
    r_mat = r.reshape(-1, kernel.shape[-1]).T
    grad_mat = r_mat / sigma - np.sum(w * r_mat) / sigma**2 * np.outer(u, v)
    expected_grad = grad_mat.T.reshape(kernel.shape)

    with tf.GradientTape() as tape:
        normalized = layer.normalized_kernel(training=True)
        loss = tf.reduce_sum(normalized * tf.constant(r, tf.float32))
    grad = tape.gradient(loss, layer.kernel)
    np.testing.assert_allclose(layer.sn_u.numpy(), u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.sn_v.numpy(), v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(normalized.numpy(), kernel / sigma, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad.numpy(), expected_grad, rtol=1e-4, atol=1e-6)
    # the gradient through sigma matters: without it the result differs
    assert np.abs(r / sigma - expected_grad).max() > 1e-3


def test_spectral_norm_inference_uses_stored_vectors():
    layer = _sn_layer(kernel_size=1)
    w = layer.kernel.numpy().reshape(-1, 4).T
    # stored vectors near W's top singular pair, as a trained layer holds them (random
    # ones can make sigma = u W v nearly cancel, and then any float32 summation order
    # moves W / sigma by more than the tolerance)
    u = layer.sn_u.numpy()
    for _ in range(3):
        v = _normalize(w.T @ u)
        u = _normalize(w @ v)
    u, v = u.astype(np.float32), v.astype(np.float32)
    layer.sn_u.assign(u)
    layer.sn_v.assign(v)
    x = np.random.default_rng(2).standard_normal((1, 3, 3, 5)).astype(np.float32)
    y = layer(x, training=False).numpy()
    np.testing.assert_array_equal(layer.sn_u.numpy(), u)
    np.testing.assert_array_equal(layer.sn_v.numpy(), v)
    expected = x @ (w.T / (u @ w @ v)) + layer.bias.numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    layer(x, training=True)
    assert not np.allclose(layer.sn_u.numpy(), u)


def test_spectral_norm_power_iteration_converges_to_top_singular_value():
    layer = _sn_layer()
    for _ in range(60):
        layer.normalized_kernel(training=True)
    w = layer.kernel.numpy().reshape(-1, 4).T
    sigma = float(np.linalg.svd(w, compute_uv=False)[0])
    np.testing.assert_allclose(np.linalg.svd(layer.normalized_kernel().numpy().reshape(-1, 4),
                                             compute_uv=False)[0], 1.0, rtol=1e-4)
    assert sigma > 1.0


def test_batch_norm_training_uses_biased_variance_and_updates_unbiased():
    norm = ParamFreeNorm("batch")
    norm.build((None, None, None, 3))
    x = np.random.default_rng(3).normal(2.0, 3.0, (2, 4, 5, 3)).astype(np.float32)
    y = norm(x, training=True).numpy()
    mean = x.mean(axis=(0, 1, 2))
    var = x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
    n = x.shape[0] * x.shape[1] * x.shape[2]
    np.testing.assert_allclose(norm.moving_mean.numpy(), 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(norm.moving_variance.numpy(), 0.9 + 0.1 * var * n / (n - 1),
                               rtol=1e-5)
    y_eval = norm(x, training=False).numpy()
    expected = (x - norm.moving_mean.numpy()) / np.sqrt(norm.moving_variance.numpy() + 1e-5)
    np.testing.assert_allclose(y_eval, expected, rtol=1e-5, atol=1e-5)


def test_instance_norm_has_no_state():
    norm = ParamFreeNorm("instance")
    norm.build((None, None, None, 3))
    assert norm.weights == []
    x = np.random.default_rng(4).normal(1.0, 2.0, (2, 4, 4, 3)).astype(np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    for training in (True, False):
        np.testing.assert_allclose(norm(x, training=training).numpy(),
                                   (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_sync_batch_norm_over_two_replicas_equals_one_device():
    """Run in a fresh interpreter: logical devices must be set before TF starts."""
    code = textwrap.dedent("""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from oasis_tf.layers import ParamFreeNorm
        x = np.random.default_rng(0).normal(1.0, 2.0, (4, 3, 3, 5)).astype(np.float32)
        single = ParamFreeNorm("syncbatch"); single.build((None, None, None, 5))
        y_single = single(x, training=True).numpy()
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            norm = ParamFreeNorm("syncbatch"); norm.build((None, None, None, 5))
        halves = [x[:2], x[2:]]
        dist = strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(halves[ctx.replica_id_in_sync_group]))
        out = strategy.run(tf.function(lambda t: norm(t, training=True)), args=(dist,))
        y = np.concatenate([v.numpy() for v in strategy.experimental_local_results(out)])
        np.testing.assert_allclose(y, y_single, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(norm.moving_mean.numpy(), single.moving_mean.numpy(), rtol=1e-5)
        np.testing.assert_allclose(norm.moving_variance.numpy(), single.moving_variance.numpy(),
                                   rtol=1e-5)
        for v in strategy.experimental_local_results(norm.moving_mean.value):  # every replica copy
            np.testing.assert_allclose(v.numpy(), single.moving_mean.numpy(), rtol=1e-5)
        print("SYNC_OK")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert "SYNC_OK" in result.stdout, result.stderr[-3000:]


def test_nearest_resize_follows_pytorch_indices():
    np.testing.assert_array_equal(torch_nearest_indices(8, 4), [0, 2, 4, 6])
    np.testing.assert_array_equal(torch_nearest_indices(6, 4), [0, 1, 3, 4])
    np.testing.assert_array_equal(torch_nearest_indices(2, 4), [0, 0, 1, 1])
    x = np.arange(2 * 6 * 8 * 1, dtype=np.float32).reshape(2, 6, 8, 1)
    y = resize_nearest(tf.constant(x), (3, 4)).numpy()
    np.testing.assert_array_equal(y, x[:, ::2, ::2])  # top-left pixel of each block
    y = resize_nearest(tf.constant(x), (4, 3)).numpy()
    np.testing.assert_array_equal(y, x[:, [0, 1, 3, 4]][:, :, [0, 2, 5]])


@pytest.mark.parametrize("shape,size", [((2, 64, 64, 7), (32, 32)), ((2, 64, 128, 5), (8, 16)),
                                        ((1, 64, 128, 3), (64, 32)), ((1, 48, 64, 3), (16, 8))])
def test_nearest_downsampling_by_blocks_picks_pytorchs_pixels(shape, size):
    """Integer factors on both axes take one slice of a reshaped tensor: the same
    pixels as PyTorch's indices, in a graph too, for floats and class ids."""
    rng = np.random.default_rng(0)
    for x in (rng.standard_normal(shape).astype(np.float32),
              rng.integers(0, 9, shape).astype(np.int32)):
        want = x[:, torch_nearest_indices(shape[1], size[0])][
            :, :, torch_nearest_indices(shape[2], size[1])]
        np.testing.assert_array_equal(resize_nearest(tf.constant(x), size).numpy(), want)
        traced = tf.function(lambda t: resize_nearest(t, size))(tf.constant(x))
        np.testing.assert_array_equal(traced.numpy(), want)


def test_divide_by_scalar_matches_the_plain_division_and_its_gradient():
    from oasis_tf.layers.spectral_norm import divide_by_scalar

    rng = np.random.default_rng(3)
    x = tf.constant(rng.standard_normal((3, 3, 4, 5)).astype(np.float32))
    scale = tf.constant(1.7)
    dy = tf.constant(rng.standard_normal((3, 3, 4, 5)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, scale])
        ours, plain = divide_by_scalar(x, scale), x / scale
    np.testing.assert_array_equal(ours.numpy(), plain.numpy())
    for a, b in zip(tape.gradient(ours, [x, scale], output_gradients=dy),
                    tape.gradient(plain, [x, scale], output_gradients=dy)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_divide_by_scalar_takes_variables():
    # A kernel variable (as SNConv2D passes it) must not make the custom gradient
    # see a variable read inside it (tf.custom_gradient would then reject it).
    from oasis_tf.layers.spectral_norm import divide_by_scalar

    kernel = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    with tf.GradientTape() as tape:
        y = divide_by_scalar(kernel, tf.constant(2.0))
    np.testing.assert_allclose(tape.gradient(y, kernel).numpy(), 0.5)
