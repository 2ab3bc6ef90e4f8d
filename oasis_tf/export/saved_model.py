"""SavedModel export in TF Serving's layout, built with ``keras.export.ExportArchive``.

``export_saved_model(G, base, "oasis", version=1, discriminator=D)`` writes
``<base>/oasis/1/`` with these signatures (inputs and outputs by name):

==================== ======================================= ==========================
signature            inputs                                  outputs
==================== ======================================= ==========================
serving_default      label_map int32 [B, H, W], seed int64 [B] image uint8 [B, H, W, 3]
generate_with_noise  label_map, noise float32 [B, H, W, z_dim] image uint8 [B, H, W, 3]
generate_png         label_png string [B], seed int64 [B]     image_png string [B],
                                                             image_png_bytes string [B]
segment (with D)     image uint8 [B, H, W, 3]                 label_map int32 [B, H, W]
==================== ======================================= ==========================

All of them run ``oasis_tf.inference`` in their graphs: seeds become noise through
``seeded_noise`` (the same seed gives the same image in Python and in serving),
images are quantised with ``to_uint8``.

Input shapes are declared *unknown* in the signatures (``saved_model_cli`` shows
``unknown_rank``) on purpose. With static specs such as int32 [None, H, W], checked
on TF 2.21: ``tf.saved_model.load(...).signatures[...]`` runs a wrong-size or
wrong-rank input without any error (garbage out); a TF1 ``Session.run`` refuses it
with a Python ``ValueError`` on the client side only; TF Serving's C++ session does
not check feeds against the declared shape, and Grappler would fold in-graph rank
checks away using the declared shape. So every rank, size, channel, batch and
class-id check is an in-graph ``tf.debugging`` assert that fails the request with
INVALID_ARGUMENT ("assertion failed: [label_map has class id 13; expected 0..12]"). The expected shapes are in
``assets/oasis_export.json`` along with class count, size, z_dim, class names and
the colour palette.

``generate_png`` returns the same PNG bytes twice: ``image_png`` (the name in the
API) and ``image_png_bytes``. TF Serving's REST API base64-encodes a string output
as ``{"b64": "..."}`` only when its name ends in ``_bytes``; other string outputs
are written byte for byte inside a JSON string (only quotes, backslashes and
control characters escaped). REST clients read ``image_png_bytes``; gRPC clients
may read either. As ``image_png`` still comes in the same REST body, that body is
not valid UTF-8: decode it as Latin-1 before parsing (``oasis-serving-client``
does), or use gRPC. String *inputs*
need no such suffix: TF Serving decodes ``{"b64": "..."}`` for any DT_STRING
input, so REST clients send ``"label_png": {"b64": "<base64 PNG>"}``.

The generator's variables are also saved as the variable collection
``generator_variables`` (in ``generator.variables`` order; their paths and shapes
are in the metadata), so ``oasis_tf.export.convert_tflite`` can rebuild the
generator from the export without the Keras file.

``label_png`` holds PNG bytes of single-channel class-id maps, 8-bit or 16-bit
(16-bit values are the class ids themselves, so both give the same image). The
PNG header is checked before decoding: empty strings, non-PNG bytes (a JPEG is
named as such), colour, grey+alpha and palette PNGs, other bit depths and other
sizes are refused with INVALID_ARGUMENT naming ``label_png`` and the problem,
since decoding them would silently give wrong ids. Every signature refuses an
empty batch, non-finite noise, and a non-finite generated image (never cast to
uint8).
"""

import json
import os

import tensorflow as tf

from oasis_tf import images
from oasis_tf import inference
from oasis_tf.inference.ops import after_checks, assert_message
from oasis_tf.fileio import atomic_folder, writing

METADATA_FILE = "oasis_export.json"
GENERATOR_VARIABLES = "generator_variables"
FORMAT_VERSION = 1
SIGNATURES = ("serving_default", "generate_with_noise", "generate_png", "segment")


def default_palette(num_classes, dataset=None):
    """The colours of a dataset's label maps, uint8 [num_classes, 3]
    (``oasis_tf.images.palette_for``)."""
    return images.palette_for(num_classes, dataset)


