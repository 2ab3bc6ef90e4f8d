"""The networks a configuration describes."""

from oasis_tf.models.discriminator import OASISDiscriminator
from oasis_tf.models.generator import OASISGenerator


def generator_from_config(model_config, name="generator", dataset=None):
    """The ``OASISGenerator`` of a ``ModelConfig`` (``config.model``).

    Args:
        model_config: the ``model`` section of an ``OASISConfig``.
        name: the Keras name of the network.
        dataset: the dataset name it is trained on (``config.data.dataset``): its
            class names and palette go with the generator, unless the config names
            its own (``model.class_names`` / ``model.palette``, e.g. an own data set's).
    """
    m = model_config
    auto = m.auto_fields()
    if auto:
        raise ValueError(f"the generator needs the values found from the data set; "
                         f"{', '.join(f'model.{k}' for k in auto)} still \"auto\": resolve "
                         f"the config first (oasis_tf.data.resolve_config)")
    return OASISGenerator(num_classes=m.num_classes, image_size=m.image_size,
                          base_channels=m.g_channels, z_dim=m.z_dim,
                          num_res_blocks=m.num_res_blocks, use_3d_noise=m.use_3d_noise,
                          spectral_norm=m.spectral_norm, norm_type=m.norm_type,
                          spade_hidden=m.spade_hidden, spade_ks=m.spade_ks, dataset=dataset,
                          class_names=m.class_names, palette=m.palette, name=name)


def discriminator_from_config(model_config, name="discriminator"):
    """The ``OASISDiscriminator`` of a ``ModelConfig`` (``config.model``).

    Args:
        model_config: the ``model`` section of an ``OASISConfig``.
        name: the Keras name of the network.
    """
    m = model_config
    return OASISDiscriminator(num_classes=m.num_classes, base_channels=m.d_channels,
                              spectral_norm=m.spectral_norm, name=name)


def in_float32(network):
    """``network`` itself when it computes in float32, else a float32 copy with the same
    weights (a network trained under ``mixed_bfloat16`` / ``mixed_float16`` keeps its
    variables in float32, so nothing is rounded). Saved generators, evaluation and
    exports use it: TFLite has no bfloat16 kernels, and serving answers in float32.

    Args:
        network: an ``OASISGenerator`` or ``OASISDiscriminator``.
    """
    policy = getattr(network, "dtype_policy", None)
    if policy is None or getattr(policy, "name", "float32") == "float32":
        return network
    copy = type(network).from_config({**network.get_config(), "dtype": "float32"})
    if len(copy.weights) != len(network.weights):
        raise ValueError(f"the float32 copy of {network.name} has {len(copy.weights)} "
                         f"weights, the network {len(network.weights)}")
    for target, source in zip(copy.weights, network.weights):
        target.assign(source)
    return copy
