"""The OASIS networks."""

from oasis_tf.models.discriminator import OASISDiscriminator
from oasis_tf.models.generator import OASISGenerator

__all__ = ["OASISDiscriminator", "OASISGenerator"]
from oasis_tf.models.oasis import OASIS  # noqa: E402

__all__.append("OASIS")
