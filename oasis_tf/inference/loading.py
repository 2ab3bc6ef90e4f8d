"""Loading a generator from whatever a user has: the one loader the tools share.

``load_generator(path, ...)`` accepts

* a training run folder (``config.yaml``): its ``generator.keras`` (the EMA
  generator after the final BatchNorm refresh) unless ``checkpoint`` is given or
  that file is missing; then the checkpoint's (``"latest"`` by default: the newest
  whole one, ``"best"`` or a ``ckpt-N`` folder) ``ema_generator.weights.h5``
  (``generator.weights.h5`` without EMA) loaded into the generator that
  ``config.yaml`` describes;
* a checkpoint folder inside a run (``.../checkpoints/ckpt-N`` or ``best``);
* an ``export_saved_model`` version folder (``saved_model.pb``);
* a ``.keras`` generator (e.g. from ``oasis-convert``);
* an official PyTorch state dict ``.pth`` / ``.pt`` / ``.npz`` (``image_size``
  required; ``z_dim`` / ``num_classes`` as in ``load_official_generator``).

Nothing from a run folder is loaded unchecked: checkpoints are verified against
their manifests (``oasis_tf.training.checkpoints.verify_checkpoint``; "latest"
skips damaged ones with a warning), and ``generator.keras`` /
``discriminator.keras`` against the run folder's ``manifest.json`` (written after
them at the end of a run); without a valid one the newest whole checkpoint is
used, with a warning.

``load_discriminator(path, ...)`` does the same for the discriminator of a run
folder (``discriminator.keras``, else a checkpoint's ``discriminator.weights.h5``),
a checkpoint folder, a ``.keras`` file or an official state dict.
"""

import logging
from pathlib import Path

OFFICIAL_SUFFIXES = (".pth", ".pt", ".npz")
_log = logging.getLogger(__name__)


def _run_checkpoint(run, which):
    """The verified checkpoint folder ``which`` ("latest", "best", a ``ckpt-N``
    name or a path) of the run folder ``run``."""
    from oasis_tf.training.checkpoints import newest_whole_checkpoint, verify_checkpoint

    ckpts = run / "checkpoints"
    if which in (None, "latest"):
        return newest_whole_checkpoint(ckpts, log=_log, required=())[0]
    if which == "best":
        path = ckpts / "best"
    else:
        path = Path(which)
        if not path.is_absolute() and not path.exists():
            path = ckpts / which
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint {path} not found")
    verify_checkpoint(path, required=())
    return path


def _final_network(run, name):
    """``run/name`` (``generator.keras`` / ``discriminator.keras``) when the run
    folder's manifest vouches for it, else None (logged)."""
    from oasis_tf.training.manifest import DamagedCheckpointError, verify_manifest

    if not (run / name).exists():
        return None
    try:
        verify_manifest(run, required=(name,))
    except DamagedCheckpointError as exc:
        _log.warning("%s; loading the newest whole checkpoint instead of %s", exc, name)
        return None
    return run / name


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
            return _from_run(p.parent.parent, _run_checkpoint(p.parent.parent, p), info)
        if not (p / "config.yaml").exists():
            raise FileNotFoundError(f"{p} is neither a run folder (no config.yaml), a "
                                    f"checkpoint folder nor an export (no saved_model.pb)")
        final = _final_network(p, "generator.keras") if checkpoint is None else None
        if final is not None:
            info["source"] = str(final)
            info["config"] = str(p / "config.yaml")
            return keras.saving.load_model(final, compile=False), info
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


def load_discriminator(path, checkpoint=None):
    """The discriminator at ``path`` and a description (as ``load_generator``).

    Args:
        path: a run folder (its ``discriminator.keras`` unless ``checkpoint`` is
            given or that file is missing or unverified; then the checkpoint's
            ``discriminator.weights.h5`` loaded into the discriminator that
            ``config.yaml`` describes), a checkpoint folder, a ``.keras`` file or an
            official ``.pth`` / ``.pt`` / ``.npz`` state dict.
        checkpoint: for a run folder: "latest", "best" or a ``ckpt-N`` folder.

    Returns:
        ``(discriminator, info)`` with ``info`` as in ``load_generator``.
    """
    import keras

    p = Path(path)
    info = {"model": str(p), "config": None}
    if p.is_dir():
        if (p / "state.json").exists() and (p.parent.parent / "config.yaml").exists():
            run, ckpt = p.parent.parent, _run_checkpoint(p.parent.parent, p)
        elif (p / "config.yaml").exists():
            run = p
            final = _final_network(p, "discriminator.keras") if checkpoint is None else None
            if final is not None:
                info.update(source=str(final), config=str(p / "config.yaml"))
                return keras.saving.load_model(final, compile=False), info
            ckpt = _run_checkpoint(p, checkpoint)
        else:
            raise FileNotFoundError(f"{p} is neither a run folder (no config.yaml) nor a "
                                    f"checkpoint folder")
        from oasis_tf.config import load_config
        from oasis_tf.models.factory import discriminator_from_config

        discriminator = discriminator_from_config(load_config(str(run / "config.yaml")).model)
        weights = ckpt / "discriminator.weights.h5"
        try:
            discriminator.load_weights(weights)
        except ValueError as exc:
            raise ValueError(f"{weights} does not fit the discriminator that "
                             f"{run / 'config.yaml'} describes: {exc}") from exc
        info.update(source=str(weights), config=str(run / "config.yaml"))
        return discriminator, info
    if not p.exists():
        raise FileNotFoundError(f"model not found: {p}")
    if p.name.lower().endswith(".keras"):
        info["source"] = str(p)
        return keras.saving.load_model(p, compile=False), info
    if p.name.lower().endswith(OFFICIAL_SUFFIXES):
        from oasis_tf.convert import load_official_discriminator

        info["source"] = f"official state dict {p}"
        return load_official_discriminator(str(p)), info
    raise ValueError(f"{p}: expected a run folder, a checkpoint folder, a .keras file or an "
                     f"official .pth/.pt/.npz state dict")
