"""The OASIS generator: SPADE-ResNet from a label map and (3D) noise to an image."""

import keras
import tensorflow as tf
from keras import ops

from oasis_tf.layers.blocks import SPADEResBlock, leaky_relu
from oasis_tf.layers.normalization import NORM_TYPES
from oasis_tf.layers.resize import resize_nearest, upsample_2x
from oasis_tf.layers.spectral_norm import SNConv2D

# Official channel multipliers for six blocks: [16, 16, 16, 8, 4, 2, 1] x ch.
_OFFICIAL_MULTIPLIERS = (16, 16, 16, 8, 4, 2, 1)


def generator_widths(base_channels, num_res_blocks=6):
    """Widths before, between and after the residual blocks.

    Six blocks give the official ``[16, 16, 16, 8, 4, 2, 1] x ch``. Fewer blocks
    keep the last entries, more blocks repeat 16 at the front (the official code
    only builds with six).

    Args:
        base_channels: ``ch`` (``channels_G``; 64 in the official runs).
        num_res_blocks: number of SPADE residual blocks.

    Returns:
        A list of ``num_res_blocks + 1`` ints.
    """
    n = int(num_res_blocks) + 1
    mults = list(_OFFICIAL_MULTIPLIERS)
    mults = [16] * (n - len(mults)) + mults if n > len(mults) else mults[-n:]
    return [m * int(base_channels) for m in mults]


