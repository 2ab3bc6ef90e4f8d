"""Writing converted networks to disk without leaving partial files."""

import os

from oasis_tf.fileio import atomic_file

_FORMATS = (".keras", ".weights.h5")


def save_network(model, path, overwrite=False):
    """Save a network as ``.keras`` (whole model) or ``.weights.h5`` (weights).

    The file is written next to its destination and renamed into place, so an
    interrupted or failed save never leaves a truncated file behind; its mode
    follows the umask, as a plain ``open`` would.

    Args:
        model: an ``OASISGenerator`` or ``OASISDiscriminator``.
        path: destination ending in ``.keras`` or ``.weights.h5``.
        overwrite: replace an existing file.

    Returns:
        The path written.
    """
    path = os.fspath(path)
    suffix = next((s for s in _FORMATS if path.endswith(s)), None)
    if suffix is None:
        raise ValueError(f"output {path!r} must end with one of {_FORMATS}")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    with atomic_file(path, suffix=suffix) as tmp:
        if suffix == ".keras":
            model.save(tmp, overwrite=True)
        else:
            model.save_weights(tmp, overwrite=True)
    return path
