"""Where the reference fixtures made with the official PyTorch code are found.

Import from test modules (`from reference import find_reference_dir`) or use the
session-scoped `reference_dir` fixture of conftest.py, which skips when they are
missing.
"""

import os
from pathlib import Path
from typing import List, Optional

ENV_VAR = "OASIS_REFERENCE_DIR"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO_ROOT.parent / "shared" / "reference" / "oasis_torch"


def _candidates() -> List[str]:
    env = os.environ.get(ENV_VAR)
    return [f"${ENV_VAR}={env}" if env else f"${ENV_VAR} (unset)", str(DEFAULT_DIR)]


# The places looked at, as text for skip messages (refreshed by each call).
LOOKED_AT: List[str] = _candidates()


def find_reference_dir() -> Optional[Path]:
    """Returns `$OASIS_REFERENCE_DIR`, else `<repo>/../shared/reference/oasis_torch`,
    whichever is an existing folder first; None when neither is."""
    LOOKED_AT[:] = _candidates()
    env = os.environ.get(ENV_VAR)
    for candidate in ([Path(env)] if env else []) + [DEFAULT_DIR]:
        if candidate.is_dir():
            return candidate
    return None


def skip_message() -> str:
    return "reference fixtures not found; looked at " + " and ".join(LOOKED_AT)


def small_generator():
    """The converted official `small` generator (13 classes, 64x64, z_dim 64), or a
    tiny random 5-class generator when the fixtures are absent."""
    import oasis_tf

    ref = find_reference_dir()
    path = ref / "small" / "G_state.npz" if ref is not None else None
    if path is not None and path.exists():
        return oasis_tf.convert.load_official_generator(str(path), image_size=(64, 64))
    return oasis_tf.OASISGenerator(num_classes=5, image_size=(64, 64), base_channels=4,
                                   z_dim=3, spade_hidden=8)
