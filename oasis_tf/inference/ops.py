"""The inference functions every front end runs: ``generate`` and ``segment``.

``generate`` validates a batch of class-id maps, builds the noise (explicit, or
from integer seeds through ``noise.seeded_noise``), runs the generator in inference
mode and quantises the images to uint8 with ``to_uint8``. The SavedModel
signatures of ``oasis_tf.export`` call exactly these functions inside their
graphs, and ``OASISPipeline`` (the Python API, the commands, the studio, the
metrics, the sample grids) calls them too, so a seed gives the same image
everywhere.

Everything here is plain TensorFlow: it runs eagerly and inside ``tf.function``.
Bad inputs raise ``tf.errors.InvalidArgumentError`` (``tf.debugging`` asserts),
in both modes, with a message that names the problem: wrong rank, size, channels
or batch size, an empty batch, class ids out of range, non-finite noise. A
generated image (or discriminator output) that is not finite is refused the same
way rather than quantised to uint8.
"""

import tensorflow as tf

from oasis_tf.inference.noise import seeded_noise


def to_uint8(images):
    """Images in [-1, 1] -> uint8 ``round((x + 1) * 127.5)`` clipped to 0..255.

    ``tf.round`` rounds half to even, as ``np.round``.
    """
    x = tf.cast(images, tf.float32)
    return tf.cast(tf.clip_by_value(tf.round((x + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def assert_message(condition, template, *values):
    """``tf.debugging.Assert`` whose data is one message (``tf.strings.format``)."""
    message = tf.strings.format(template, values) if values else tf.constant(template)
    return tf.debugging.Assert(condition, [message], summarize=1)


def _size_checks(x, name, rank, image_size, last_dim=None, batch_size=None):
    """Rank, spatial size, channels and batch-size asserts (graph and eager)."""
    h, w = (int(s) for s in image_size)
    want = f"[batch, {h}, {w}" + (f", {last_dim}]" if last_dim is not None else "]")
    shape = tf.shape(x)
    rank_ok = tf.equal(tf.rank(x), rank)
    checks = [assert_message(rank_ok,
                      f"{name} must have rank {rank} {want}; got rank {{}} with shape {{}}",
                      tf.rank(x), shape)]
    # The later checks pass when the rank is wrong, so that the rank message is the
    # one reported whatever order the asserts run in.
    rank_bad = tf.logical_not(rank_ok)
    padded = tf.concat([shape, tf.zeros([4], tf.int32)], 0)  # safe indexing at any rank
    if batch_size is None:  # the first input of a request: an empty batch is refused here
        checks.append(assert_message(
            tf.logical_or(rank_bad, padded[0] > 0),
            f"{name} is an empty batch (batch size 0, shape {{}}); send at least one "
            f"example", shape))
    size_ok = tf.logical_and(tf.equal(padded[1], h), tf.equal(padded[2], w))
    checks.append(assert_message(
        tf.logical_or(rank_bad, size_ok),
        f"{name} has spatial size {{}}x{{}} (shape {{}}); this model works on {h}x{w} images",
        padded[1], padded[2], shape))
    if last_dim is not None:
        checks.append(assert_message(
            tf.logical_or(rank_bad, tf.equal(padded[rank - 1], last_dim)),
            f"{name} must have {last_dim} channels in its last axis; got shape {{}}", shape))
    if batch_size is not None:
        checks.append(assert_message(
            tf.logical_or(rank_bad, tf.equal(padded[0], batch_size)),
            f"{name} has batch size {{}} but label_map has batch size {{}}",
            padded[0], batch_size))
    return checks


def after_checks(checks, x, static_shape=None):
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
        checks.append(assert_message(tf.logical_and(lo >= 0, hi < c),
                              f"{name} has class id {{}}; expected 0..{c - 1}",
                              tf.where(lo < 0, lo, hi)))
    return after_checks(checks, label, [None, int(image_size[0]), int(image_size[1])])


def check_seed(seed, batch_size, name="seed"):
    """Validates seeds [B] (rank 1, batch size as the label map's); returns int64."""
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise TypeError(f"{name} must hold integers; got dtype {seed.dtype.name}")
    seed = tf.cast(seed, tf.int64)
    rank_ok = tf.equal(tf.rank(seed), 1)
    checks = [assert_message(rank_ok, f"{name} must have rank 1 [batch]; got shape {{}}",
                      tf.shape(seed))]
    n = tf.size(seed)
    checks.append(assert_message(tf.logical_or(tf.logical_not(rank_ok), tf.equal(n, batch_size)),
                          f"{name} has batch size {{}} but label_map has batch size {{}}",
                          n, batch_size))
    return after_checks(checks, seed, [None])


def check_noise(noise, z_dim, image_size, batch_size, name="noise", allow_2d=True):
    """Validates noise [B, H, W, z_dim] (or [B, z_dim] when its rank is static 2).

    The values must be finite and the batch size the label map's.
    """
    noise = tf.cast(tf.convert_to_tensor(noise), tf.float32)
    z_dim = int(z_dim)
    if allow_2d and noise.shape.rank == 2:  # constant over the image (official sampling)
        shape = tf.shape(noise)
        checks = [assert_message(tf.logical_and(tf.equal(shape[0], batch_size),
                                         tf.equal(shape[1], z_dim)),
                          f"{name} must be [batch={{}}, z_dim={z_dim}]; got shape {{}}",
                          batch_size, shape)]
        static = [None, z_dim]
    else:
        checks = _size_checks(noise, name, 4, image_size, last_dim=z_dim,
                              batch_size=batch_size)
        static = [None, int(image_size[0]), int(image_size[1]), z_dim]
    with tf.control_dependencies(checks):
        checks.append(assert_message(tf.reduce_all(tf.math.is_finite(noise)),
                              f"{name} has NaN or Inf values"))
    return after_checks(checks, noise, static)


def check_finite(x, name, hint=""):
    """``x`` once it is asserted finite (INVALID_ARGUMENT naming ``name`` otherwise)."""
    check = assert_message(tf.reduce_all(tf.math.is_finite(tf.cast(x, tf.float32))),
                    f"{name} has NaN or Inf values{hint}")
    return after_checks([check], x)


def check_images(images, image_size, name="image"):
    """Validates uint8 images [B, H, W, 3]; returns them with a static shape."""
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.uint8:
        raise TypeError(f"{name} must be uint8 [B, H, W, 3]; got dtype {images.dtype.name}")
    checks = _size_checks(images, name, 4, image_size, last_dim=3)
    return after_checks(checks, images, [None, int(image_size[0]), int(image_size[1]), 3])


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

