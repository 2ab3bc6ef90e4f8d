"""TFLite / LiteRT conversion of an exported generator, and a report against Keras.

``convert_tflite(version_dir, "oasis_fp16.tflite", quantization="float16")``

Design. The TF Serving signatures of ``export_saved_model`` cannot be converted
with built-in ops only: they hold ``tf.debugging`` asserts with string messages,
``map_fn`` loops (seeded noise, PNG coding) and PNG ops. Adding an unchecked
TFLite-friendly signature to that export would let TF Serving clients bypass the
validation, so instead ``convert_tflite``:

1. loads the export, rebuilds the generator from ``assets/oasis_export.json``
   (``generator_config``) and assigns the ``generator_variables`` collection that
   the export saves (paths and shapes are checked against the metadata), then
   checks the rebuilt generator against the export's ``generate_with_noise``
   signature on a random input;
2. writes a small intermediate SavedModel (``keras.export.ExportArchive``) whose
   only signature, ``serving_default``, is
   ``label_map`` int32 [1, H, W] + ``noise`` float32 [1, H, W, z_dim] ->
   ``image`` uint8 [1, H, W, 3]: the generator and ``inference.to_uint8``, no
   asserts, static shapes (one_hot, concat, conv, strided-slice / broadcast
   resizes, tanh, round, cast);
3. converts it with ``tf.lite.TFLiteConverter.from_saved_model`` restricted to
   ``TFLITE_BUILTINS`` (no Flex / SELECT_TF_OPS), in float32, float16 weights
   (``optimizations=[DEFAULT]``, ``supported_types=[tf.float16]``) or dynamic-range
   int8 weights (``optimizations=[DEFAULT]``).

The TFLite model takes explicit noise, so its output is reproducible; to match a
seed of the SavedModel feed ``inference.seeded_noise([seed], z_dim)`` broadcast to
[1, H, W, z_dim] (``inference.noise_map``). Class ids are *not* checked in the
TFLite graph (an out-of-range id gives an all-zero one-hot row): validate them on
the caller's side (``check_tflite_inputs``).

``tflite_report`` measures file size, latency (median of N invokes) and PSNR of
the uint8 output against the Keras generator's uint8 output on the same label map
and noise. Interpreter: ``ai_edge_litert.interpreter.Interpreter`` (the
``ai-edge-litert`` package, extra ``litert``) when importable, else
``tf.lite.Interpreter``.
"""

import os
import shutil
import tempfile
import time

import numpy as np
import tensorflow as tf

from oasis_tf import inference
from oasis_tf.fileio import atomic_file, writing

QUANTIZATIONS = ("float32", "float16", "int8")
TFLITE_SIGNATURE = "serving_default"


# ------------------------------------------------------------------ rebuild
def load_generator_from_export(version_dir, verify=True):
    """The generator of an ``export_saved_model`` folder, as an ``OASISGenerator``.

    Args:
        version_dir: ``<base>/<model_name>/<version>``.
        verify: compare the rebuilt generator with the export's
            ``generate_with_noise`` signature on a random input (uint8 images at
            most one level apart).

    Raises:
        ValueError: the export has no ``generator_variables`` collection (made
            before it existed: re-export), or its variables do not match the
            config.
    """
    from oasis_tf.export.saved_model import GENERATOR_VARIABLES, read_export_metadata
    from oasis_tf.models.generator import OASISGenerator

    version_dir = os.fspath(version_dir)
    meta = read_export_metadata(version_dir)
    old = (f"{version_dir} has no '{GENERATOR_VARIABLES}' collection; it was exported by "
           f"an older oasis_tf: export it again (oasis-export)")
    if "generator_variables" not in meta:
        raise ValueError(old)
    loaded = tf.saved_model.load(version_dir)
    source = getattr(loaded, GENERATOR_VARIABLES, None)
    if source is None:
        raise ValueError(old)
    source = list(source)
    generator = OASISGenerator.from_config(meta["generator_config"])
    expected = meta["generator_variables"]
    targets = list(generator.variables)
    if not len(targets) == len(expected) == len(source):
        raise ValueError(f"{version_dir}: the rebuilt generator has {len(targets)} variables, "
                         f"the metadata lists {len(expected)} and the collection holds "
                         f"{len(source)}")
    for target, want, value in zip(targets, expected, source):
        shape = [int(d) for d in target.shape]
        if target.path != want["path"] or shape != list(want["shape"]) or \
                shape != [int(d) for d in value.shape]:
            raise ValueError(f"{version_dir}: variable mismatch: rebuilt {target.path} "
                             f"{shape}, metadata {want['path']} {want['shape']}, saved "
                             f"{list(value.shape)}")
        target.assign(value)
    if verify:
        h, w = generator.image_size
        rng = np.random.RandomState(0)
        label = rng.randint(0, generator.num_classes, (1, h, w)).astype(np.int32)
        noise = rng.standard_normal((1, h, w, generator.z_dim)).astype(np.float32)
        want = loaded.signatures["generate_with_noise"](
            label_map=tf.constant(label), noise=tf.constant(noise))["image"].numpy()
        got = inference.generate(generator, label, noise=noise).numpy()
        diff = np.abs(want.astype(np.int32) - got).max()
        if diff > 1:
            raise ValueError(f"{version_dir}: the rebuilt generator differs from the export "
                             f"by {diff} levels")
    return generator


