"""Building blocks of the OASIS networks."""

from oasis_tf.layers.blocks import DResBlock, SPADEResBlock
from oasis_tf.layers.normalization import ParamFreeNorm
from oasis_tf.layers.resize import avg_pool_2x, resize_nearest, upsample_2x
from oasis_tf.layers.spade import SPADE
from oasis_tf.layers.spectral_norm import SNConv2D

__all__ = ["SNConv2D", "DResBlock", "ParamFreeNorm", "SPADE", "SPADEResBlock",
           "avg_pool_2x", "resize_nearest", "upsample_2x"]
