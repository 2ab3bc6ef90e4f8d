"""oasis_tf: OASIS semantic image synthesis in Keras 3 / TensorFlow.

The public surface is documented in the README: ``OASIS``,
``OASISGenerator``, ``OASISDiscriminator`` and the modules ``convert``,
``data``, ``export``, ``inference``, ``losses``, ``metrics`` and ``training``.
"""

from oasis_tf.models.generator import OASISGenerator
from oasis_tf.models.discriminator import OASISDiscriminator
from oasis_tf.models.oasis import OASIS
from oasis_tf import convert, data, export, inference, losses, metrics

__version__ = "0.1.0"

__all__ = ["OASIS", "OASISGenerator", "OASISDiscriminator", "convert", "data", "export", "inference", "losses",
           "metrics", "__version__"]
