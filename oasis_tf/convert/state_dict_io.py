"""Read PyTorch state dicts (official OASIS ``.pth`` checkpoints) as numpy arrays.

The official OASIS code saves ``torch.save(net.state_dict(), path)``.  Since
PyTorch 1.6 this is a zip archive with members under one top-level folder
``<prefix>/``:

* ``<prefix>/data.pkl`` - a pickle (protocol 2) of a ``collections.OrderedDict``
  name -> tensor.  Each tensor is pickled as a call to
  ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
  requires_grad, backward_hooks)``, where ``storage`` is a *persistent id*
  ``('storage', <torch.XxxStorage class>, key, location, numel)``.  The dict
  itself carries a ``_metadata`` attribute (restored with the BUILD opcode).
* ``<prefix>/data/<key>`` - the raw bytes of each storage (``numel`` elements).
* ``<prefix>/byteorder`` (newer versions) - ``little`` or ``big``; absent means
  little-endian.  ``.format_version``, ``version``, ... are ignored.

:func:`read_state_dict` reads such files with ``torch.load`` when torch is
installed, or with a built-in reader that needs no torch.  The built-in reader
uses a restricted unpickler that only resolves the handful of globals a state
dict needs, so loading an untrusted file cannot execute code.  It also reads
``.npz`` files holding the same state dict (keys = official names), which can be
written with :func:`write_state_dict_npz`.
"""

from __future__ import annotations

import collections
import collections.abc
import os
import pickle
import zipfile
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

_ACCEPTED = (
    "accepted formats: PyTorch zip checkpoints (.pth/.pt written by torch.save) "
    "and numpy .npz archives of the state dict"
)

# torch.save's legacy (pre-1.6, non-zip) format starts with the pickled magic
# number 0x1950a86a20f9469cfc6c (protocol 2, LONG1 opcode).
_LEGACY_MAGIC = b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"

# Storage classes -> element dtype name (``bfloat16`` is decoded separately).
_STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}

# torch dtype globals (needed by ``_rebuild_tensor_v3`` + ``UntypedStorage``).
_TORCH_DTYPES = {
    "float32": "float32", "float": "float32",
    "float64": "float64", "double": "float64",
    "float16": "float16", "half": "float16",
    "bfloat16": "bfloat16",
    "int64": "int64", "long": "int64",
    "int32": "int32", "int": "int32",
    "int16": "int16", "short": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "bool": "bool",
}


# ----------------------------------------------------------------------------
# Built-in (torch-free) reader
# ----------------------------------------------------------------------------


class _StorageType:
    """Stand-in for a ``torch.XxxStorage`` class (``dtype`` None = untyped)."""

    def __init__(self, name: str, dtype: Optional[str]):
        self.name = name
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"<storage type {self.name}>"


class _TorchDtype:
    """Stand-in for a ``torch.<dtype>`` object."""

    def __init__(self, dtype: str):
        self.dtype = dtype


class _Storage:
    """Raw bytes of one storage record plus the element dtype it was saved with."""

    def __init__(self, raw: bytes, dtype: Optional[str], byteorder: str, where: str):
        self.raw = raw
        self.dtype = dtype
        self.byteorder = byteorder
        self.where = where

    def elements(self, dtype: str) -> np.ndarray:
        """The storage as a 1-D array of ``dtype`` (bfloat16 as raw uint16)."""
        np_dtype = np.dtype("uint16" if dtype == "bfloat16" else dtype)
        if np_dtype.itemsize > 1:
            np_dtype = np_dtype.newbyteorder("<" if self.byteorder == "little" else ">")
        n = len(self.raw) // np_dtype.itemsize
        return np.frombuffer(self.raw, dtype=np_dtype, count=n)


class _PickledDict(collections.OrderedDict):
    """OrderedDict whose pickled instance state (``_metadata``) is dropped."""

    def __setstate__(self, state: Any) -> None:  # BUILD opcode: accept and drop
        pass


