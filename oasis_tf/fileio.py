"""Small file-system helpers shared by the writers of oasis_tf.

Files that are written to a temporary name and renamed into place
(``tempfile.mkstemp`` / ``mkdtemp``) are created 0600 / 0700, whatever the
user's umask says. ``follow_umask`` gives them the mode a plain ``open`` /
``mkdir`` would have given (0666 / 0777 minus the umask), so a model written
by one user can be served from shared storage or under another uid.
"""

import hashlib
import os
import threading

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
