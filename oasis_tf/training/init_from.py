"""Fine-tuning: start a new run from published or earlier weights.

``initialize_from(model, path)`` loads G, D and the EMA generator of a freshly
built ``OASIS`` model (fresh optimizers, step 0) from one of:

* an official models folder (``checkpoints/<name>/models/`` of the official
  code): ``<which>_G.pth``, ``<which>_D.pth`` and, when present,
  ``<which>_EMA.pth`` (or ``.npz`` of the same state dicts); ``<which>`` is
  ``best``, else ``latest``, else the highest iteration number;
* a folder of ``.keras`` files (``oasis-convert``'s output or
  ``convert.save_network``): one ``OASISGenerator``, one
  ``OASISDiscriminator``, optionally a second generator whose file name
  contains "ema" (the EMA);
* an oasis_tf run folder: its newest checkpoint, with the networks its
  ``config.yaml`` describes.

Without a source EMA the EMA generator starts as a copy of G, as in a new run.

The class count may differ from the source's: then the layers whose shape
depends on it are re-initialised (they keep the new model's initial values):
G's first convolution ``fc`` and every SPADE input convolution
``mlp_shared`` (their input is the one-hot map plus noise) and D's last layer
``layer_up_last``. Every other tensor (weights, spectral-norm vectors, batch
norm statistics) is copied; any other shape mismatch is an error that names
the tensors.
"""

import dataclasses
import logging
import os
import re
from pathlib import Path

_OFFICIAL = re.compile(r"^(?P<which>.+)_(?P<net>G|D|EMA)\.(?P<ext>pth|npz)$")


@dataclasses.dataclass
class InitReport:
    """What ``initialize_from`` loaded.

    Attributes:
        source: the path given.
        kind: "official", "keras" or "run".
        files: the files read.
        source_num_classes: the class count of the source networks.
        reinitialized: network name -> the variable paths re-initialised
            (empty when the class counts agree).
        kept: network name -> number of tensors copied from the source.
        ema_from: "source EMA" or "copy of G" (None without an EMA generator).
    """

    source: str
    kind: str
    files: list
    source_num_classes: int
    reinitialized: dict
    kept: dict
    ema_from: object = None


def class_dependent_layers(network):
    """The layers of a generator or discriminator whose shape depends on the class
    count: G's ``fc`` and SPADE ``mlp_shared`` convs, D's ``layer_up_last``.

    Args:
        network: an ``OASISGenerator`` or ``OASISDiscriminator``.
    """
    from oasis_tf.models.generator import OASISGenerator

    if isinstance(network, OASISGenerator):
        layers = [network.fc]
        for block in network.body:
            norms = [block.norm_0, block.norm_1] + ([block.norm_s]
                                                    if block.learned_shortcut else [])
            layers += [norm.mlp_shared for norm in norms]
        return layers
    return [network.layer_up_last]


def _class_dependent_paths(network):
    return {v.path for layer in class_dependent_layers(network) for v in layer.weights}


# ------------------------------------------------------------------ sources
def _official_files(folder):
    found = {}
    for name in os.listdir(folder):
        m = _OFFICIAL.match(name)
        if m:
            found.setdefault(m.group("which"), {})[m.group("net")] = folder / name
    if not found:
        return None
    for which in ("best", "latest"):
        if which in found:
            return which, found[which]
    numbered = sorted((int(w), w) for w in found if w.isdigit())
    which = numbered[-1][1] if numbered else sorted(found)[-1]
    return which, found[which]


def _load_official(folder, target):
    from oasis_tf.convert.official import (load_official_discriminator,
                                           load_official_generator)

    which, files = _official_files(folder)
    missing = [f"{which}_{net}.pth" for net in ("G", "D") if net not in files]
    if missing:
        raise FileNotFoundError(f"--init_from {folder}: {', '.join(missing)} missing (an "
                                f"official models folder holds {which}_G.pth, {which}_D.pth "
                                f"and {which}_EMA.pth)")
    g = target.generator

    def generator(path):
        return load_official_generator(str(path), image_size=g.image_size, z_dim=g.z_dim,
                                       use_3d_noise=g.use_3d_noise, norm_type=g.norm_type)

    nets = dict(generator=generator(files["G"]),
                discriminator=load_official_discriminator(str(files["D"])),
                ema_generator=generator(files["EMA"]) if "EMA" in files else None)
    return nets, [str(files[n]) for n in ("G", "D", "EMA") if n in files]


