"""Typer flags made from the fields of a settings dataclass.

A command built this way has one ``--flag`` per field, with the field's help
text (its ``metadata["help"]``) and default shown, so a flag, a YAML key and a
Python keyword are the same setting. A field's ``metadata["flags"]`` may name
its options (default ``--field-name``, ``--field-name/--no-field-name`` for a bool).
Two forms:

* :func:`dataclass_flags`: every flag defaults to None, which keeps the value the
  config file (or the dataclass default) gives. ``gcr train parrot`` and ``gcr train
  sft`` are built from :class:`~gcr.training.parrot.pipeline.ParrotSettings` and
  :class:`~gcr.training.sft.config.SFTRunConfig` with it.
* :func:`typed_flag`: the flag has the field's own type and default (an optional
  number takes ``none``), and :func:`given_options` tells the flags a user gave
  from the defaults. ``gcr refine`` and ``gcr bench`` are built from
  :class:`~gcr.agent.context.RefineContext` with it (see :mod:`gcr.cli.refine_flags`).
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


def flag_decls(f: dataclasses.Field[Any], hint: Any) -> tuple[str, ...]:
    """The option names of field ``f`` (``hint`` is its resolved type)."""
    if f.metadata.get("flags"):
        return tuple(f.metadata["flags"])
    dashed = f.name.replace("_", "-")
    return (f"--{dashed}/--no-{dashed}",) if hint is bool else (f"--{dashed}",)


def dataclass_flags(cls: type, names: Iterable[str] | None = None) -> list[inspect.Parameter]:
    """One keyword parameter with a ``typer.Option`` per field of ``cls`` (help text from the metadata)."""
    hints = typing.get_type_hints(cls)
    wanted = set(names) if names is not None else None
    params = []
    for f in dataclasses.fields(cls):
        if wanted is not None and f.name not in wanted:
            continue
        hint = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f.metadata.get("help", "")
        if default not in ("", None):
            help_text += f" (default: {', '.join(default) if isinstance(default, list) else default})"
        if isinstance(default, list):
            help_text += " Repeat the flag or separate values with commas."
        option = typer.Option(*flag_decls(f, hint), help=help_text, show_default=False)
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[_flag_type(hint), option],
            )
        )
    return params


def _number_or_none(kind: type) -> Callable[[Any], Any]:
    def parse(text: Any) -> Any:
        if not isinstance(text, str):  # the default, already typed
            return text
        if text.strip().lower() == "none":
            return None
        try:
            return kind(text)
        except ValueError:
            raise typer.BadParameter(
                f"{text!r} is not {'an integer' if kind is int else 'a number'} or 'none'"
            ) from None

    return parse


def typed_flag(f: dataclasses.Field[Any], hint: Any) -> inspect.Parameter:
    """A keyword parameter for field ``f`` with its own type and default (``hint``: its resolved type).

    Supported: bool, int, float, str, Literal, and optional int/float (``none`` gives None)
    or optional str (default None). Other types need a hand-written option.
    """
    names, help_text = flag_decls(f, hint), f.metadata.get("help", "")
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1
    inner = args[0] if optional else hint
    if optional and inner in (int, float):
        metavar = f"{'INTEGER' if inner is int else 'FLOAT'}|none"
        option = typer.Option(*names, parser=_number_or_none(inner), metavar=metavar, help=help_text)
    elif (optional and inner is str and f.default is None) or (
        hint in (bool, int, float, str) or typing.get_origin(hint) is typing.Literal
    ):
        option = typer.Option(*names, help=help_text)
    else:
        raise TypeError(f"{f.name}: no command-line form for {hint!r}")
    return inspect.Parameter(
        f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=Annotated[hint, option]
    )


def given_options(ctx: Any) -> set[str]:
    """Names of the parameters the command line (or the environment) set, not left at their defaults."""
    given = set()
    for name in ctx.params:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            given.add(name)
    return given


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