def _spec(name, dtype):
    # Unknown shape on purpose: see the module docstring.
    return tf.TensorSpec(shape=None, dtype=dtype, name=name)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_joined(condition, prefix, text, suffix):
    """An assert whose message is ``prefix + text + suffix`` (``text`` a string
    tensor; ``tf.strings.format`` would quote it)."""
    message = tf.strings.join([prefix, text, suffix])
    return tf.debugging.Assert(condition, [message], summarize=1)


def _png_header_checks(png, name, h, w):
    """Asserts that ``png`` (one string) is a single-channel 8- or 16-bit PNG of
    size h x w, from its signature and IHDR chunk; returns ``(checks, bit_depth)``.

    Read from the header rather than from ``decode_png``: that op turns 16-bit
    PNGs read as uint8, palette or colour PNGs into plausible-looking grey values,
    and JPEG bytes into an image."""
    length = tf.strings.length(png)
    checks = [assert_message(length > 0,
                             f"{name} is an empty string; expected the bytes of a "
                             f"single-channel {h}x{w} PNG of class ids")]
    # 33 bytes: signature (8), IHDR length + type (8), width, height (8), depth, colour.
    header = tf.io.decode_raw(tf.strings.substr(png + tf.constant(b"\0" * 33), 0, 33),
                              tf.uint8)
    is_png = tf.logical_and(
        tf.equal(tf.strings.substr(png, 0, 8), _PNG_SIGNATURE),
        tf.equal(tf.strings.substr(png, 12, 4), b"IHDR"))
    is_jpeg = tf.equal(tf.strings.substr(png, 0, 3), b"\xff\xd8\xff")
    checks.append(_assert_joined(
        tf.logical_or(length <= 0, is_png),
        f"{name} is not a PNG (",
        tf.where(is_jpeg, "JPEG bytes: lossy, its class ids would be wrong",
                 "no PNG signature"),
        f"); expected a single-channel {h}x{w} PNG of class ids"))
    big = tf.cast(header, tf.int32)
    width = big[16] * 16777216 + big[17] * 65536 + big[18] * 256 + big[19]
    height = big[20] * 16777216 + big[21] * 65536 + big[22] * 256 + big[23]
    depth, colour = big[24], big[25]
    ok = tf.logical_and(length > 0, is_png)
    checks.append(_assert_joined(
        tf.logical_or(tf.logical_not(ok), tf.equal(colour, 0)),
        f"{name} is a ",
        tf.gather(tf.constant(["grayscale", "?", "RGB", "palette", "grayscale+alpha", "?",
                               "RGBA", "?"]), tf.clip_by_value(colour, 0, 7)),
        " PNG; expected a single-channel (grayscale) PNG of class ids (converting "
        "colours to ids would give wrong ids)"))
    checks.append(assert_message(
        tf.logical_or(tf.logical_not(ok), tf.logical_or(tf.equal(depth, 8),
                                                        tf.equal(depth, 16))),
        f"{name} has {{}}-bit samples; expected 8-bit (or 16-bit) class ids", depth))
    checks.append(assert_message(
        tf.logical_or(tf.logical_not(ok), tf.logical_and(tf.equal(height, h),
                                                         tf.equal(width, w))),
        f"{name} has spatial size {{}}x{{}}; this model works on {h}x{w} images",
        height, width))
    return checks, depth


def _decode_label_pngs(label_png, image_size, num_classes):
    """PNG bytes [B] -> int32 class ids [B, H, W].

    Each string must be a single-channel 8- or 16-bit PNG of size H x W (16-bit
    values are read as 16-bit class ids); anything else fails with
    INVALID_ARGUMENT naming the problem (see ``_png_header_checks``); so does an
    empty batch."""
    h, w = image_size
    name = "label_png"
    rank_ok = assert_message(
        tf.equal(tf.rank(label_png), 1),
        "label_png must have rank 1 [batch] (one PNG string per example); got shape {}",
        tf.shape(label_png))
    with tf.control_dependencies([rank_ok]):
        label_png = tf.reshape(label_png, [-1])
    not_empty = assert_message(
        tf.size(label_png) > 0,
        "label_png is an empty batch (batch size 0); send at least one PNG")

    def decode(png):
        checks, depth = _png_header_checks(png, name, h, w)
        with tf.control_dependencies(checks):
            ids = tf.cond(
                tf.equal(depth, 16),
                lambda: tf.cast(tf.io.decode_png(png, channels=1, dtype=tf.uint16), tf.int32),
                lambda: tf.cast(tf.io.decode_png(png, channels=1, dtype=tf.uint8), tf.int32))
        return after_checks(checks, ids[:, :, 0], [h, w])

    with tf.control_dependencies([not_empty]):
        label_png = tf.identity(label_png)
    return tf.map_fn(decode, label_png, fn_output_signature=tf.TensorSpec([h, w], tf.int32))


