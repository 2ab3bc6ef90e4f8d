"""The OASIS discriminator: a U-Net segmenter with N real classes plus "fake"."""

import keras
from keras import ops

from oasis_tf.layers.blocks import DResBlock
from oasis_tf.layers.spectral_norm import SNConv2D

NUM_DOWN_BLOCKS = 6  # the official U-Net has exactly six encoder blocks


def discriminator_widths(base_channels=128):
    """Encoder widths and the last decoder width.

    Args:
        base_channels: 128 gives the official ``[3, 128, 128, 256, 256, 512, 512]``
            and a 64-wide last decoder block.

    Returns:
        (encoder widths, a list of 7 ints starting with 3; last decoder width).
    """
    b = int(base_channels)
    return [3, b, b, 2 * b, 2 * b, 4 * b, 4 * b], max(b // 2, 1)


@keras.saving.register_keras_serializable(package="oasis_tf")
class OASISDiscriminator(keras.Model):
    """Discriminator of OASIS (channels-last).

    ``D(image)`` with float images [B, H, W, 3] in [-1, 1] (H and W multiples of
    64) returns float32 logits [B, H, W, num_classes + 1]; index 0 is "fake",
    index k + 1 is class k.

    Args:
        num_classes: label classes including a don't-care class (semantic_nc).
        base_channels: width of the first encoder block (128 official).
        spectral_norm: spectral norm on every conv but the final 1x1.
    """

    def __init__(self, num_classes, base_channels=128, spectral_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.base_channels = int(base_channels)
        self.spectral_norm = bool(spectral_norm)
        if self.num_classes < 1:
            raise ValueError(f"`num_classes` must be >= 1. Received: "
                             f"num_classes={self.num_classes}")
        if self.base_channels < 2:
            raise ValueError(f"`base_channels` must be >= 2. Received: "
                             f"base_channels={self.base_channels}")
        ch, last = discriminator_widths(self.base_channels)
        self.encoder_widths, self.last_width = ch, last
        sn = self.spectral_norm
        self.body_down = [
            DResBlock(ch[i], ch[i + 1], "down", first=(i == 0), spectral_norm=sn,
                      name=f"body_down_{i}") for i in range(NUM_DOWN_BLOCKS)]
        up = [(ch[-1], ch[-2])]
        up += [(2 * ch[-1 - i], ch[-2 - i]) for i in range(1, NUM_DOWN_BLOCKS - 1)]
        up += [(2 * ch[1], last)]
        self.body_up = [DResBlock(fin, fout, "up", spectral_norm=sn, name=f"body_up_{i}")
                        for i, (fin, fout) in enumerate(up)]
        self.layer_up_last = SNConv2D(self.num_classes + 1, 1, name="layer_up_last")
        for block in self.body_down + self.body_up:
            block.build()
        self.layer_up_last.build((None, None, None, last))
        self.built = True

    def build(self, input_shape=None):
        """All variables are created in ``__init__``; nothing to do."""

    def _check_input(self, image):
        shape = tuple(image.shape)
        factor = 2 ** NUM_DOWN_BLOCKS
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(f"discriminator input must be images [B, H, W, 3]; got shape {shape}")
        for size in shape[1:3]:
            if size is not None and size % factor:
                raise ValueError(f"discriminator input height and width must be multiples of "
                                 f"{factor} (six 2x downsamplings); got shape {shape}")

    def intermediates(self, image, training=False):
        """Forward pass returning every block's output.

        Args:
            image: float [B, H, W, 3].
            training: power iterations (train mode).

        Returns:
            dict with "down{i}_out", "up{i}_out" and "logits".
        """
        training = bool(training)
        x = ops.convert_to_tensor(image)
        self._check_input(x)
        x = ops.cast(x, self.compute_dtype)
        out, skips = {}, []
        for i, block in enumerate(self.body_down):
            x = block(x, training=training)
            out[f"down{i}_out"] = x
            skips.append(x)
        x = self.body_up[0](x, training=training)
        out["up0_out"] = x
        for i in range(1, len(self.body_up)):
            x = self.body_up[i](ops.concatenate([skips[-i - 1], x], axis=-1),
                                training=training)
            out[f"up{i}_out"] = x
        out["logits"] = ops.cast(self.layer_up_last(x, training=training), "float32")
        return out

    def call(self, image, training=False):
        return self.intermediates(image, training=training)["logits"]

    def get_config(self):
        config = super().get_config()  # name, trainable, dtype (policy)
        config.update(num_classes=self.num_classes, base_channels=self.base_channels,
                      spectral_norm=self.spectral_norm)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
