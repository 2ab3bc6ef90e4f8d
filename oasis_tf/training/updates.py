"""How the training step turns losses into optimizer steps: loss scaling (float16),
a step that every replica takes or skips together, backward passes run one after
another (``OASIS.train_step`` uses them), and the global step they count."""

import keras
import tensorflow as tf

from oasis_tf.training.replicas import all_reduce_sum


def global_step(model):
    """The global step of an ``OASIS`` model: ``d_optimizer.iterations`` (one per
    ``train_step``; restored with the checkpoint). The one definition the training
    code uses."""
    return int(model.d_optimizer.iterations.numpy())


def with_loss_scaling(optimizer):
    """``optimizer`` wrapped in a ``keras.optimizers.LossScaleOptimizer`` (dynamic
    loss scaling), unless it is one."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{optimizer.name}_loss_scale")


def scale_loss(optimizer, loss):
    """``loss`` times the loss scale of a ``LossScaleOptimizer`` (else unchanged)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(loss)
    return loss


def apply_step(optimizer, grads, variables):
    """One optimizer step on ``variables`` with ``grads``.

    With a ``LossScaleOptimizer`` (float16) ``grads`` are those of the scaled loss;
    the optimizer divides them by the scale and skips the step when they are not
    finite. Here the finiteness is made global first (one non-finite gradient on any
    replica poisons every replica's gradients), so all replicas take the same
    decision, and a skipped step still advances ``iterations`` (the training step
    counter: data position, noise seeds, checkpoints).
    """
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer.apply_gradients(zip(grads, variables))
        return
    flags = [tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None]
    local_bad = 1.0 - tf.cast(tf.reduce_all(tf.stack(flags)), tf.float32)
    finite = tf.equal(all_reduce_sum(local_bad), 0.0)
    poison = tf.where(finite, 1.0, float("nan"))
    grads = [None if g is None else g * tf.cast(poison, g.dtype) for g in grads]
    optimizer.apply_gradients(zip(grads, variables))
    optimizer.iterations.assign_add(tf.cast(tf.logical_not(finite), optimizer.iterations.dtype))


def after(tensors, *values):
    """``values`` passed through ``tf.identity`` once every tensor in ``tensors``
    exists: what is computed from them waits for ``tensors``.

    The runtime runs every op as soon as its inputs are ready, so without this the
    discriminator update's forwards would run while the generator update's backward
    pass still holds its activations (higher peak memory)."""
    with tf.control_dependencies([t for t in tensors if t is not None]):
        return [tf.identity(v) for v in values]


def sequential_gradients(tape, loss, outputs, variables):
    """Gradients of ``loss`` w.r.t. ``variables`` for a loss of several forwards of one
    network (``outputs``, one tensor per forward).

    The same sum as ``tape.gradient(loss, variables)``, but the backward passes run
    one after another, the last forward's first (as PyTorch's autograd orders them),
    so only one of them holds its gradient buffers at a time; run jointly, TensorFlow
    runs the three discriminator backward passes together (higher peak memory).
    ``tape`` must be persistent.
    """
    output_grads = tape.gradient(loss, outputs)
    total = None
    for output, output_grad in zip(reversed(outputs), reversed(output_grads)):
        with tf.control_dependencies([g for g in total or () if g is not None]):
            part = tape.gradient(output, variables, output_gradients=output_grad)
        if total is None:
            total = part
        else:
            total = [a if b is None else b if a is None else a + b for a, b in zip(total, part)]
    return total
