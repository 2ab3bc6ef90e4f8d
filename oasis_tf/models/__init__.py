"""The OASIS networks, and the model that trains them."""

from oasis_tf.models.discriminator import OASISDiscriminator
from oasis_tf.models.generator import OASISGenerator
from oasis_tf.models.oasis import OASIS

__all__ = ["OASIS", "OASISDiscriminator", "OASISGenerator"]