def _load_keras(folder, files):
    import keras

    from oasis_tf.models.discriminator import OASISDiscriminator
    from oasis_tf.models.generator import OASISGenerator

    nets = dict(generator=None, discriminator=None, ema_generator=None)
    for path in files:
        net = keras.saving.load_model(path, compile=False)
        if isinstance(net, OASISDiscriminator):
            role = "discriminator"
        elif isinstance(net, OASISGenerator):
            role = "ema_generator" if "ema" in path.name.lower() else "generator"
        else:
            raise ValueError(f"--init_from {folder}: {path.name} holds a "
                             f"{type(net).__name__}, not an OASIS generator or discriminator")
        if nets[role] is not None:
            raise ValueError(f"--init_from {folder}: two {role} files; keep one (a second "
                             f"generator is taken as the EMA when its name contains 'ema')")
        nets[role] = net
    if nets["generator"] is None and nets["ema_generator"] is not None:
        nets["generator"] = nets["ema_generator"]  # only an EMA file: it is G too
    missing = [r for r in ("generator", "discriminator") if nets[r] is None]
    if missing:
        raise FileNotFoundError(f"--init_from {folder}: no {' or '.join(missing)} among "
                                f"{[p.name for p in files]}")
    return nets, [str(p) for p in files]


def _load_run(folder):
    from oasis_tf.config import load_config
    from oasis_tf.models.factory import discriminator_from_config, generator_from_config
    from oasis_tf.training.checkpoints import CheckpointManager

    latest = CheckpointManager(folder / "checkpoints", None).latest_checkpoint
    if latest is None:
        raise FileNotFoundError(f"--init_from {folder}: no checkpoint in {folder / 'checkpoints'}")
    model_config = load_config(str(folder / "config.yaml")).model
    nets = dict(generator=generator_from_config(model_config),
                discriminator=discriminator_from_config(model_config), ema_generator=None)
    files = []
    for role in nets:
        path = latest / f"{role}.weights.h5"
        if role == "ema_generator":
            if not path.exists():
                continue
            nets[role] = generator_from_config(model_config, name="ema_generator")
        nets[role].load_weights(path)
        files.append(str(path))
    return nets, files


def _load_source(path, target):
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"--init_from {path}: not a folder (give an official models "
                                f"folder with best_G.pth/best_D.pth/best_EMA.pth, a folder of "
                                f".keras files, or a run folder)")
    if (folder / "checkpoints").is_dir() and (folder / "config.yaml").exists():
        return ("run",) + _load_run(folder)
    if _official_files(folder) is not None:
        return ("official",) + _load_official(folder, target)
    keras_files = sorted(folder.glob("*.keras"))
    if keras_files:
        return ("keras",) + _load_keras(folder, keras_files)
    raise FileNotFoundError(f"--init_from {path}: found no weights (expected an official "
                            f"models folder with *_G.pth and *_D.pth, .keras files, or a run "
                            f"folder with checkpoints/ and config.yaml)")


