"""The execution order the training step imposes to bound its memory
(``oasis_tf.training.updates``): ``sequential_gradients`` (one backward pass per
discriminator forward, the last forward's first) gives the joint gradient, and ``after``
makes the D update
wait for the G update's gradients. The memory effect itself is measured by
``tools/bench.py`` (peak RSS and the TensorFlow allocator's peak), not here."""

import numpy as np
import pytest
import tensorflow as tf

import oasis_tf
from oasis_tf import losses
from oasis_tf.training.updates import after, sequential_gradients


@pytest.mark.slow
def test_sequential_gradients_equal_the_joint_gradient():
    # three forwards of one discriminator, coupled as in the D update (LabelMix
    # mixes the outputs of the first two into the target of the third)
    tf.keras.utils.set_random_seed(0)
    # no spectral norm: with the initial random u, v an inference-mode sigma can be
    # ~0 and the outputs saturate, which would make the comparison meaningless
    d = oasis_tf.OASISDiscriminator(num_classes=5, base_channels=8, spectral_norm=False)
    rng = np.random.default_rng(0)
    images = [tf.constant(rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32))
              for _ in range(3)]
    label = tf.constant(rng.integers(0, 5, (2, 64, 64)).astype(np.int32))
    mask = tf.constant(rng.integers(0, 2, (2, 64, 64, 1)).astype(np.float32))

    @tf.function
    def gradients(sequential):
        with tf.GradientTape(persistent=True) as tape:
            outs = [d(x, training=False) for x in images]
            pixels = tf.constant(2.0 * 64 * 64)
            loss = (losses.d_fake_loss(outs[0], pixels)
                    + losses.d_real_loss(outs[1], label, None, pixels)
                    + 10.0 * losses.labelmix_loss(outs[1], outs[0], outs[2], mask, pixels * 6))
        if sequential:
            return sequential_gradients(tape, loss, outs, d.trainable_variables)
        return tape.gradient(loss, d.trainable_variables)

    joint, seq = gradients(False), gradients(True)
    assert len(joint) == len(seq) == len(d.trainable_variables)
    for a, b, v in zip(joint, seq, d.trainable_variables):
        scale = float(tf.reduce_max(tf.abs(a))) + 1e-12
        np.testing.assert_allclose(b.numpy() / scale, a.numpy() / scale, atol=1e-5,
                                   err_msg=v.path)


def test_after_makes_values_wait_for_the_tensors():
    @tf.function
    def f(x, y):
        gate = tf.reduce_sum(x * 2.0)
        (gated,) = after([gate, None], y)
        return gated + 1.0

    graph = f.get_concrete_function(tf.constant([1.0]), tf.constant(2.0)).graph
    identities = [op for op in graph.get_operations() if op.type == "Identity"
                  and any(c.type == "Sum" for c in op.control_inputs)]
    assert identities, [op.type for op in graph.get_operations()]
    assert float(f(tf.constant([1.0]), tf.constant(2.0))) == 3.0
