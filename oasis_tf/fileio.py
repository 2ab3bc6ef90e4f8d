"""Small file-system helpers shared by the writers of oasis_tf.

Atomic writes. ``atomic_file(path)`` / ``atomic_folder(path)`` give a temporary name
beside ``path`` to write to and rename it into place only when the block ends
without an error, so a reader (or a process killed mid-write) never sees half a file
or folder; the temporary one is removed on an error. Made with ``tempfile.mkstemp`` /
``mkdtemp``, it would be 0600 / 0700 whatever the user's umask says: it gets the mode a
plain ``open`` / ``mkdir`` would have given (0666 / 0777 minus the umask,
``follow_umask``), so a model written by one user can be served from shared storage
or under another uid. ``replace_folder`` is the rename of a complete folder (an old one
moved aside first, both fsynced), also for checkpoints. Checkpoints, the final networks,
the manifests, exports, TFLite files, metrics, evaluation reports, FID statistics and
plots are written this way.

Full disks. A write that fails for lack of space (``OSError`` ENOSPC or EDQUOT,
also when h5py, zipfile or TensorFlow wrap it) becomes a ``DiskFullError`` in the
``writing(what, path)`` block around it: it names what could not be written,
where, and how much space is free there; the caller may add what is still safe
and how to continue (``add_advice``). The commands' shared runner
(``oasis_tf.cli.common``) prints it as one line.
"""

import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
import threading

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# what h5py ("errno = 28, error message = 'No space left on device'"), zipfile and
# TensorFlow's file system layer say when they do not keep the errno
_NO_SPACE_TEXT = re.compile(r"no space left on device|disk quota exceeded|\berrno\s*=?\s*28\b",
                            re.IGNORECASE)

_UMASK_LOCK = threading.Lock()


def current_umask():
    """The process umask (read by setting and restoring it)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def follow_umask(path):
    """Sets ``path`` (and, for a folder, everything under it) to the mode the
    umask gives new files (0666 & ~umask) and folders (0777 & ~umask).

    Args:
        path: a file or folder.

    Returns:
        ``path``.
    """
    mask = current_umask()
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    path = os.fspath(path)
    if os.path.isdir(path):
        for folder, dirs, files in os.walk(path):
            os.chmod(folder, dir_mode)
            for name in files:
                os.chmod(os.path.join(folder, name), file_mode)
    else:
        os.chmod(path, file_mode)
    return path


@contextlib.contextmanager
def atomic_file(path, suffix=""):
    """Yields a temporary file name beside ``path`` (ending in ``suffix``, e.g. the
    ``.keras`` a writer may require); on success it replaces ``path``.

        with atomic_file("run/metrics.jsonl") as tmp:
            write(tmp)
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        follow_umask(tmp)  # mkstemp made it 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_folder(path, prefix=".partial-"):
    """Yields a temporary folder beside ``path``; on success it becomes ``path`` (an
    existing ``path`` is replaced)."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield tmp
        follow_umask(tmp)  # mkdtemp made it 0700
        replace_folder(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_folder(tmp, final):
    """Renames the complete folder ``tmp`` to ``final``. An existing ``final`` is moved
    aside (``.trash-<name>-<pid>``) first and deleted after, so it is missing only
    between two renames; the new folder and its parent are fsynced."""
    tmp, final = os.fspath(tmp), os.fspath(final)
    fsync_folder(tmp)
    if os.path.exists(final):  # e.g. the same checkpoint step saved again after a resume
        trash = os.path.join(os.path.dirname(final),
                             f".trash-{os.path.basename(final)}-{os.getpid()}")
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)
    fsync_folder(os.path.dirname(os.path.abspath(final)))


def fsync_folder(path):
    """Flushes a folder's entries to disk (best effort: skipped where the platform
    cannot open a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_file(path, chunk=1 << 20):
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ full disks
def free_bytes(path):
    """Bytes free for this user on the file system of ``path`` (its nearest existing
    folder), or None when that cannot be read."""
    path = os.path.abspath(os.fspath(path))
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def format_bytes(count):
    """``1.5 GB``-style text (powers of 1024), or "unknown" for None."""
    if count is None:
        return "unknown"
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024:
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def no_space_error(exc):
    """The exception in ``exc``'s chain (itself, its cause or context) that says the
    disk is full: an ``OSError`` with errno ENOSPC / EDQUOT, or an error whose text
    says so (h5py and TensorFlow do not always keep the errno). None otherwise."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError):
            return exc
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            return exc
        if _NO_SPACE_TEXT.search(str(exc)):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


class DiskFullError(OSError):
    """A file could not be written for lack of space.

    Attributes:
        what: what could not be written ("checkpoint ckpt-00000060").
        path: where (the file or folder).
        free: bytes free there when the write failed (None: unknown).
        advice: what is still safe and how to continue (may be empty).
    """

    def __init__(self, what, path, free=None, advice=""):
        self.what, self.path, self.free, self.advice = what, os.fspath(path), free, advice
        super().__init__(errno.ENOSPC, self._text())

    def _text(self):
        text = (f"no space left on device: could not write {self.what} to {self.path} "
                f"({format_bytes(self.free)} free there)")
        return f"{text}; {self.advice}" if self.advice else text

    def add_advice(self, advice):
        """Sets what is still safe and how to continue (kept when already set)."""
        if not self.advice:
            self.advice = advice
            self.strerror = self._text()
            self.args = (self.errno, self.strerror)
        return self

    def __str__(self):
        return self._text()


@contextlib.contextmanager
def writing(what, path):
    """Turns a full-disk failure of the writes inside into a ``DiskFullError``
    naming ``what`` and ``path`` (chained to the original error); any other error
    passes unchanged.

        with writing(f"checkpoint {name}", folder):
            save(...)
    """
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:  # noqa: BLE001 - only a full disk is translated
        if no_space_error(exc) is None:
            raise
        raise DiskFullError(what, path, free_bytes(path)) from exc
