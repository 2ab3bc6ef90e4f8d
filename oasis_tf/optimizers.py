"""Adam with PyTorch's epsilon placement, and the OASIS optimizer pair.

PyTorch's Adam adds epsilon after the bias correction of the second moment,

    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps),

while `keras.optimizers.Adam` adds it before (`m / (sqrt(v) + eps)` times a
corrected step size). No constant Keras epsilon reproduces PyTorch: for
gradients near or below ~`eps / sqrt(1 - b2^t)` the steps differ (with eps 1e-8
about 1-3% of the OASIS fixture's weights move differently in the first steps).
The official OASIS models were trained with `torch.optim.Adam(betas=(0, 0.999))`.
"""

import keras
import tensorflow as tf
from keras import ops


def _scalar(value, dtype):
    """A hyper-parameter as a `dtype` scalar; Python numbers are converted
    directly (`ops.cast` would round them to float32 first)."""
    if isinstance(value, (int, float)):
        return tf.constant(value, dtype)
    return ops.cast(value, dtype)


@keras.saving.register_keras_serializable(package="oasis_tf")
class TorchAdam(keras.optimizers.Adam):
    """Adam that follows `torch.optim.Adam` (no weight decay, no AMSGrad).

    Per variable at step t (t = `iterations + 1`):

        m = lerp(m, g, 1 - beta_1)
        v = beta_2 * v + (1 - beta_2) * g * g
        var -= lr / (1 - beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + epsilon)

    The slots `momentum` and `velocity` equal torch's `exp_avg` and
    `exp_avg_sq`. Step-dependent scalars are computed in float64, as PyTorch
    computes them in Python floats (Keras' Adam rounds the betas to float32
    first). On CPU the result matches `torch.optim.Adam` to a few float32 ulps
    (torch's CPU sqrt is not correctly rounded, and for 0 < beta_1 < 1 its
    lerp uses a fused multiply-add); with beta_1 = 0, m is exactly g. It works
    under `tf.distribute` like the Keras Adam it extends (gradients are summed
    over replicas).

    Args:
        learning_rate: float, schedule or callable. Defaults to `1e-4`.
        beta_1: float. Decay of the first moment. Defaults to `0.0` (OASIS).
        beta_2: float. Decay of the second moment. Defaults to `0.999`.
        epsilon: float. Added after the bias correction, as in PyTorch.
            Defaults to `1e-8` (PyTorch's default, used by OASIS).
        amsgrad: must be False (not supported).
        weight_decay: must be None (PyTorch's L2 and Keras' decoupled decay
            differ; OASIS uses none).
        **kwargs: the other `keras.optimizers.Optimizer` arguments (`name`,
            `clipnorm`, `loss_scale_factor`, ...).

    Example:

    ```python
    d_opt = TorchAdam(learning_rate=4e-4)  # OASIS discriminator settings
    d_opt.apply_gradients(zip(grads, discriminator.trainable_variables))
    ```
    """

    def __init__(
        self,
        learning_rate=1e-4,
        beta_1=0.0,
        beta_2=0.999,
        epsilon=1e-8,
        amsgrad=False,
        weight_decay=None,
        name="torch_adam",
        **kwargs,
    ):
        if amsgrad:
            raise ValueError(
                "TorchAdam does not support AMSGrad. Received: amsgrad=True"
            )
        if weight_decay is not None:
            raise ValueError(
                "TorchAdam does not support weight decay (torch.optim.Adam's "
                "L2 penalty differs from Keras' decoupled decay). "
                f"Received: weight_decay={weight_decay}"
            )
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=False,
            weight_decay=None,
            name=name,
            **kwargs,
        )

    def _step_scalars(self, learning_rate, dtype):
        """The scalars of this step: step size, bias corrections and the
        hyper-parameters in `dtype`.

        Step-dependent scalars are computed in float64 (PyTorch: Python floats)
        and cast once to the variable dtype, as torch casts the scalars of its
        tensor ops. In a graph they are built once per `apply` (same learning
        rate tensor) and shared by every variable's update, instead of ~25 ops
        per variable (the graph's size costs memory: ~20 KB per op)."""
        graph = None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
        cache = getattr(self, "_step_scalar_cache", None)
        if (graph is not None and cache is not None and cache[0] is learning_rate
                and cache[1] is graph and cache[2] == dtype):
            return cache[3]
        step = ops.cast(self.iterations + 1, "float64")
        beta_1 = _scalar(self.beta_1, "float64")
        beta_2 = _scalar(self.beta_2, "float64")
        bias_correction_1 = 1.0 - ops.power(beta_1, step)
        weight = ops.cast(1.0 - beta_1, dtype)  # torch.lerp's weight, a float32 scalar
        step_size = ops.cast(learning_rate, "float64") / bias_correction_1
        bias_correction_2_sqrt = ops.sqrt(1.0 - ops.power(beta_2, step))
        scalars = {
            "step_size": ops.cast(step_size, dtype),
            "bias_correction_2_sqrt": ops.cast(bias_correction_2_sqrt, dtype),
            # the fused kernel's lr and epsilon (see _distributed_tf_update_step)
            "fused_lr": ops.cast(step_size * bias_correction_2_sqrt, dtype),
            "fused_epsilon": ops.cast(_scalar(self.epsilon, "float64") * bias_correction_2_sqrt,
                                      dtype),
            # sqrt((1 - beta_2) / c), c = 1 - beta_2 as the fused kernel computes it
            "fused_grad_scale": ops.cast(ops.sqrt((1.0 - beta_2) / (1.0 - ops.cast(
                ops.cast(beta_2, dtype), "float64"))), dtype),
            "weight": weight,
            "one_minus_weight": 1 - weight,
            "beta_2": ops.cast(beta_2, dtype),
            "one_minus_beta_2": ops.cast(1.0 - beta_2, dtype),
            "epsilon": _scalar(self.epsilon, dtype),
        }
        if graph is not None:
            # keeps `learning_rate` alive, so `is` cannot match a recycled object
            object.__setattr__(self, "_step_scalar_cache", (learning_rate, graph, dtype, scalars))
        return scalars

    def _fusable(self):
        """Whether the fused kernel reproduces torch's update: with ``beta_1 == 0`` (the
        OASIS setting) torch's first moment is the gradient itself."""
        return isinstance(self.beta_1, (int, float)) and self.beta_1 == 0

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        """One fused kernel per variable outside ``tf.distribute`` (TensorFlow backend).

        ``tf.raw_ops.ResourceApplyAdam`` updates v and the variable in one pass
        (2-3x faster than the element-wise ops for OASIS's 35M parameters on a CPU),
        set up to compute torch's update:

        * m is set to the gradient first and the kernel's ``beta1`` is 1, so its
          ``m += (g - m) * (1 - beta1)`` leaves m exactly the gradient (torch's first
          moment for ``beta_1 = 0``);
        * its ``v += (g*g - v) * c`` uses ``c = 1 - float32(beta_2)`` (1.3e-5 off 0.001
          for beta_2 = 0.999), so it gets the gradient times ``sqrt((1 - beta_2) / c)``
          (float64): then ``c * g'^2`` is torch's ``(1 - beta_2) * g^2``;
        * with its bias corrections off, ``lr = lr / (1 - beta_1^t) * sqrt(1 - beta_2^t)``
          and ``epsilon = epsilon * sqrt(1 - beta_2^t)`` (float64), its
          ``var -= lr * m / (sqrt(v) + epsilon)`` is torch's
          ``var -= lr / (1 - beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + epsilon)``.

        v and the variable then differ from the op-by-op update (``update_step``) by
        float32 rounding only. Under a distribution strategy, and for ``beta_1 > 0``,
        every variable runs ``update_step`` as Keras does.
        """
        grads_and_vars = list(grads_and_vars)
        if (tf.distribute.has_strategy() or not self._fusable() or any(
                isinstance(g, tf.IndexedSlices) for g, _ in grads_and_vars)):
            return super()._distributed_tf_update_step(distribution, grads_and_vars,
                                                       learning_rate)
        for gradient, variable in grads_and_vars:
            self._fused_update(gradient, variable, learning_rate)

    def _fused_update(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        k = self._step_scalars(learning_rate, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        m.assign(gradient)
        zero = tf.constant(0, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle, beta1_power=zero, beta2_power=zero,
            lr=k["fused_lr"], beta1=tf.constant(1, dtype), beta2=k["beta_2"],
            epsilon=k["fused_epsilon"], grad=gradient * k["fused_grad_scale"],
            use_locking=False, use_nesterov=False)

    def update_step(self, gradient, variable, learning_rate):
        """Update step given gradient and the associated model variable."""
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        k = self._step_scalars(learning_rate, dtype)
        step_size = k["step_size"]
        bias_correction_2_sqrt = k["bias_correction_2_sqrt"]

        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]

        # torch.lerp(m, g, w), w = 1 - beta_1 (a float32 scalar): m + w*(g - m)
        # for w < 0.5, else g - (g - m)*(1 - w), exactly g when beta_1 = 0.
        if isinstance(self.beta_1, (int, float)) and self.beta_1 > 0.5:
            self.assign_add(m, ops.multiply(ops.subtract(gradient, m), k["weight"]))
        else:
            self.assign(
                m,
                ops.subtract(
                    gradient,
                    ops.multiply(ops.subtract(gradient, m), k["one_minus_weight"]),
                ),
            )
        # torch: v.mul_(beta_2).addcmul_(g, g, value=1 - beta_2).
        # `v * beta_2` needs only v: in a graph it would run at the start of
        # the training step and hold a copy of v until the gradient arrives
        # (the generator's copy through the whole generator forward), so it
        # waits for the gradient.
        with tf.control_dependencies([gradient]):
            decayed = ops.multiply(v, k["beta_2"])
        self.assign(
            v,
            ops.add(
                decayed,
                ops.multiply(
                    ops.multiply(gradient, k["one_minus_beta_2"]),
                    gradient,
                ),
            ),
        )
        # torch: denom = sqrt(v) / sqrt(bc2) + eps; p.addcdiv_(m, denom, -step).
        denom = ops.add(
            ops.divide(ops.sqrt(v), bias_correction_2_sqrt),
            k["epsilon"],
        )
        self.assign_sub(variable, ops.divide(ops.multiply(m, step_size), denom))


@keras.saving.register_keras_serializable(package="oasis_tf")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """`learning_rate * min(1, (step + 1) / warmup_steps)`: a linear ramp over
    the first `warmup_steps` optimizer steps, then constant.

    Not part of the official recipe (constant rates). The first Adam steps move
    every weight by about the learning rate whatever its gradient; for narrow
    networks, whose xavier(0.02) weights are ~1e-3, that is a large relative
    change the spectral norm's single power iteration does not follow, and at
    the official rates the discriminator can blow up and collapse in the first
    steps (see oasis_tf/configs/synthetic.yaml). A ramp keeps the first steps small.

    Args:
        learning_rate: float. The rate after the warm-up.
        warmup_steps: int >= 1. Steps of the ramp (step 0 uses
            `learning_rate / warmup_steps`).
    """

    def __init__(self, learning_rate, warmup_steps):
        if int(warmup_steps) < 1:
            raise ValueError(f"LinearWarmup needs warmup_steps >= 1. Received: "
                             f"warmup_steps={warmup_steps!r}")
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        fraction = ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps))
        return self.learning_rate * fraction

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


