"""Typed settings from layered YAML: dataclasses give the types and defaults, YAML the values.

A parameter file holds settings at its top level and named scales under ``scales``; its ``scale``
key names the active one. Each layer (the file's top level, the active scale, command-line
overrides) is checked on its own against the dataclasses' type hints, so that an error names the
layer and the key; the layers are then merged in order and built into the dataclasses. The same
hints give the file's JSON schema, and a table of :class:`Range` by dataclass and field gives both
the schema's bounds and :func:`check_ranges`. A setting is addressed by its dotted key (``loss.lambda_cycle``):
on the command line (:func:`overrides_to_dict`), in flat records (:func:`flatten`) and in code
(:func:`get_setting`). Nothing here knows the project's settings (:mod:`.sections`, :mod:`.ranges`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import ConfigError

# libyaml's parser where PyYAML was built with it: the same safe constructor and resolver as
# yaml.SafeLoader (so the same values), several times faster; Snakemake's DAG reads params.yaml once
# per run and parses every run's overrides.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Range:
    """The values a number setting (or each number of a list setting) may take; None, where the
    setting allows it, is always allowed."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # ``low`` itself excluded
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        below = self.low is not None and (value < self.low or (self.low_open and value == self.low))
        above = self.high is not None and (value > self.high or (self.high_open and value == self.high))
        return not (below or above)

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def schema(self) -> dict[str, float]:
        """JSON schema's bounds for this range."""
        bounds: dict[str, float] = {}
        if self.low is not None:
            bounds["exclusiveMinimum" if self.low_open else "minimum"] = self.low
        if self.high is not None:
            bounds["exclusiveMaximum" if self.high_open else "maximum"] = self.high
        return bounds


Ranges = Mapping[type, Mapping[str, Range]]  # dataclass -> field -> range; a subclass inherits its bases'
# The ranges most number settings take.
POSITIVE, AT_LEAST_0, AT_LEAST_1, FRACTION = Range(0, low_open=True), Range(0), Range(1), Range(0, 1)


def ranges_of(cls: type, ranges: Ranges) -> dict[str, Range]:
    merged: dict[str, Range] = {}
    for base in reversed(cls.__mro__):
        merged.update(ranges.get(base, {}))
    return merged


def check_ranges(settings: Any, ranges: Ranges, prefix: str = "") -> None:
    """Raise a ConfigError naming the first setting of built dataclasses outside its range."""
    own = ranges_of(type(settings), ranges)
    for f in dataclasses.fields(settings):
        value, key = getattr(settings, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_ranges(value, ranges, f"{key}.")
        elif f.name in own:
            for number in value if isinstance(value, list) else [value]:
                if number is not None and number not in own[f.name]:
                    each = " (each of them)" if isinstance(value, list) else ""
                    raise ConfigError(f"{key} ({value!r}) must be {own[f.name]}{each}")


def load_yaml(text: str) -> Any:
    """A YAML document's value, as ``yaml.safe_load`` reads it."""
    return yaml.load(text, Loader=_LOADER)


@functools.lru_cache(maxsize=32)
def _parsed(text: str) -> Any:
    return load_yaml(text)


def load_yaml_file(path: Path) -> Any:
    """A YAML file's value, parsed once per content of the file; each caller gets its own copy."""
    return copy.deepcopy(_parsed(path.read_text()))


def _check_value(value: Any, hint: Any, where: str) -> Any:
    """Return ``value`` converted to ``hint`` or raise a ConfigError naming ``where``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _check_value(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches no allowed type")
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {
            _check_value(k, key_hint, f"{where} key"): _check_value(v, value_hint, f"{where}.{k}")
            for k, v in value.items()
        }
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint!r} at {where}")


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """A settings dataclass's field types, resolved once per process (resolving the string annotations
    is most of what reading a configuration costs, and a grid reads some fifty)."""
    return typing.get_type_hints(cls)


def check_section(cls: type, data: Any, where: str) -> dict[str, Any]:
    """Validate a (partial) dict against dataclass ``cls``; returns the checked, converted dict."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {data!r}")
    hints = type_hints(cls)
    checked: dict[str, Any] = {}
    for key, value in data.items():
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{where}.{key}: unknown setting (known here: {known})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            checked[key] = check_section(hint, value, f"{where}.{key}")
        else:
            checked[key] = _check_value(value, hint, f"{where}.{key}")
    return checked


