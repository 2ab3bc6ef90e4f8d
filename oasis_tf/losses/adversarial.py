"""The adversarial losses of OASIS: class-balanced (N+1)-class cross-entropy and LabelMix.

Conventions (channels-last):
- Discriminator logits are ``[B, H, W, N + 1]``; channel 0 is "fake", channel
  ``k + 1`` is semantic class ``k``.
- Labels are int class ids ``[B, H, W]`` in ``[0, N)``. With
  ``dontcare_label=True`` class 0 is the don't-care class.

Every loss is written as ``sum(...) / count``. By default ``count`` is this
batch's own size, which gives the plain mean of the official code. Under
``tf.distribute`` a replica passes the *global* count (and class weights
computed from globally all-reduced class counts); each replica's value is then
its share of the global loss, the per-replica values sum to the global loss,
and the gradients that ``apply_gradients`` sums over replicas are those of the
global loss, exactly as one device on the global batch.

All losses cast their inputs to float32 (mixed precision) and return a float32
scalar.

``VGGLoss`` (the official optional VGG19 perceptual loss of the generator) lives
in ``oasis_tf/losses/vgg.py``.

Reference: Sushko et al., "You Only Need Adversarial Supervision for Semantic
Image Synthesis", ICLR 2021.
"""

import tensorflow as tf
from keras import ops

# The losses the OASIS training step reports (OASIS.train_step's logs, the run's
# metrics.jsonl and progress lines), in the order they are shown.
LOSS_NAMES = ("loss_g", "loss_d", "loss_d_fake", "loss_d_real", "loss_d_labelmix")


def _pixel_count(x):
    """B*H*W of a [B, H, W, ...] or [B, H, W] tensor as float32."""
    shape = tf.shape(x)
    return tf.cast(tf.reduce_prod(shape[:3]), tf.float32)


def _count_or_default(count, default_from):
    if count is None:
        return default_from()
    return ops.cast(count, "float32")


def class_counts(label, num_classes):
    """Pixel count of every class in a batch of label maps.

    Args:
        label: int tensor `[B, H, W]` of class ids in `[0, num_classes)`.
            Ids outside that range are not counted.
        num_classes: int. Number of semantic classes N (including the
            don't-care class, if any).

    Returns:
        float32 tensor `[num_classes]`. Under `tf.distribute` these are this
        replica's counts; all-reduce (sum) them before
        `class_balance_weights` to balance over the global batch.
    """
    flat = tf.reshape(ops.cast(label, "int32"), [-1])
    return tf.math.bincount(
        flat, minlength=num_classes, maxlength=num_classes, dtype=tf.float32
    )


def class_balance_weights(counts, num_pixels, dontcare_label=True):
    """Per-class weights of the balanced cross-entropy (official OASIS).

    `coef_c = num_pixels / (n * count_c)` for every class with a nonzero
    count, where `n` is the number of such classes. With `dontcare_label`,
    class 0 is neither counted in `n` nor weighted (`coef_0 = 0`). Absent
    classes get 0 instead of the official 1/0 = inf (they are never indexed,
    so the losses are the same, and no inf/NaN appears).

    Args:
        counts: float tensor `[N]`, pixel count per class (`class_counts`,
            summed over replicas for the global batch).
        num_pixels: scalar, the number of pixels those counts cover (B*H*W,
            global under `tf.distribute`), including don't-care pixels.
        dontcare_label: bool. Whether class 0 is the don't-care class.

    Returns:
        float32 tensor `[N]`.
    """
    counts = ops.cast(counts, "float32")
    if dontcare_label:
        keep = tf.concat(
            [tf.zeros([1], tf.float32), tf.ones_like(counts[1:])], axis=0
        )
        counts = counts * keep
    num_present = ops.sum(ops.cast(counts > 0, "float32"))
    num_pixels = ops.cast(num_pixels, "float32")
    return tf.math.divide_no_nan(num_pixels, num_present * counts)


def _weighted_ce_sum(logits, target, weights=None):
    logits = ops.cast(logits, "float32")
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=ops.cast(target, "int32"), logits=logits
    )
    if weights is not None:
        ce = ce * weights
    return ops.sum(ce)


def d_real_loss(logits, label, class_weights=None, num_pixels=None):
    """Cross-entropy of logits against the real classes (target id + 1).

    `sum_pixels(coef[y] * CE(logits, y + 1)) / num_pixels`. Don't-care pixels
    (weight 0) still count in `num_pixels`, as in the official mean.

    With `class_weights=None` every pixel has weight 1, don't-care pixels
    included: that is the official `--no_balancing_inloss` loss (plain CE with
    target y + 1, `weight_map = ones`).

    Args:
        logits: float tensor `[B, H, W, N + 1]` (cast to float32).
        label: int tensor `[B, H, W]` of class ids in `[0, N)`.
        class_weights: optional float tensor `[N]` from
            `class_balance_weights`; None for no class balancing.
        num_pixels: optional scalar divisor; defaults to this batch's B*H*W.
            Under `tf.distribute` pass the global B*H*W (and weights from the
            global counts) so that the replicas' values sum to the global loss.

    Returns:
        float32 scalar.
    """
    label = ops.cast(label, "int32")
    weights = None
    if class_weights is not None:
        weights = tf.gather(ops.cast(class_weights, "float32"), label)
    total = _weighted_ce_sum(logits, label + 1, weights)
    return total / _count_or_default(num_pixels, lambda: _pixel_count(label))


