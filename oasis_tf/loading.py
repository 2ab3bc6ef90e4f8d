"""Loading a generator from whatever a user has: the one loader the tools share.

``load_generator(path, ...)`` accepts

* a training run folder (``config.yaml``): its ``generator.keras`` (the EMA
  generator after the final BatchNorm refresh) unless ``checkpoint`` is given or
  that file is missing; then the checkpoint's (``"latest"`` by default, ``"best"``
  or a ``ckpt-N`` folder) ``ema_generator.weights.h5`` (``generator.weights.h5``
  without EMA) loaded into the generator that ``config.yaml`` describes;
* a checkpoint folder inside a run (``.../checkpoints/ckpt-N`` or ``best``);
* an ``export_saved_model`` version folder (``saved_model.pb``);
* a ``.keras`` generator (e.g. from ``tools/convert_checkpoint.py``);
* an official PyTorch state dict ``.pth`` / ``.pt`` / ``.npz`` (``image_size``
  required; ``z_dim`` / ``num_classes`` as in ``load_official_generator``).
"""

import re
from pathlib import Path

__all__ = ["load_generator", "OFFICIAL_SUFFIXES"]

OFFICIAL_SUFFIXES = (".pth", ".pt", ".npz")
_CKPT = re.compile(r"^ckpt-(\d+)$")


def _run_checkpoint(run, which):
    ckpts = run / "checkpoints"
    if which in (None, "latest"):
        found = sorted((int(m.group(1)), p) for p in (ckpts.iterdir() if ckpts.is_dir() else ())
                       if (m := _CKPT.match(p.name)) and (p / "state.json").exists())
        if not found:
            raise FileNotFoundError(f"no checkpoint in {ckpts}")
        return found[-1][1]
    if which == "best":
        path = ckpts / "best"
    else:
        path = Path(which)
        if not path.is_absolute() and not path.exists():
            path = ckpts / which
    if not (path / "state.json").exists():
        raise FileNotFoundError(f"checkpoint {path} not found (or incomplete)")
    return path


def _from_run(run, ckpt, info):
    from oasis_tf.config import load_config
    from oasis_tf.models.factory import generator_from_config

    config = load_config(str(run / "config.yaml"))
    generator = generator_from_config(config.model, dataset=config.data.dataset)
    for name in ("ema_generator.weights.h5", "generator.weights.h5"):
        if (ckpt / name).exists():
            try:
                generator.load_weights(ckpt / name)
            except ValueError as exc:
                raise ValueError(f"{ckpt / name} does not fit the generator that {run / 'config.yaml'} "
                                 f"describes (model section: widths, blocks, classes, spade_hidden, "
                                 f"z_dim must be the ones it was trained with): {exc}") from exc
            info["source"] = str(ckpt / name)
            break
    else:
        raise FileNotFoundError(f"checkpoint {ckpt} holds no ema_generator.weights.h5 or "
                                f"generator.weights.h5")
    info["config"] = str(run / "config.yaml")
    return generator, info


def load_generator(path, image_size=None, z_dim=None, num_classes=None, checkpoint=None):
    """The generator at ``path`` (see the module doc) and a description.

    Args:
        path: run folder, checkpoint folder, export folder, ``.keras`` file or
            official state dict.
        image_size: (H, W) for an official state dict.
        z_dim: noise channels of an official state dict (default 64).
        num_classes: classes of an official state dict.
        checkpoint: for a run folder: "latest", "best" or a ``ckpt-N`` folder.

    Returns:
        ``(generator, info)`` with ``info = {"model": path, "source": what was
        loaded, "config": the run's config.yaml or None}``.
    """
    import keras

    p = Path(path)
    info = {"model": str(p), "config": None}
    if p.is_dir():
        if (p / "saved_model.pb").exists():
            from oasis_tf.export import load_generator_from_export

            info["source"] = f"export {p}"
            return load_generator_from_export(str(p)), info
        if (p / "state.json").exists() and (p.parent.parent / "config.yaml").exists():
            return _from_run(p.parent.parent, p, info)
        if not (p / "config.yaml").exists():
            raise FileNotFoundError(f"{p} is neither a run folder (no config.yaml), a "
                                    f"checkpoint folder nor an export (no saved_model.pb)")
        if checkpoint is None and (p / "generator.keras").exists():
            info["source"] = str(p / "generator.keras")
            info["config"] = str(p / "config.yaml")
            return keras.saving.load_model(p / "generator.keras", compile=False), info
        return _from_run(p, _run_checkpoint(p, checkpoint), info)
    if not p.exists():
        raise FileNotFoundError(f"model not found: {p}")
    name = p.name.lower()
    if name.endswith(".keras"):
        info["source"] = str(p)
        return keras.saving.load_model(p, compile=False), info
    if name.endswith(OFFICIAL_SUFFIXES):
        if image_size is None:
            raise ValueError(f"{p}: an official state dict needs image_size (H, W), e.g. "
                             f"--image_size 256,512")
        from oasis_tf.convert import load_official_generator

        info["source"] = f"official state dict {p}"
        return load_official_generator(str(p), image_size=tuple(image_size), z_dim=z_dim,
                                       num_classes=num_classes), info
    raise ValueError(f"{p}: expected a run folder, a checkpoint folder, an export folder, a "
                     f".keras file or an official .pth/.pt/.npz state dict")
