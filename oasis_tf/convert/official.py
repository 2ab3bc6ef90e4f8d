"""Official OASIS (PyTorch) state dicts <-> oasis_tf networks.

One table maps every official key to a Keras variable and the layout change
between them, in both directions:

* conv weights ``[out, in, kh, kw]`` <-> kernels ``[kh, kw, in, out]``;
* spectral-norm ``weight_u`` ``[out]`` as is; ``weight_v`` ``[in*kh*kw]`` in
  ``(in, kh, kw)`` order <-> ``sn_v`` in ``(kh, kw, in)`` order;
* SyncBN ``running_mean`` / ``running_var`` <-> ``moving_mean`` /
  ``moving_variance`` (``num_batches_tracked`` is accepted and ignored: the
  official norm never increments it).

The architecture is inferred from the tensor shapes and every key is checked
before any variable is written; all problems are reported at once.
"""

import collections
import re

import numpy as np

from oasis_tf.convert.state_dict_io import read_state_dict
from oasis_tf.models.discriminator import OASISDiscriminator
from oasis_tf.models.generator import OASISGenerator


class CheckpointMismatchError(ValueError):
    """A state dict whose keys or shapes do not fit the network."""


Entry = collections.namedtuple("Entry", "variable torch_shape to_keras to_torch optional")


def _conv_weight_to_keras(w):
    return np.transpose(w, (2, 3, 1, 0))


def _conv_weight_to_torch(k):
    return np.transpose(k, (3, 2, 0, 1))


def _sn_v_converters(kernel_shape):
    kh, kw, cin, _ = kernel_shape

    def to_keras(v):
        return v.reshape(cin, kh, kw).transpose(1, 2, 0).reshape(-1)

    def to_torch(v):
        return v.reshape(kh, kw, cin).transpose(2, 0, 1).reshape(-1)

    return to_keras, to_torch


def _same(x):
    return x


def _conv_entries(prefix, layer):
    kshape = tuple(layer.kernel.shape)
    tshape = (kshape[3], kshape[2], kshape[0], kshape[1])
    entries = collections.OrderedDict()
    bias = Entry(layer.bias, (kshape[3],), _same, _same, False) if layer.use_bias else None
    if bias and layer.spectral_norm:  # PyTorch's order: bias, weight_orig, u, v ...
        entries[prefix + ".bias"] = bias
    weight_key = prefix + (".weight_orig" if layer.spectral_norm else ".weight")
    entries[weight_key] = Entry(layer.kernel, tshape, _conv_weight_to_keras,
                                _conv_weight_to_torch, False)
    if bias and not layer.spectral_norm:  # ... but weight, bias for a plain conv
        entries[prefix + ".bias"] = bias
    if layer.spectral_norm:
        v_keras, v_torch = _sn_v_converters(kshape)
        entries[prefix + ".weight_u"] = Entry(layer.sn_u, (kshape[3],), _same, _same, False)
        entries[prefix + ".weight_v"] = Entry(
            layer.sn_v, (kshape[0] * kshape[1] * kshape[2],), v_keras, v_torch, False)
    return entries


def _norm_entries(prefix, norm):
    entries = collections.OrderedDict()
    if norm.norm_type == "instance":
        return entries
    channels = tuple(norm.moving_mean.shape)
    entries[prefix + ".running_mean"] = Entry(norm.moving_mean, channels, _same, _same, False)
    entries[prefix + ".running_var"] = Entry(norm.moving_variance, channels, _same, _same, False)
    entries[prefix + ".num_batches_tracked"] = Entry(None, (), None, None, True)
    return entries


def _spade_entries(prefix, spade):
    entries = _norm_entries(prefix + ".first_norm", spade.first_norm)
    entries.update(_conv_entries(prefix + ".mlp_shared.0", spade.mlp_shared))
    entries.update(_conv_entries(prefix + ".mlp_gamma", spade.mlp_gamma))
    entries.update(_conv_entries(prefix + ".mlp_beta", spade.mlp_beta))
    return entries


