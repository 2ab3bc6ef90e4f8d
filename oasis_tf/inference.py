"""The one inference function shared by the Python API, the tools and the exports.

``generate`` validates a batch of class-id maps, builds the noise (explicit, or
from integer seeds through ``seeded_noise``), runs the generator in inference
mode and quantises the images to uint8 with ``to_uint8``. The SavedModel
signatures of ``oasis_tf.export`` call exactly these functions inside their
graphs, so a seed gives the same image in Python and in TF Serving.

Everything here is plain TensorFlow: it runs eagerly and inside ``tf.function``.
Bad inputs raise ``tf.errors.InvalidArgumentError`` (``tf.debugging`` asserts),
in both modes, with a message that names the problem: wrong rank, size, channels
or batch size, an empty batch, class ids out of range, non-finite noise. A
generated image (or discriminator output) that is not finite is refused the same
way rather than quantised to uint8.
"""

import tensorflow as tf

__all__ = ["generate", "segment", "seeded_noise", "to_uint8", "check_label_map",
           "check_noise", "check_seed", "check_images", "check_finite", "noise_map", "class_seeded_noise",
           "resample_class_noise", "interpolate_noise"]


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


def to_uint8(images):
    """Images in [-1, 1] -> uint8 ``round((x + 1) * 127.5)`` clipped to 0..255.

    ``tf.round`` rounds half to even, as ``np.round``.
    """
    x = tf.cast(images, tf.float32)
    return tf.cast(tf.clip_by_value(tf.round((x + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def _assert(condition, template, *values):
    """``tf.debugging.Assert`` whose data is one message (``tf.strings.format``)."""
    message = tf.strings.format(template, values) if values else tf.constant(template)
    return tf.debugging.Assert(condition, [message], summarize=1)


def _size_checks(x, name, rank, image_size, last_dim=None, batch_size=None):
    """Rank, spatial size, channels and batch-size asserts (graph and eager)."""
    h, w = (int(s) for s in image_size)
    want = f"[batch, {h}, {w}" + (f", {last_dim}]" if last_dim is not None else "]")
    shape = tf.shape(x)
    rank_ok = tf.equal(tf.rank(x), rank)
    checks = [_assert(rank_ok,
                      f"{name} must have rank {rank} {want}; got rank {{}} with shape {{}}",
                      tf.rank(x), shape)]
    # The later checks pass when the rank is wrong, so that the rank message is the
    # one reported whatever order the asserts run in.
    rank_bad = tf.logical_not(rank_ok)
    padded = tf.concat([shape, tf.zeros([4], tf.int32)], 0)  # safe indexing at any rank
    if batch_size is None:  # the first input of a request: an empty batch is refused here
        checks.append(_assert(
            tf.logical_or(rank_bad, padded[0] > 0),
            f"{name} is an empty batch (batch size 0, shape {{}}); send at least one "
            f"example", shape))
    size_ok = tf.logical_and(tf.equal(padded[1], h), tf.equal(padded[2], w))
    checks.append(_assert(
        tf.logical_or(rank_bad, size_ok),
        f"{name} has spatial size {{}}x{{}} (shape {{}}); this model works on {h}x{w} images",
        padded[1], padded[2], shape))
    if last_dim is not None:
        checks.append(_assert(
            tf.logical_or(rank_bad, tf.equal(padded[rank - 1], last_dim)),
            f"{name} must have {last_dim} channels in its last axis; got shape {{}}", shape))
    if batch_size is not None:
        checks.append(_assert(
            tf.logical_or(rank_bad, tf.equal(padded[0], batch_size)),
            f"{name} has batch size {{}} but label_map has batch size {{}}",
            padded[0], batch_size))
    return checks


def _after(checks, x, static_shape=None):
    """``x`` once the checks have passed, with its static shape set.

    ``set_shape`` rather than ``tf.ensure_shape``: Grappler's shape inference unifies
    an EnsureShape's shape with its input's and would fold the rank check away.
    """
    with tf.control_dependencies(checks):
        x = tf.identity(x)
    if static_shape is not None:
        x.set_shape(static_shape)
    return x


def check_label_map(label_map, num_classes, image_size, name="label_map"):
    """Validates class ids [B, H, W]; returns them as int32 with a static shape.

    Raises ``tf.errors.InvalidArgumentError`` for a wrong rank, a wrong spatial size
    or a class id outside ``0..num_classes-1`` (the message quotes the bad id).
    """
    label = tf.convert_to_tensor(label_map)
    if not label.dtype.is_integer:
        raise TypeError(f"{name} must hold integer class ids; got dtype {label.dtype.name}")
    label = tf.cast(label, tf.int32)
    c = int(num_classes)
    checks = _size_checks(label, name, 3, image_size)
    with tf.control_dependencies(checks):
        flat = tf.concat([tf.reshape(label, [-1]), [0]], 0)
        lo, hi = tf.reduce_min(flat), tf.reduce_max(flat)
        checks.append(_assert(tf.logical_and(lo >= 0, hi < c),
                              f"{name} has class id {{}}; expected 0..{c - 1}",
                              tf.where(lo < 0, lo, hi)))
    return _after(checks, label, [None, int(image_size[0]), int(image_size[1])])


def check_seed(seed, batch_size, name="seed"):
    """Validates seeds [B] (rank 1, batch size as the label map's); returns int64."""
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise TypeError(f"{name} must hold integers; got dtype {seed.dtype.name}")
    seed = tf.cast(seed, tf.int64)
    rank_ok = tf.equal(tf.rank(seed), 1)
    checks = [_assert(rank_ok, f"{name} must have rank 1 [batch]; got shape {{}}",
                      tf.shape(seed))]
    n = tf.size(seed)
    checks.append(_assert(tf.logical_or(tf.logical_not(rank_ok), tf.equal(n, batch_size)),
                          f"{name} has batch size {{}} but label_map has batch size {{}}",
                          n, batch_size))
    return _after(checks, seed, [None])


def check_noise(noise, z_dim, image_size, batch_size, name="noise", allow_2d=True):
    """Validates noise [B, H, W, z_dim] (or [B, z_dim] when its rank is static 2).

    The values must be finite and the batch size the label map's.
    """
    noise = tf.cast(tf.convert_to_tensor(noise), tf.float32)
    z_dim = int(z_dim)
    if allow_2d and noise.shape.rank == 2:  # constant over the image (official sampling)
        shape = tf.shape(noise)
        checks = [_assert(tf.logical_and(tf.equal(shape[0], batch_size),
                                         tf.equal(shape[1], z_dim)),
                          f"{name} must be [batch={{}}, z_dim={z_dim}]; got shape {{}}",
                          batch_size, shape)]
        static = [None, z_dim]
    else:
        checks = _size_checks(noise, name, 4, image_size, last_dim=z_dim,
                              batch_size=batch_size)
        static = [None, int(image_size[0]), int(image_size[1]), z_dim]
    with tf.control_dependencies(checks):
        checks.append(_assert(tf.reduce_all(tf.math.is_finite(noise)),
                              f"{name} has NaN or Inf values"))
    return _after(checks, noise, static)


def check_finite(x, name, hint=""):
    """``x`` once it is asserted finite (INVALID_ARGUMENT naming ``name`` otherwise)."""
    check = _assert(tf.reduce_all(tf.math.is_finite(tf.cast(x, tf.float32))),
                    f"{name} has NaN or Inf values{hint}")
    return _after([check], x)


def check_images(images, image_size, name="image"):
    """Validates uint8 images [B, H, W, 3]; returns them with a static shape."""
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.uint8:
        raise TypeError(f"{name} must be uint8 [B, H, W, 3]; got dtype {images.dtype.name}")
    checks = _size_checks(images, name, 4, image_size, last_dim=3)
    return _after(checks, images, [None, int(image_size[0]), int(image_size[1]), 3])


def generate(generator, label_map, noise=None, seed=None):
    """Class-id maps -> uint8 images, the way every front end of oasis_tf does it.

    Args:
        generator: an ``OASISGenerator`` (run with ``training=False``).
        label_map: int [B, H, W] class ids in ``0..num_classes-1``.
        noise: optional float [B, z_dim] or [B, H, W, z_dim].
        seed: optional int [B]; noise is ``seeded_noise(seed, z_dim)``. Give at most
            one of ``noise`` and ``seed``; with neither, noise is drawn at random.

    Returns:
        uint8 tf.Tensor [B, H, W, 3], ``round((G(...) + 1) * 127.5)`` clipped.

    Raises:
        tf.errors.InvalidArgumentError: bad ids, size, rank or batch size.
    """
    if noise is not None and seed is not None:
        raise ValueError("give noise or seed, not both")
    size = tuple(int(s) for s in generator.image_size)
    z_dim = int(generator.z_dim)
    label = check_label_map(label_map, generator.num_classes, size)
    batch = tf.shape(label)[0]
    if seed is not None:
        noise = seeded_noise(check_seed(seed, batch), z_dim)
    elif noise is not None:
        noise = check_noise(noise, z_dim, size, batch)
    else:
        noise = tf.random.normal([batch, z_dim])
    images = generator({"label": label, "noise": noise}, training=False)
    # Never quantise NaN / Inf to plausible-looking uint8 values.
    images = check_finite(images, "the generated image",
                          " (noise of too large a magnitude, or broken weights)")
    return to_uint8(images)


def segment(discriminator, images, image_size):
    """uint8 images -> int32 class ids: argmax of D's logits over the real classes.

    The "fake" logit (index 0) is excluded, so ids are in ``0..num_classes-1``.
    """
    images = check_images(images, image_size)
    x = tf.cast(images, tf.float32) / 127.5 - 1.0
    logits = check_finite(discriminator(x, training=False), "the discriminator's output",
                          " (broken weights)")
    return tf.argmax(logits[..., 1:], axis=-1, output_type=tf.int32)

