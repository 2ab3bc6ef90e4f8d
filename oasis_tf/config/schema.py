"""The three configuration sections and `OASISConfig`: fields, defaults (the
official OASIS defaults, ADE20K run) and the checks of values that cannot work."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Optional, Tuple, Union

from oasis_tf.config.fields import (AUTO, Section, check_auto_strings, check_non_negative,
                                    check_one_of, check_positive, is_auto, source_prefix)
from oasis_tf.data.layouts import LAYOUTS

NORM_TYPES = ("syncbatch", "batch", "instance")
DATASETS = LAYOUTS  # the layouts of oasis_tf.data.layouts
MIXED_PRECISION_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
# Gain of the official xavier_normal_ initialisation of every conv (OASIS init_weights).
OFFICIAL_INIT_GAIN = 0.02
# The discriminator (a U-Net with six 2x downsamplings) takes sizes divisible by 2**6.
DISCRIMINATOR_FACTOR = 64
SECTIONS = ("model", "data", "train")
# How the mask files of the folder layout store classes: ids (grey or palette-indexed
# PNGs) or RGB colours (matched exactly against `model.palette`).
LABEL_ENCODINGS = ("ids", "colors")
# The layout whose data-implied values may be AUTO (found from the data set).
OWN_DATA_LAYOUT = "folder"


def image_size_factor(num_res_blocks: int) -> int:
    """What both sides of ``model.image_size`` must be divisible by: 2**(num_res_blocks - 1)
    (the generator doubles its latent map in each block) and 64 (the discriminator's six
    2x downsamplings)."""
    return math.lcm(2 ** (int(num_res_blocks) - 1), DISCRIMINATOR_FACTOR)



@dataclasses.dataclass(frozen=True)
class ModelConfig(Section):
    """Network hyper-parameters.

    Args:
        num_classes: int or "auto". Number of semantic classes, including the
            don't-care class 0 (official `semantic_nc`: ADE20K 151, Cityscapes 35,
            COCO-Stuff 183). "auto": found from the data set (folder layout).
        image_size: (int, int) or "auto". Output height and width ("auto": the
            photos' aspect ratio within the divisibility rule below).
        g_channels: int. Generator width multiplier (official `channels_G`).
        z_dim: int. Noise channels.
        num_res_blocks: int. SPADE-ResNet blocks; sets the latent size
            `image_size / 2**(num_res_blocks - 1)`. `image_size` must be
            divisible by that factor and by 64 (the discriminator's six 2x
            downsamplings).
        use_3d_noise: bool. Concatenate noise to the label map (official
            default; `--no_3dnoise` turns it off).
        spectral_norm: bool. Spectral normalisation of the convolutions.
        norm_type: str. Parameter-free norm inside SPADE: "syncbatch",
            "batch" or "instance".
        d_channels: int. Discriminator base width (official 128).
        spade_hidden: int. Width of each SPADE block's shared conv (official
            128; it dominates the cost of narrow generators).
        spade_ks: int. Kernel size of the SPADE convs, odd (official
            `spade_ks` 3).
        dontcare_label: bool or "auto". Class 0 is "don't care" and weighted 0
            in the losses ("auto": when the data set has an ignore label or
            `data.zero_is_dontcare`).
        class_names: list of str, "auto" or None. One name per class; None: the
            names of `data.dataset`'s table (`oasis_tf.palettes`); "auto": from
            the data set's class table (`classes.json` / `classes.csv`).
        palette: list of [r, g, b], "auto" or None. One colour per class (label
            maps in sample grids, the studio, exports; and the colours RGB masks
            are decoded with). None and "auto" as for `class_names`.
    """

    _section = "model"

    num_classes: Union[int, str] = 151
    image_size: Union[Tuple[int, int], str] = (256, 256)
    g_channels: int = 64
    z_dim: int = 64
    num_res_blocks: int = 6
    use_3d_noise: bool = True
    spectral_norm: bool = True
    norm_type: str = "syncbatch"
    d_channels: int = 128
    spade_hidden: int = 128
    spade_ks: int = 3
    dontcare_label: Union[bool, str] = True
    class_names: Union[Tuple[str, ...], str, None] = None
    palette: Union[Tuple[Tuple[int, int, int], ...], str, None] = None

    def __post_init__(self) -> None:
        self._check_types()
        s = self._section
        check_auto_strings(s, num_classes=self.num_classes, image_size=self.image_size,
                           dontcare_label=self.dontcare_label, class_names=self.class_names,
                           palette=self.palette)
        if not is_auto(self.num_classes) and self.num_classes < 2:
            raise ValueError(
                f"`{s}.num_classes` must be >= 2 (it includes the don't-care "
                f"class). Received: num_classes={self.num_classes}"
            )
        check_positive(
            s,
            g_channels=self.g_channels,
            z_dim=self.z_dim,
            num_res_blocks=self.num_res_blocks,
            d_channels=self.d_channels,
            spade_hidden=self.spade_hidden,
        )
        self._check_image_size()
        self._check_classes()
        check_one_of(s, "norm_type", self.norm_type, NORM_TYPES)
        if self.spade_ks < 1 or self.spade_ks % 2 == 0:
            raise ValueError(
                f"`{s}.spade_ks` must be a positive odd int (the official padding "
                f"ks // 2 keeps the size only for odd kernels). Received: "
                f"spade_ks={self.spade_ks}"
            )

    def _check_image_size(self) -> None:
        s = self._section
        if is_auto(self.image_size):
            return
        if min(self.image_size) <= 0:
            raise ValueError(
                f"`{s}.image_size` must be positive. Received: "
                f"image_size={list(self.image_size)}"
            )
        g_factor = 2 ** (self.num_res_blocks - 1)
        factor = image_size_factor(self.num_res_blocks)
        if any(d % factor for d in self.image_size):
            raise ValueError(
                f"`{s}.image_size` must be divisible by {factor} in both dimensions: "
                f"by 2**(num_res_blocks - 1) = {g_factor} (the generator starts from "
                f"image_size / {g_factor} and doubles it in each of its blocks) and by "
                f"{DISCRIMINATOR_FACTOR} (the discriminator's six 2x downsamplings). "
                f"Received: image_size={list(self.image_size)}, "
                f"num_res_blocks={self.num_res_blocks}"
            )

    def _check_classes(self) -> None:
        """`class_names` and `palette`: one entry per class, colours in 0..255."""
        s = self._section
        count = None if is_auto(self.num_classes) else self.num_classes
        for key in ("class_names", "palette"):
            value = getattr(self, key)
            if value is None or is_auto(value) or count is None or len(value) == count:
                continue
            raise ValueError(
                f"`{s}.{key}` must have one entry per class (num_classes={count}). "
                f"Received: {len(value)} entries"
            )
        if self.palette is not None and not is_auto(self.palette):
            bad = [c for c in self.palette if min(c) < 0 or max(c) > 255]
            if bad:
                raise ValueError(
                    f"`{s}.palette` colours must be [r, g, b] in 0..255. Received: "
                    f"{list(bad[0])}"
                )


@dataclasses.dataclass(frozen=True)
class DataConfig(Section):
    """Input-pipeline hyper-parameters.

    Args:
        dataset: str. Layout: "ade20k", "cityscapes", "coco_stuff", "folder"
            or "synthetic".
        root: str or None. Dataset folder (not needed for "synthetic").
        load_size: int or "auto". Size images are resized to before cropping
            (the width for Cityscapes). The published runs used 256 for ADE20K
            and COCO-Stuff (the official code meant 286 + random crop, but a
            shared options object made it 256 without crop) and 512 for
            Cityscapes. "auto": the image width (no crop).
        crop_size: int or "auto". Crop size (the width for Cityscapes); must
            equal the model's image width ("auto": it).
        flip: bool. Random horizontal flips in training.
        num_parallel_calls: "autotune" or a positive int, for `tf.data`.
        shuffle_buffer: int. Shuffle buffer size (0 = no shuffling).
        skip_bad_files: bool. Skip unreadable files instead of failing.

    The folder layout (your own data set; `oasis_tf/configs/folder.yaml`, docs/own_data.md)
    also reads:

        ignore_label: int, "auto" or None. The mask value of unlabelled pixels
            (VOC, Cityscapes trainIds, COCO-Stuff: 255). It becomes the don't-care
            class 0 and the other ids shift by one (the official
            `contain_dontcare_label`), unless `zero_is_dontcare`. "auto": 255
            when the masks hold it next to small ids; None: none.
        zero_is_dontcare: bool. Mask value 0 already is the don't-care class
            (ADE20K's convention): ids are not shifted (the ignore label, if any,
            also becomes 0).
        label_encoding: str. "ids" (grey or palette-indexed PNGs), "colors" (RGB
            masks, matched exactly against `model.palette`) or "auto".
        val_fraction: float. For a data set without a val/ folder (or VOC split
            lists): the share of pairs held out as the val split, chosen by a
            hash of each file name (deterministic; files keep their split when
            others are added).
    """

    _section = "data"

    dataset: str = "ade20k"
    root: Optional[str] = None
    load_size: Union[int, str] = 256
    crop_size: Union[int, str] = 256
    flip: bool = True
    num_parallel_calls: Union[int, str] = "autotune"
    shuffle_buffer: int = 1000
    skip_bad_files: bool = False
    ignore_label: Union[int, str, None] = None
    zero_is_dontcare: bool = False
    label_encoding: str = "ids"
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        self._check_types()
        s = self._section
        check_one_of(s, "dataset", self.dataset, DATASETS)
        check_auto_strings(s, load_size=self.load_size, crop_size=self.crop_size,
                           ignore_label=self.ignore_label)
        sizes = {k: v for k, v in (("load_size", self.load_size),
                                   ("crop_size", self.crop_size)) if not is_auto(v)}
        check_positive(s, **sizes)
        self._check_own_data_fields()
        if len(sizes) == 2 and self.crop_size > self.load_size:
            raise ValueError(
                f"`{s}.crop_size` must be <= load_size. Received: "
                f"crop_size={self.crop_size}, load_size={self.load_size}"
            )
        if isinstance(self.num_parallel_calls, str):
            if self.num_parallel_calls != "autotune":
                raise ValueError(
                    f'`{s}.num_parallel_calls` must be "autotune" or a positive '
                    f"int. Received: num_parallel_calls={self.num_parallel_calls!r}"
                )
        else:
            check_positive(s, num_parallel_calls=self.num_parallel_calls)
        check_non_negative(s, shuffle_buffer=self.shuffle_buffer)

    def _check_own_data_fields(self) -> None:
        """The folder layout's label options; other layouts fix their label mapping."""
        s = self._section
        check_one_of(s, "label_encoding", self.label_encoding, LABEL_ENCODINGS + (AUTO,))
        if isinstance(self.ignore_label, int) and not 0 <= self.ignore_label < 65536:
            raise ValueError(f"`{s}.ignore_label` must be a mask value in 0..65535, \"auto\" "
                             f"or null. Received: ignore_label={self.ignore_label}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"`{s}.val_fraction` must be in [0, 1). Received: "
                             f"val_fraction={self.val_fraction!r}")
        if self.dataset == OWN_DATA_LAYOUT:
            return
        for key, default in (("ignore_label", None), ("zero_is_dontcare", False),
                             ("label_encoding", "ids")):
            if getattr(self, key) != default:
                raise ValueError(
                    f"`{s}.{key}` applies to the {OWN_DATA_LAYOUT} layout (your own data "
                    f"set); {self.dataset} fixes its label mapping. Received: "
                    f"{key}={getattr(self, key)!r}, dataset={self.dataset!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig(Section):
    """Optimisation hyper-parameters (official OASIS defaults).

    Args:
        batch_size: int. Global batch size.
        num_epochs: int. Training epochs.
        lr_g, lr_d: float. Adam learning rates of generator / discriminator.
        beta_1, beta_2, epsilon: float. Adam parameters (epsilon added after
            bias correction, as PyTorch does).
        lambda_labelmix: float. Weight of the LabelMix loss.
        use_labelmix: bool. LabelMix regularisation of the discriminator.
        class_balancing: bool. Class-balanced cross-entropy.
        use_ema: bool. Keep an exponential moving average of the generator.
        ema_decay: float. EMA decay.
        ema_bn_refresh_batches: int. Batches used to recompute the EMA
            generator's BatchNorm statistics before sampling / evaluating.
        seed: int. Global random seed.
        log_every, sample_every, checkpoint_every: int. Intervals in steps.
        keep_checkpoints: int. Checkpoints kept on disk.
        fid_every: int. FID interval in steps (0 = never).
        mixed_precision: str. Keras dtype policy: "float32",
            "mixed_bfloat16" or "mixed_float16".
        jit_compile: bool. XLA-compile the train step.
        spectral_norm_warmup: int. Power iterations run on the initial weights
            of every spectrally normalised conv before training (0 = none, the
            official behaviour; not applied on resume).
        lr_warmup_steps: int. Both learning rates ramp up linearly over this
            many steps (0 = constant rates, the official behaviour).
        init_gain: float. Gain of the xavier-normal initialisation of every
            conv kernel (official 0.02; only used when training from scratch).
        vgg_loss: bool. Add the official VGG19 perceptual loss to the
            generator loss (official `--add_vgg_loss`, off by default).
        lambda_vgg: float. Weight of the VGG loss (official `--lambda_vgg` 10).
        vgg_weights: str or None. torchvision's VGG19 state dict
            `vgg19-dcbb9e9d.pth` (or an .npz of its keys), or "keras_imagenet"
            for Keras' VGG19 ImageNet weights (a different network). Needed
            when `vgg_loss` is on.
    """

    _section = "train"

    batch_size: int = 32
    num_epochs: int = 200
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    beta_1: float = 0.0
    beta_2: float = 0.999
    epsilon: float = 1e-8
    lambda_labelmix: float = 10.0
    use_labelmix: bool = True
    class_balancing: bool = True
    use_ema: bool = True
    ema_decay: float = 0.9999
    ema_bn_refresh_batches: int = 50
    seed: int = 0
    log_every: int = 100
    sample_every: int = 1000
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3
    fid_every: int = 5000
    mixed_precision: str = "float32"
    jit_compile: bool = False
    spectral_norm_warmup: int = 0
    lr_warmup_steps: int = 0
    init_gain: float = OFFICIAL_INIT_GAIN
    vgg_loss: bool = False
    lambda_vgg: float = 10.0
    vgg_weights: Optional[str] = None

    def __post_init__(self) -> None:
        self._check_types()
        s = self._section
        check_positive(
            s,
            batch_size=self.batch_size,
            num_epochs=self.num_epochs,
            lr_g=self.lr_g,
            lr_d=self.lr_d,
            log_every=self.log_every,
            sample_every=self.sample_every,
            checkpoint_every=self.checkpoint_every,
            keep_checkpoints=self.keep_checkpoints,
            init_gain=self.init_gain,
        )
        check_non_negative(
            s,
            epsilon=self.epsilon,
            lambda_labelmix=self.lambda_labelmix,
            ema_bn_refresh_batches=self.ema_bn_refresh_batches,
            fid_every=self.fid_every,
            seed=self.seed,
            spectral_norm_warmup=self.spectral_norm_warmup,
            lr_warmup_steps=self.lr_warmup_steps,
            lambda_vgg=self.lambda_vgg,
        )
        if self.vgg_loss and not self.vgg_weights:
            from oasis_tf.losses.vgg import vgg19_missing_weights_message

            raise ValueError(
                f"{vgg19_missing_weights_message('`train.vgg_loss`')} Received: "
                f"vgg_loss={self.vgg_loss}, vgg_weights={self.vgg_weights!r}"
            )
        for key in ("beta_1", "beta_2", "ema_decay"):
            value = getattr(self, key)
            if not 0.0 <= value < 1.0:
                raise ValueError(
                    f"`{s}.{key}` must be in [0, 1). Received: {key}={value!r}"
                )
        check_one_of(s, "mixed_precision", self.mixed_precision, MIXED_PRECISION_POLICIES)


_SECTION_CLASSES = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}