def merge(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """``layer`` over ``base``, section by section."""
    merged = dict(base)
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build(cls: type, data: dict[str, Any]) -> Any:
    """The dataclass ``cls`` from a checked dict; what the dict leaves out keeps its default."""
    hints = type_hints(cls)
    kwargs = {k: build(hints[k], v) if dataclasses.is_dataclass(hints[k]) else v for k, v in data.items()}
    return cls(**kwargs)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"loss.lambda_cycle=0.3"`` -> (["loss", "lambda_cycle"], 0.3); values are read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. loss.lambda_cycle=0.3")
    key, raw = text.split("=", 1)
    try:
        return key.strip().split("."), load_yaml(raw)
    except yaml.YAMLError as err:
        problem = str(err).splitlines()[0]
        raise ConfigError(f"override {text!r}: not valid YAML ({problem}); quote a string, e.g. key='[1,'") from err


def overrides_to_dict(overrides: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` overrides as one nested dict, the inverse of :func:`flatten`."""
    nested: dict[str, Any] = {}
    for text in overrides:
        keys, value = parse_override(text)
        node = nested
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return nested


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as one dict of dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def get_setting(settings: Any, key: str) -> Any:
    """The value of a dotted key in built dataclasses: ``get_setting(config, "loss.topk")``."""
    return functools.reduce(getattr, key.split("."), settings)


def read_layers(
    cls: type, params_path: str | Path | None, scale: str | None, overrides: list[str] | None
) -> dict[str, Any]:
    """The checked, merged layers of a parameter file for root dataclass ``cls`` (which has a
    ``scale`` field): its top level <- ``scales.<scale>`` <- ``overrides``. Without a file only the
    overrides apply over the defaults."""
    merged: dict[str, Any] = {}
    scales: dict[str, Any] = {}
    if params_path is not None:
        path = Path(params_path)
        if not path.is_file():
            raise ConfigError(f"{path}: parameter file not found (run from the project root or pass --params)")
        try:
            raw = load_yaml_file(path) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        raw = dict(raw)
        scales = raw.pop("scales", {}) or {}
        if not isinstance(scales, dict):
            raise ConfigError(f"{path}: scales: expected a mapping of scale names to settings")
        merged = check_section(cls, raw, str(path))
    default_scale = {f.name: f.default for f in dataclasses.fields(cls)}["scale"]
    chosen = scale or merged.get("scale") or default_scale
    if scales or params_path is not None:
        if chosen not in scales:
            raise ConfigError(
                f"scale {chosen!r} is not defined under 'scales' in {params_path} "
                f"(defined: {', '.join(scales) or 'none'})"
            )
        merged = merge(merged, check_section(cls, scales[chosen] or {}, f"{params_path}: scales.{chosen}"))
    merged["scale"] = chosen
    if overrides:
        merged = merge(merged, check_section(cls, overrides_to_dict(overrides), "override"))
    return merged


def _schema_of(hint: Any, ranges: Ranges, bounds: Range | None = None) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        hints, own = type_hints(hint), ranges_of(hint, ranges)
        properties = {f.name: _schema_of(hints[f.name], ranges, own.get(f.name)) for f in dataclasses.fields(hint)}
        return {"type": "object", "additionalProperties": False, "properties": properties}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema_of(option, ranges, bounds) for option in typing.get_args(hint)]}
    if origin is Literal:
        return {"enum": list(typing.get_args(hint))}
    if origin is list:
        return {"type": "array", "items": _schema_of(typing.get_args(hint)[0], ranges, bounds)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_of(typing.get_args(hint)[1], ranges)}
    names = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
    numeric = bounds is not None and hint in (int, float)
    return {"type": names[hint], **(bounds.schema() if numeric else {})}


def file_schema(cls: type, ranges: Ranges) -> dict[str, Any]:
    """The JSON schema of a parameter file for root dataclass ``cls``: its settings at the top
    level and under each scale, numbers within ``ranges``."""
    section = _schema_of(cls, ranges)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "description": "params.yaml", **section}
    scale = copy.deepcopy(section)  # a copy: written as YAML, shared objects would become anchors
    schema["properties"] = {**section["properties"], "scales": {"type": "object", "additionalProperties": scale}}
    return schema