def g_adversarial_loss(logits, label, class_weights=None, num_pixels=None):
    """Generator adversarial loss: D's logits on G(label) judged as real.

    Identical to `d_real_loss` (the official `loss(D(G(label)), label,
    for_real=True)`): class-balanced CE with target `label + 1`.

    Args:
        logits: float tensor `[B, H, W, N + 1]`, D's logits on the fake image.
        label: int tensor `[B, H, W]`, the label map the fake was made from.
        class_weights: optional float tensor `[N]` (`class_balance_weights`);
            None for no class balancing.
        num_pixels: optional scalar divisor; defaults to this batch's B*H*W
            (pass the global one under `tf.distribute`).

    Returns:
        float32 scalar.
    """
    return d_real_loss(
        logits, label, class_weights=class_weights, num_pixels=num_pixels
    )


def d_fake_loss(logits, num_pixels=None):
    """Cross-entropy of logits against the fake class 0 (not balanced).

    Args:
        logits: float tensor `[B, H, W, N + 1]` (cast to float32).
        num_pixels: optional scalar divisor; defaults to this batch's B*H*W
            (pass the global one under `tf.distribute`).

    Returns:
        float32 scalar: `sum_pixels(CE(logits, 0)) / num_pixels`.
    """
    target = tf.zeros(tf.shape(logits)[:-1], tf.int32)
    total = _weighted_ce_sum(logits, target)
    return total / _count_or_default(num_pixels, lambda: _pixel_count(logits))


def labelmix_mask(label, class_bits):
    """LabelMix mask: each pixel takes its class's bit.

    The official code draws one bit per class for the whole batch (and, by
    writing the bits in place, can make class 0 share class 1's bit); here each
    example has its own row of bits. Giving every example the same row
    reproduces the official per-batch draw.

    Args:
        label: int tensor `[B, H, W]` of class ids in `[0, N)`.
        class_bits: tensor `[B, N]` of bits; values > 0 mean "take the real
            image", anything else (0, or e.g. -1 for an absent class) means
            "take the fake image".

    Returns:
        float32 tensor `[B, H, W, 1]` of 0/1: `bits[b, label[b, h, w]]`.
    """
    bits = ops.cast(ops.greater(class_bits, 0), "float32")
    mask = tf.gather(bits, ops.cast(label, "int32"), axis=1, batch_dims=1)
    return mask[..., None]


def labelmix_images(mask, real, fake):
    """Mixes real and fake images by the LabelMix mask.

    Args:
        mask: float tensor `[B, H, W, 1]` of 0/1 (`labelmix_mask`).
        real: float tensor `[B, H, W, C]`, real images.
        fake: float tensor `[B, H, W, C]`, generated images.

    Returns:
        `mask * real + (1 - mask) * fake`, in `real`'s dtype.
    """
    dtype = real.dtype
    mask = ops.cast(mask, dtype)
    return mask * real + (1 - mask) * ops.cast(fake, dtype)


def labelmix_loss(d_real, d_fake, d_mixed, mask, num_elements=None):
    """LabelMix consistency loss (without the lambda factor).

    `sum((mask * d_real + (1 - mask) * d_fake - d_mixed) ** 2) / num_elements`,
    the official `MSELoss` on the mixed logits. Nothing is stopped: as in the
    official backward, gradients flow into all three logits.

    Args:
        d_real: float tensor `[B, H, W, N + 1]`, D's logits on real images.
        d_fake: float tensor `[B, H, W, N + 1]`, D's logits on fake images.
        d_mixed: float tensor `[B, H, W, N + 1]`, D's logits on
            `labelmix_images(mask, real, fake)`.
        mask: float tensor `[B, H, W, 1]` of 0/1 (`labelmix_mask`).
        num_elements: optional scalar divisor; defaults to this batch's
            B*H*W*(N+1) (pass the global one under `tf.distribute`).

    Returns:
        float32 scalar.
    """
    d_real = ops.cast(d_real, "float32")
    d_fake = ops.cast(d_fake, "float32")
    d_mixed = ops.cast(d_mixed, "float32")
    mask = ops.cast(mask, "float32")
    target = mask * d_real + (1.0 - mask) * d_fake
    total = ops.sum(ops.square(target - d_mixed))
    if num_elements is None:
        num_elements = tf.size(d_mixed)
    return total / ops.cast(num_elements, "float32")
