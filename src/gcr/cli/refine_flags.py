"""The refine settings on the command line, made from :class:`~gcr.agent.context.RefineContext`.

``gcr refine`` and ``gcr bench`` do not declare their refine-setting flags: every
field of ``RefineContext`` becomes an option with the field's type, default and
help text (:func:`gcr.cli.dataclass_flags.typed_flag`, the generator the training
commands use too; the metadata may name the flags, see :func:`gcr.agent.context._help`).
Optional numbers take ``none`` to switch a rule off (``--target none``). Two
options set several fields at once: ``--size`` (``width``, ``height``) and
``--reward`` (``dimensions``, ``weights``); ``run_dir`` is the commands' ``--out``.

``--config FILE`` (YAML or JSON, keys are the field names) loads settings through
the same typed loader (:mod:`gcr.typed_config`); flags given on the command line
win over the file. ``python -m gcr.cli.refine_flags`` prints the settings table
of docs/agent.md, which a test keeps equal to this module's output.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from gcr.agent.context import RefineContext
from gcr.cli.dataclass_flags import flag_decls, typed_flag
from gcr.errors import InputError
from gcr.typed_config import read_config_file, typed_fields

#: Options that set several refine settings at once, and the settings each sets.
COMBINED_OPTIONS: dict[str, tuple[str, ...]] = {
    "size": ("width", "height"),
    "reward": ("dimensions", "weights"),
}
#: The option that names a settings file.
CONFIG_OPTION = "config"


def _fields() -> list[dataclasses.Field[Any]]:
    return list(dataclasses.fields(RefineContext))


def flag_names(f: dataclasses.Field[Any]) -> tuple[str, ...]:
    """The option names of field ``f`` (``()`` when another option sets it)."""
    if f.metadata.get("set_by"):
        return ()
    return flag_decls(f, typing.get_type_hints(RefineContext)[f.name])


def settings_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per refine-setting option, in field order, then ``--config``."""
    hints = typing.get_type_hints(RefineContext)
    params: list[inspect.Parameter] = []
    combined_done: set[str] = set()
    for f in _fields():
        set_by = f.metadata.get("set_by")
        if set_by is None:
            try:
                params.append(typed_flag(f, hints[f.name]))
            except TypeError as exc:
                raise TypeError(f"RefineContext.{exc}; give the field set_by metadata") from None
            continue
        name = set_by.lstrip("-")
        if name in COMBINED_OPTIONS and name not in combined_done:
            combined_done.add(name)
            params.append(_combined(name))
    config_help = (
        "Refine settings from a YAML or JSON file (keys: the settings in docs/agent.md); "
        "flags given on the command line win over it."
    )
    params.append(
        _keyword(CONFIG_OPTION, Annotated[Path | None, typer.Option("--config", help=config_help)], None)
    )
    return params


def _combined(name: str) -> inspect.Parameter:
    if name == "size":
        option = typer.Option(
            "--size", help="Image size WIDTHxHEIGHT, or N for a square (sets width and height)."
        )
        return _keyword("size", Annotated[str | None, option], None)
    option = typer.Option(
        "--reward",
        help="Dimensions and weights of the reward, e.g. 'tf=2,pq=1' (sets dimensions and weights; "
        "all: every dimension, equal weights).",
    )
    return _keyword("reward", Annotated[str, option], "all")


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def context_from_options(options: Mapping[str, Any], given: Collection[str]) -> RefineContext:
    """The refine settings: the ``--config`` file, then the flags given (they win).

    Each source is type-checked on its own, so an error names the file or the command line.
    """
    config = options.get(CONFIG_OPTION)
    data: dict[str, Any] = {}
    if config is not None:
        data.update(typed_fields(RefineContext, read_config_file(config), str(config)))
    flags = {f.name: options[f.name] for f in _fields() if f.name in given and f.name in options}
    if "size" in given and options.get("size") is not None:
        from gcr.cli.generate import parse_size

        flags["width"], flags["height"] = parse_size(options["size"])
    if "reward" in given:
        from gcr.critic.scoring import RewardSpec

        spec = RewardSpec.parse(options["reward"])
        flags["dimensions"] = None if spec.dimensions is None else [d.value for d in spec.selected]
        flags["weights"] = None if spec.weights is None else {d.value: spec.weight(d) for d in spec.selected}
    data.update(typed_fields(RefineContext, flags, "the command line"))
    source = f"{config} and the command line" if config is not None else "the command line"
    context = RefineContext.from_dict(data, source)
    _check_reward(context, source)
    return context


def _check_reward(context: RefineContext, source: str) -> None:
    """A reward selection from a file is checked now, not when the first critique is scored."""
    from gcr.errors import ConfigError

    try:
        context.reward_spec()
    except (ConfigError, ValueError) as exc:
        raise InputError(f"dimensions/weights in {source}: {exc}") from None


# -- the docs table ------------------------------------------------------------------------


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if value == "":
        return '""'
    return str(value)


def settings_table() -> str:
    """The Markdown table of refine settings: key, flags, default, meaning (docs/agent.md)."""
    rows = ["| setting | flag | default | meaning |", "| --- | --- | --- | --- |"]
    for f in _fields():
        set_by = f.metadata.get("set_by")
        names = (set_by,) if set_by else flag_names(f)
        flags = ", ".join(f"`{n}`" for n in names)
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        meaning = f.metadata.get("help", "").replace("|", "\\|")
        rows.append(f"| `{f.name}` | {flags} | `{_shown(default)}` | {meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # pragma: no cover - a maintainer's helper: regenerate the docs table
    sys.stdout.write(settings_table())