def _encode_pngs(images):
    return tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.TensorSpec([], tf.string))


def _metadata(generator, discriminator, model_name, version, palette, class_names):
    h, w = (int(s) for s in generator.image_size)
    z = int(generator.z_dim)
    signatures = {
        "serving_default": {
            "inputs": {"label_map": f"int32 [batch, {h}, {w}]", "seed": "int64 [batch]"},
            "outputs": {"image": f"uint8 [batch, {h}, {w}, 3]"}},
        "generate_with_noise": {
            "inputs": {"label_map": f"int32 [batch, {h}, {w}]",
                       "noise": f"float32 [batch, {h}, {w}, {z}]"},
            "outputs": {"image": f"uint8 [batch, {h}, {w}, 3]"}},
        "generate_png": {
            "inputs": {"label_png": f"string [batch] (single-channel {h}x{w} PNG of class ids)",
                       "seed": "int64 [batch]"},
            "outputs": {"image_png": "string [batch] (RGB PNG)",
                        "image_png_bytes": "string [batch] (the same RGB PNG; TF Serving "
                                           "REST returns it as {\"b64\": ...})"}},
    }
    if discriminator is not None:
        signatures["segment"] = {
            "inputs": {"image": f"uint8 [batch, {h}, {w}, 3]"},
            "outputs": {"label_map": f"int32 [batch, {h}, {w}] (argmax over the real "
                                     f"classes; fake excluded)"}}
    from oasis_tf import __version__

    return {
        "format": "oasis_tf.export", "format_version": FORMAT_VERSION,
        "oasis_tf_version": __version__, "model_name": model_name, "version": int(version),
        "num_classes": int(generator.num_classes), "image_size": [h, w],
        "height": h, "width": w, "z_dim": z, "use_3d_noise": bool(generator.use_3d_noise),
        "dataset": getattr(generator, "dataset", None),
        "class_names": class_names, "palette": palette.tolist(),
        "noise_from_seed": "row i = tf.random.stateless_normal([z_dim], seed=[seed[i], 0]),"
                           " constant over the image",
        "image_quantization": "uint8(clip(round((x + 1) * 127.5), 0, 255))",
        "signatures": signatures,
        "generator_config": generator.get_config(),
        "generator_variables": [{"path": v.path, "shape": [int(d) for d in v.shape]}
                                for v in generator.variables],
        "discriminator_config": (discriminator.get_config()
                                 if discriminator is not None else None),
    }


def export_metadata(generator, discriminator=None, model_name="oasis", version=1,
                    palette=None, class_names=None):
    """What ``export_saved_model`` writes as ``assets/oasis_export.json``, as a dict.

    Args:
        generator, discriminator, model_name, version, palette, class_names: as for
            ``export_saved_model`` (the colours and names default to the generator's
            own, else its dataset's: ``oasis_tf.images.palette_for`` /
            ``class_names_for``).
    """
    palette = images.palette_for(generator, palette=palette)
    class_names = images.class_names_for(generator, class_names=class_names)
    return _metadata(generator, discriminator, model_name, version, palette, class_names)


