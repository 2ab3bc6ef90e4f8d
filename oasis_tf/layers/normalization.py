"""The parameter-free normalisation inside SPADE (PyTorch semantics).

``norm_type``:

* ``"syncbatch"`` (official): batch norm without affine parameters whose
  training statistics are taken over the global batch (all replicas);
* ``"batch"``: the same with per-replica statistics;
* ``"instance"``: instance norm without affine parameters or running stats.

Batch statistics follow ``torch.nn.functional.batch_norm``: the batch is
normalised with the biased variance, while the running variance is updated with
the unbiased one (Keras' BatchNormalization uses the biased one for both).
PyTorch momentum 0.1 means ``running = 0.9 * running + 0.1 * batch``.
Statistics are computed in float32 whatever the compute dtype.
"""

import keras
import tensorflow as tf
from keras import ops

NORM_TYPES = ("syncbatch", "batch", "instance")


def _global_moments(x, synchronized):
    """Mean, biased and unbiased variance over (B, H, W), optionally global."""
    ctx = tf.distribute.get_replica_context()
    sync = synchronized and ctx is not None and ctx.num_replicas_in_sync > 1
    local_sum = ops.sum(x, axis=(0, 1, 2))
    shape = ops.shape(x)
    local_count = ops.cast(shape[0] * shape[1] * shape[2], "float32")
    if sync:
        total, count = ctx.all_reduce(
            tf.distribute.ReduceOp.SUM, [local_sum, local_count])
    else:
        total, count = local_sum, local_count
    mean = total / count
    # Two passes (mean, then centred squares) track PyTorch's numbers closely.
    sq = ops.sum(ops.square(x - mean), axis=(0, 1, 2))
    if sync:
        sq = ctx.all_reduce(tf.distribute.ReduceOp.SUM, sq)
    return mean, sq / count, sq / ops.maximum(count - 1.0, 1.0)


@keras.saving.register_keras_serializable(package="oasis_tf")
class ParamFreeNorm(keras.layers.Layer):
    """Normalisation without learned scale or shift.

    Args:
        norm_type: "syncbatch", "batch" or "instance".
        momentum: PyTorch-style momentum of the running statistics.
        epsilon: added to the variance.
    """

    def __init__(self, norm_type="syncbatch", momentum=0.1, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if norm_type not in NORM_TYPES:
            raise ValueError(f"`norm_type` must be one of {NORM_TYPES}. Received: "
                             f"norm_type={norm_type!r}")
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"`momentum` must be in [0, 1]. Received: momentum={momentum}")
        if float(epsilon) < 0.0:
            raise ValueError(f"`epsilon` must be >= 0. Received: epsilon={epsilon}")
        self.norm_type = norm_type
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        if self.built:
            return
        channels = int(input_shape[-1])
        if self.norm_type != "instance":
            # Replicas compute identical synchronized statistics; keep one copy.
            self.moving_mean = self.add_weight(
                name="moving_mean", shape=(channels,), initializer="zeros",
                trainable=False, autocast=False, aggregation="only_first_replica")
            self.moving_variance = self.add_weight(
                name="moving_variance", shape=(channels,), initializer="ones",
                trainable=False, autocast=False, aggregation="only_first_replica")
        self.built = True

    def call(self, x, training=False):
        x32 = ops.cast(x, "float32")
        if self.norm_type == "instance":
            mean = ops.mean(x32, axis=(1, 2), keepdims=True)
            var = ops.mean(ops.square(x32 - mean), axis=(1, 2), keepdims=True)
        elif training:
            mean, var, unbiased = _global_moments(x32, self.norm_type == "syncbatch")
            m = self.momentum
            self.moving_mean.assign((1.0 - m) * self.moving_mean + m * mean)
            self.moving_variance.assign((1.0 - m) * self.moving_variance + m * unbiased)
        else:
            mean, var = self.moving_mean, self.moving_variance
        # Multiplying by 1 / std (as PyTorch's kernel does) rather than dividing:
        # TensorFlow's gradient of a division precomputes -x / std / std, a
        # tensor the size of x, in the forward pass and holds it until backward.
        inv_std = 1.0 / ops.sqrt(var + self.epsilon)
        return ops.cast((x32 - mean) * inv_std, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(norm_type=self.norm_type, momentum=self.momentum,
                      epsilon=self.epsilon)
        return config
