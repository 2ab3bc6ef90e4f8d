"""Tests for oasis_tf/convert/state_dict_io.py (reading official .pth checkpoints)."""

import collections
import importlib.util
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _load_module():
    try:
        from oasis_tf.convert import state_dict_io  # noqa: WPS433

        return state_dict_io
    except Exception:  # noqa: BLE001
        # Package files may not exist yet (or the rest of the package may not
        # import): load this self-contained module straight from its path.
        path = REPO / "oasis_tf" / "convert" / "state_dict_io.py"
        spec = importlib.util.spec_from_file_location("_oasis_state_dict_io", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


sdio = _load_module()
read_state_dict = sdio.read_state_dict
write_state_dict_npz = sdio.write_state_dict_npz


def _reference_dir():
    candidates = []
    env = os.environ.get("OASIS_REFERENCE_DIR")
    if env:
        candidates.append(Path(env))
    candidates.append(REPO.parent / "shared" / "reference" / "oasis_torch")
    for cand in candidates:
        if (cand / "small").is_dir():
            return cand
    return None


REF = _reference_dir()
needs_ref = pytest.mark.skipif(
    REF is None,
    reason="OASIS reference fixtures not found: set $OASIS_REFERENCE_DIR or provide "
    f"{REPO.parent / 'shared' / 'reference' / 'oasis_torch'}",
)

CASES = [("G_state", 208), ("D_state", 130)]


def _assert_same(a, b):
    assert list(a.keys()) == list(b.keys())
    for k in a:
        assert isinstance(a[k], np.ndarray), k
        assert a[k].dtype == b[k].dtype, (k, a[k].dtype, b[k].dtype)
        assert a[k].shape == b[k].shape, (k, a[k].shape, b[k].shape)
        assert a[k].tobytes() == b[k].tobytes(), k


# ----------------------------------------------------------------------------
# Fixture checkpoints
# ----------------------------------------------------------------------------


@needs_ref
@pytest.mark.parametrize("name,count", CASES)
def test_builtin_reader_matches_npz(name, count):
    sd = read_state_dict(REF / "small" / f"{name}.pth", use_torch=False)
    ref = read_state_dict(REF / "small" / f"{name}.npz")
    assert isinstance(sd, collections.OrderedDict)
    assert len(sd) == len(ref) == count
    _assert_same(sd, ref)
    for k, v in sd.items():
        expected = np.int64 if k.endswith("num_batches_tracked") else np.float32
        assert v.dtype == expected, k
        assert v.flags.c_contiguous and v.flags.writeable, k


@needs_ref
@pytest.mark.parametrize("name,count", CASES)
def test_torch_reader_matches_npz(name, count):
    pytest.importorskip("torch")
    sd = read_state_dict(REF / "small" / f"{name}.pth", use_torch=True)
    ref = read_state_dict(REF / "small" / f"{name}.npz")
    assert len(sd) == count
    _assert_same(sd, ref)
    _assert_same(sd, read_state_dict(REF / "small" / f"{name}.pth"))  # default path


@needs_ref
def test_generator_key_order_and_shapes():
    sd = read_state_dict(REF / "small" / "G_state.pth", use_torch=False)
    keys = list(sd)
    assert keys[0].startswith("conv_img.") and keys[-1].startswith("fc.")
    assert sd["fc.weight"].shape == (128, 77, 3, 3)
    assert sd["body.0.conv_0.weight_v"].shape == (1152,)
    assert sd["body.0.norm_0.first_norm.num_batches_tracked"].shape == ()


@needs_ref
@pytest.mark.parametrize("name", ["G_state", "D_state"])
def test_npz_round_trip(tmp_path, name):
    sd = read_state_dict(REF / "small" / f"{name}.pth", use_torch=False)
    out = tmp_path / "sd.npz"
    assert write_state_dict_npz(sd, out) == str(out)
    _assert_same(read_state_dict(out), sd)
    # also readable by plain numpy, in the same order
    with np.load(out) as data:
        assert list(data.files) == list(sd)


def test_npz_round_trip_odd_keys(tmp_path):
    sd = collections.OrderedDict(
        [("file", np.arange(3, dtype=np.int64)), ("a.b", np.ones((2, 2), np.float32)),
         ("allow_pickle", np.zeros((), np.float64))]
    )
    out = tmp_path / "odd.npz"
    write_state_dict_npz(sd, out, compress=True)
    _assert_same(read_state_dict(out), sd)


# ----------------------------------------------------------------------------
# Safety and error handling
# ----------------------------------------------------------------------------


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo hi",))


def _zip_with_pickle(path, payload):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")


def test_forbidden_global_is_refused(tmp_path):
    payload = pickle.dumps(collections.OrderedDict(w=_Evil()), protocol=2)
    path = tmp_path / "evil.pth"
    _zip_with_pickle(path, payload)
    with pytest.raises(ValueError) as info:
        read_state_dict(path, use_torch=False)
    msg = str(info.value)
    assert str(path) in msg
    assert "system" in msg and os.system.__module__ in msg  # e.g. 'posix.system'


def test_forbidden_global_is_refused_by_default_path(tmp_path):
    # with torch installed this goes through torch.load(weights_only=True)
    payload = pickle.dumps({"w": _Evil()}, protocol=2)
    path = tmp_path / "evil2.pth"
    _zip_with_pickle(path, payload)
    with pytest.raises(ValueError, match="evil2.pth"):
        read_state_dict(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"this is not a checkpoint\x00\x01\x02" * 10)
    for use_torch in (False, None):
        with pytest.raises(ValueError) as info:
            read_state_dict(path, use_torch=use_torch)
        assert str(path) in str(info.value)
        assert ".npz" in str(info.value)


def test_zip_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="other.zip"):
        read_state_dict(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_state_dict(path)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    _zip_with_pickle(path, pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(ValueError, match="list.pth.*list"):
        read_state_dict(path, use_torch=False)


# ----------------------------------------------------------------------------
# torch.save'd files with awkward tensors (need torch to create them)
# ----------------------------------------------------------------------------


def _awkward_state_dict(torch):
    base = torch.arange(60, dtype=torch.float32).reshape(5, 12)
    return collections.OrderedDict(
        [
            ("base", base),
            ("slice", base[1:4, 2:9:3]),  # offset + strided view of the same storage
            ("transposed", base.t()),
            ("row", base[3]),
            ("bf16", torch.linspace(-3, 3, 10).to(torch.bfloat16).reshape(2, 5).t()),
            ("int64", torch.tensor([[-(2**40), 7], [3, 2**62]], dtype=torch.int64)),
            ("scalar", torch.tensor(5, dtype=torch.int64)),
            ("half", torch.tensor([1.5, -2.0], dtype=torch.float16)),
            ("float64", torch.tensor([1e-300, 2.0], dtype=torch.float64)),
            ("int32", torch.tensor([1, -2], dtype=torch.int32)),
            ("uint8", torch.tensor([0, 255], dtype=torch.uint8)),
            ("bool", torch.tensor([True, False, True])),
            ("empty", torch.zeros(0, 3)),
            ("param", torch.nn.Parameter(torch.ones(2, 2))),
        ]
    )


def _expected(torch, sd):
    out = collections.OrderedDict()
    for k, v in sd.items():
        v = v.detach()
        out[k] = (v.float() if v.dtype == torch.bfloat16 else v).numpy()
    return out


def test_builtin_reader_strided_offset_bf16(tmp_path):
    torch = pytest.importorskip("torch")
    sd = _awkward_state_dict(torch)
    path = tmp_path / "awkward.pth"
    torch.save(sd, path)
    got = read_state_dict(path, use_torch=False)
    exp = _expected(torch, sd)
    _assert_same(got, exp)
    assert got["bf16"].dtype == np.float32
    assert got["int64"].dtype == np.int64 and got["int64"][1, 1] == 2**62
    assert got["scalar"].shape == () and got["scalar"] == 5
    # the torch path agrees
    _assert_same(read_state_dict(path, use_torch=True), exp)


def test_module_state_dict_with_metadata_and_wrapper(tmp_path):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(
        torch.nn.utils.spectral_norm(torch.nn.Conv2d(3, 4, 3)), torch.nn.BatchNorm2d(4)
    )
    sd = net.state_dict()
    assert hasattr(sd, "_metadata")
    plain = tmp_path / "net.pth"
    torch.save(sd, plain)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"epoch": 3, "state_dict": sd}, wrapped)
    exp = _expected(torch, sd)
    for path in (plain, wrapped):
        for use_torch in (False, True):
            got = read_state_dict(path, use_torch=use_torch)
            assert type(got) is collections.OrderedDict
            _assert_same(got, exp)