def generator_key_map(generator):
    """Official key -> ``Entry`` for every tensor of a generator's state dict.

    Args:
        generator: an ``OASISGenerator``.
    """
    entries = _conv_entries("conv_img", generator.conv_img)
    for i, block in enumerate(generator.body):
        p = f"body.{i}"
        entries.update(_conv_entries(p + ".conv_0", block.conv_0))
        entries.update(_conv_entries(p + ".conv_1", block.conv_1))
        if block.learned_shortcut:
            entries.update(_conv_entries(p + ".conv_s", block.conv_s))
        entries.update(_spade_entries(p + ".norm_0", block.norm_0))
        entries.update(_spade_entries(p + ".norm_1", block.norm_1))
        if block.learned_shortcut:
            entries.update(_spade_entries(p + ".norm_s", block.norm_s))
    entries.update(_conv_entries("fc", generator.fc))
    return entries


def discriminator_key_map(discriminator):
    """Official key -> ``Entry`` for every tensor of a discriminator's state dict.

    Args:
        discriminator: an ``OASISDiscriminator``.
    """
    entries = collections.OrderedDict()
    for i, block in enumerate(discriminator.body_up):
        p = f"body_up.{i}"
        entries.update(_conv_entries(p + ".conv1.2", block.conv1))
        entries.update(_conv_entries(p + ".conv2.1", block.conv2))
        if block.learned_shortcut:
            entries.update(_conv_entries(p + ".conv_s", block.conv_s))
    for i, block in enumerate(discriminator.body_down):
        p = f"body_down.{i}"
        entries.update(_conv_entries(p + (".conv1.0" if block.first else ".conv1.1"),
                                     block.conv1))
        entries.update(_conv_entries(p + ".conv2.1", block.conv2))
        if block.learned_shortcut:
            entries.update(_conv_entries(p + ".conv_s", block.conv_s))
    entries.update(_conv_entries("layer_up_last", discriminator.layer_up_last))
    return entries


def key_map(model):
    """The official key map of a generator or discriminator."""
    if isinstance(model, OASISGenerator):
        return generator_key_map(model)
    if isinstance(model, OASISDiscriminator):
        return discriminator_key_map(model)
    raise TypeError(f"expected an OASISGenerator or OASISDiscriminator; got {type(model)}")


def check_state_dict(model, state_dict, source="state dict"):
    """Raise ``CheckpointMismatchError`` listing every missing, unexpected or
    mis-shaped key; return the key map when everything fits.

    Args:
        model: the network the state dict should fit.
        state_dict: mapping official key -> array.
        source: how to name the state dict in the message (a file name).
    """
    entries = key_map(model)
    missing = [k for k, e in entries.items() if k not in state_dict and not e.optional]
    unexpected = [k for k in state_dict if k not in entries]
    mis_shaped = [f"{k}: expected {list(e.torch_shape)}, got {list(np.shape(state_dict[k]))}"
                  for k, e in entries.items()
                  if k in state_dict and e.variable is not None
                  and tuple(np.shape(state_dict[k])) != tuple(e.torch_shape)]
    if missing or unexpected or mis_shaped:
        lines = [f"{source} does not fit {type(model).__name__} "
                 f"({_describe(model)}); nothing was loaded:"]
        for title, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                            ("mis-shaped keys", mis_shaped)):
            if keys:
                lines.append(f"  {len(keys)} {title}: " + ", ".join(keys))
        raise CheckpointMismatchError("\n".join(lines))
    return entries


def assign_state_dict(model, state_dict, source="state dict"):
    """Load an official state dict into an existing network (all or nothing).

    Args:
        model: ``OASISGenerator`` or ``OASISDiscriminator``.
        state_dict: mapping official key -> array.
        source: name used in error messages.
    """
    entries = check_state_dict(model, state_dict, source)
    for key, entry in entries.items():
        if entry.variable is None or key not in state_dict:
            continue
        value = entry.to_keras(np.asarray(state_dict[key], dtype=np.float32))
        entry.variable.assign(value)
    return model


