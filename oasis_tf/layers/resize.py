"""Resampling ops with PyTorch's index conventions (channels-last).

PyTorch's ``F.interpolate(mode="nearest")`` and ``nn.Upsample(scale_factor=2)``
take, per axis, the source index ``floor(dst * in / out)``. For an integer
downsampling factor ``k`` that is the top-left pixel of every ``k x k`` block.
``tf.image.resize(method="nearest")`` uses half-pixel centres and picks other
pixels, so it must not be used for label maps or noise maps here.
"""

import numpy as np
import tensorflow as tf
from keras import ops

try:  # TensorFlow's tape recording (as used by tf.custom_gradient itself)
    from tensorflow.python.eager import record as _record
except ImportError:  # pragma: no cover - older or newer layouts
    _record = None


def torch_nearest_indices(in_size, out_size):
    """Source indices PyTorch's nearest interpolation reads for one axis.

    Args:
        in_size: input length along the axis.
        out_size: output length along the axis.

    Returns:
        int32 numpy array of length ``out_size``.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(src, in_size - 1).astype(np.int32)


def _repeat(x, repeats, axis):
    """``tf.repeat(x, repeats, axis)`` for an int ``repeats``.

    ``tf.repeat`` is ``expand_dims``, ``tile`` and ``reshape``, with the output
    shape computed in the graph (~20 shape ops a call); with static sizes past
    the batch axis the same three ops take constant shapes instead (same values,
    same gradient). Falls back to ``tf.repeat`` for dynamic sizes.
    """
    x = tf.convert_to_tensor(x)
    shape = x.shape.as_list()
    if len(shape) < 2 or axis < 1 or any(size is None for size in shape[1:]):
        return ops.repeat(x, repeats, axis=axis)
    multiples = [1] * (len(shape) + 1)
    multiples[axis + 1] = int(repeats)
    tiled = tf.tile(tf.expand_dims(x, axis + 1), multiples)
    out_shape = [-1] + shape[1:]
    out_shape[axis] = shape[axis] * int(repeats)
    return tf.reshape(tiled, out_shape)


def _resize_axis(x, axis, out_size):
    in_size = x.shape[axis]
    if in_size is None:
        raise ValueError(
            f"nearest resize needs a static size on axis {axis}; got shape {x.shape}")
    if in_size == out_size:
        return x
    if in_size % out_size == 0:
        step = in_size // out_size
        slices = [slice(None)] * len(x.shape)
        slices[axis] = slice(None, None, step)
        return x[tuple(slices)]
    if out_size % in_size == 0:
        return _repeat(x, out_size // in_size, axis=axis)
    return tf.gather(x, torch_nearest_indices(in_size, out_size), axis=axis)


def _downsample_blocks(x, out_h, out_w):
    """The top-left pixel of every block, for integer factors on both axes: the values
    of ``x[:, ::sh, ::sw]`` as one unit-stride slice of a reshaped tensor, so that whole
    pixels (all channels) are copied at once; TensorFlow's strided slice copies a
    channels-last map element by element (measurements: docs/performance.md)."""
    _, h, w, c = x.shape
    blocks = tf.reshape(x, (-1, out_h, h // out_h, out_w, (w // out_w) * c))
    return blocks[:, :, 0, :, :c]


def resize_nearest(x, size):
    """Nearest resize of a [B, H, W, C] tensor to ``size`` like PyTorch.

    Args:
        x: tensor [B, H, W, C] with static H and W.
        size: (height, width) of the output.

    Returns:
        The resized tensor, same dtype.
    """
    out_h, out_w = int(size[0]), int(size[1])
    x = tf.convert_to_tensor(x)
    shape = x.shape.as_list()
    if (len(shape) == 4 and None not in shape[1:] and (shape[1], shape[2]) != (out_h, out_w)
            and shape[1] % out_h == 0 and shape[2] % out_w == 0):
        return _downsample_blocks(x, out_h, out_w)
    x = _resize_axis(x, 1, out_h)
    return _resize_axis(x, 2, out_w)


def upsample_2x(x):
    """Nearest 2x upsampling (every pixel repeated 2 x 2).

    Args:
        x: tensor [B, H, W, C].
    """
    x = tf.convert_to_tensor(x)
    shape = x.shape.as_list()
    if _record is None or len(shape) != 4 or any(size is None for size in shape[1:]):
        return _repeat(_repeat(x, 2, axis=1), 2, axis=2)
    _, h, w, c = shape
    with _record.stop_recording():
        y = _repeat(_repeat(x, 2, axis=1), 2, axis=2)

    def grad(dy):
        # The gradient of the two repeats, last first: sum the horizontal
        # pairs, then the vertical pairs (what TensorFlow's Tile gradients
        # compute, without their ~13 shape ops per Tile).
        dy = tf.reduce_sum(tf.reshape(dy, (-1, 2 * h, w, 2, c)), axis=3)
        return [tf.reduce_sum(tf.reshape(dy, (-1, h, 2, w, c)), axis=2)]

    _record.record_operation("OasisUpsample2x", [y], [x], grad)
    return y


def avg_pool_2x(x):
    """2 x 2 average pooling with stride 2, like ``nn.AvgPool2d(2)``.

    Args:
        x: tensor [B, H, W, C].
    """
    return ops.average_pool(x, pool_size=2, strides=2, padding="valid")
