r"""oasis-serving-client: query an oasis_tf export served by TF Serving (REST or gRPC).

    docker run --rm -p 8501:8501 -p 8500:8500 \
        -v "$PWD/exports/oasis:/models/oasis" -e MODEL_NAME=oasis tensorflow/serving
    # REST, row format ("instances"), signature serving_default (class ids as JSON ints)
    oasis-serving-client --labels labels/ --seeds 0,1 --output_dir out/
    # REST, column format ("inputs"), PNG in / PNG out (base64)
    oasis-serving-client --labels labels/ --signature generate_png \
        --format column --output_dir out/
    # gRPC (pip install tensorflow-serving-api, extra "serving")
    oasis-serving-client --protocol grpc --port 8500 --labels a.png --output_dir out/

(From a checkout, `python tools/serving_client.py` takes the same flags.)

Signatures: ``serving_default`` (``label_map`` int32 [B, H, W] + ``seed`` int64 [B]
-> ``image`` uint8 [B, H, W, 3]) and ``generate_png`` (``label_png`` string [B] +
``seed`` -> ``image_png`` / ``image_png_bytes`` string [B]). Over REST, the PNG
input is sent as ``{"b64": "<base64>"}`` (TF Serving decodes that for any string
input) and the PNG is read from ``image_png_bytes``, which TF Serving returns as
``{"b64": ...}`` because its name ends in ``_bytes``. Every label map of a request
must have the model's size. Files written: ``<name>_s<seed>.png`` per label map.

REST requests are plain JSON over ``urllib``; gRPC needs ``tensorflow-serving-api``.
Label PNGs are read with ``oasis_tf.images`` (importing the package loads TensorFlow).
"""

import base64
import io
import json
import os
import sys
import urllib.error
import urllib.request

import numpy as np
from absl import flags
from PIL import Image

from oasis_tf.cli import common
from oasis_tf.images import encode_label_png, list_label_pngs, read_label_png

FLAGS = common.new_flags()
common.define_address(FLAGS, "localhost", None, "TF Serving (port default: 8501 for REST, "
                      "8500 for gRPC)")
flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "REST (:predict) or gRPC (Predict).",
                  flag_values=FLAGS)
common.define_model_name(FLAGS)
flags.DEFINE_integer("model_version", None, "Version (default: the latest served).",
                     flag_values=FLAGS)
flags.DEFINE_enum("signature", "serving_default", ["serving_default", "generate_png"],
                  "Signature to call.", flag_values=FLAGS)
flags.DEFINE_enum("format", "row", ["row", "column"], "REST request format: row "
                  "(\"instances\") or column (\"inputs\").", flag_values=FLAGS)
common.define_labels(FLAGS, required=True)
common.define_seeds(FLAGS, ["0"], "Seeds; every label map is sent with each seed.")
common.define_output_dir(FLAGS, "Where to write the returned images.")
common.define_batch_size(FLAGS, 8, "Examples per request.")
flags.DEFINE_float("timeout", 60.0, "Seconds per request.", flag_values=FLAGS)

SIGNATURES = ("serving_default", "generate_png")


# ------------------------------------------------------------------- inputs
def read_label(path):
    """(PNG bytes, int32 [H, W] class ids) of a single-channel label PNG (palette
    PNGs are sent as their indices, not their colours)."""
    ids = read_label_png(path)
    return encode_label_png(ids), ids


# --------------------------------------------------------------------- REST
def rest_url(host, port, model_name, version=None):
    version = f"/versions/{int(version)}" if version is not None else ""
    return f"http://{host}:{port}/v1/models/{model_name}{version}:predict"


def rest_request(signature, examples, fmt="row"):
    """The JSON body of a ``:predict`` request.

    Args:
        signature: "serving_default" or "generate_png".
        examples: list of (png_bytes, ids [H, W], seed).
        fmt: "row" (``instances``: one object per example) or "column"
            (``inputs``: one batched list per input).
    """
    if signature == "serving_default":
        cols = {"label_map": [ids.tolist() for _, ids, _ in examples]}
    elif signature == "generate_png":
        cols = {"label_png": [{"b64": base64.b64encode(png).decode("ascii")}
                              for png, _, _ in examples]}
    else:
        raise ValueError(f"signature must be one of {SIGNATURES}; got {signature!r}")
    cols["seed"] = [int(seed) for _, _, seed in examples]
    body = {"signature_name": signature}
    if fmt == "row":
        body["instances"] = [{k: v[i] for k, v in cols.items()} for i in range(len(examples))]
    elif fmt == "column":
        body["inputs"] = cols
    else:
        raise ValueError(f"format must be 'row' or 'column'; got {fmt!r}")
    return body