def export_state_dict(model):
    """The network's state in the official layout (key -> numpy array).

    The inverse of ``assign_state_dict``; ``num_batches_tracked`` is written as
    int64 zero, as the official SyncBN leaves it.

    Args:
        model: ``OASISGenerator`` or ``OASISDiscriminator``.
    """
    out = collections.OrderedDict()
    for key, entry in key_map(model).items():
        if entry.variable is None:
            out[key] = np.zeros((), np.int64)
        else:
            out[key] = entry.to_torch(np.asarray(entry.variable.numpy(), np.float32))
    return out


def _describe(model):
    if isinstance(model, OASISGenerator):
        return (f"num_classes={model.num_classes}, z_dim={model.z_dim}, "
                f"base_channels={model.base_channels}, num_res_blocks={model.num_res_blocks}, "
                f"use_3d_noise={model.use_3d_noise}, spectral_norm={model.spectral_norm}, "
                f"norm_type={model.norm_type!r}, spade_hidden={model.spade_hidden}, "
                f"spade_ks={model.spade_ks}")
    return (f"num_classes={model.num_classes}, base_channels={model.base_channels}, "
            f"spectral_norm={model.spectral_norm}")


# --------------------------------------------------------------- inference
def _shape(state_dict, key, source):
    if key not in state_dict:
        raise CheckpointMismatchError(
            f"{source}: key {key!r} is missing, so the architecture cannot be inferred")
    return tuple(np.shape(state_dict[key]))


def detect_network(state_dict):
    """"generator" or "discriminator" from the key names (ValueError otherwise)."""
    keys = set(state_dict)
    if any(k.startswith("body_down.") for k in keys) or "layer_up_last.weight" in keys:
        return "discriminator"
    if "fc.weight" in keys or any(k.startswith("body.") for k in keys):
        return "generator"
    raise ValueError("the state dict is neither an OASIS generator nor discriminator; "
                     f"first keys: {sorted(keys)[:5]}")


def infer_generator_config(state_dict, image_size, z_dim=None, num_classes=None,
                           use_3d_noise=True, source="state dict"):
    """Generator constructor arguments implied by an official state dict.

    The input of ``fc`` has ``z_dim + num_classes`` channels, which shapes alone
    cannot split: give one of them (z_dim defaults to the official 64).

    Args:
        state_dict: official generator state dict.
        image_size: (H, W) the generator should produce (not stored in the weights).
        z_dim: noise channels, when known.
        num_classes: classes (semantic_nc), when known.
        use_3d_noise: whether the checkpoint was trained with 3D noise.
        source: name used in error messages.
    """
    if image_size is None:
        raise ValueError("image_size is needed: the checkpoint does not store it "
                         "(official: ADE20K and COCO-Stuff 256x256, Cityscapes 256x512)")
    fc_out, fc_in = _shape(state_dict, "fc.weight", source)[:2]
    ch = _shape(state_dict, "conv_img.weight", source)[1]
    blocks = sorted({int(m.group(1)) for k in state_dict
                     for m in [re.match(r"body\.(\d+)\.", k)] if m})
    if not blocks or blocks != list(range(len(blocks))):
        raise CheckpointMismatchError(f"{source}: generator blocks body.N are not "
                                      f"numbered 0..n-1: {blocks}")
    spectral = "body.0.conv_0.weight_orig" in state_dict
    norm_type = "syncbatch" if "body.0.norm_0.first_norm.running_mean" in state_dict \
        else "instance"
    hidden, _, spade_ks, _ = _shape(state_dict, "body.0.norm_0.mlp_shared.0.weight", source)
    if not use_3d_noise:
        if num_classes is not None and num_classes != fc_in:
            raise CheckpointMismatchError(
                f"{source}: without 3D noise fc takes num_classes channels; fc.weight has "
                f"{fc_in} input channels but num_classes={num_classes}")
        num_classes, z_dim = fc_in, z_dim or 64
    elif num_classes is not None:
        if z_dim is not None and z_dim + num_classes != fc_in:
            raise CheckpointMismatchError(
                f"{source}: fc.weight has {fc_in} input channels, but z_dim={z_dim} + "
                f"num_classes={num_classes} = {z_dim + num_classes}")
        z_dim = fc_in - num_classes
    else:
        z_dim = 64 if z_dim is None else z_dim
        num_classes = fc_in - z_dim
    if num_classes < 1 or z_dim < 1:
        raise CheckpointMismatchError(
            f"{source}: fc.weight has {fc_in} input channels, which cannot be split into "
            f"z_dim={z_dim} and num_classes={num_classes}; pass num_classes= or z_dim=")
    return dict(num_classes=int(num_classes), image_size=tuple(image_size),
                base_channels=int(ch), z_dim=int(z_dim), num_res_blocks=len(blocks),
                use_3d_noise=bool(use_3d_noise), spectral_norm=spectral,
                norm_type=norm_type, spade_hidden=int(hidden), spade_ks=int(spade_ks))


