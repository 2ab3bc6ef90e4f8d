"""Tests of oasis_tf.config: presets, overrides, validation, round trips."""

import dataclasses

import pytest
import yaml

from oasis_tf.config import (
    DataConfig,
    ModelConfig,
    OASISConfig,
    TrainConfig,
    apply_overrides,
    list_presets,
    load_config,
    save_config,
)


def test_all_presets_are_found():
    assert {"ade20k", "cityscapes", "coco_stuff", "synthetic"} <= set(list_presets())


@pytest.mark.parametrize(
    "name, classes, size, batch, epochs, lr_g, lambda_lm, ema, load, crop, fid",
    [
        ("ade20k", 151, (256, 256), 32, 200, 1e-4, 10.0, 0.9999, 256, 256, 5000),
        ("cityscapes", 35, (256, 512), 20, 200, 4e-4, 5.0, 0.999, 512, 512, 2500),
        ("coco_stuff", 183, (256, 256), 32, 100, 1e-4, 10.0, 0.9999, 256, 256, 5000),
    ],
)
def test_official_presets(name, classes, size, batch, epochs, lr_g, lambda_lm, ema, load, crop, fid):
    cfg = load_config(name)
    assert cfg.data.dataset == name
    assert cfg.model.num_classes == classes
    assert cfg.model.image_size == size
    assert cfg.model.dontcare_label is True
    assert (cfg.model.g_channels, cfg.model.z_dim, cfg.model.num_res_blocks) == (64, 64, 6)
    assert cfg.model.d_channels == 128
    assert cfg.model.norm_type == "syncbatch"
    assert cfg.model.use_3d_noise and cfg.model.spectral_norm
    assert (cfg.data.load_size, cfg.data.crop_size) == (load, crop)
    assert cfg.train.batch_size == batch
    assert cfg.train.num_epochs == epochs
    assert cfg.train.lr_g == pytest.approx(lr_g)
    assert cfg.train.lr_d == pytest.approx(4e-4)
    assert (cfg.train.beta_1, cfg.train.beta_2, cfg.train.epsilon) == (0.0, 0.999, 1e-8)
    assert cfg.train.lambda_labelmix == lambda_lm
    assert cfg.train.ema_decay == ema
    assert cfg.train.fid_every == fid
    assert cfg.train.mixed_precision == "float32"


def test_synthetic_preset_is_tiny():
    cfg = load_config("synthetic")
    assert cfg.data.dataset == "synthetic"
    assert cfg.model.num_classes == 12
    assert cfg.model.image_size == (64, 64)
    assert (cfg.model.g_channels, cfg.model.d_channels, cfg.model.spade_hidden) == (16, 32, 32)
    assert cfg.train.batch_size == 4
    # the official rates; with the official init gain 0.02 the tiny networks blow
    # up in the first steps (see the comments in oasis_tf/configs/synthetic.yaml)
    assert cfg.train.lr_g == pytest.approx(1e-4)
    assert cfg.train.lr_d == pytest.approx(4e-4)
    assert cfg.train.lr_warmup_steps == 0
    assert cfg.train.init_gain == pytest.approx(1.0)
    assert cfg.model.num_res_blocks == 4
    assert cfg.train.ema_decay == pytest.approx(0.99)


def test_official_presets_keep_the_official_spade_width_and_constant_rates():
    for name in ("ade20k", "cityscapes", "coco_stuff"):
        cfg = load_config(name)
        assert cfg.model.spade_hidden == 128, name
        assert cfg.train.lr_warmup_steps == 0, name
        assert cfg.train.init_gain == pytest.approx(0.02), name


def test_load_by_path(tmp_path):
    path = save_config(load_config("cityscapes"), tmp_path / "c.yaml")
    assert load_config(str(path)) == load_config("cityscapes")
    assert load_config(path) == load_config("cityscapes")


def test_defaults_are_ade20k():
    assert OASISConfig() == load_config("ade20k")


