"""Typed settings from plain data: the one loader of every gcr settings dataclass.

RL (:class:`~gcr.training.rl.config.RLConfig`), SFT
(:class:`~gcr.training.sft.config.SFTRunConfig`), PARROT and refine
(:class:`~gcr.agent.context.RefineContext`) settings are all read here, from
YAML/JSON files, ``run.json`` or command-line values, with the same rules:

* every value is checked against the dataclass field type (``int``, ``float``,
  ``str``, ``bool``, ``Literal``, lists, tuples, dicts, optionals, unions and
  nested dataclasses). YAML's looseness is absorbed where it is harmless: an
  integer for a float, ``2e-4`` read as a string for a float, a single string
  for a list of strings;
* an unknown key or a wrong type raises a :class:`~gcr.errors.ConfigError`
  that names the setting (dotted for nested ones), where it came from (a file,
  "the command line", ...) and, for a misspelt key, the closest known one.

Nothing here evaluates code from a file: YAML is read with ``safe_load``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from gcr.errors import ConfigError

_T = TypeVar("_T")

# --------------------------------------------------------------------------- files


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping of settings in a YAML or JSON file (``.json``: strict JSON; else YAML)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    text = p.read_text(encoding="utf-8", errors="replace")
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p} is not valid JSON: {exc}") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping of settings, not a {type(data).__name__}")
    return data


# --------------------------------------------------------------------------- overrides


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``dotted.key=value`` applied (value read as YAML)."""
    result: dict[str, Any] = yaml.safe_load(yaml.safe_dump(dict(data)))  # deep copy of plain data
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _set_dotted(result, key.split("."), value, item)
    return result


def _set_dotted(node: Any, parts: list[str], value: Any, item: str) -> None:
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {item!r}: {part!r} is not an index of a list of {len(node)}")
            if last:
                node[int(part)] = value
                return
            node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
                return
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        else:
            raise ConfigError(f"override {item!r}: cannot set a key inside a {type(node).__name__}")


# --------------------------------------------------------------------------- typed building


def from_mapping(cls: type[_T], data: Any, source: str, *, key: str = "") -> _T:
    """An instance of dataclass ``cls`` from ``data`` (a mapping), every value type-checked.

    ``source`` says where the data came from (a file path, "the command line");
    ``key`` is the dotted name of ``data`` itself when it is nested in a larger config.
    The dataclass's own checks (``__post_init__``) run as usual.
    """
    if isinstance(data, cls):
        return data
    values = typed_fields(cls, data, source, key=key)
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        where = f"{key} in {source}" if key else source
        raise ConfigError(f"invalid settings in {where}: {exc}") from None


def typed_fields(cls: type, data: Any, source: str, *, key: str = "") -> dict[str, Any]:
    """``data``'s values converted to ``cls``'s field types, without building ``cls``.

    For callers that merge settings from several sources (a file, then flags):
    each source is checked, and named, on its own.
    """
    where = f"{key} in {source}" if key else source
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of settings, not a {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for name in data:
        if name not in names:
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(names)})"
            raise ConfigError(f"unknown setting {_dotted(key, name)!r} in {source}{hint}")
    return {name: coerce(value, hints[name], _dotted(key, name), source) for name, value in data.items()}


def _dotted(key: str, name: Any) -> str:
    return f"{key}.{name}" if key else str(name)


def coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """``value`` as type ``tp``, or a :class:`ConfigError` naming ``key`` and ``source``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, key, source)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key} in {source}: bad value {value!r}")
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, source, key=key)  # type: ignore[arg-type]
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ConfigError(f"{key} in {source} must be one of {choices}, got {value!r}")
    if origin in (list, tuple):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{key} in {source} must be a list, got {value!r}")
        if origin is list or (len(args) == 2 and args[1] is Ellipsis) or not args:
            inner = args[0] if args else Any
            out = [coerce(v, inner, f"{key}.{i}", source) for i, v in enumerate(items)]
            return out if origin is list else tuple(out)
        if len(items) != len(args):
            raise ConfigError(f"{key} in {source} must be a list of {len(args)}, got {value!r}")
        pairs = enumerate(zip(items, args, strict=True))
        return tuple(coerce(v, a, f"{key}.{i}", source) for i, (v, a) in pairs)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} in {source} must be a mapping, got {value!r}")
        return {
            coerce(k, args[0], key, source): coerce(v, args[1], f"{key}.{k}", source)
            for k, v in value.items()
        }
    return _scalar(value, tp, key, source)


def _scalar(value: Any, tp: Any, key: str, source: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} in {source} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key} in {source} must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML 1.1 reads '2e-4' as a string
            except ValueError:
                pass
        raise ConfigError(f"{key} in {source} must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key} in {source} must be a string, got {value!r}")
    raise ConfigError(f"{key} in {source}: unsupported setting type {tp!r}")
