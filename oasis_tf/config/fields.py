"""Type checking and coercion of configuration values, and the shared checks
(positive, non-negative, one of) whose errors name the key and repeat the value."""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Iterable, Mapping, Tuple, Union


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, name: str) -> Any:
    """Checks `value` against the annotation `tp`; returns the canonical value.

    Lists become tuples, ints become floats where a float is expected, and a
    numeric string is accepted for a float (PyYAML reads `1e-4` as a string).
    Booleans are never accepted as numbers and numbers never as booleans.
    """
    origin = typing.get_origin(tp)
    if origin is Union:
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
        else:
            for arg in args:
                if arg is type(None):
                    continue
                try:
                    return coerce(value, arg, name)
                except ValueError:
                    pass
        raise ValueError(
            f"`{name}` must be of type {_type_name(tp)}. Received: {name}={value!r}"
        )
    if origin in (tuple, Tuple):
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ValueError(
                f"`{name}` must be a list of {len(args)} values. Received: {name}={value!r}"
            )
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], name) for v in value)
        if len(value) != len(args):
            raise ValueError(
                f"`{name}` must have {len(args)} values. Received: {name}={value!r}"
            )
        return tuple(coerce(v, a, name) for v, a in zip(value, args))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - every field uses one of the types above
        raise TypeError(f"Unsupported field type {tp!r} for `{name}`.")
    raise ValueError(
        f"`{name}` must be of type {_type_name(tp)}. Received: {name}={value!r} "
        f"({type(value).__name__})"
    )


class Section:
    """Mixin: coerces and type-checks every field after construction."""

    _section = ""

    def _check_types(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            name = f"{self._section}.{f.name}"
            value = coerce(getattr(self, f.name), hints[f.name], name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(
                    f"`{name}` must be a finite number. Received: {f.name}={value!r}"
                )
            object.__setattr__(self, f.name, value)

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def auto_fields(self) -> list:
        """Names of the fields whose value is ``AUTO`` (found from the data set)."""
        return [f.name for f in dataclasses.fields(self) if is_auto(getattr(self, f.name))]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "") -> "Section":
        if not isinstance(values, Mapping):
            raise ValueError(
                f"{source_prefix(source)}section `{cls._section}` must be a mapping. "
                f"Received: {values!r}"
            )
        valid = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in valid:
                raise ValueError(
                    f"{source_prefix(source)}unknown key `{cls._section}.{key}`. "
                    f"Valid keys of `{cls._section}`: {', '.join(valid)}"
                )
        return cls(**dict(values))


def _plain(value: Any) -> Any:
    """Tuples (also nested ones) as lists, for YAML and JSON."""
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


# A value found from the data set when a run starts (``oasis_tf/configs/folder.yaml``; resolved by
# ``oasis_tf.data.resolve_config`` before anything is built).
AUTO = "auto"


def is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == AUTO


def check_auto_strings(section: str, **values: Any) -> None:
    """Fields that take a value or ``AUTO``: a string must be ``AUTO``."""
    for key, value in values.items():
        if isinstance(value, str) and value != AUTO:
            raise ValueError(
                f"`{section}.{key}` must be a value or \"{AUTO}\" (found from the data "
                f"set). Received: {key}={value!r}"
            )


def source_prefix(source: str) -> str:
    return f"{source}: " if source else ""


def check_positive(section: str, **values: Any) -> None:
    for key, value in values.items():
        if value <= 0:
            raise ValueError(
                f"`{section}.{key}` must be positive. Received: {key}={value!r}"
            )


def check_non_negative(section: str, **values: Any) -> None:
    for key, value in values.items():
        if value < 0:
            raise ValueError(
                f"`{section}.{key}` must be >= 0. Received: {key}={value!r}"
            )


def check_one_of(section: str, key: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(
            f"`{section}.{key}` must be one of {', '.join(map(repr, allowed))}. "
            f"Received: {key}={value!r}"
        )
