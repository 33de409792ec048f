"""Typer flags made from the fields of a settings dataclass.

A command built this way has one ``--flag`` per field, with the field's help
text (its ``metadata["help"]``) and default shown, so a flag, a YAML key and a
Python keyword are the same setting. Every flag is optional: None keeps the
value the config file (or the dataclass default) gives. ``gcr train parrot``
and ``gcr train sft`` are built from :class:`~gcr.training.parrot.pipeline.ParrotSettings`
and :class:`~gcr.training.sft.config.SFTRunConfig` with it.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer


def _flag_type(hint: Any) -> Any:
    """The CLI type of a settings field: every flag is optional (None = keep the config's value)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if origin is list:
        return list[str] | None
    return hint | None


def dataclass_flags(cls: type, names: Iterable[str] | None = None) -> list[inspect.Parameter]:
    """One keyword parameter with a ``typer.Option`` per field of ``cls`` (help text from the metadata)."""
    hints = typing.get_type_hints(cls)
    wanted = set(names) if names is not None else None
    params = []
    for f in dataclasses.fields(cls):
        if wanted is not None and f.name not in wanted:
            continue
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        is_bool = hint is bool
        decl = f"{flag}/--no-{f.name.replace('_', '-')}" if is_bool else flag
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f.metadata.get("help", "")
        if default not in ("", None):
            help_text += f" (default: {', '.join(default) if isinstance(default, list) else default})"
        if isinstance(default, list):
            help_text += " Repeat the flag or separate values with commas."
        option = typer.Option(decl, help=help_text, show_default=False)
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[_flag_type(hint), option],
            )
        )
    return params


def flag_overrides(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The flags of ``values`` that were given and name a field of ``cls``; list flags split on commas."""
    names = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in names or value is None:
            continue
        if isinstance(value, list):
            value = [part.strip() for v in value for part in str(v).split(",") if part.strip()]
        out[name] = value
    return out


def with_signature(
    func: Callable[..., Any], fixed: list[inspect.Parameter], flags: list[inspect.Parameter]
) -> Callable[..., Any]:
    """``func`` with the signature typer reads: the ``fixed`` parameters, then the ``flags``."""
    func.__signature__ = inspect.Signature([*fixed, *flags])  # type: ignore[attr-defined]
    func.__annotations__ = {}
    return func


def fixed_param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    """A keyword parameter with a hand-written ``typer.Argument``/``typer.Option`` annotation."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