def _as_int_tuple(value: Any, what: str, where: str) -> Tuple[int, ...]:
    if isinstance(value, int):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ValueError(f"{where}: malformed tensor record ({what}={value!r})")
    return tuple(int(v) for v in value)


def _make_array(storage: Any, storage_offset: Any, size: Any, stride: Any,
                dtype: Optional[str], where: str) -> np.ndarray:
    """Gather a (possibly strided / offset) tensor out of its storage."""
    if not isinstance(storage, _Storage):
        raise ValueError(f"{where}: malformed tensor record (storage={storage!r})")
    dtype = dtype or storage.dtype or "uint8"
    offset = _as_int_tuple(storage_offset, "storage_offset", where)
    if len(offset) != 1:
        raise ValueError(f"{where}: malformed tensor record (storage_offset={storage_offset!r})")
    offset_i = offset[0]
    size_t = _as_int_tuple(size, "size", where)
    stride_t = _as_int_tuple(stride, "stride", where)
    if len(size_t) != len(stride_t) or offset_i < 0 or any(s < 0 for s in size_t) or any(
        s < 0 for s in stride_t
    ):
        raise ValueError(
            f"{where}: malformed tensor record (offset={offset_i}, size={size_t}, stride={stride_t})"
        )
    elems = storage.elements(dtype)
    if any(s == 0 for s in size_t):
        out = np.zeros(size_t, dtype=elems.dtype)
    else:
        last = offset_i + sum((n - 1) * st for n, st in zip(size_t, stride_t))
        if last >= elems.shape[0]:
            raise ValueError(
                f"{where}: tensor (offset={offset_i}, size={size_t}, stride={stride_t}) "
                f"reads past the end of its storage ({elems.shape[0]} elements)"
            )
        base = elems[offset_i:]
        out = np.lib.stride_tricks.as_strided(
            base, shape=size_t, strides=tuple(st * elems.itemsize for st in stride_t),
            writeable=False,
        ).copy()
    if dtype == "bfloat16":
        return (out.astype(np.uint32) << 16).view(np.float32)
    if not out.dtype.isnative:
        out = out.astype(out.dtype.newbyteorder("="))
    return out


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for ``data.pkl`` that resolves only state-dict globals."""

    def __init__(self, file, zf: zipfile.ZipFile, prefix: str, byteorder: str, where: str):
        super().__init__(file)
        self._zf = zf
        self._prefix = prefix
        self._byteorder = byteorder
        self._where = where
        self._storages: Dict[str, _Storage] = {}

    # -- globals ---------------------------------------------------------------
    def find_class(self, module: str, name: str) -> Any:
        where = self._where
        if module == "collections" and name == "OrderedDict":
            return _PickledDict
        if module == "torch._utils":
            if name == "_rebuild_tensor_v2":
                def rebuild_v2(storage, storage_offset, size, stride, requires_grad=False,
                               backward_hooks=None, metadata=None):
                    return _make_array(storage, storage_offset, size, stride, None, where)
                return rebuild_v2
            if name == "_rebuild_tensor_v3":
                def rebuild_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                               dtype, metadata=None):
                    if not isinstance(dtype, _TorchDtype):
                        raise ValueError(f"{where}: malformed tensor record (dtype={dtype!r})")
                    return _make_array(storage, storage_offset, size, stride, dtype.dtype, where)
                return rebuild_v3
            if name == "_rebuild_tensor":
                def rebuild(storage, storage_offset, size, stride):
                    return _make_array(storage, storage_offset, size, stride, None, where)
                return rebuild
            if name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
                def rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
                    return data
                return rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        if module == "torch" and name in _TORCH_DTYPES:
            return _TorchDtype(_TORCH_DTYPES[name])
        if module == "torch.storage" and name in ("UntypedStorage", "_UntypedStorage"):
            return _StorageType(name, None)
        raise ValueError(
            f"{where}: refusing to load disallowed global '{module}.{name}' "
            "(only state-dict tensors can be read without torch)"
        )

    # -- storages --------------------------------------------------------------
    def persistent_load(self, pid: Any) -> Any:
        where = self._where
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise ValueError(f"{where}: unsupported persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(
            numel, int
        ):
            raise ValueError(f"{where}: malformed storage record {pid!r}")
        if key in self._storages:
            return self._storages[key]
        member = f"{self._prefix}data/{key}"
        try:
            raw = self._zf.read(member)
        except KeyError:
            raise ValueError(f"{where}: storage member '{member}' is missing") from None
        dtype = storage_type.dtype
        itemsize = 1 if dtype is None else np.dtype("uint16" if dtype == "bfloat16" else dtype).itemsize
        if len(raw) < numel * itemsize:
            raise ValueError(
                f"{where}: storage '{member}' has {len(raw)} bytes, expected {numel * itemsize}"
            )
        storage = _Storage(raw[: numel * itemsize], dtype, self._byteorder, where)
        self._storages[key] = storage
        return storage


def _find_pickle_member(names, where: str) -> Optional[str]:
    candidates = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
    if not candidates:
        return None
    candidates.sort(key=lambda n: (n.count("/"), n))
    return candidates[0]


def _read_torch_zip_builtin(zf: zipfile.ZipFile, pkl_name: str, where: str) -> Any:
    prefix = pkl_name[: -len("data.pkl")]
    byteorder = "little"
    if f"{prefix}byteorder" in zf.namelist():
        byteorder = zf.read(f"{prefix}byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise ValueError(f"{where}: unknown byteorder {byteorder!r}")
    with zf.open(pkl_name) as fh:
        unpickler = _RestrictedUnpickler(fh, zf, prefix, byteorder, where)
        try:
            return unpickler.load()
        except ValueError:
            raise
        except Exception as exc:  # malformed pickle stream
            raise ValueError(f"{where}: cannot unpickle '{pkl_name}': {exc}") from exc


# ----------------------------------------------------------------------------
# torch / npz readers and result normalisation
# ----------------------------------------------------------------------------


def _import_torch():
    try:
        import torch  # noqa: F401
    except Exception:  # pragma: no cover - depends on the environment
        return None
    return torch


def _torch_load(torch, path: str) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: torch.load(weights_only=True) refused the file: {exc}") from exc


def _to_numpy(value: Any) -> Any:
    """torch.Tensor -> numpy (bfloat16 -> float32); anything else unchanged."""
    if hasattr(value, "detach") and hasattr(value, "dtype") and hasattr(value, "numpy"):
        import torch

        t = value.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy().copy()
    return value


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, collections.abc.Mapping) and all(
        isinstance(k, str) and isinstance(_to_numpy(v), np.ndarray) for k, v in obj.items()
    )


def _describe(obj: Any) -> str:
    if isinstance(obj, collections.abc.Mapping):
        items = list(obj.items())[:8]
        inner = ", ".join(f"{k!r}: {type(_to_numpy(v)).__name__}" for k, v in items)
        more = ", ..." if len(obj) > 8 else ""
        return f"a mapping {{{inner}{more}}}"
    return f"an object of type {type(obj).__name__}"


def _normalise(obj: Any, where: str) -> "collections.OrderedDict[str, np.ndarray]":
    """Unwrap one ``{"state_dict": {...}}``-style level and convert to numpy."""
    if isinstance(obj, collections.abc.Mapping) and not _is_tensor_dict(obj):
        preferred = ("state_dict", "model", "model_state_dict", "net", "params", "weights")
        inner = [obj[k] for k in preferred if k in obj and _is_tensor_dict(obj[k]) and obj[k]]
        if not inner:
            inner = [v for v in obj.values() if _is_tensor_dict(v) and v]
            if len(inner) != 1:
                inner = []
        if inner:
            obj = inner[0]
    if not _is_tensor_dict(obj):
        raise ValueError(
            f"{where}: expected a state dict (mapping str -> tensor), found {_describe(obj)}"
        )
    return collections.OrderedDict((k, _to_numpy(v)) for k, v in obj.items())


def _read_npz(path: str) -> "collections.OrderedDict[str, np.ndarray]":
    with np.load(path, allow_pickle=False) as data:
        return collections.OrderedDict((k, data[k]) for k in data.files)


# ----------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------


def read_state_dict(path, use_torch: Optional[bool] = None) -> "collections.OrderedDict[str, np.ndarray]":
    """Read a PyTorch state dict as an ordered ``{name: numpy.ndarray}``.

    Args:
      path: a ``.pth``/``.pt`` file written by ``torch.save`` (zip format, or the
        legacy pickle format when torch is installed) or an ``.npz`` archive of
        the same state dict. The format is detected from the content.
      use_torch: ``None`` (default) uses ``torch.load(weights_only=True)`` when
        torch is importable and the built-in reader otherwise; ``True`` requires
        torch; ``False`` always uses the built-in, torch-free reader.

    Returns:
      ``collections.OrderedDict`` in the file's key order. bfloat16 tensors are
      returned as float32; other dtypes are kept. A checkpoint that wraps the
      state dict one level deep (e.g. ``{"state_dict": ...}``) is unwrapped.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ValueError: the file is not a supported format, is not a state dict, or
        references a global the built-in reader does not allow.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"state dict file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, not a state dict file; {_ACCEPTED}")

    torch = None
    if use_torch is None or use_torch:
        torch = _import_torch()
        if use_torch and torch is None:
            raise ImportError(f"{path}: use_torch=True but torch is not importable")

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            pkl_name = _find_pickle_member(names, path)
            if pkl_name is None:
                if names and all(n.endswith(".npy") for n in names):
                    pass  # npz, read below (after closing)
                else:
                    raise ValueError(
                        f"{path}: zip archive is neither a torch checkpoint (no data.pkl) "
                        f"nor an .npz (non-.npy members); {_ACCEPTED}"
                    )
            elif torch is None:
                return _normalise(_read_torch_zip_builtin(zf, pkl_name, path), path)
        if pkl_name is None:
            return _read_npz(path)
        return _normalise(_torch_load(torch, path), path)

    with open(path, "rb") as fh:
        head = fh.read(len(_LEGACY_MAGIC) + 2)
    if head[:1] == b"\x80" and head[2:] == _LEGACY_MAGIC:
        if torch is None:
            raise ValueError(
                f"{path}: legacy (non-zip) torch checkpoint; reading this format needs torch "
                "(install torch, or re-save it with a recent torch.save / as .npz)"
            )
        return _normalise(_torch_load(torch, path), path)
    raise ValueError(f"{path}: not a recognised state dict file; {_ACCEPTED}")


def write_state_dict_npz(state_dict: Mapping[str, Any], path, compress: bool = False) -> str:
    """Write ``{name: array}`` to an ``.npz`` archive readable by :func:`read_state_dict`.

    The archive is what ``np.savez`` writes (one ``<name>.npy`` member per key,
    in the mapping's order), but any key is allowed (``np.savez`` keyword
    arguments could clash with its own parameter names).

    Args:
      state_dict: mapping str -> numpy array (torch tensors are converted;
        bfloat16 becomes float32).
      path: output file; written exactly as given (no ``.npz`` is appended).
      compress: use ZIP_DEFLATED instead of storing members uncompressed.

    Returns:
      ``path`` as a string.
    """
    path = os.fspath(path)
    arrays = collections.OrderedDict()
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise ValueError(f"state dict keys must be str, got {key!r}")
        arr = np.asarray(_to_numpy(value))
        if arr.dtype == object:
            raise ValueError(f"state dict entry {key!r} is not a numeric array")
        arrays[key] = arr
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=mode, allowZip64=True) as zf:
        for key, arr in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)
    return path
