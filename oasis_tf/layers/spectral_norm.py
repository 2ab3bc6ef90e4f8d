"""Convolution with optional spectral normalisation, PyTorch semantics.

``keras.layers.SpectralNormalization`` overwrites the kernel with ``W / sigma``
and passes no gradient through sigma, so it cannot reproduce
``torch.nn.utils.spectral_norm``. This layer keeps the raw kernel as the
trainable weight and the power-iteration vectors ``u`` and ``v`` as
non-trainable state:

* training call: one power iteration ``v = normalize(W^T u)``,
  ``u = normalize(W v)`` (no gradient), store ``u`` and ``v``;
* every call: ``sigma = u^T W v`` with gradient through ``W``; the convolution
  uses ``W / sigma`` (the bias is not normalised);
* inference call: no power iteration, sigma from the stored ``u`` and ``v``.

``power_iteration(n)`` (and ``spectral_norm_warmup`` for every such layer of a
model) runs ``n`` extra power iterations on the current kernel and stores ``u``
and ``v``: an opt-in warm-up before training (``train.spectral_norm_warmup``),
so the first steps divide by (nearly) the true largest singular value instead of
the estimate from random vectors. ``torch.nn.utils.parametrizations.spectral_norm``
does 15 at init; the official OASIS (old ``torch.nn.utils.spectral_norm``) none,
which stays the default.

``W`` is the kernel as a matrix with one row per output channel. The kernel is
stored channels-last, ``[kh, kw, in, out]``, so ``W = reshape(kernel,
[kh*kw*in, out])^T`` and ``v`` is ordered ``(kh, kw, in)``; PyTorch orders it
``(in, kh, kw)``, which the checkpoint converter permutes.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

try:  # TensorFlow's tape recording (as used by tf.custom_gradient itself)
    from tensorflow.python.eager import record as _record
except ImportError:  # pragma: no cover - older or newer layouts
    _record = None

_EPS = 1e-12


def divide_by_scalar(x, scale):
    """``x / scale`` for a scalar ``scale``, with the gradient computed lazily.

    TensorFlow's own gradient of a division precomputes ``-x / scale / scale``,
    a tensor the size of ``x``, as soon as ``x`` exists (it needs nothing from
    the backward pass), and holds it until the backward pass: for every
    spectrally normalised kernel of every training forward (a sizeable share
    of the peak memory at the official discriminator width). Here the gradient
    w.r.t. ``scale`` is ``-sum(dy * y) / scale`` with the output ``y`` the
    convolution keeps anyway.
    The forward value is the plain division (as PyTorch's ``weight / sigma``).
    """
    # Tensors, not variables: a custom gradient must not read variables itself.
    x, scale = tf.convert_to_tensor(x), tf.convert_to_tensor(scale)
    if _record is None:
        return _divide_by_scalar(x, scale)
    # What ``tf.custom_gradient`` does in eager mode, also in a graph: the
    # division is not recorded, its gradient function is. In a graph
    # ``tf.custom_gradient`` routes the result through an ``IdentityN`` of
    # (y, x, scale), for which the tape then builds zeros for the gradients of
    # x and scale (~9 ops per call, ~230 calls in a traced training step).
    with _record.stop_recording():
        y = x / scale

    def grad(dy):
        return [dy / scale, -ops.sum(dy * y) / scale]

    _record.record_operation("OasisDivideByScalar", [y], [x, scale], grad)
    return y


@tf.custom_gradient
def _divide_by_scalar(x, scale):
    y = x / scale

    def grad(dy):
        return dy / scale, -ops.sum(dy * y) / scale

    return y, grad


def l2_normalize(x, eps=_EPS):
    """``x / max(||x||, eps)`` like ``torch.nn.functional.normalize``."""
    return x / ops.maximum(ops.sqrt(ops.sum(ops.square(x))), eps)


def _l2_normalize_2d(x, eps):
    """``l2_normalize`` of a column or row vector with a shared ``eps`` tensor
    (the same ops; one fewer constant per call)."""
    return x / tf.maximum(tf.sqrt(tf.reduce_sum(tf.square(x))), eps)


class UnitNormal(keras.initializers.Initializer):
    """A standard normal vector scaled to unit length (PyTorch's u/v init)."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        x = keras.random.normal(shape, dtype=dtype or "float32", seed=self.seed)
        return l2_normalize(x)

    def get_config(self):
        return {"seed": self.seed}


def torch_xavier_normal(gain=0.02):
    """The official OASIS init: ``xavier_normal_(gain=0.02)`` on every conv."""
    return keras.initializers.VarianceScaling(
        scale=gain * gain, mode="fan_avg", distribution="untruncated_normal")


@keras.saving.register_keras_serializable(package="oasis_tf")
class SNConv2D(keras.layers.Layer):
    """Stride-1, zero-padded conv with PyTorch's init and padding, optionally
    spectrally normalised (``torch.nn.utils.spectral_norm`` semantics).

    Named apart from ``keras.layers.Conv2D``, which it does not extend.

    Args:
        filters: output channels.
        kernel_size: odd square kernel size (padding ``kernel_size // 2``).
        use_bias: add a bias (not spectrally normalised).
        spectral_norm: apply PyTorch-style spectral normalisation.
    """

    def __init__(self, filters, kernel_size=3, use_bias=True, spectral_norm=False,
                 **kwargs):
        super().__init__(**kwargs)
        if int(filters) < 1:
            raise ValueError(f"`filters` must be >= 1. Received: filters={filters}")
        if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ValueError(f"`kernel_size` must be a positive odd int. Received: "
                             f"kernel_size={kernel_size}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.use_bias = bool(use_bias)
        self.spectral_norm = bool(spectral_norm)

    def build(self, input_shape):
        if self.built:
            return
        in_channels = int(input_shape[-1])
        k = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, in_channels, self.filters),
            initializer=torch_xavier_normal(), autocast=False)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,),
                                        initializer="zeros", autocast=False)
        if self.spectral_norm:
            # Written in replica context during training; every replica
            # computes the same values, so the first replica's copy is kept.
            self.sn_u = self.add_weight(
                name="sn_u", shape=(self.filters,), initializer=UnitNormal(),
                trainable=False, autocast=False, aggregation="only_first_replica")
            self.sn_v = self.add_weight(
                name="sn_v", shape=(k * k * in_channels,), initializer=UnitNormal(),
                trainable=False, autocast=False, aggregation="only_first_replica")
        self.built = True

    def normalized_kernel(self, training=False):
        """The kernel the convolution uses (``W / sigma`` when normalised).

        Args:
            training: run one power iteration and store ``u`` and ``v`` first.
        """
        if not self.spectral_norm:
            return ops.convert_to_tensor(self.kernel)
        kernel = tf.convert_to_tensor(self.kernel)  # read once (a tensor, not the variable)
        # Plain TensorFlow ops, 2-D throughout: the same MatMul kernels on the
        # same shapes as ``ops.matmul`` of the vectors (which wraps each in
        # reshapes), with fewer ops in the traced graph; the layer runs ~230
        # times in one traced training step.
        n, out = -1, self.filters
        w_t = tf.reshape(kernel, (n, out))  # W^T: [kh*kw*in, out]
        eps = tf.constant(_EPS, w_t.dtype)
        if training:
            u = tf.reshape(tf.convert_to_tensor(self.sn_u), (out, 1))
            v = _l2_normalize_2d(tf.matmul(tf.stop_gradient(w_t), u), eps)  # [n, 1]
            v_row = tf.stop_gradient(tf.reshape(v, (1, n)))
            # v W^T once: its stopped copy gives u, the same product (with
            # gradient through W) gives sigma.
            vw = tf.matmul(v_row, w_t)  # [1, out]
            u_row = tf.stop_gradient(_l2_normalize_2d(tf.stop_gradient(vw), eps))
            self.sn_u.assign(tf.reshape(u_row, (out,)))
            self.sn_v.assign(tf.reshape(v, (-1,)))
        else:
            u_row = tf.reshape(tf.convert_to_tensor(self.sn_u), (1, out))
            vw = tf.matmul(tf.reshape(tf.convert_to_tensor(self.sn_v), (1, n)), w_t)
        sigma = tf.reduce_sum(u_row * vw)
        return divide_by_scalar(kernel, sigma)

    def power_iteration(self, iterations=1):
        """Runs ``iterations`` power iterations on the current kernel and stores
        ``u`` and ``v`` (no-op without spectral norm or with 0 iterations).

        Eager, outside training (in NumPy, float64: a few microseconds per
        iteration); the training forward still does its one iteration. Returns
        sigma ``u^T W v`` after them as a float (None without spectral norm)."""
        if not self.spectral_norm:
            return None
        w_t = np.asarray(self.kernel, np.float64).reshape(-1, self.filters)  # W^T
        u = np.asarray(self.sn_u, np.float64)
        v = np.asarray(self.sn_v, np.float64)
        if int(iterations) > 0:
            for _ in range(int(iterations)):
                v = w_t @ u
                v = v / max(np.linalg.norm(v), _EPS)
                u = v @ w_t
                u = u / max(np.linalg.norm(u), _EPS)
            self.sn_u.assign(u.astype(self.sn_u.dtype))
            self.sn_v.assign(v.astype(self.sn_v.dtype))
        return float(u @ (v @ w_t))

    def call(self, x, training=False):
        # Normalise the kernel once the input exists (as PyTorch's pre-forward
        # hook does): the kernel only needs the variables, so in a graph it
        # would otherwise be computed at the start of the training step and its
        # copy held until this layer runs (for the three discriminator forwards
        # of the D update as well).
        with tf.control_dependencies([x]):
            kernel = ops.cast(self.normalized_kernel(bool(training)), x.dtype)
        y = ops.conv(x, kernel, strides=1, padding="same" if self.kernel_size > 1 else "valid")
        if self.use_bias:
            y = y + ops.cast(self.bias, x.dtype)
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size,
                      use_bias=self.use_bias, spectral_norm=self.spectral_norm)
        return config


