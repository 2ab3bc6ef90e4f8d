"""Shared pytest set-up for oasis_tf."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from reference import find_reference_dir, skip_message  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _no_tf32():
    """Parity tests need true float32 convolutions; TF32 moves them by ~5e-3."""
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(False)
    yield


@pytest.fixture(scope="session")
def reference_dir():
    """The reference fixture folder (official PyTorch outputs); skips when absent."""
    path = find_reference_dir()
    if path is None:
        pytest.skip(skip_message())
    return path


def pytest_collection_modifyitems(config, items):
    """Skips tests marked `gpu` where TensorFlow sees no GPU."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return
    skip = pytest.mark.skip(reason="needs a GPU; TensorFlow sees none")
    for item in gpu_items:
        item.add_marker(skip)
