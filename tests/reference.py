"""Where the reference fixtures made with the official PyTorch code are found, the
generators tests share, and how generated images are compared.

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
    """The converted official `small` generator (13 classes, 64x64, z_dim 64), or
    `stand_in_generator()` when the fixtures are absent."""
    import oasis_tf

    ref = find_reference_dir()
    path = ref / "small" / "G_state.npz" if ref is not None else None
    if path is not None and path.exists():
        return oasis_tf.convert.load_official_generator(str(path), image_size=(64, 64))
    return stand_in_generator()


def stand_in_generator(num_classes=5, seed=0, refresh_batches=20):
    """A tiny 5-class 64x64 generator that behaves like a saved one, for tests that
    need a generator's properties, not the reference's numbers.

    Weights at the scale training gives them (xavier gain 1.0, as `train.init_gain`;
    the official 0.02 makes the output an almost constant grey) and batch-norm running
    statistics that follow its activations (`refresh_batches` training-mode forwards,
    as the EMA refresh does; the initial 0 / 1 let activations grow block after block
    until a float16 rounding of a weight flips saturated pixels). Seeded: the same
    model on every run.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    import oasis_tf
    from oasis_tf.layers.spectral_norm import reinitialize_kernels

    keras.utils.set_random_seed(seed)
    g = oasis_tf.OASISGenerator(num_classes=num_classes, image_size=(64, 64),
                                base_channels=4, z_dim=3, spade_hidden=8)
    reinitialize_kernels(g, 1.0)

    @tf.function
    def forward(label, noise):
        g({"label": label, "noise": noise}, training=True)

    rng = np.random.default_rng(seed)
    for _ in range(refresh_batches):
        coarse = rng.integers(0, num_classes, (2, 8, 8))
        label = np.repeat(np.repeat(coarse, 8, 1), 8, 2).astype(np.int32)
        forward(tf.constant(label), tf.constant(rng.standard_normal((2, 3)), tf.float32))
    return g


def assert_images_match(got, want):
    """uint8 equal, or at most one level apart on a few values: the same image computed
    with another batch size, or traced instead of eager, can sum in another order
    (TensorFlow's CPU kernels block by problem size), and a value on a rounding
    boundary then lands one level off."""
    import numpy as np

    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == np.uint8 and got.shape == want.shape, (got.dtype, got.shape, want.shape)
    diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
    assert diff.max() <= 1, f"max difference {diff.max()} levels"
    assert (diff > 0).mean() <= 0.005, f"{(diff > 0).sum()} of {diff.size} values differ"