# Files saved before the rename name the class "oasis_tf>Conv2D"; they still load.
keras.saving.get_custom_objects()["oasis_tf>Conv2D"] = SNConv2D


def spectral_norm_warmup(model, iterations):
    """``power_iteration(iterations)`` on every spectrally normalised ``SNConv2D``
    inside ``model`` (a layer or model, built); returns the number of layers.

    Opt-in (``train.spectral_norm_warmup``; the official code does no warm-up).
    Deterministic: two copies with the same weights get the same ``u`` and ``v``."""
    count = 0
    if int(iterations) <= 0:
        return count
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, SNConv2D) and layer.spectral_norm and layer.built:
            layer.power_iteration(iterations)
            count += 1
    return count


def reinitialize_kernels(model, gain):
    """Redraws the kernel of every ``SNConv2D`` inside ``model`` (built) from
    ``xavier_normal(gain)`` (the official init is gain 0.02); biases, spectral-norm
    vectors and everything else are kept. Returns the number of kernels.

    Opt-in (``train.init_gain``), for training from scratch: with gain 0.02 the
    weights of narrow networks are ~1e-3, so the first Adam steps (~lr per weight)
    change them by a large fraction, which the spectral norm's single power
    iteration does not follow; at the demo's size the discriminator blows up in the
    first ~30 steps and then sits at uniform logits for hundreds of steps (see
    oasis_tf/configs/synthetic.yaml). Draws from Keras' global seed (``train.seed``)."""
    initializer = torch_xavier_normal(gain)
    count = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, SNConv2D) and layer.built:
            layer.kernel.assign(initializer(layer.kernel.shape, dtype=layer.kernel.dtype))
            count += 1
    return count