def make_optimizers(lr_g, lr_d, beta_1=0.0, beta_2=0.999, epsilon=1e-8, warmup_steps=0):
    """The OASIS generator and discriminator optimizers.

    Official settings: lr_g 1e-4 (4e-4 on Cityscapes), lr_d 4e-4,
    betas (0, 0.999), epsilon 1e-8, no warm-up. Under `tf.distribute`, create
    (and build) them inside `strategy.scope()`.

    Args:
        lr_g: float or schedule. Generator learning rate.
        lr_d: float or schedule. Discriminator learning rate.
        beta_1: float. Defaults to `0.0`.
        beta_2: float. Defaults to `0.999`.
        epsilon: float. Defaults to `1e-8`.
        warmup_steps: int. With > 0, float rates ramp up linearly over that
            many steps (`LinearWarmup`). Defaults to `0` (official).

    Returns:
        `(g_optimizer, d_optimizer)`, two `TorchAdam` instances named
        `"g_optimizer"` and `"d_optimizer"`.
    """
    if int(warmup_steps) > 0:
        lr_g, lr_d = (LinearWarmup(lr, warmup_steps) if isinstance(lr, (int, float)) else lr
                      for lr in (lr_g, lr_d))
    kwargs = dict(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    g_opt = TorchAdam(learning_rate=lr_g, name="g_optimizer", **kwargs)
    d_opt = TorchAdam(learning_rate=lr_d, name="d_optimizer", **kwargs)
    return g_opt, d_opt