@keras.saving.register_keras_serializable(package="oasis_tf")
class OASISGenerator(keras.Model):
    """Generator of OASIS (channels-last).

    Call it with ``{"label": label, "noise": noise}``:

    * ``label``: int32 class ids [B, H, W], or a float one-hot map
      [B, H, W, num_classes];
    * ``noise``: float32 [B, z_dim] (constant over the image, as the official
      code) or [B, H, W, z_dim] (per pixel; allows resampling single regions).
      When absent, standard normal noise [B, z_dim] is drawn.

    Returns float32 images [B, H, W, 3] in [-1, 1].

    Args:
        num_classes: label classes including a don't-care class (semantic_nc).
        image_size: (H, W) of the output; both divisible by 2**(num_res_blocks-1).
        base_channels: generator width ``ch`` (64 official).
        z_dim: noise channels (64 official).
        num_res_blocks: SPADE residual blocks (6 official).
        use_3d_noise: condition on noise (False: deterministic generator).
        spectral_norm: spectral norm on the residual blocks' convs.
        norm_type: SPADE normalisation, "syncbatch", "batch" or "instance".
        spade_hidden: width of SPADE's shared conv (128 official).
        spade_ks: kernel size of the SPADE convs, odd (3 official ``spade_ks``).
        dataset: optional dataset name ("ade20k", "cityscapes", "coco_stuff",
            "synthetic", ...): the class names and colours of its label maps
            (``oasis_tf.palettes``); saved with the model.
        class_names: optional list of ``num_classes`` names (an own data set's
            classes); saved with the model, and preferred to ``dataset``'s by every
            front end (``oasis_tf.images.class_names_for``).
        palette: optional list of ``num_classes`` [r, g, b] colours, likewise
            (``oasis_tf.images.palette_for``).
    """

    def __init__(self, num_classes, image_size=(256, 256), base_channels=64, z_dim=64,
                 num_res_blocks=6, use_3d_noise=True, spectral_norm=True,
                 norm_type="syncbatch", spade_hidden=128, spade_ks=3, dataset=None,
                 class_names=None, palette=None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.image_size = _parse_size(image_size)
        self.base_channels = int(base_channels)
        self.z_dim = int(z_dim)
        self.num_res_blocks = int(num_res_blocks)
        self.use_3d_noise = bool(use_3d_noise)
        self.spectral_norm = bool(spectral_norm)
        self.norm_type = norm_type
        self.spade_hidden = int(spade_hidden)
        self.spade_ks = int(spade_ks)
        self.dataset = None if dataset is None else str(dataset)
        # tuples: Keras would wrap lists in tracked containers
        self.class_names = None if class_names is None else tuple(str(n) for n in class_names)
        self.palette = None if palette is None else tuple(tuple(int(v) for v in c)
                                                          for c in palette)
        self._validate()

        self.widths = generator_widths(self.base_channels, self.num_res_blocks)
        factor = 2 ** (self.num_res_blocks - 1)
        self.latent_size = (self.image_size[0] // factor, self.image_size[1] // factor)
        self.cond_channels = self.num_classes + (self.z_dim if self.use_3d_noise else 0)

        self.fc = SNConv2D(self.widths[0], 3, name="fc")
        self.body = [
            SPADEResBlock(self.widths[i], self.widths[i + 1], self.cond_channels,
                          spectral_norm=self.spectral_norm, norm_type=self.norm_type,
                          spade_hidden=self.spade_hidden, spade_ks=self.spade_ks,
                          name=f"body_{i}")
            for i in range(self.num_res_blocks)]
        self.conv_img = SNConv2D(3, 3, name="conv_img")
        self._build_layers()

    def _validate(self):
        for key in ("num_classes", "num_res_blocks", "base_channels", "z_dim",
                    "spade_hidden"):
            if getattr(self, key) < 1:
                raise ValueError(f"`{key}` must be >= 1. Received: {key}={getattr(self, key)}")
        if self.spade_ks < 1 or self.spade_ks % 2 == 0:
            raise ValueError(f"`spade_ks` must be a positive odd int. Received: "
                             f"spade_ks={self.spade_ks}")
        if self.norm_type not in NORM_TYPES:
            raise ValueError(f"`norm_type` must be one of {NORM_TYPES}. Received: "
                             f"norm_type={self.norm_type!r}")
        for key in ("class_names", "palette"):
            value = getattr(self, key)
            if value is not None and len(value) != self.num_classes:
                raise ValueError(f"`{key}` must have one entry per class (num_classes="
                                 f"{self.num_classes}). Received: {len(value)} entries")
        if self.palette is not None and any(len(c) != 3 or min(c) < 0 or max(c) > 255
                                            for c in self.palette):
            raise ValueError(f"`palette` entries must be [r, g, b] in 0..255. Received: "
                             f"palette={[list(c) for c in self.palette]}")
        factor = 2 ** (self.num_res_blocks - 1)
        h, w = self.image_size
        if h % factor or w % factor:
            raise ValueError(
                f"`image_size` cannot be produced by {self.num_res_blocks} blocks: height "
                f"and width must be multiples of 2**{self.num_res_blocks - 1} = {factor}. "
                f"Received: image_size={self.image_size}")

    def _build_layers(self):
        self.fc.build((None, None, None, self.cond_channels))
        for block in self.body:
            block.build()
        self.conv_img.build((None, None, None, self.widths[-1]))
        self.built = True

    def build(self, input_shape=None):
        """All variables are created in ``__init__``; nothing to do."""

    # ----------------------------------------------------------------- inputs
    def conditioning(self, inputs):
        """The full-resolution conditioning map ``concat([noise, onehot])``.

        Args:
            inputs: dict with "label" and optional "noise", or a label tensor.

        Returns:
            float tensor [B, H, W, z_dim + num_classes] (noise channels first),
            or [B, H, W, num_classes] without 3D noise.
        """
        if isinstance(inputs, dict):
            unknown = set(inputs) - {"label", "noise"}
            if unknown:
                raise ValueError(f"generator inputs have unknown keys {sorted(unknown)}; "
                                 f"expected 'label' and optionally 'noise'")
            if "label" not in inputs:
                raise ValueError(f"generator inputs need a 'label'; got keys {sorted(inputs)}")
            label, noise = inputs["label"], inputs.get("noise")
        else:
            label, noise = inputs, None
        onehot = self.label_to_onehot(label)
        if not self.use_3d_noise:
            return onehot
        noise = self.noise_to_map(noise, ops.shape(onehot)[0], onehot.dtype)
        return ops.concatenate([noise, onehot], axis=-1)

    def label_to_onehot(self, label):
        """Class ids [B, H, W] or a one-hot map [B, H, W, C] -> one-hot float."""
        label = ops.convert_to_tensor(label)
        shape = tuple(label.shape)
        if len(shape) == 3:
            self._check_spatial(shape, "label")
            if not (label.dtype.is_integer if hasattr(label.dtype, "is_integer")
                    else "int" in str(label.dtype)):
                raise ValueError(f"a rank-3 label must hold integer class ids; got dtype "
                                 f"{label.dtype} and shape {shape}")
            return ops.one_hot(ops.cast(label, "int32"), self.num_classes,
                               dtype=self.compute_dtype)
        if len(shape) == 4:
            self._check_spatial(shape, "label")
            if shape[-1] != self.num_classes:
                raise ValueError(f"a one-hot label needs {self.num_classes} channels "
                                 f"(num_classes); got shape {shape}")
            return ops.cast(label, self.compute_dtype)
        raise ValueError(f"label must be class ids [B, H, W] or one-hot [B, H, W, "
                         f"{self.num_classes}]; got shape {shape}")

    def noise_to_map(self, noise, batch_size, dtype):
        """Noise [B, z_dim] or [B, H, W, z_dim] (None: drawn) -> [B, H, W, z_dim]."""
        h, w = self.image_size
        if noise is None:
            noise = tf.random.normal([batch_size, self.z_dim])
        noise = ops.cast(ops.convert_to_tensor(noise), dtype)
        shape = tuple(noise.shape)
        if len(shape) == 2 and shape[-1] == self.z_dim:
            return ops.broadcast_to(noise[:, None, None, :], (batch_size, h, w, self.z_dim))
        if len(shape) == 4 and shape[-1] == self.z_dim:
            self._check_spatial(shape, "noise")
            return noise
        raise ValueError(f"noise must be [B, {self.z_dim}] or [B, {h}, {w}, {self.z_dim}] "
                         f"(z_dim={self.z_dim}); got shape {shape}")

    def _check_spatial(self, shape, what):
        if tuple(shape[1:3]) != tuple(self.image_size) and None not in shape[1:3]:
            raise ValueError(f"{what} has spatial size {tuple(shape[1:3])} (shape {shape}); "
                             f"this generator makes images of size {self.image_size}")

    # ---------------------------------------------------------------- forward
    def conditioning_pyramid(self, seg):
        """The conditioning map at every block's size, keyed by (height, width).

        The image size is the latent size times 2**(num_res_blocks - 1) (checked in
        the constructor), so halving the full map num_res_blocks - 1 times gives
        every block's size. Each size is taken from the next finer one, which picks
        the same pixels as resizing the full map directly (``x[::2][::2] == x[::4]``)
        but reads the full map once instead of once per block.

        Args:
            seg: [B, H, W, C] full-resolution conditioning map.
        """
        maps = {tuple(seg.shape[1:3]): seg}
        for _ in range(self.num_res_blocks - 1):
            h, w = seg.shape[1:3]
            seg = resize_nearest(seg, (h // 2, w // 2))
            maps[(h // 2, w // 2)] = seg
        return maps

    def intermediates(self, inputs, training=False):
        """Forward pass returning every stage (for tests and debugging).

        Args:
            inputs: as for ``call``.
            training: batch statistics and power iterations (train mode).

        Returns:
            dict with "fc_in", "fc_out", "body{i}_out" (before upsampling),
            "pre_tanh" and "image".
        """
        training = bool(training)
        seg = self.conditioning(inputs)
        # Cast once (every SPADE would cast it again), then one map per block size.
        seg = ops.cast(seg, self.compute_dtype)
        maps = self.conditioning_pyramid(seg)
        out = {"fc_in": maps[tuple(self.latent_size)]}
        x = self.fc(out["fc_in"], training=training)
        out["fc_out"] = x
        for i, block in enumerate(self.body):
            x = block(x, maps[tuple(x.shape[1:3])], training=training)
            out[f"body{i}_out"] = x
            if i < self.num_res_blocks - 1:
                x = upsample_2x(x)
        x = self.conv_img(leaky_relu(x), training=training)
        out["pre_tanh"] = x
        out["image"] = ops.cast(ops.tanh(x), "float32")
        return out

    def call(self, inputs, training=False):
        return self.intermediates(inputs, training=training)["image"]

    def get_config(self):
        config = super().get_config()  # name, trainable, dtype (policy)
        config.update(num_classes=self.num_classes, image_size=list(self.image_size),
                      base_channels=self.base_channels, z_dim=self.z_dim,
                      num_res_blocks=self.num_res_blocks, use_3d_noise=self.use_3d_noise,
                      spectral_norm=self.spectral_norm, norm_type=self.norm_type,
                      spade_hidden=self.spade_hidden, spade_ks=self.spade_ks,
                      dataset=self.dataset,
                      class_names=None if self.class_names is None else list(self.class_names),
                      palette=None if self.palette is None else [list(c) for c in self.palette])
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _parse_size(size):
    if isinstance(size, int):
        return (size, size)
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"`image_size` must be an int or (height, width). "
                         f"Received: image_size={size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"`image_size` must be positive. Received: image_size={size!r}")
    return (h, w)