def infer_discriminator_config(state_dict, source="state dict"):
    """Discriminator constructor arguments implied by an official state dict."""
    spectral = "body_down.0.conv1.0.weight_orig" in state_dict
    first = "body_down.0.conv1.0." + ("weight_orig" if spectral else "weight")
    base = _shape(state_dict, first, source)[0]
    num_classes = _shape(state_dict, "layer_up_last.weight", source)[0] - 1
    return dict(num_classes=int(num_classes), base_channels=int(base),
                spectral_norm=spectral)


def _load(path_or_state_dict):
    if isinstance(path_or_state_dict, dict):
        return path_or_state_dict, "state dict"
    return read_state_dict(path_or_state_dict), str(path_or_state_dict)


def load_official_generator(path, image_size=None, z_dim=None, num_classes=None,
                            use_3d_noise=True, norm_type=None):
    """Build an ``OASISGenerator`` from an official ``*_G.pth`` / ``*_EMA.pth``.

    Args:
        path: ``.pth`` (torch zip; read without torch if it is not installed),
            ``.npz`` of the same state dict, or the state dict itself.
        image_size: (H, W) of the generated images (e.g. (256, 512) for Cityscapes).
        z_dim: noise channels (default 64, the official value) unless num_classes
            is given.
        num_classes: classes (semantic_nc); fixes the z_dim / class split.
        use_3d_noise: the checkpoint was trained with 3D noise (official default).
        norm_type: override the inferred SPADE norm ("syncbatch" or "batch" share
            the same state; inferred "instance" when there are no running stats).

    Returns:
        The generator with the checkpoint's weights, u/v vectors and BN statistics.
    """
    state_dict, source = _load(path)
    if detect_network(state_dict) != "generator":
        raise ValueError(f"{source} holds a discriminator, not a generator")
    config = infer_generator_config(state_dict, image_size, z_dim, num_classes,
                                    use_3d_noise, source)
    if norm_type is not None:
        config["norm_type"] = norm_type
    return assign_state_dict(OASISGenerator(**config), state_dict, source)


def load_official_discriminator(path):
    """Build an ``OASISDiscriminator`` from an official ``*_D.pth``.

    Args:
        path: ``.pth``, ``.npz`` of the same state dict, or the state dict itself.
    """
    state_dict, source = _load(path)
    if detect_network(state_dict) != "discriminator":
        raise ValueError(f"{source} holds a generator, not a discriminator")
    config = infer_discriminator_config(state_dict, source)
    return assign_state_dict(OASISDiscriminator(**config), state_dict, source)