# ------------------------------------------------------------------ convert
def _write_tflite_saved_model(generator, path):
    """The intermediate SavedModel: one static, assert-free signature."""
    import keras

    h, w = (int(s) for s in generator.image_size)
    z_dim = int(generator.z_dim)

    def generate(label_map, noise):
        image = generator({"label": label_map, "noise": noise}, training=False)
        return {"image": inference.to_uint8(image)}

    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint(TFLITE_SIGNATURE, generate, [
        tf.TensorSpec([1, h, w], tf.int32, name="label_map"),
        tf.TensorSpec([1, h, w, z_dim], tf.float32, name="noise")])
    archive.write_out(path, verbose=False)


def _check_quantization(quantization):
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}; got {quantization!r}")


def _convert(saved_model_dir, out_path, quantization):
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=[TFLITE_SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex
    if quantization in ("float16", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    content = converter.convert()
    with writing(f"the {quantization} TFLite file", out_path), \
            atomic_file(out_path, suffix=".tflite") as partial, open(partial, "wb") as f:
        f.write(content)
    return out_path


def convert_tflite_variants(version_dir, outputs, generator=None, verify=True):
    """Several quantizations at once: ``outputs`` maps quantization -> ``.tflite`` path.

    Rebuilds the generator and writes the intermediate SavedModel once (the
    slow part besides the conversions themselves). Returns ``outputs`` as str paths.
    """
    outputs = {q: os.fspath(p) for q, p in dict(outputs).items()}
    for q in outputs:
        _check_quantization(q)
    if generator is None:
        if version_dir is None:
            raise ValueError("give version_dir or generator")
        generator = load_generator_from_export(version_dir, verify=verify)
    folders = {os.path.dirname(os.path.abspath(p)) for p in outputs.values()}
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tflite-savedmodel-", dir=sorted(folders)[0])
    try:
        with writing("the intermediate SavedModel of the TFLite conversion", tmp):
            _write_tflite_saved_model(generator, tmp)
        for q, path in outputs.items():
            _convert(tmp, path, q)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return outputs


def convert_tflite(version_dir, out_path, quantization="float32", generator=None,
                   verify=True):
    """Convert an export to a ``.tflite`` file that runs with built-in ops only.

    Args:
        version_dir: an ``export_saved_model`` folder ``<base>/<name>/<version>``.
        out_path: the ``.tflite`` file to write (its folder is created).
        quantization: "float32", "float16" (float16 weights) or "int8"
            (dynamic-range: int8 weights, float activations).
        generator: optional ``OASISGenerator`` to convert instead of rebuilding it
            from ``version_dir`` (then ``version_dir`` may be None).
        verify: check the rebuilt generator against the export (see
            ``load_generator_from_export``).

    Returns:
        ``out_path`` (str). Its signature ``serving_default`` takes ``label_map``
        int32 [1, H, W] and ``noise`` float32 [1, H, W, z_dim] and returns
        ``image`` uint8 [1, H, W, 3].
    """
    _check_quantization(quantization)
    return convert_tflite_variants(version_dir, {quantization: out_path},
                                   generator=generator, verify=verify)[quantization]


# -------------------------------------------------------------- interpreter
def interpreter_backend():
    """"ai_edge_litert" when that package imports, else "tf.lite" (None: neither)."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
        return "ai_edge_litert"
    except ImportError:
        pass
    return "tf.lite" if hasattr(tf.lite, "Interpreter") else None


def make_interpreter(path, num_threads=None):
    """A LiteRT interpreter for ``path`` (``ai_edge_litert`` first, else ``tf.lite``)."""
    backend = interpreter_backend()
    if backend == "ai_edge_litert":
        from ai_edge_litert.interpreter import Interpreter
    elif backend == "tf.lite":
        Interpreter = tf.lite.Interpreter  # noqa: N806
    else:
        raise ImportError("no TFLite interpreter: pip install ai-edge-litert "
                          "(pip install 'oasis_tf[litert]')")
    return Interpreter(model_path=os.fspath(path), num_threads=num_threads)


def check_tflite_inputs(label_map, noise, num_classes, image_size, z_dim):
    """Host-side checks the TFLite graph leaves out; returns (int32, float32) arrays."""
    h, w = (int(s) for s in image_size)
    label = np.asarray(label_map)
    noise = np.asarray(noise, np.float32)
    if label.shape != (1, h, w) or not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f"label_map must be integer [1, {h}, {w}]; got {label.dtype} "
                         f"{label.shape}")
    if label.min() < 0 or label.max() >= num_classes:
        bad = label.min() if label.min() < 0 else label.max()
        raise ValueError(f"label_map has class id {bad}; expected 0..{num_classes - 1}")
    if noise.shape != (1, h, w, int(z_dim)) or not np.isfinite(noise).all():
        raise ValueError(f"noise must be finite float32 [1, {h}, {w}, {z_dim}]; got "
                         f"{noise.shape}")
    return label.astype(np.int32), noise


def run_tflite(interpreter, label_map, noise):
    """One invoke of the ``serving_default`` signature; uint8 [1, H, W, 3]."""
    runner = interpreter.get_signature_runner(TFLITE_SIGNATURE)
    out = runner(label_map=np.asarray(label_map, np.int32), noise=np.asarray(noise, np.float32))
    return out["image"]


def _builtin_ops():
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated.BuiltinOperator


def _op_names(path):
    """Sorted operator names in a .tflite file (custom ops such as Flex by their name)."""
    from tensorflow.lite.tools import flatbuffer_utils

    with open(path, "rb") as f:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(f.read()))
    names = set()
    builtin = {v: k for k, v in vars(_builtin_ops()).items() if not k.startswith("_")}
    for code in model.operatorCodes:
        if code.customCode:
            names.add(code.customCode.decode() if isinstance(code.customCode, bytes)
                      else str(code.customCode))
        else:
            op = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
            names.add(builtin.get(op, str(op)))
    return sorted(names)


def _psnr(a, b, peak=255.0):
    """PSNR in dB of two uint8 images (inf when equal)."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak * peak / mse))


def tflite_report(tflite_path, generator, num_runs=10, label_map=None, noise=None, seed=0,
                  num_threads=None):
    """Size, latency and PSNR of a ``.tflite`` file against the Keras generator.

    Args:
        tflite_path: a file from ``convert_tflite``.
        generator: the ``OASISGenerator`` it came from (or ``load_generator_from_export``).
        num_runs: timed invokes after one warm-up (latency is their median).
        label_map: optional int [1, H, W]; default a random map (``seed``).
        noise: optional float32 [1, H, W, z_dim]; default ``seeded_noise([seed])``
            broadcast over the image.
        seed: seed of the default label map and noise.
        num_threads: interpreter threads.

    Returns:
        dict with path, backend, size_bytes, size_mb, latency_ms (median),
        latency_ms_min, psnr_db, max_abs_diff, mean_abs_diff, ops.
    """
    h, w = (int(s) for s in generator.image_size)
    z = int(generator.z_dim)
    if label_map is None:
        label_map = np.random.RandomState(seed).randint(
            0, generator.num_classes, (1, h, w)).astype(np.int32)
    if noise is None:
        noise = inference.noise_map(inference.seeded_noise([seed], z), (h, w)).numpy()
    label_map, noise = check_tflite_inputs(label_map, noise, generator.num_classes,
                                           (h, w), z)
    want = inference.generate(generator, label_map, noise=noise).numpy()
    interpreter = make_interpreter(tflite_path, num_threads=num_threads)
    got = run_tflite(interpreter, label_map, noise)  # warm-up
    times = []
    runner = interpreter.get_signature_runner(TFLITE_SIGNATURE)
    for _ in range(max(1, int(num_runs))):
        start = time.perf_counter()
        runner(label_map=label_map, noise=noise)
        times.append(time.perf_counter() - start)
    diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
    size = os.path.getsize(tflite_path)
    return {"path": os.fspath(tflite_path), "backend": interpreter_backend(),
            "size_bytes": int(size), "size_mb": size / 2 ** 20,
            "latency_ms": 1e3 * float(np.median(times)), "latency_ms_min": 1e3 * min(times),
            "num_runs": len(times), "psnr_db": _psnr(got, want),
            "max_abs_diff": int(diff.max()), "mean_abs_diff": float(diff.mean()),
            "output_shape": list(got.shape), "output_dtype": str(got.dtype),
            "ops": _op_names(tflite_path)}