# ------------------------------------------------------------------ copying
def _copy(source, target, classes_differ, what, fallback=None):
    """Copies ``source``'s variables into ``target``'s by path; returns (kept,
    re-initialised paths). Class-dependent variables are skipped when the class
    counts differ (and set from ``fallback``'s, the new G, for the EMA)."""
    values = {v.path: v for v in source.weights}
    skip = _class_dependent_paths(target) if classes_differ else set()
    missing, mis_shaped, pairs = [], [], []
    for variable in target.weights:
        if variable.path in skip:
            continue
        if variable.path not in values:
            missing.append(variable.path)
            continue
        value = values[variable.path]
        if tuple(value.shape) != tuple(variable.shape):
            mis_shaped.append(f"{variable.path}: {tuple(value.shape)} in the source, "
                              f"{tuple(variable.shape)} in the new model")
            continue
        pairs.append((variable, value))
    if missing or mis_shaped:
        lines = [f"the source {what} does not fit the new one (only the class count may "
                 f"differ); nothing was loaded:"]
        if missing:
            lines.append(f"  {len(missing)} tensors missing in the source: "
                         + ", ".join(missing))
        if mis_shaped:
            lines.append(f"  {len(mis_shaped)} mis-shaped: " + "; ".join(mis_shaped))
        raise ValueError("\n".join(lines))
    for variable, value in pairs:
        variable.assign(value.numpy())
    if fallback is not None and skip:
        own = {v.path: v for v in fallback.weights}
        for variable in target.weights:
            if variable.path in skip:
                variable.assign(own[variable.path].numpy())
    return len(pairs), sorted(skip)


def initialize_from(model, path, logger=None):
    """Loads G, D and EMA weights into a freshly built ``OASIS`` model.

    The optimizers are left as they are (fresh: the model must be at step 0).

    Args:
        model: a compiled ``OASIS`` model that has not trained yet.
        path: an official models folder (``best_G.pth``, ``best_D.pth``,
            ``best_EMA.pth``), a folder of ``.keras`` files, or a run folder.
        logger: a ``logging.Logger`` for the summary (default: the
            ``oasis_tf.training`` logger).

    Returns:
        An ``InitReport``.

    Raises:
        FileNotFoundError: ``path`` holds no weights in a known layout.
        ValueError: the model has trained already, or a tensor other than the
            class-dependent ones does not fit (all are named).
    """
    logger = logger or logging.getLogger("oasis_tf.training")
    for optimizer in (model.g_optimizer, model.d_optimizer):
        if optimizer is not None and int(optimizer.iterations.numpy()) != 0:
            raise ValueError(f"initialize_from needs a model at step 0 (fresh optimizers). "
                             f"Received: {optimizer.name}.iterations="
                             f"{int(optimizer.iterations.numpy())}")
    kind, nets, files = _load_source(path, model)
    source_classes = nets["generator"].num_classes
    if nets["discriminator"].num_classes != source_classes:
        raise ValueError(f"--init_from {path}: its generator has {source_classes} classes, "
                         f"its discriminator {nets['discriminator'].num_classes}")
    classes_differ = source_classes != model.num_classes
    reinitialized, kept = {}, {}
    for role in ("generator", "discriminator"):
        kept[role], reinitialized[role] = _copy(nets[role], getattr(model, role),
                                                classes_differ, role)
    ema_from = None
    if model.ema_generator is not None:
        if nets["ema_generator"] is not None:
            ema_from = "source EMA"
            kept["ema_generator"], reinitialized["ema_generator"] = _copy(
                nets["ema_generator"], model.ema_generator, classes_differ, "EMA generator",
                fallback=model.generator)
        else:
            ema_from = "copy of G"
            for target, source in zip(model.ema_generator.weights, model.generator.weights):
                target.assign(source.numpy())
    report = InitReport(source=str(path), kind=kind, files=files,
                        source_num_classes=source_classes, reinitialized=reinitialized,
                        kept=kept, ema_from=ema_from)
    logger.info("initialised from %s (%s: %s): %s; EMA: %s; optimizers fresh, step 0",
                path, kind, ", ".join(os.path.basename(f) for f in files),
                ", ".join(f"{role} {n} tensors" for role, n in kept.items()),
                ema_from or "off")
    if classes_differ:
        layers = sorted({p.rsplit("/", 1)[0] for p in reinitialized["generator"]})
        logger.info("the source has %d classes, this run %d: re-initialised generator layers "
                    "%s and discriminator layer %s (they depend on the class count); every "
                    "other tensor was kept", source_classes, model.num_classes,
                    ", ".join(layers),
                    ", ".join(sorted({p.rsplit("/", 1)[0]
                                      for p in reinitialized["discriminator"]})))
    return report
