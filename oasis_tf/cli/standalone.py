"""What the commands share that needs nothing but the standard library: image-size
parsing, the named benchmark configurations and the process's peak memory.

``tools/bench_official.py`` loads this file by its path: it runs the official PyTorch
code where oasis_tf's dependencies (TensorFlow among them) may be missing, so it
cannot import the package.
"""

CONFIGS = {
    # 151 classes, 64x64, generator width 16, the official discriminator (base 128).
    "small": dict(num_classes=151, image_size=64, g_channels=16, d_channels=128, batch=4),
    # The ADE20K paper configuration at batch 1.
    "ade20k": dict(num_classes=151, image_size=256, g_channels=64, d_channels=128, batch=1),
    # A tiny stand-in for dry runs on a CPU.
    "tiny": dict(num_classes=12, image_size=64, g_channels=2, d_channels=4, batch=2),
    # How the paper trained (scripts/train_*.sh of the official code, batch per GPU).
    "ade20k_gpu": dict(num_classes=151, image_size=256, g_channels=64, d_channels=128,
                       batch=8),
    "cityscapes_gpu": dict(num_classes=35, image_size=(256, 512), g_channels=64,
                           d_channels=128, batch=5, dataset="cityscapes"),
}


def parse_image_size(text, flag="--image_size"):
    """``"256"`` -> 256; ``"256,512"`` or ``"256x512"`` -> (256, 512) (height, width).

    Args:
        text: the flag's value (a str, or a list of str as absl's list flags give).
        flag: the flag's name, for the error.

    Raises:
        ValueError: not one or two positive integers.
    """
    if isinstance(text, (list, tuple)):
        text = ",".join(str(t) for t in text)
    parts = str(text).lower().replace("x", ",").split(",")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise ValueError(f"{flag} must be N, H,W or HxW (e.g. 256, 256,512 or 256x512); "
                         f"received {text!r}")
    return sizes[0] if len(sizes) == 1 else tuple(sizes)


def height_width(size):
    """(H, W) of an int or an (H, W) pair."""
    return (size, size) if isinstance(size, int) else tuple(size)


def resolve_config(name, batch=None, image_size=None, num_classes=None):
    """The named benchmark configuration with ``batch``, ``image_size`` (int, (H, W) or
    text) and ``num_classes`` replaced where given.

    Raises:
        ValueError: an unknown name or a value below 1.
    """
    if name not in CONFIGS:
        raise ValueError(f"--config must be one of {list(CONFIGS)}; received {name!r}")
    c = dict(CONFIGS[name])
    for key, value in (("batch", batch), ("num_classes", num_classes)):
        if value is not None:
            if int(value) < 1:
                raise ValueError(f"--{key} must be >= 1; received {value}")
            c[key] = int(value)
    if image_size is not None:
        c["image_size"] = (parse_image_size(image_size) if isinstance(image_size, str)
                           else image_size)
    return c


def peak_rss_mb():
    """The process's peak resident set size in MB (``getrusage`` maxrss, KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
