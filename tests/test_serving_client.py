"""`oasis-serving-client` (in this process) against a stub of TF Serving's REST API on 127.0.0.1.

The stub (an ``http.server`` thread on a free loopback port) checks the request
JSON the way TF Serving's ``:predict`` parser does (signature name, row
``instances`` / column ``inputs``, exactly the signature's input names, base64
objects only for string inputs) and answers with the outputs of the exported
SavedModel called in-process, encoded as TF Serving does (``{"b64": ...}`` for
outputs named ``*_bytes``; row answers as ``predictions``, column as ``outputs``).
Also checks the ``generate_png`` signature's ``image_png_bytes`` output.
"""

import base64
import http.server
import json
import re
import threading

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import oasis_tf
from oasis_tf.export import export_saved_model

# every test here traces, converts or exports a model: minutes on 2 cores
pytestmark = pytest.mark.slow

MODEL = "tiny"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    g = oasis_tf.OASISGenerator(num_classes=5, image_size=(64, 64), base_channels=2, z_dim=3,
                                spade_hidden=8)
    version_dir = export_saved_model(g, str(root / "exp"), model_name=MODEL, version=1)
    loaded = tf.saved_model.load(version_dir)
    labels = root / "labels"
    labels.mkdir()
    rng = np.random.RandomState(0)
    for name in ("a", "b"):
        Image.fromarray(rng.randint(0, 5, (64, 64)).astype(np.uint8)).save(labels / f"{name}.png")
    return {"G": g, "loaded": loaded, "labels": labels}


class RawString:
    """A string output TF Serving writes as raw bytes (name not ending in _bytes)."""

    def __init__(self, data):
        self.data = data


def _to_json(name, value):
    """A numpy output value as TF Serving's JSON writer gives it."""
    if isinstance(value, bytes):
        if name.endswith("_bytes"):
            return {"b64": base64.b64encode(value).decode("ascii")}
        return RawString(value)
    if isinstance(value, np.ndarray):
        return [_to_json(name, v) for v in value] if value.dtype == object else value.tolist()
    return value


def _rapidjson_string(data):
    """rapidjson's Writer::String without encoding validation: quotes, backslashes
    and control characters escaped, every other byte written as is."""
    out = bytearray(b'"')
    for byte in data:
        if byte in (0x22, 0x5C):
            out += b"\\" + bytes([byte])
        elif byte < 0x20:
            out += b"\\u%04X" % byte
        else:
            out.append(byte)
    return bytes(out + b'"')


def _dump(value):
    """``json.dumps`` to bytes, with RawString values written the way TF Serving does."""
    raws = []

    def default(obj):
        if isinstance(obj, RawString):
            raws.append(obj.data)
            return f"@@RAW{len(raws) - 1}@@"
        raise TypeError(type(obj))

    text = json.dumps(value, default=default).encode("ascii")
    return re.sub(rb'"@@RAW(\d+)@@"', lambda m: _rapidjson_string(raws[int(m.group(1))]), text)


class StubServing:
    """A loopback HTTP server speaking the ``:predict`` part of TF Serving's REST API."""

    def __init__(self, loaded):
        self.loaded = loaded
        self.requests = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                try:
                    status, body = stub.handle(self.path, self.rfile.read(
                        int(self.headers["Content-Length"])))
                except Exception as error:  # noqa: BLE001 - becomes a 400 like TF Serving
                    status, body = 400, {"error": f"{type(error).__name__}: {error}"}
                data = _dump(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def _tensor(self, dtype, values):
        if dtype == tf.string:
            out = []
            for v in values:
                assert isinstance(v, dict) and set(v) == {"b64"}, f"string input {v!r} not b64"
                out.append(base64.b64decode(v["b64"]))
            return tf.constant(out, tf.string)
        return tf.constant(np.asarray(values), dtype)

    def handle(self, path, raw):
        match = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/(\d+))?:predict", path)
        if not match or match.group(1) != MODEL:
            return 404, {"error": f"Servable not found for request: {path}"}
        body = json.loads(raw)
        self.requests.append(body)
        name = body.get("signature_name", "serving_default")
        fn = self.loaded.signatures[name]
        specs = fn.structured_input_signature[1]
        assert ("instances" in body) != ("inputs" in body), sorted(body)
        if "instances" in body:
            rows = body["instances"]
            assert isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows)
            for r in rows:
                assert set(r) == set(specs), (sorted(r), sorted(specs))
            cols = {k: [r[k] for r in rows] for k in specs}
        else:
            cols = body["inputs"]
            assert isinstance(cols, dict) and set(cols) == set(specs), sorted(cols)
        out = fn(**{k: self._tensor(specs[k].dtype, v) for k, v in cols.items()})
        out = {k: _to_json(k, v.numpy()) for k, v in out.items()}
        if "instances" in body:
            n = len(body["instances"])
            rows = [{k: v[i] for k, v in out.items()} for i in range(n)]
            if len(out) == 1:
                rows = [next(iter(r.values())) for r in rows]
            return 200, {"predictions": rows}
        return 200, {"outputs": out if len(out) > 1 else next(iter(out.values()))}


