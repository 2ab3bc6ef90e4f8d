"""Loading presets and YAML files, `section.key=value` overrides, saving.

Preset names are the YAML files of the package's own `oasis_tf/configs/` folder
(package data: a checkout, an editable or a regular install all have it). A path to
any YAML file always works.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Iterable, Tuple, Union

import yaml

from oasis_tf.config.schema import _SECTION_CLASSES, SECTIONS, OASISConfig


def preset_dirs() -> list:
    """Folders searched for preset names, in order: the package's ``configs``."""
    return [Path(__file__).resolve().parents[1] / "configs"]


def list_presets() -> list:
    """Names of the presets found in `preset_dirs()`."""
    names = set()
    for d in preset_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)


def _resolve(name_or_path: Union[str, os.PathLike]) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or os.sep in str(name_or_path) or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"Config file not found: {str(path)!r}")
        return path
    for d in preset_dirs():
        candidate = d / f"{name_or_path}.yaml"
        if candidate.is_file():
            return candidate
    raise ValueError(
        f"Unknown config preset {str(name_or_path)!r}. Available presets: "
        f"{', '.join(list_presets()) or '(none found)'}; searched "
        f"{', '.join(str(d) for d in preset_dirs())}. Pass a path to a YAML file."
    )


def _parse_override(text: str) -> Tuple[str, str, Any]:
    if not isinstance(text, str) or "=" not in text:
        raise ValueError(
            f"An override must look like `section.key=value`. Received: {text!r}"
        )
    key, raw = text.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in SECTIONS:
        raise ValueError(
            f"Unknown override key `{key}`: it must be `section.key` with section "
            f"one of {', '.join(SECTIONS)}. Received: {text!r}"
        )
    section, field = parts
    valid = [f.name for f in dataclasses.fields(_SECTION_CLASSES[section])]
    if field not in valid:
        raise ValueError(
            f"Unknown override key `{key}`. Valid keys of `{section}`: "
            f"{', '.join(valid)}"
        )
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ValueError(f"Cannot parse the value of override {text!r}: {e}") from None
    return section, field, value


def apply_overrides(config: OASISConfig, overrides: Iterable[str] = ()) -> OASISConfig:
    """Returns a new config with `section.key=value` overrides applied.

    Values are parsed as YAML (`[128, 256]`, `true`, `2e-4`, `null`), then
    type-checked and validated like a YAML file.
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    values = config.to_dict()
    for text in overrides:
        section, field, value = _parse_override(text)
        values[section][field] = value
    return OASISConfig.from_dict(values)


def load_config(
    name_or_path: Union[str, os.PathLike], overrides: Iterable[str] = ()
) -> OASISConfig:
    """Loads a preset name ("ade20k", "cityscapes", "coco_stuff", "folder",
    "synthetic") or a YAML file, then applies `overrides` (strings `section.key=value`).

    Values that cannot work are refused here, repeating the value: non-finite
    numbers (NaN / inf rates, epsilons, gains, decays), an `image_size` the
    networks cannot produce, an empty file."""
    path = _resolve(name_or_path)
    with open(path, "r", encoding="utf-8") as f:
        try:
            values = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: invalid YAML: {e}") from None
    if values is None:
        raise ValueError(
            f"{path}: the config file is empty; expected a mapping with sections "
            f"{', '.join(SECTIONS)} (missing keys take their defaults)"
        )
    config = OASISConfig.from_dict(values, source=str(path))
    return apply_overrides(config, overrides)


def save_config(config: OASISConfig, path: Union[str, os.PathLike]) -> Path:
    """Writes `config` as YAML (readable by `load_config`); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config.to_dict(), f, sort_keys=False, default_flow_style=None)
    return path
