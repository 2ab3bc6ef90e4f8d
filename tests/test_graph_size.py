"""The smaller traced graph computes exactly what the plain ops compute.

The training step is traced with fewer ops (tools/trace_cost.py measures it):
TorchAdam updates each variable with one fused kernel, ``upsample_2x`` and
``divide_by_scalar`` record compact gradients. These check them against the
straightforward formulations, in a graph (bit for bit where the arithmetic is the same).
"""

import numpy as np
import tensorflow as tf

from oasis_tf.layers.resize import upsample_2x
from oasis_tf.layers.spectral_norm import _divide_by_scalar, divide_by_scalar
from oasis_tf.optimizers import TorchAdam

SHAPES = [(3, 3, 4, 8), (8,), (1, 1, 8, 5), (5,), (7, 3)]


def _run_adam(beta_1, fused, steps=3):
    rng = np.random.default_rng(0)
    variables = [tf.Variable(rng.normal(size=s).astype(np.float32) * 0.1) for s in SHAPES]
    grads = [[tf.constant(rng.normal(size=s).astype(np.float32) * 10.0 ** -rng.integers(0, 9))
              for s in SHAPES] for _ in range(steps)]
    opt = TorchAdam(learning_rate=4e-4, beta_1=beta_1)
    if not fused:
        opt._fusable = lambda: False  # every variable through update_step, op by op
    opt.build(variables)

    @tf.function
    def step(g):
        opt.apply_gradients(zip(g, variables))

    for g in grads:
        step(g)
    ops = len(step.get_concrete_function(grads[0]).graph.get_operations())
    return ([v.numpy() for v in variables], [m.numpy() for m in opt._momentums],
            [v.numpy() for v in opt._velocities], ops)


def test_fused_adam_follows_the_op_by_op_update():
    """The fused kernel (beta_1 = 0, OASIS's setting): the same first moment, bit for bit
    (torch's m is the gradient), the second moment and the weights within float32
    rounding of the op-by-op (torch-order) update; gradients span 9 orders of magnitude."""
    *fused, fused_ops = _run_adam(0.0, True)
    *single, single_ops = _run_adam(0.0, False)
    assert fused_ops < single_ops  # the fused path was taken
    for a, b in zip(fused[0], single[0]):  # the weights
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    for a, b in zip(fused[1], single[1]):  # m
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fused[2], single[2]):  # v
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=0)


def test_upsample_2x_matches_repeat_with_gradient():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 3, 5, 4)).astype(np.float32))
    dy = tf.constant(rng.normal(size=(2, 6, 10, 4)).astype(np.float32))

    def grads(fn):
        @tf.function(input_signature=[tf.TensorSpec([None, 3, 5, 4])])
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = fn(x)
            return y, tape.gradient(y, x, output_gradients=dy)
        return run(x)

    y, g = grads(upsample_2x)
    y_ref, g_ref = grads(lambda t: tf.repeat(tf.repeat(t, 2, axis=1), 2, axis=2))
    np.testing.assert_array_equal(y.numpy(), y_ref.numpy())
    np.testing.assert_array_equal(g.numpy(), g_ref.numpy())


def test_divide_by_scalar_matches_custom_gradient():
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(3, 3, 4, 8)).astype(np.float32))
    s = tf.constant(np.float32(1.7))
    dy = tf.constant(rng.normal(size=(3, 3, 4, 8)).astype(np.float32))

    def grads(fn):
        @tf.function
        def run(x, s):
            with tf.GradientTape() as tape:
                tape.watch([x, s])
                y = fn(x, s)
            return [y] + tape.gradient(y, [x, s], output_gradients=dy)
        return run(x, s)

    for a, b in zip(grads(divide_by_scalar), grads(_divide_by_scalar)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