def _column(response, name, fmt):
    if "error" in response:
        raise RuntimeError(f"TF Serving error: {response['error']}")
    if fmt == "row":
        rows = response["predictions"]
        return [row[name] if isinstance(row, dict) else row for row in rows]
    outputs = response["outputs"]
    return outputs[name] if isinstance(outputs, dict) else outputs


def rest_images(signature, response, fmt="row"):
    """uint8 [H, W, 3] images from a ``:predict`` response."""
    if signature == "serving_default":
        return [np.asarray(v, np.uint8) for v in _column(response, "image", fmt)]
    images = []
    for value in _column(response, "image_png_bytes", fmt):
        if not (isinstance(value, dict) and "b64" in value):
            raise ValueError("expected image_png_bytes as {\"b64\": ...}; is the export older "
                             "than the image_png_bytes output? Re-export it")
        with Image.open(io.BytesIO(base64.b64decode(value["b64"]))) as im:
            images.append(np.asarray(im.convert("RGB")))
    return images


def parse_response(raw):
    """JSON of a TF Serving response, also when it is not valid UTF-8.

    TF Serving writes a string output whose name does not end in ``_bytes`` as raw
    bytes inside a JSON string (only quotes, backslashes and control characters
    escaped), so ``generate_png``'s ``image_png`` makes the body invalid UTF-8.
    Such a body is decoded as Latin-1 (one character per byte: the JSON structure,
    numbers and ``{"b64": ...}`` values are ASCII and parse unchanged); read the
    PNG from ``image_png_bytes``.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return json.loads(text)


def post_json(url, body, timeout):
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return parse_response(response.read())
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace")
        try:
            text = json.loads(text).get("error", text)
        except ValueError:
            pass
        raise RuntimeError(f"HTTP {error.code} from {url}: {text}") from None


# --------------------------------------------------------------------- gRPC
def grpc_images(host, port, model_name, version, signature, examples, timeout):
    """The same request over gRPC (needs ``tensorflow-serving-api``)."""
    try:
        import grpc
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError:
        raise ImportError("gRPC needs the tensorflow-serving-api package: pip install "
                          "tensorflow-serving-api (or pip install 'oasis_tf[serving]'); "
                          "REST (--protocol rest) needs nothing extra") from None
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    if signature == "serving_default":
        request.inputs["label_map"].CopyFrom(tf.make_tensor_proto(
            np.stack([ids for _, ids, _ in examples]).astype(np.int32)))
    else:
        request.inputs["label_png"].CopyFrom(tf.make_tensor_proto(
            [png for png, _, _ in examples], dtype=tf.string))
    request.inputs["seed"].CopyFrom(tf.make_tensor_proto(
        np.array([s for _, _, s in examples], np.int64)))
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        result = stub.Predict(request, timeout=timeout)
    if signature == "serving_default":
        return list(tf.make_ndarray(result.outputs["image"]).astype(np.uint8))
    pngs = tf.make_ndarray(result.outputs["image_png"])
    return [np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in pngs]


# --------------------------------------------------------------------- main
def main(argv):
    common.reject_arguments(argv)
    port = FLAGS.port or (8501 if FLAGS.protocol == "rest" else 8500)
    seeds = [int(s) for s in FLAGS.seeds]
    examples, names = [], []
    for path in list_label_pngs(FLAGS.labels):
        png, ids = read_label(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        for seed in seeds:
            examples.append((png, ids, seed))
            names.append(f"{stem}_s{seed}.png")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    url = rest_url(FLAGS.host, port, FLAGS.model_name, FLAGS.model_version)
    written = 0
    for start in range(0, len(examples), max(1, FLAGS.batch_size)):
        batch = examples[start:start + FLAGS.batch_size]
        if FLAGS.protocol == "rest":
            body = rest_request(FLAGS.signature, batch, FLAGS.format)
            images = rest_images(FLAGS.signature, post_json(url, body, FLAGS.timeout),
                                 FLAGS.format)
        else:
            images = grpc_images(FLAGS.host, port, FLAGS.model_name, FLAGS.model_version,
                                 FLAGS.signature, batch, FLAGS.timeout)
        if len(images) != len(batch):
            raise RuntimeError(f"sent {len(batch)} examples, got {len(images)} images back")
        for name, image in zip(names[start:start + len(batch)], images):
            Image.fromarray(image).save(os.path.join(FLAGS.output_dir, name))
            written += 1
    where = url if FLAGS.protocol == "rest" else f"{FLAGS.host}:{port} (gRPC)"
    print(f"serving_client: {written} image(s) from {where} [{FLAGS.signature}, "
          f"{FLAGS.format if FLAGS.protocol == 'rest' else 'grpc'}] -> {FLAGS.output_dir}")


def run(argv=None):
    """The console script ``oasis-serving-client``."""
    return common.run_command("oasis-serving-client", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