def test_big_endian_archive(tmp_path):
    torch = pytest.importorskip("torch")
    sd = collections.OrderedDict(
        [("w", torch.arange(6, dtype=torch.float32).reshape(2, 3).t()),
         ("n", torch.tensor(9, dtype=torch.int64)),
         ("b", torch.tensor([1.0, -2.5], dtype=torch.bfloat16))]
    )
    src = tmp_path / "le.pth"
    torch.save(sd, src)
    # Re-pack with every storage byte-swapped and byteorder = 'big'.
    with zipfile.ZipFile(src) as zf:
        prefix = [n for n in zf.namelist() if n.endswith("/data.pkl")][0][: -len("data.pkl")]
        assert sorted(n for n in zf.namelist() if "/data/" in n) == [prefix + f"data/{i}" for i in range(3)]
        members = {n: zf.read(n) for n in zf.namelist()}
    # storage keys are assigned in pickling order: 0, 1, 2 for w, n, b
    sizes = {"0": 4, "1": 8, "2": 2}
    dst = tmp_path / "be.pth"
    with zipfile.ZipFile(dst, "w") as zf:
        for n, data in members.items():
            rel = n[len(prefix):]
            if rel == "byteorder":
                data = b"big"
            elif rel.startswith("data/"):
                size = sizes[rel[len("data/"):]]
                data = np.frombuffer(data, dtype=f"<u{size}").astype(f">u{size}").tobytes()
            zf.writestr(n, data)
    got = read_state_dict(dst, use_torch=False)
    _assert_same(got, _expected(torch, sd))
    assert got["w"].dtype.isnative