@dataclasses.dataclass(frozen=True)
class OASISConfig:
    """The full configuration of one run: `model`, `data` and `train`."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        for name, cls in _SECTION_CLASSES.items():
            if not isinstance(getattr(self, name), cls):
                raise ValueError(
                    f"`{name}` must be a {cls.__name__}. Received: "
                    f"{name}={getattr(self, name)!r}"
                )
        auto = self.auto_fields()
        if auto and self.data.dataset != OWN_DATA_LAYOUT:
            raise ValueError(
                f"{', '.join(f'`{k}`' for k in auto)} {'is' if len(auto) == 1 else 'are'} "
                f"\"{AUTO}\" (found from the data set), which only the {OWN_DATA_LAYOUT} "
                f"layout does. Received: dataset={self.data.dataset!r}"
            )
        if is_auto(self.model.image_size) or is_auto(self.data.crop_size):
            return
        width = self.model.image_size[1]
        if self.data.crop_size != width:
            raise ValueError(
                "`data.crop_size` must equal the image width `model.image_size[1]`. "
                f"Received: crop_size={self.data.crop_size}, "
                f"image_size={list(self.model.image_size)}"
            )

    def to_dict(self) -> dict:
        """Plain nested dict (tuples as lists), ready for YAML or JSON."""
        return {name: getattr(self, name).to_dict() for name in SECTIONS}

    def auto_fields(self) -> list:
        """The ``section.key`` names whose value is "auto" (found from the data set by
        ``oasis_tf.data.resolve_config``)."""
        return [f"{name}.{key}" for name in SECTIONS for key in getattr(self, name).auto_fields()]

    def require_resolved(self, what: str = "this") -> None:
        """Raises ``ValueError`` when a value is still "auto" (``what`` needs them all)."""
        auto = self.auto_fields()
        if auto:
            raise ValueError(
                f"{what} needs the values found from the data set, but "
                f"{', '.join(f'`{k}`' for k in auto)} {'is' if len(auto) == 1 else 'are'} "
                f"still \"{AUTO}\": resolve the config first "
                f"(`oasis_tf.data.resolve_config(config, data_root)`; `train()` does it)"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "") -> "OASISConfig":
        """Builds a config from a nested dict; missing keys take defaults.

        Unknown sections or keys raise a `ValueError` naming them (and
        `source`, e.g. the YAML file, when given).
        """
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise ValueError(
                f"{source_prefix(source)}a config must be a mapping with sections "
                f"{', '.join(SECTIONS)}. Received: {values!r}"
            )
        for key in values:
            if key not in SECTIONS:
                raise ValueError(
                    f"{source_prefix(source)}unknown key `{key}`. Valid sections: "
                    f"{', '.join(SECTIONS)}"
                )
        try:
            sections = {
                name: _SECTION_CLASSES[name].from_dict(values.get(name) or {}, source)
                for name in SECTIONS
            }
            return cls(**sections)
        except ValueError as e:
            if source and not str(e).startswith(f"{source}:"):
                raise ValueError(f"{source}: {e}") from None
            raise
