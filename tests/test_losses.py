"""Tests of oasis_tf.losses against the official loss values and the
tf.distribute contract (per-replica sums over global counts)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from oasis_tf import losses

RTOL = 1e-5


def _nhwc(x):
    return np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)))


def _rel(a, b):
    return abs(float(a) - float(b)) / abs(float(b))


@pytest.fixture(scope="module")
def small(reference_dir):
    io = dict(np.load(reference_dir / "small" / "io.npz"))
    with open(reference_dir / "small" / "losses.json") as f:
        ref = json.load(f)
    with open(reference_dir / "small" / "config.json") as f:
        config = json.load(f)
    num_classes = config["opt"]["semantic_nc"]
    label = io["label"].astype(np.int32)
    counts = losses.class_counts(label, num_classes)
    weights = losses.class_balance_weights(
        counts, label.size, dontcare_label=ref["contain_dontcare_label"]
    )
    return dict(
        label=label,
        num_classes=num_classes,
        real=_nhwc(io["d_out_real"]),
        fake=_nhwc(io["d_out_fake"]),
        mixed=_nhwc(io["d_out_mixed"]),
        mask=_nhwc(io["labelmix_mask"]),
        counts=counts,
        weights=weights,
        ref=ref,
    )


def _bits_from_mask(label, mask, num_classes):
    """Per-example bits read from a stored mask [B, 1, H, W] (0 when absent)."""
    bits = np.zeros((label.shape[0], num_classes), np.int32)
    for b in range(label.shape[0]):
        for c in np.unique(label[b]):
            values = mask[b, 0][label[b] == c]
            assert np.all(values == values[0]), "mask not constant per class"
            bits[b, c] = int(values[0])
    return bits


def test_class_counts(small):
    expected = np.bincount(small["label"].ravel(), minlength=small["num_classes"])
    np.testing.assert_array_equal(small["counts"].numpy(), expected)
    assert small["counts"].dtype == tf.float32


def test_balance_coefficients_match_official(small):
    ref = small["ref"]["class_balance_coefficients"]
    weights = small["weights"].numpy()
    assert weights.shape == (len(ref),)
    for c, expected in enumerate(ref):
        if expected is None:  # absent class: official inf, never indexed
            assert weights[c] == 0.0
        elif expected == 0.0:  # don't-care class
            assert weights[c] == 0.0
        else:
            assert _rel(weights[c], expected) < RTOL, (c, weights[c], expected)
    num_present = int(np.sum(small["counts"].numpy()[1:] > 0))
    assert num_present == small["ref"]["num_present_classes_counted"]


def test_d_fake_loss_matches_official(small):
    value = losses.d_fake_loss(small["fake"])
    assert value.dtype == tf.float32
    assert _rel(value, small["ref"]["loss_D_fake"]) < RTOL


def test_d_real_loss_matches_official(small):
    value = losses.d_real_loss(small["real"], small["label"], small["weights"])
    assert _rel(value, small["ref"]["loss_D_real"]) < RTOL


def test_g_adversarial_loss_matches_official(small):
    value = losses.g_adversarial_loss(small["fake"], small["label"], small["weights"])
    assert _rel(value, small["ref"]["loss_G_adv"]) < RTOL
    assert _rel(value, small["ref"]["loss_G_total"]) < RTOL


def test_labelmix_and_total_match_official(small):
    ref = small["ref"]
    unweighted = losses.labelmix_loss(
        small["real"], small["fake"], small["mixed"], small["mask"]
    )
    assert _rel(unweighted, ref["loss_labelmix_unweighted"]) < RTOL
    weighted = ref["lambda_labelmix"] * unweighted
    assert _rel(weighted, ref["loss_D_labelmix"]) < RTOL
    total = (
        losses.d_fake_loss(small["fake"])
        + losses.d_real_loss(small["real"], small["label"], small["weights"])
        + weighted
    )
    assert _rel(total, ref["loss_D_total"]) < RTOL


def test_labelmix_mask_reproduces_stored_mask(small):
    label = small["label"]
    stored = np.transpose(small["mask"], (0, 3, 1, 2))  # back to [B, 1, H, W]
    bits = _bits_from_mask(label, stored, small["num_classes"])
    mask = losses.labelmix_mask(label, bits).numpy()
    assert mask.shape == label.shape + (1,) and mask.dtype == np.float32
    np.testing.assert_array_equal(mask, small["mask"])


@pytest.mark.parametrize("iteration", [1, 2])
def test_labelmix_mask_from_train_step_bits(reference_dir, iteration):
    batches = np.load(reference_dir / "small_train_step" / "batches.npz")
    label = batches[f"it{iteration}/label"].astype(np.int32)
    row = batches[f"it{iteration}/labelmix_class_bits"]  # -1: class absent
    stored = _nhwc(batches[f"it{iteration}/labelmix_mask"])
    bits = np.tile(np.maximum(row, 0)[None], (label.shape[0], 1))
    np.testing.assert_array_equal(losses.labelmix_mask(label, bits).numpy(), stored)
    # -1 (absent) is read as "fake" without mapping it first.
    raw = np.tile(row[None], (label.shape[0], 1))
    np.testing.assert_array_equal(losses.labelmix_mask(label, raw).numpy(), stored)


def test_labelmix_images():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    fake = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    mask = (rng.random((2, 5, 6, 1)) > 0.5).astype(np.float32)
    mixed = losses.labelmix_images(mask, real, fake).numpy()
    np.testing.assert_array_equal(mixed, np.where(mask > 0, real, fake))


def _random_batch(seed, batch=4, size=8, num_classes=6):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, num_classes, size=(batch, size, size)).astype(np.int32)
    label[0] = 0  # a don't-care-only example
    label[1, :3] = 2  # uneven class frequencies
    shape = (batch, size, size, num_classes + 1)
    real, fake, mixed = (rng.normal(size=shape).astype(np.float32) for _ in range(3))
    bits = rng.integers(0, 2, size=(batch, num_classes))
    return label, real, fake, mixed, bits


def test_split_batch_sums_to_full_batch():
    """The tf.distribute contract: with global counts, weights and divisors,
    the per-replica values sum to the full-batch loss (and so do gradients)."""
    num_classes = 6
    label, real, fake, mixed, bits = _random_batch(1, num_classes=num_classes)
    mask = losses.labelmix_mask(label, bits)
    halves = [slice(0, 2), slice(2, 4)]

    counts = sum(losses.class_counts(label[h], num_classes) for h in halves)
    np.testing.assert_array_equal(
        counts.numpy(), losses.class_counts(label, num_classes).numpy()
    )
    num_pixels = label.size
    weights = losses.class_balance_weights(counts, num_pixels)
    full_weights = losses.class_balance_weights(
        losses.class_counts(label, num_classes), num_pixels
    )
    np.testing.assert_array_equal(weights.numpy(), full_weights.numpy())

    full = [
        losses.d_real_loss(real, label, full_weights),
        losses.d_fake_loss(fake),
        losses.g_adversarial_loss(fake, label, full_weights),
        losses.labelmix_loss(real, fake, mixed, mask),
        losses.d_real_loss(real, label),  # unbalanced
    ]
    parts = [
        [
            losses.d_real_loss(real[h], label[h], weights, num_pixels),
            losses.d_fake_loss(fake[h], num_pixels),
            losses.g_adversarial_loss(fake[h], label[h], weights, num_pixels),
            losses.labelmix_loss(real[h], fake[h], mixed[h], mask[h], real.size),
            losses.d_real_loss(real[h], label[h], num_pixels=num_pixels),
        ]
        for h in halves
    ]
    for i, value in enumerate(full):
        summed = parts[0][i] + parts[1][i]
        np.testing.assert_allclose(summed.numpy(), value.numpy(), rtol=1e-6)
        # A per-half mean would not give the global loss here.
    local = losses.d_real_loss(
        real[:2], label[:2], losses.class_balance_weights(
            losses.class_counts(label[:2], num_classes), label[:2].size
        )
    ) + losses.d_real_loss(
        real[2:], label[2:], losses.class_balance_weights(
            losses.class_counts(label[2:], num_classes), label[2:].size
        )
    )
    assert abs(float(local) / 2 - float(full[0])) > 1e-3


def test_split_batch_gradients_sum_to_full_batch():
    num_classes = 6
    label, real, fake, mixed, bits = _random_batch(2, num_classes=num_classes)
    mask = losses.labelmix_mask(label, bits)
    weights = losses.class_balance_weights(
        losses.class_counts(label, num_classes), label.size
    )
    logits = [tf.Variable(x) for x in (real, fake, mixed)]

    def total(sl, num_pixels=None, num_elements=None):
        r, f, m = (v[sl] for v in logits)
        return (
            losses.d_real_loss(r, label[sl], weights, num_pixels)
            + losses.d_fake_loss(f, num_pixels)
            + 10.0 * losses.labelmix_loss(r, f, m, mask[sl], num_elements)
        )

    with tf.GradientTape() as tape:
        full = total(slice(None))
    full_grads = tape.gradient(full, logits)
    with tf.GradientTape() as tape:
        split = total(slice(0, 2), label.size, real.size) + total(
            slice(2, 4), label.size, real.size
        )
    split_grads = tape.gradient(split, logits)
    for a, b in zip(split_grads, full_grads):
        assert a is not None
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-9)
    # The LabelMix term reaches all three logits (nothing is detached).
    with tf.GradientTape() as tape:
        lm = losses.labelmix_loss(logits[0], logits[1], logits[2], mask)
    grads = tape.gradient(lm, logits)
    assert all(g is not None and np.any(g.numpy() != 0) for g in grads)


def test_absent_classes_give_finite_values():
    num_classes = 6
    label = np.full((2, 4, 4), 1, np.int32)
    label[:, :2] = 3
    label[0, 0, 0] = 0
    counts = losses.class_counts(label, num_classes)
    weights = losses.class_balance_weights(counts, label.size).numpy()
    assert np.all(np.isfinite(weights))
    np.testing.assert_array_equal(weights[[0, 2, 4, 5]], 0.0)
    # n = 2 present classes (0 is don't-care): coef_c = 32 / (2 * count_c)
    np.testing.assert_allclose(weights[1], 32 / (2 * 16), rtol=1e-7)
    np.testing.assert_allclose(weights[3], 32 / (2 * 15), rtol=1e-7)

    rng = np.random.default_rng(0)
    logits = tf.Variable(rng.normal(size=(2, 4, 4, 7)), dtype=tf.float32)
    with tf.GradientTape() as tape:
        value = losses.d_real_loss(logits, label, weights)
    grad = tape.gradient(value, logits)
    assert np.isfinite(value.numpy()) and np.all(np.isfinite(grad.numpy()))

    # Only don't-care pixels: all weights 0, loss 0, no NaN.
    zeros = np.zeros((2, 4, 4), np.int32)
    weights0 = losses.class_balance_weights(losses.class_counts(zeros, num_classes), 32)
    np.testing.assert_array_equal(weights0.numpy(), 0.0)
    assert float(losses.d_real_loss(logits, zeros, weights0)) == 0.0


def test_no_dontcare_weights_class_zero():
    num_classes = 4
    label = np.zeros((1, 4, 4), np.int32)
    label[0, :1] = 1  # class 0: 12 pixels, class 1: 4 pixels
    counts = losses.class_counts(label, num_classes)
    with_dc = losses.class_balance_weights(counts, 16, dontcare_label=True).numpy()
    without = losses.class_balance_weights(counts, 16, dontcare_label=False).numpy()
    np.testing.assert_allclose(with_dc, [0.0, 16 / (1 * 4), 0.0, 0.0], rtol=1e-7)
    np.testing.assert_allclose(
        without, [16 / (2 * 12), 16 / (2 * 4), 0.0, 0.0], rtol=1e-7
    )
    # Balanced: every present class carries the same total weight.
    per_class = without[:2] * counts.numpy()[:2]
    np.testing.assert_allclose(per_class, 16 / 2, rtol=1e-7)


def test_unbalanced_loss_is_plain_mean_including_dontcare():
    """class_weights=None: official --no_balancing_inloss (weight 1 everywhere)."""
    label, real, _, _, _ = _random_batch(3)
    logits = tf.constant(real)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=label + 1, logits=logits)
    np.testing.assert_allclose(
        losses.d_real_loss(logits, label).numpy(), tf.reduce_mean(ce).numpy(), rtol=1e-6
    )
    ones = np.ones(6, np.float32)
    np.testing.assert_allclose(
        losses.d_real_loss(logits, label, ones).numpy(),
        losses.d_real_loss(logits, label).numpy(),
        rtol=1e-6,
    )


def test_mixed_precision_inputs_and_tf_function():
    label, real, fake, mixed, bits = _random_batch(4)
    weights = losses.class_balance_weights(losses.class_counts(label, 6), label.size)

    @tf.function(jit_compile=True)
    def step(real16, fake16, mixed16, label, bits):
        mask = losses.labelmix_mask(label, bits)
        return (
            losses.d_real_loss(real16, label, weights),
            losses.d_fake_loss(fake16),
            losses.labelmix_loss(real16, fake16, mixed16, tf.cast(mask, tf.float16)),
        )

    half = [tf.constant(x, tf.float16) for x in (real, fake, mixed)]
    out = step(*half, tf.constant(label), tf.constant(bits, tf.int32))
    ref = (
        losses.d_real_loss(half[0], label, weights),
        losses.d_fake_loss(half[1]),
        losses.labelmix_loss(*half, losses.labelmix_mask(label, bits)),
    )
    for value, expected in zip(out, ref):
        assert value.dtype == tf.float32
        np.testing.assert_allclose(value.numpy(), expected.numpy(), rtol=1e-5)