def test_legacy_non_zip_format(tmp_path):
    torch = pytest.importorskip("torch")
    sd = collections.OrderedDict([("w", torch.arange(4.0).reshape(2, 2)), ("n", torch.tensor(3))])
    path = tmp_path / "legacy.pth"
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    _assert_same(read_state_dict(path), _expected(torch, sd))
    with pytest.raises(ValueError, match="legacy.pth.*needs torch"):
        read_state_dict(path, use_torch=False)


def test_untyped_storage_dtypes(tmp_path):
    # torch >= 2.3 saves e.g. uint16 via _rebuild_tensor_v3 + UntypedStorage + torch.uint16
    torch = pytest.importorskip("torch")
    if not hasattr(torch, "uint16"):
        pytest.skip("torch without uint16")
    sd = {"u16": torch.tensor([[1, 65535], [7, 8]], dtype=torch.uint16).t(),
          "f": torch.ones(3)}
    path = tmp_path / "u16.pth"
    torch.save(sd, path)
    got = read_state_dict(path, use_torch=False)
    assert got["u16"].dtype == np.uint16
    np.testing.assert_array_equal(got["u16"], [[1, 7], [65535, 8]])
    np.testing.assert_array_equal(got["f"], np.ones(3, np.float32))


@needs_ref
def test_default_path_without_torch(monkeypatch):
    # Simulate an environment where torch is not importable.
    monkeypatch.setattr(sdio, "_import_torch", lambda: None)
    sd = read_state_dict(REF / "small" / "D_state.pth")
    _assert_same(sd, read_state_dict(REF / "small" / "D_state.npz"))
    with pytest.raises(ImportError):
        read_state_dict(REF / "small" / "D_state.pth", use_torch=True)


def test_truncated_storage_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    src = tmp_path / "ok.pth"
    torch.save({"w": torch.ones(4)}, src)
    dst = tmp_path / "truncated.pth"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for n in zin.namelist():
            zout.writestr(n, zin.read(n)[:4] if n.endswith("/data/0") else zin.read(n))
    with pytest.raises(ValueError, match="truncated.pth.*4 bytes, expected 16"):
        read_state_dict(dst, use_torch=False)