def export_saved_model(generator, base_dir, model_name="oasis", version=1,
                       discriminator=None, palette=None, class_names=None,
                       overwrite=False, verbose=False):
    """Export a generator (and optionally its discriminator) for TF Serving.

    Args:
        generator: an ``OASISGenerator`` (typically the EMA generator).
        base_dir: TF Serving's ``--model_base_path`` parent.
        model_name: folder (and TF Serving model name) under ``base_dir``.
        version: positive integer version folder.
        discriminator: optional ``OASISDiscriminator``; adds the ``segment`` signature.
        palette: uint8 [num_classes, 3] colours for label maps (default: the
            generator's own, an own data set's, else those of its ``dataset``,
            ``oasis_tf.palettes``).
        class_names: ``num_classes`` names (default: the generator's own, else its
            dataset's, else ``class_0``, ...).
        overwrite: replace an existing version folder.
        verbose: let ExportArchive print the endpoints.

    Returns:
        The version folder ``<base_dir>/<model_name>/<version>`` (str).

    The export is written to a hidden temporary folder beside the version folder
    and renamed into place, so a running TF Serving never sees a partial version.
    """
    import keras  # noqa: F401 - keras.export below

    if isinstance(version, bool) or int(version) != version or int(version) < 1:
        raise ValueError(f"version must be a positive integer; got {version!r}")
    version = int(version)
    if not model_name or os.sep in model_name or model_name in (".", ".."):
        raise ValueError(f"model_name must be a plain folder name; got {model_name!r}")
    from oasis_tf.models.factory import in_float32

    # A network trained in mixed precision is served in float32 (TFLite has no
    # bfloat16 kernels; the signatures promise float32 noise): same weights.
    generator = in_float32(generator)
    discriminator = None if discriminator is None else in_float32(discriminator)
    num_classes = int(generator.num_classes)
    size = tuple(int(s) for s in generator.image_size)
    meta = export_metadata(generator, discriminator, model_name, version, palette, class_names)
    if discriminator is not None and int(discriminator.num_classes) != num_classes:
        raise ValueError(f"discriminator has {discriminator.num_classes} classes but the "
                         f"generator {num_classes}")
    if discriminator is not None and any(s % 64 for s in size):
        raise ValueError(f"the discriminator needs sizes that are multiples of 64; the "
                         f"generator makes {size}")

    model_dir = os.path.join(os.fspath(base_dir), model_name)
    version_dir = os.path.join(model_dir, str(version))
    if os.path.exists(version_dir) and not overwrite:
        raise FileExistsError(f"{version_dir} exists; pass overwrite=True (--overwrite) or "
                              f"a new version")
    os.makedirs(model_dir, exist_ok=True)

    archive = keras.export.ExportArchive()
    archive.track(generator)
    if discriminator is not None:
        archive.track(discriminator)
    # For convert_tflite: rebuild the generator from the export (see the docstring).
    archive.add_variable_collection(GENERATOR_VARIABLES, list(generator.variables))

    def serve(label_map, seed):
        return {"image": inference.generate(generator, label_map, seed=seed)}

    def generate_with_noise(label_map, noise):
        noise = inference.check_noise(noise, generator.z_dim, size,
                                      tf.shape(label_map)[0], allow_2d=False)
        return {"image": inference.generate(generator, label_map, noise=noise)}

    def generate_png(label_png, seed):
        label = _decode_label_pngs(label_png, size, num_classes)
        images = inference.generate(generator, label, seed=seed)
        pngs = _encode_pngs(images)
        # Same bytes under a `_bytes` name: TF Serving REST base64-encodes only those.
        return {"image_png": pngs, "image_png_bytes": tf.identity(pngs)}

    archive.add_endpoint("serving_default", serve,
                         [_spec("label_map", tf.int32), _spec("seed", tf.int64)])
    archive.add_endpoint("generate_with_noise", generate_with_noise,
                         [_spec("label_map", tf.int32), _spec("noise", tf.float32)])
    archive.add_endpoint("generate_png", generate_png,
                         [_spec("label_png", tf.string), _spec("seed", tf.int64)])
    if discriminator is not None:
        def segment(image):
            return {"label_map": inference.segment(discriminator, image, size)}

        archive.add_endpoint("segment", segment, [_spec("image", tf.uint8)])

    # TF Serving may run as another uid: atomic_folder gives the umask's modes; a full
    # disk is one line naming the export (oasis_tf.fileio.DiskFullError)
    with writing(f"the SavedModel (version {version})", version_dir), \
            atomic_folder(version_dir, prefix=f".tmp-{version}-") as tmp_dir:
        archive.write_out(tmp_dir, verbose=verbose)
        os.makedirs(os.path.join(tmp_dir, "assets"), exist_ok=True)
        with open(os.path.join(tmp_dir, "assets", METADATA_FILE), "w") as f:
            json.dump(meta, f, indent=1)
    return version_dir


def read_export_metadata(version_dir):
    """The ``assets/oasis_export.json`` of an export, as a dict."""
    with open(os.path.join(os.fspath(version_dir), "assets", METADATA_FILE)) as f:
        return json.load(f)
