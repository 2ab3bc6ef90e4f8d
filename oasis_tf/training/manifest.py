"""Manifests: the size and SHA-256 of every file a checkpoint or a finished run folder
holds, written last (``write_manifest``) and checked before anything is loaded from it
(``verify_manifest``), so a file truncated by a kill, a full disk or a copy is named and
never loaded silently.

``oasis_tf.training.checkpoints`` writes one into every checkpoint folder, the trainer
one beside a run's final networks (with the ``step`` they are from), and
``oasis_tf.inference.load_generator`` checks them.
"""

import json
import os
from pathlib import Path

from oasis_tf.fileio import atomic_file, sha256_file

MANIFEST = "manifest.json"


class DamagedCheckpointError(ValueError):
    """A checkpoint (or run folder) whose files do not match its manifest.

    Attributes:
        path: the checkpoint folder.
        file: the file at fault (``manifest.json`` when the manifest itself is).
        reason: what is wrong with it.
    """

    def __init__(self, path, file, reason):
        self.path, self.file, self.reason = Path(path), file, reason
        super().__init__(f"{self.path} is damaged: {file}: {reason}")


def write_manifest(folder, names=None, extra=None):
    """Writes ``<folder>/manifest.json``: size and SHA-256 of every file in
    ``folder`` (flat; or only ``names``), fsynced. Write it last, once the files it
    lists are complete.

    Args:
        folder: the folder.
        names: the file names to list (default: every file in ``folder``).
        extra: more JSON-able fields of the manifest (a run folder's records the
            ``step`` its networks are from).
    """
    folder = Path(folder)
    if names is None:
        names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST)
    files = {}
    for name in names:
        path = folder / name
        files[name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    with atomic_file(folder / MANIFEST) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump({"format": 1, **dict(extra or {}), "files": files}, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    return folder / MANIFEST


def verify_manifest(folder, required=()):
    """Checks the files of ``folder`` against its ``manifest.json``.

    Args:
        folder: the folder.
        required: file names the manifest must list.

    Returns:
        The names the manifest lists.

    Raises:
        DamagedCheckpointError: naming the file and the reason (missing or unreadable
            manifest, a required file not listed, a missing file, another size or
            SHA-256).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DamagedCheckpointError(folder, folder.name, "not a folder")
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise DamagedCheckpointError(folder, MANIFEST, "missing (written incompletely, "
                                     "or by an oasis_tf without manifests)")
    try:
        with open(manifest_path, encoding="utf-8") as f:
            files = json.load(f)["files"]
        entries = {str(k): (int(v["size"]), str(v["sha256"])) for k, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DamagedCheckpointError(folder, MANIFEST, f"unreadable ({exc})") from None
    for name in required:
        if name not in entries:
            raise DamagedCheckpointError(folder, name, "not listed in the manifest")
    for name, (size, digest) in sorted(entries.items()):
        path = folder / name
        if not path.is_file():
            raise DamagedCheckpointError(folder, name, "missing")
        actual = path.stat().st_size
        if actual != size:
            raise DamagedCheckpointError(folder, name, f"{actual} bytes, the manifest says "
                                         f"{size} (truncated or overwritten)")
        if sha256_file(path) != digest:
            raise DamagedCheckpointError(folder, name, "SHA-256 differs from the manifest "
                                         "(bytes changed)")
    return sorted(entries)


def manifest_step(folder):
    """The ``step`` a folder's ``manifest.json`` records (a run folder's final
    networks), or None when it records none or cannot be read."""
    try:
        with open(Path(folder) / MANIFEST, encoding="utf-8") as f:
            step = json.load(f).get("step")
        return None if step is None else int(step)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
