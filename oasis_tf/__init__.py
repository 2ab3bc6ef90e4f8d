"""oasis_tf: OASIS semantic image synthesis in Keras 3 / TensorFlow.

The public surface is documented in the README, ``docs/`` and ``shared/API.md``:
``OASISGenerator``, ``OASISDiscriminator``, ``OASIS`` and the subpackages
``oasis_tf.training``, ``oasis_tf.data``, ``oasis_tf.export``, ``oasis_tf.metrics``,
``oasis_tf.convert`` (all reachable after ``import oasis_tf``), the modules
``oasis_tf.inference`` (``OASISPipeline``, ``generate``, ``load_generator``) and
``oasis_tf.losses``.
"""

import os

# TensorFlow's BFC allocator for CPU tensors (read when the first op runs, so this holds
# where oasis_tf is imported before TensorFlow computes anything): it keeps freed blocks
# for reuse instead of returning each large one to the system, which made a training
# step 1.4x faster at 256x256 and 1.15x at 64x64 on an AVX2 CPU, for about the same
# peak memory (docs/performance.md). TF_CPU_ALLOCATOR_USE_BFC=false keeps TensorFlow's default.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

from oasis_tf.models.generator import OASISGenerator
from oasis_tf.models.discriminator import OASISDiscriminator
from oasis_tf.models.oasis import OASIS
from oasis_tf import convert, data, export, inference, losses, metrics, training

__version__ = "0.1.0"

__all__ = ["OASIS", "OASISGenerator", "OASISDiscriminator", "convert", "data", "export", "inference",
           "losses", "metrics", "training", "__version__"]