@pytest.fixture
def client(run_cli, monkeypatch):
    """``client(port, *args)``: ``oasis-serving-client`` against 127.0.0.1 (no proxy)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return lambda port, *args: run_cli("serving_client", "--host", "127.0.0.1", "--port",
                                       port, "--model_name", MODEL, *args)


def _want(served, name, seed):
    """The served model's own image (its serving_default signature): the client must
    hand back exactly what the server computed. (In-process eager generation can differ
    from the SavedModel's graph by one uint8 step where a value sits on a rounding
    boundary; with an unseeded random generator that happened about once in a few runs.)"""
    label = np.asarray(Image.open(served["labels"] / f"{name}.png")).astype(np.int32)
    out = served["loaded"].signatures["serving_default"](
        label_map=tf.constant(label[None]), seed=tf.constant([seed], tf.int64))
    return out["image"].numpy()[0]


def test_generate_png_has_bytes_output(served):
    png = (served["labels"] / "a.png").read_bytes()
    out = served["loaded"].signatures["generate_png"](
        label_png=tf.constant([png]), seed=tf.constant([2], tf.int64))
    assert set(out) == {"image_png", "image_png_bytes"}
    assert out["image_png"].numpy()[0] == out["image_png_bytes"].numpy()[0]
    # As TF Serving writes it, image_png makes the REST body invalid UTF-8 (PNG bytes);
    # test_rest_client checks that the client still reads image_png_bytes from it.
    body = _dump({"predictions": [{k: _to_json(k, v.numpy()[0]) for k, v in out.items()}]})
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")


@pytest.mark.parametrize("signature,fmt", [("serving_default", "row"),
                                           ("serving_default", "column"),
                                           ("generate_png", "row"),
                                           ("generate_png", "column")])
def test_rest_client(served, tmp_path, signature, fmt, client):
    out = tmp_path / "out"
    with StubServing(served["loaded"]) as stub:
        r = client(stub.port, "--labels", str(served["labels"]), "--seeds", "3,4",
                    "--signature", signature, "--format", fmt, "--batch_size", "3",
                    "--output_dir", str(out))
        requests = list(stub.requests)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(requests) == 2  # 4 examples in batches of 3
    first = requests[0]
    assert first["signature_name"] == signature
    if fmt == "row":
        assert len(first["instances"]) == 3
        assert first["instances"][0]["seed"] == 3
    else:
        assert first["inputs"]["seed"] == [3, 4, 3]
    if signature == "generate_png":
        value = (first["instances"][0] if fmt == "row" else first["inputs"])["label_png"]
        value = value if fmt == "row" else value[0]
        assert set(value) == {"b64"}
    for name in ("a", "b"):
        for seed in (3, 4):
            got = np.asarray(Image.open(out / f"{name}_s{seed}.png"))
            np.testing.assert_array_equal(got, _want(served, name, seed))


def test_rest_errors_are_reported(served, tmp_path, client):
    with StubServing(served["loaded"]) as stub:
        r = client(stub.port, "--labels", str(served["labels"]), "--model_name", "nope",
                    "--output_dir", str(tmp_path / "o"))
    assert r.returncode != 0 and "HTTP 404" in r.stderr


def test_grpc_without_package_says_what_to_install(served, tmp_path, client):
    try:
        import tensorflow_serving  # noqa: F401
        pytest.skip("tensorflow-serving-api is installed")
    except ImportError:
        pass
    r = client(1, "--protocol", "grpc", "--labels", str(served["labels"]),
                "--output_dir", str(tmp_path / "o"))
    assert r.returncode != 0 and "tensorflow-serving-api" in r.stderr