def test_overrides():
    cfg = load_config(
        "ade20k",
        overrides=[
            "train.lr_g=2e-4",
            "model.image_size=[128,256]",
            "train.use_ema=false",
            "data.root=/data/ade",
            "data.num_parallel_calls=4",
            "train.lambda_labelmix=5",
        ],
    )
    assert cfg.train.lr_g == pytest.approx(2e-4)
    assert isinstance(cfg.train.lr_g, float)
    assert cfg.model.image_size == (128, 256)
    assert cfg.train.use_ema is False
    assert cfg.data.root == "/data/ade"
    assert cfg.data.num_parallel_calls == 4
    assert cfg.train.lambda_labelmix == 5.0
    assert isinstance(cfg.train.lambda_labelmix, float)
    # The rest is untouched.
    assert cfg.model.num_classes == 151


def test_apply_overrides_returns_new_object():
    cfg = load_config("synthetic")
    new = apply_overrides(cfg, ["train.seed=7"])
    assert new.train.seed == 7 and cfg.train.seed == 0


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.lr_gen=1e-4", "train.lr_gen"),
        ("optim.lr_g=1e-4", "optim.lr_g"),
        ("lr_g=1e-4", "lr_g"),
        ("model.image_size=[128]", "model.image_size"),
        ("model.image_size=[100,100]", "image_size"),
        ("model.num_classes=abc", "model.num_classes"),
        ("model.num_classes=1.5", "model.num_classes"),
        ("train.use_ema=1", "train.use_ema"),
        ("train.batch_size=true", "train.batch_size"),
        ("model.norm_type=group", "norm_type"),
        ("train.batch_size=0", "batch_size"),
    ],
)
def test_bad_overrides_raise_naming_the_key(override, fragment):
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[")):
        load_config("ade20k", overrides=[override])


def test_unknown_override_lists_valid_keys():
    with pytest.raises(ValueError) as e:
        load_config("ade20k", overrides=["train.lr_gen=1e-4"])
    assert "lr_g" in str(e.value) and "lambda_labelmix" in str(e.value)


def test_override_without_equals():
    with pytest.raises(ValueError, match="section.key=value"):
        load_config("ade20k", overrides=["train.lr_g"])


def test_unknown_yaml_key_names_file_and_key(tmp_path):
    values = load_config("synthetic").to_dict()
    values["train"]["learning_rate"] = 0.1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(ValueError) as e:
        load_config(path)
    assert str(path) in str(e.value)
    assert "train.learning_rate" in str(e.value)


def test_unknown_yaml_section_names_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  lr: 1\n")
    with pytest.raises(ValueError) as e:
        load_config(path)
    assert str(path) in str(e.value) and "optim" in str(e.value)


def test_bad_yaml_value_names_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  num_classes: many\n")
    with pytest.raises(ValueError) as e:
        load_config(path)
    assert str(path) in str(e.value) and "num_classes" in str(e.value)


def test_partial_yaml_takes_defaults(tmp_path):
    path = tmp_path / "partial.yaml"
    path.write_text("train:\n  batch_size: 4\n")
    cfg = load_config(path)
    assert cfg.train.batch_size == 4
    assert cfg.model == ModelConfig()


def test_unknown_preset_lists_presets():
    with pytest.raises(ValueError) as e:
        load_config("imagenet")
    assert "imagenet" in str(e.value) and "ade20k" in str(e.value)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        load_config("/nonexistent/config.yaml")


@pytest.mark.parametrize("name", ["ade20k", "cityscapes", "coco_stuff", "synthetic"])
def test_dict_round_trip(name):
    cfg = load_config(name)
    d = cfg.to_dict()
    assert d["model"]["image_size"] == list(cfg.model.image_size)
    assert OASISConfig.from_dict(d) == cfg
    # to_dict is plain data: it survives YAML.
    assert OASISConfig.from_dict(yaml.safe_load(yaml.safe_dump(d))) == cfg


@pytest.mark.parametrize("name", ["ade20k", "cityscapes", "coco_stuff", "synthetic"])
def test_save_load_round_trip(name, tmp_path):
    cfg = load_config(name, overrides=["train.seed=3", "data.root=/x"])
    path = save_config(cfg, tmp_path / "sub" / "config.yaml")
    assert path.is_file()
    assert load_config(path) == cfg


def test_configs_are_frozen():
    cfg = load_config("synthetic")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr_g = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model = ModelConfig()


def test_constructor_coerces_lists_and_ints():
    m = ModelConfig(image_size=[128, 256])
    assert m.image_size == (128, 256)
    t = TrainConfig(lr_g=1, lambda_labelmix=5)
    assert isinstance(t.lr_g, float) and isinstance(t.lambda_labelmix, float)


@pytest.mark.parametrize(
    "cls, kwargs, fragment",
    [
        (ModelConfig, {"num_classes": 1}, "num_classes=1"),
        (ModelConfig, {"image_size": (0, 256)}, r"image_size=\[0, 256\]"),
        (ModelConfig, {"image_size": (256, 250)}, r"image_size=\[256, 250\]"),
        (ModelConfig, {"image_size": (64, 64), "num_res_blocks": 8}, "num_res_blocks=8"),
        (ModelConfig, {"g_channels": 0}, "g_channels=0"),
        (ModelConfig, {"z_dim": -1}, "z_dim=-1"),
        (ModelConfig, {"norm_type": "group"}, "norm_type='group'"),
        (ModelConfig, {"spectral_norm": "yes"}, "spectral_norm='yes'"),
        (DataConfig, {"dataset": "imagenet"}, "dataset='imagenet'"),
        (DataConfig, {"load_size": 128, "crop_size": 256}, "crop_size=256"),
        (DataConfig, {"num_parallel_calls": "fast"}, "num_parallel_calls='fast'"),
        (DataConfig, {"num_parallel_calls": 0}, "num_parallel_calls=0"),
        (DataConfig, {"shuffle_buffer": -1}, "shuffle_buffer=-1"),
        (DataConfig, {"root": 3}, "root=3"),
        (TrainConfig, {"batch_size": 0}, "batch_size=0"),
        (TrainConfig, {"lr_d": -1.0}, "lr_d=-1.0"),
        (TrainConfig, {"beta_2": 1.0}, "beta_2=1.0"),
        (TrainConfig, {"ema_decay": 1.5}, "ema_decay=1.5"),
        (TrainConfig, {"mixed_precision": "float16"}, "mixed_precision='float16'"),
        (TrainConfig, {"batch_size": 2.5}, "batch_size=2.5"),
        (TrainConfig, {"jit_compile": 1}, "jit_compile=1"),
        # issue 12: values that cannot work, refused when the config is made
        (TrainConfig, {"lr_g": float("nan")}, "lr_g=nan"),
        (TrainConfig, {"lr_d": float("inf")}, "finite number. Received: lr_d=inf"),
        (TrainConfig, {"epsilon": "nan"}, "epsilon=nan"),
        (TrainConfig, {"init_gain": float("inf")}, "init_gain=inf"),
        (TrainConfig, {"ema_decay": float("nan")}, "ema_decay=nan"),
        (TrainConfig, {"beta_1": float("-inf")}, "beta_1=-inf"),
        (ModelConfig, {"image_size": (32, 32), "num_res_blocks": 2},
         r"divisible by 64 .*discriminator's six 2x downsamplings.*image_size=\[32, 32\]"),
        (ModelConfig, {"image_size": (64, 192), "num_res_blocks": 8},
         r"divisible by 128 .*2\*\*\(num_res_blocks - 1\) = 128"),
    ],
)
def test_validation_repeats_received_value(cls, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        cls(**kwargs)


def test_crop_must_match_image_width():
    with pytest.raises(ValueError, match="crop_size"):
        load_config("cityscapes", overrides=["model.image_size=[128,256]"])
    cfg = load_config(
        "cityscapes", overrides=["model.image_size=[128,256]", "data.crop_size=256"]
    )
    assert cfg.data.crop_size == 256


def test_empty_yaml_is_refused(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing but a comment\n")
    with pytest.raises(ValueError, match="empty.yaml: the config file is empty"):
        load_config(path)
