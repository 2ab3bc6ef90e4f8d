"""The OASIS networks."""

from oasis_tf.models.discriminator import OASISDiscriminator
from oasis_tf.models.generator import OASISGenerator

__all__ = ["OASISDiscriminator", "OASISGenerator"]
