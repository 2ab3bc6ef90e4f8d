"""SPADE: spatially-adaptive normalisation conditioned on the label/noise map."""

import keras
from keras import ops

from oasis_tf.layers.normalization import ParamFreeNorm
from oasis_tf.layers.resize import resize_nearest
from oasis_tf.layers.spectral_norm import SNConv2D


@keras.saving.register_keras_serializable(package="oasis_tf")
class SPADE(keras.layers.Layer):
    """``norm(x) * (1 + gamma(seg)) + beta(seg)``.

    The conditioning map (one-hot labels, with the noise channels first when 3D
    noise is on) is nearest-resized to the feature size, passed through a shared
    3x3 conv with ReLU and two 3x3 convs that give gamma and beta. None of these
    convs is spectrally normalised (as in the official code).

    Args:
        channels: channels of the normalised features.
        cond_channels: channels of the conditioning map.
        hidden: width of the shared conv (128 in the official code).
        kernel_size: kernel size of the SPADE convs.
        norm_type: see ``ParamFreeNorm``.
    """

    def __init__(self, channels, cond_channels, hidden=128, kernel_size=3,
                 norm_type="syncbatch", **kwargs):
        super().__init__(**kwargs)
        for key, value in (("channels", channels), ("cond_channels", cond_channels),
                           ("hidden", hidden)):
            if int(value) < 1:
                raise ValueError(f"`{key}` must be >= 1. Received: {key}={value}")
        if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ValueError(f"`kernel_size` must be a positive odd int (official padding "
                             f"kernel_size // 2). Received: kernel_size={kernel_size}")
        self.channels = int(channels)
        self.cond_channels = int(cond_channels)
        self.hidden = int(hidden)
        self.kernel_size = int(kernel_size)
        self.norm_type = norm_type
        self.first_norm = ParamFreeNorm(norm_type, name="first_norm")
        self.mlp_shared = SNConv2D(self.hidden, self.kernel_size, name="mlp_shared")
        self.mlp_gamma = SNConv2D(self.channels, self.kernel_size, name="mlp_gamma")
        self.mlp_beta = SNConv2D(self.channels, self.kernel_size, name="mlp_beta")

    def build(self, input_shape=None):
        if self.built:
            return
        self.first_norm.build((None, None, None, self.channels))
        self.mlp_shared.build((None, None, None, self.cond_channels))
        self.mlp_gamma.build((None, None, None, self.hidden))
        self.mlp_beta.build((None, None, None, self.hidden))
        self.built = True

    def call(self, x, seg, training=False):
        normalized = self.first_norm(x, training=training)
        seg = resize_nearest(seg, x.shape[1:3])
        actv = ops.relu(self.mlp_shared(seg, training=training))
        gamma = self.mlp_gamma(actv, training=training)
        beta = self.mlp_beta(actv, training=training)
        return normalized * (1.0 + gamma) + beta

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, cond_channels=self.cond_channels,
                      hidden=self.hidden, kernel_size=self.kernel_size,
                      norm_type=self.norm_type)
        return config
