"""The networks a configuration describes."""

from oasis_tf.models.discriminator import OASISDiscriminator
from oasis_tf.models.generator import OASISGenerator


def generator_from_config(model_config, name="generator", dataset=None):
    """The ``OASISGenerator`` of a ``ModelConfig`` (``config.model``).

    Args:
        model_config: the ``model`` section of an ``OASISConfig``.
        name: the Keras name of the network.
        dataset: the dataset name it is trained on (``config.data.dataset``): its
            class names and palette go with the generator.
    """
    m = model_config
    return OASISGenerator(num_classes=m.num_classes, image_size=m.image_size,
                          base_channels=m.g_channels, z_dim=m.z_dim,
                          num_res_blocks=m.num_res_blocks, use_3d_noise=m.use_3d_noise,
                          spectral_norm=m.spectral_norm, norm_type=m.norm_type,
                          spade_hidden=m.spade_hidden, spade_ks=m.spade_ks, dataset=dataset,
                          name=name)


def discriminator_from_config(model_config, name="discriminator"):
    """The ``OASISDiscriminator`` of a ``ModelConfig`` (``config.model``).

    Args:
        model_config: the ``model`` section of an ``OASISConfig``.
        name: the Keras name of the network.
    """
    m = model_config
    return OASISDiscriminator(num_classes=m.num_classes, base_channels=m.d_channels,
                              spectral_norm=m.spectral_norm, name=name)
