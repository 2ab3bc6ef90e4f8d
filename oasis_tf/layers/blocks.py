"""Residual blocks of the generator (SPADE-ResNet) and the discriminator."""

import keras
from keras import ops

from oasis_tf.layers.resize import avg_pool_2x, resize_nearest, upsample_2x
from oasis_tf.layers.spade import SPADE
from oasis_tf.layers.spectral_norm import SNConv2D

LEAKY_SLOPE = 0.2


def leaky_relu(x):
    return ops.leaky_relu(x, negative_slope=LEAKY_SLOPE)


def _check_positive(**values):
    for key, value in values.items():
        if int(value) < 1:
            raise ValueError(f"`{key}` must be >= 1. Received: {key}={value}")


@keras.saving.register_keras_serializable(package="oasis_tf")
class SPADEResBlock(keras.layers.Layer):
    """Generator block: two SPADE -> leaky ReLU -> conv stages plus a shortcut.

    The shortcut is ``conv_s(SPADE_s(x))`` (1x1, no bias) when ``fin != fout``,
    otherwise the identity. The middle width is ``min(fin, fout)``.

    Args:
        fin: input channels.
        fout: output channels.
        cond_channels: channels of the conditioning map.
        spectral_norm: spectrally normalise the three convs.
        norm_type: SPADE's parameter-free normalisation.
        spade_hidden: width of SPADE's shared conv.
        spade_ks: kernel size of the SPADE convs (official ``spade_ks`` 3).
    """

    def __init__(self, fin, fout, cond_channels, spectral_norm=True,
                 norm_type="syncbatch", spade_hidden=128, spade_ks=3, **kwargs):
        super().__init__(**kwargs)
        _check_positive(fin=fin, fout=fout, cond_channels=cond_channels,
                        spade_hidden=spade_hidden)
        self.fin, self.fout = int(fin), int(fout)
        self.fmid = min(self.fin, self.fout)
        self.cond_channels = int(cond_channels)
        self.spectral_norm = bool(spectral_norm)
        self.norm_type = norm_type
        self.spade_hidden = int(spade_hidden)
        self.spade_ks = int(spade_ks)
        self.learned_shortcut = self.fin != self.fout
        spade = dict(cond_channels=self.cond_channels, hidden=self.spade_hidden,
                     kernel_size=self.spade_ks, norm_type=norm_type)
        self.conv_0 = SNConv2D(self.fmid, 3, spectral_norm=spectral_norm, name="conv_0")
        self.conv_1 = SNConv2D(self.fout, 3, spectral_norm=spectral_norm, name="conv_1")
        self.norm_0 = SPADE(self.fin, name="norm_0", **spade)
        self.norm_1 = SPADE(self.fmid, name="norm_1", **spade)
        if self.learned_shortcut:
            self.conv_s = SNConv2D(self.fout, 1, use_bias=False,
                                 spectral_norm=spectral_norm, name="conv_s")
            self.norm_s = SPADE(self.fin, name="norm_s", **spade)

    def build(self, input_shape=None):
        if self.built:
            return
        self.conv_0.build((None, None, None, self.fin))
        self.conv_1.build((None, None, None, self.fmid))
        self.norm_0.build()
        self.norm_1.build()
        if self.learned_shortcut:
            self.conv_s.build((None, None, None, self.fin))
            self.norm_s.build()
        self.built = True

    def call(self, x, seg, training=False):
        seg = resize_nearest(seg, x.shape[1:3])  # once for the three SPADEs
        if self.learned_shortcut:
            x_s = self.conv_s(self.norm_s(x, seg, training=training), training=training)
        else:
            x_s = x
        dx = self.conv_0(leaky_relu(self.norm_0(x, seg, training=training)),
                         training=training)
        dx = self.conv_1(leaky_relu(self.norm_1(dx, seg, training=training)),
                         training=training)
        return x_s + dx

    def get_config(self):
        config = super().get_config()
        config.update(fin=self.fin, fout=self.fout, cond_channels=self.cond_channels,
                      spectral_norm=self.spectral_norm, norm_type=self.norm_type,
                      spade_hidden=self.spade_hidden, spade_ks=self.spade_ks)
        return config


@keras.saving.register_keras_serializable(package="oasis_tf")
class DResBlock(keras.layers.Layer):
    """Discriminator residual block, downsampling (encoder) or upsampling (decoder).

    down: ``x_s = avgpool(conv_s(x))`` (first block: ``conv_s(avgpool(x))``),
    ``dx = avgpool(conv2(lrelu(conv1(lrelu(x)))))`` (no leading lrelu in the
    first block). up: ``x_s = conv_s(up2(x))``, ``dx = conv2(lrelu(conv1(up2(lrelu(x)))))``.
    ``conv_s`` (1x1, with bias) exists only when ``fin != fout``.

    Args:
        fin: input channels.
        fout: output channels (also the middle width).
        direction: "down" or "up".
        first: the first encoder block (no activation before conv1).
        spectral_norm: spectrally normalise all convs.
    """

    def __init__(self, fin, fout, direction, first=False, spectral_norm=True, **kwargs):
        super().__init__(**kwargs)
        if direction not in ("down", "up"):
            raise ValueError(f"`direction` must be 'down' or 'up'. Received: "
                             f"direction={direction!r}")
        _check_positive(fin=fin, fout=fout)
        self.fin, self.fout = int(fin), int(fout)
        self.direction = direction
        self.first = bool(first)
        self.spectral_norm = bool(spectral_norm)
        self.learned_shortcut = self.fin != self.fout
        self.conv1 = SNConv2D(self.fout, 3, spectral_norm=spectral_norm, name="conv1")
        self.conv2 = SNConv2D(self.fout, 3, spectral_norm=spectral_norm, name="conv2")
        if self.learned_shortcut:
            self.conv_s = SNConv2D(self.fout, 1, spectral_norm=spectral_norm, name="conv_s")

    def build(self, input_shape=None):
        if self.built:
            return
        self.conv1.build((None, None, None, self.fin))
        self.conv2.build((None, None, None, self.fout))
        if self.learned_shortcut:
            self.conv_s.build((None, None, None, self.fin))
        self.built = True

    def _shortcut(self, x, training):
        if self.direction == "up":
            x = upsample_2x(x)
        elif self.first:
            x = avg_pool_2x(x)
        if self.learned_shortcut:
            x = self.conv_s(x, training=training)
        if self.direction == "down" and not self.first:
            x = avg_pool_2x(x)
        return x

    def call(self, x, training=False):
        x_s = self._shortcut(x, training)
        dx = x if self.first else leaky_relu(x)
        if self.direction == "up":
            dx = upsample_2x(dx)
        dx = self.conv1(dx, training=training)
        dx = self.conv2(leaky_relu(dx), training=training)
        if self.direction == "down":
            dx = avg_pool_2x(dx)
        return x_s + dx

    def get_config(self):
        config = super().get_config()
        config.update(fin=self.fin, fout=self.fout, direction=self.direction,
                      first=self.first, spectral_norm=self.spectral_norm)
        return config
