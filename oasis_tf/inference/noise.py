"""The noise of generated images: seeded, per class (region resampling), interpolated.

Every noise vector comes from stateless Philox draws keyed by integer seeds, so the
same seed gives the same noise eagerly, in a ``tf.function``, under XLA and in the
exported SavedModel.
"""

import tensorflow as tf


def seeded_noise(seed, z_dim):
    """Standard normal noise [B, z_dim], one row per int64 seed.

    Row ``i`` is ``tf.random.stateless_normal([z_dim], seed=[seed[i], 0])``: the same
    seed gives the same noise in Python, in a ``tf.function``, under XLA and in the
    exported SavedModel (stateless Philox, named explicitly: the default algorithm
    differs under XLA), whatever the rest of the batch holds.

    Args:
        seed: int64 (or int32) [B] seeds (a scalar is taken as [1]).
        z_dim: noise channels.

    Returns:
        float32 [B, z_dim].
    """
    seed = tf.cast(tf.reshape(tf.convert_to_tensor(seed), [-1]), tf.int64)
    z_dim = int(z_dim)

    def one(s):
        return tf.random.stateless_normal([z_dim], seed=tf.stack([s, tf.zeros_like(s)]),
                                          dtype=tf.float32, alg="philox")

    return tf.map_fn(one, seed, fn_output_signature=tf.TensorSpec([z_dim], tf.float32))


def noise_map(noise, image_size):
    """Noise [B, z_dim] broadcast to a per-pixel map [B, H, W, z_dim] (a map passes)."""
    noise = tf.cast(tf.convert_to_tensor(noise), tf.float32)
    if noise.shape.rank == 4:
        return noise
    if noise.shape.rank != 2:
        raise ValueError(f"noise must be [B, z_dim] or [B, H, W, z_dim]; got shape "
                         f"{noise.shape}")
    h, w = (int(s) for s in image_size)
    shape = tf.shape(noise)
    return tf.broadcast_to(noise[:, None, None, :], [shape[0], h, w, shape[1]])


def class_seeded_noise(seed, class_id, z_dim):
    """The new noise vector of one class for region resampling, float32 [B, z_dim].

    Row ``i`` is ``tf.random.stateless_normal([z_dim], seed=[seed[i], class_id + 1])``:
    another stream than ``seeded_noise`` (which uses ``[seed, 0]``), and one per class.
    """
    seed = tf.cast(tf.reshape(tf.convert_to_tensor(seed), [-1]), tf.int64)
    z_dim = int(z_dim)
    key = tf.cast(int(class_id) + 1, tf.int64)

    def one(s):
        return tf.random.stateless_normal([z_dim], seed=tf.stack([s, key]), dtype=tf.float32,
                                          alg="philox")

    return tf.map_fn(one, seed, fn_output_signature=tf.TensorSpec([z_dim], tf.float32))


def resample_class_noise(noise, label_map, classes, seed):
    """Local editing: new noise on the pixels of ``classes``, the same noise elsewhere.

    Args:
        noise: the noise to edit, [B, z_dim] (constant over the image) or
            [B, H, W, z_dim].
        label_map: int [B, H, W] class ids.
        classes: class ids whose pixels get new noise.
        seed: int [B] (or a scalar): the new noise of class ``c`` is
            ``class_seeded_noise(seed, c)``, one vector per class and example,
            constant over that class's pixels (like OASIS's 3D noise per image).

    Returns:
        float32 [B, H, W, z_dim]: equal to ``noise`` wherever the label is not in
        ``classes``.
    """
    label = tf.cast(tf.convert_to_tensor(label_map), tf.int32)
    image_size = tuple(int(s) for s in label.shape[1:3])
    noise = noise_map(noise, image_size)
    z_dim = int(noise.shape[-1])
    batch = tf.shape(label)[0]
    seed = tf.cast(tf.reshape(tf.convert_to_tensor(seed), [-1]), tf.int64)
    seed = tf.broadcast_to(seed, [batch])
    for c in sorted({int(c) for c in classes}):
        fresh = noise_map(class_seeded_noise(seed, c, z_dim), image_size)
        noise = tf.where(tf.equal(label, c)[..., None], fresh, noise)
    return noise


def interpolate_noise(noise_a, noise_b, steps, mode="slerp"):
    """``steps`` noises from ``noise_a`` to ``noise_b`` (both included, exactly).

    Args:
        noise_a, noise_b: float [z_dim] (or any equal shapes).
        steps: number of points, >= 2.
        mode: "slerp" (spherical, keeps a Gaussian's norm) or "linear".

    Returns:
        float32 [steps, *noise_a.shape]; the first row is ``noise_a`` and the last
        ``noise_b``, bit for bit.
    """
    if int(steps) < 2:
        raise ValueError(f"steps must be >= 2; got {steps}")
    if mode not in ("slerp", "linear"):
        raise ValueError(f"mode must be 'slerp' or 'linear'; got {mode!r}")
    a = tf.cast(tf.convert_to_tensor(noise_a), tf.float32)
    b = tf.cast(tf.convert_to_tensor(noise_b), tf.float32)
    t = tf.linspace(0.0, 1.0, int(steps))
    t = tf.reshape(t, [-1] + [1] * a.shape.rank)
    if mode == "linear":
        mid = (1.0 - t) * a + t * b
    else:
        fa, fb = tf.reshape(a, [-1]), tf.reshape(b, [-1])
        cos = tf.reduce_sum(fa * fb) / tf.maximum(tf.norm(fa) * tf.norm(fb), 1e-12)
        omega = tf.acos(tf.clip_by_value(cos, -1.0, 1.0))
        so = tf.sin(omega)
        slerp = (tf.sin((1.0 - t) * omega) * a + tf.sin(t * omega) * b) / tf.maximum(so, 1e-6)
        mid = tf.where(so < 1e-6, (1.0 - t) * a + t * b, slerp)  # (anti)parallel: linear
    return tf.concat([a[None], mid[1:-1], b[None]], axis=0)
