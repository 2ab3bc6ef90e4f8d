"""Frozen hyper-parameter objects for oasis_tf, loaded from the YAML presets.

A configuration is three immutable dataclasses, grouped in `OASISConfig`:

* `ModelConfig` — the networks (classes, image size, widths, noise, norms);
* `DataConfig` — the input pipeline (dataset layout, load/crop size, flips);
* `TrainConfig` — the optimisation (batch, learning rates, LabelMix, EMA,
  logging intervals, precision).

Presets live as YAML files in the package, `oasis_tf/configs/` (`ade20k`,
`cityscapes`, `coco_stuff`, `folder` (your own data set), `synthetic`; installed with
it). `load_config` takes a
preset name or a path to a YAML file, plus optional dotted overrides:

    cfg = load_config("cityscapes", overrides=["train.lr_g=2e-4",
                                               "model.image_size=[128,256]",
                                               "data.crop_size=256"])

Library code never reads flags; the tools build one `OASISConfig` and pass
its parts on. Preset names are searched in `preset_dirs()`; a path to any YAML
file always works.

The package: `fields` (type checks and coercion), `schema` (the sections and
`OASISConfig`), `presets` (loading, overrides, saving).
"""

from oasis_tf.config.presets import (apply_overrides, list_presets, load_config, preset_dirs,
                                     save_config)
from oasis_tf.config.schema import (DATASETS, DISCRIMINATOR_FACTOR, MIXED_PRECISION_POLICIES,
                                    NORM_TYPES, OFFICIAL_INIT_GAIN, SECTIONS, DataConfig,
                                    ModelConfig, OASISConfig, TrainConfig)

__all__ = [
    "ModelConfig",
    "DataConfig",
    "TrainConfig",
    "OASISConfig",
    "load_config",
    "save_config",
    "apply_overrides",
    "list_presets",
    "preset_dirs",
    "DATASETS",
    "DISCRIMINATOR_FACTOR",
    "MIXED_PRECISION_POLICIES",
    "NORM_TYPES",
    "OFFICIAL_INIT_GAIN",
    "SECTIONS",
]
