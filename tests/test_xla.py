"""XLA: ``compile(jit_compile=True)`` trains the same steps as TensorFlow without XLA
(tiny model, CPU XLA): the custom train_step with the stateless in-graph noise,
the class counts (bincount), the EMA merge_call and both optimizer updates compile.

The side without XLA runs eagerly (``run_eagerly=True``): the same kernels as the
traced graph without XLA (and without Grappler, off here), at a sixth of the time
of tracing it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import oasis_tf

STEPS = 1
NUM_CLASSES = 5


def _model(jit_compile, run_eagerly=False):
    keras.utils.set_random_seed(0)
    g = oasis_tf.OASISGenerator(num_classes=NUM_CLASSES, image_size=(64, 64), base_channels=2,
                                z_dim=3, num_res_blocks=2, spade_hidden=8)
    d = oasis_tf.OASISDiscriminator(num_classes=NUM_CLASSES, base_channels=4)
    model = oasis_tf.OASIS(g, d, seed=3)
    # SGD makes each update linear in the gradient: Adam's first step with
    # beta_1 = 0 is lr * g / (|g| + eps), which turns rounding-level gradient
    # differences of near-zero entries (most of a tiny fresh model's D) into
    # differences of up to 2 lr, hiding what XLA actually computes.
    model.compile(g_optimizer=keras.optimizers.SGD(0.05), d_optimizer=keras.optimizers.SGD(0.05),
                  jit_compile=jit_compile, run_eagerly=run_eagerly)
    return model


def _dataset():
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, NUM_CLASSES, (2 * STEPS, 8, 8))
    data = dict(image=rng.uniform(-1, 1, (2 * STEPS, 64, 64, 3)).astype(np.float32),
                label=np.repeat(np.repeat(coarse, 8, 1), 8, 2).astype(np.int32))
    # no labelmix_bits / noise: the stateless in-graph draws are part of the test
    return tf.data.Dataset.from_tensor_slices(data).batch(2, drop_remainder=True)


def _train(jit_compile):
    model = _model(jit_compile, run_eagerly=not jit_compile)
    history = model.fit(_dataset(), epochs=1, verbose=0, shuffle=False)
    assert int(model.d_optimizer.iterations.numpy()) == STEPS
    return model, {k: v[-1] for k, v in history.history.items()}


# Grappler off for both sides of every comparison (tests/conftest.py's `no_grappler`)
pytestmark = [pytest.mark.usefixtures("no_grappler"), pytest.mark.slow]


def test_xla_step_equals_the_step_without_xla():
    initial = _model(False)
    start = {net: [w.numpy().copy() for w in getattr(initial, net).trainable_weights]
             for net in ("generator", "discriminator")}
    ref, ref_logs = _train(False)
    xla, xla_logs = _train(True)
    assert xla.jit_compile is True and ref.jit_compile is False and ref.run_eagerly
    for name, value in ref_logs.items():
        assert abs(xla_logs[name] - value) <= 1e-4 * max(1.0, abs(value)), (
            name, value, xla_logs[name])
    # D (no normalisation layers): every update agrees
    moved_ref = [a.numpy() - s0 for a, s0 in zip(ref.discriminator.trainable_weights,
                                                 start["discriminator"])]
    moved_xla = [b.numpy() - s0 for b, s0 in zip(xla.discriminator.trainable_weights,
                                                 start["discriminator"])]
    scale = max(float(np.max(np.abs(m))) for m in moved_ref)
    err = max(float(np.max(np.abs(m1 - m2))) for m1, m2 in zip(moved_ref, moved_xla))
    assert scale > 0 and err <= 1e-3 * scale, (err, scale)
    # spectral-norm u/v and BN statistics follow
    for net in ("discriminator", "ema_generator"):
        for a, b in zip(getattr(ref, net).non_trainable_weights,
                        getattr(xla, net).non_trainable_weights):
            err = float(np.max(np.abs(a.numpy() - b.numpy())))
            assert err <= 1e-3 * max(1.0, float(np.max(np.abs(a.numpy())))), (a.path, err)


def test_xla_generator_gradients_equal_the_gradients_without_xla():
    """G's gradients (train mode: batch statistics, power iterations) with XLA and
    eagerly. Biases in front of a train-mode batch norm (fc, conv_0, conv_1, the shortcut
    SPADE's shift) have a true gradient of zero: their float32 values (~1e-12 here)
    are rounding noise that XLA and the graph round differently, so tensors whose
    gradient is below 1e-6 of the largest are left out."""
    from oasis_tf import losses

    model = _model(False)
    g, d = model.generator, model.discriminator
    batch = next(iter(_dataset()))
    noise = tf.constant(np.random.default_rng(1).standard_normal((2, 3)), tf.float32)
    state = [w.numpy().copy() for w in g.weights + d.weights]

    def grads():
        with tf.GradientTape() as tape:
            fake = g({"label": batch["label"], "noise": noise}, training=True)
            loss = losses.g_adversarial_loss(d(fake, training=True), batch["label"])
        return loss, tape.gradient(loss, g.trainable_variables)

    results = []
    for jit in (False, True):
        for w, s0 in zip(g.weights + d.weights, state):
            w.assign(s0)
        results.append(tf.function(grads, jit_compile=True)() if jit else grads())
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert abs(float(loss_a) - float(loss_b)) <= 1e-5 * abs(float(loss_a))
    top = max(float(np.max(np.abs(x))) for x in grads_a)
    checked = 0
    for x, y, v in zip(grads_a, grads_b, g.trainable_variables):
        scale = float(np.max(np.abs(x)))
        if scale < 1e-6 * top:
            continue
        assert float(np.max(np.abs(x - y))) <= 1e-3 * scale, v.path
        checked += 1
    assert checked >= len(grads_a) - 12
