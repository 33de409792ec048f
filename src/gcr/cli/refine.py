"""``gcr refine``: improve one image over Generate-Critique-Refine rounds, resumably."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from gcr.cli.console import console, err_console, plain
from gcr.errors import GCRError, InputError, RunError

#: Options of :func:`refine_command` that describe one run, not the refine settings (``gcr bench``
#: offers every other option of ``gcr refine``, with the same meaning).
RUN_ONLY_OPTIONS = ("prompt", "image", "out", "resume", "interactive", "as_json")


def check_judges(options: dict[str, Any], context: Any, given: set[str]) -> None:
    """The ``--judge`` specs and the veto settings are checked before any model loads."""
    from gcr.judges.base import parse_judge_spec

    for spec in options.get("judge") or []:
        parse_judge_spec(spec)
    if context.veto_judge is None:
        if "veto_drop" in given or context.veto_drop != 0.0:
            raise InputError("--veto-drop needs --veto-judge (the judge whose score may not drop)")
        return
    parse_judge_spec(context.veto_judge)


def run_spec_from_options(
    options: dict[str, Any],
    given: set[str],
    *,
    prompt: str = "",
    source_images: list[str] | None = None,
) -> Any:
    """The :class:`~gcr.agent.runner.RunSpec` that ``gcr refine``'s (or ``gcr bench``'s) options describe.

    ``given`` names the options set on the command line: they win over ``--config``.
    The refine settings come from :func:`gcr.cli.refine_flags.context_from_options`; the
    rest names the models. Everything is validated before any model loads.
    """
    from gcr.agent.runner import RunSpec
    from gcr.cli.refine_flags import context_from_options

    context = context_from_options(options, given)
    check_judges(options, context, given)
    generator_options = {
        "device": options["device"],
        "dtype": options["dtype"],
        "offload": options["offload"] or None,
    }
    return RunSpec(
        prompt=prompt,
        source_images=list(source_images or []),
        context=context,
        generator=options["generator"],
        generator_kind=options["generator_kind"],
        generator_options={k: v for k, v in generator_options.items() if v is not None},
        critic=options["critic"],
        critic_model=options["model"],
        refiner=options["refiner"],
        refiner_url=options["refiner_url"],
        refiner_model=options["refiner_model"],
        cache_dir=None if options["cache_dir"] is None else str(options["cache_dir"]),
        use_cache=not options["no_cache"],
    )


def _model_options(
    prompt: str | None = typer.Argument(
        None, help="What the image should show (or, with --image, how to edit it).", show_default=False
    ),
    image: list[Path] = typer.Option([], "--image", "-i", help="Source image to edit (makes the task edit)."),
    generator: str | None = typer.Option(
        None,
        "--generator",
        "-g",
        help="Generator model: Hugging Face id, local pipeline folder or family name; default "
        "flux-schnell (t2i) or flux-kontext (edit).",
    ),
    generator_kind: str = typer.Option(
        "diffusers", "--generator-kind", help="Generator from the registry (diffusers, openai-images, ...)."
    ),
    critic: str | None = typer.Option(
        None,
        "--critic",
        help="Critic server URL (http://host:8000/v1), local folder or Hub id; default: the released "
        "RationalRewards-8B checkpoint for the task, loaded in-process.",
    ),
    model: str | None = typer.Option(None, "--model", help="Model name on the critic server."),
    refiner: str = typer.Option("critic", "--refiner", help="critic (its refined request) or llm."),
    refiner_url: str | None = typer.Option(None, "--refiner-url", help="llm refiner: server URL (…/v1)."),
    refiner_model: str | None = typer.Option(None, "--refiner-model", help="llm refiner: model name."),
) -> None:
    """The options before the refine settings: the inputs and the models (signature only)."""


def _run_options(
    device: str | None = typer.Option(None, "--device", help="Generator device (auto, cpu, cuda, mps)."),
    dtype: str | None = typer.Option(None, "--dtype", help="Generator dtype (auto, float32, bfloat16)."),
    offload: bool = typer.Option(False, "--offload", help="Model CPU offload for the generator."),
    judge: list[str] = typer.Option(
        [],
        "--judge",
        help="Independent judge (KIND:TARGET,..., see docs/judges.md) that re-scores the round-0 and final "
        "best images; repeatable.",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run folder to create (default: a new folder under ./gcr-runs)."
    ),
    resume: Path | None = typer.Option(None, "--resume", help="Continue the run in this folder."),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Cache of images and critiques (default: ~/.cache/gcr/artifacts)."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the cache."),
    as_json: bool = typer.Option(False, "--json", help="Print summary.json instead of the live table."),
) -> None:
    """The options after the refine settings: placement, judges, the run folder, output (signature only)."""


def refine_command(ctx: typer.Context, **options: Any) -> None:
    """Generate, critique and refine until the stopping rules say stop; keep the best image."""
    from gcr.agent.run_folder import RunFolder
    from gcr.agent.runner import RunSpec
    from gcr.cli.dataclass_flags import given_options

    given = given_options(ctx)
    prompt, image, resume = options["prompt"], options["image"], options["resume"]
    if resume is not None:
        if prompt is not None or image:
            raise InputError("--resume continues a run as it was started: drop the prompt and --image")
        folder = RunFolder(resume)
        spec = RunSpec.load(folder)
        if options["critic"] is not None:  # the server may have moved while the run was stopped
            spec.critic, spec.critic_model = options["critic"], options["model"]
        if options["refiner_url"] is not None:  # likewise; run.json keeps no URL password either
            spec.refiner_url = options["refiner_url"]
        if options["interactive"]:
            spec.context = dataclasses.replace(spec.context, interactive=True)
    else:
        if prompt is None or not prompt.strip():
            raise InputError("the prompt is empty: say what the image should show (or how to edit it)")
        from gcr.images import load_image

        for path in image:
            load_image(path)  # an unreadable source fails now, not after the models load
        spec = run_spec_from_options(
            options, given, prompt=prompt, source_images=[str(p.expanduser().resolve()) for p in image]
        )
        out = options["out"]
        folder = RunFolder(out if out is not None else spec.context.run_dir or _default_run_dir(prompt))
    judges = options["judge"]
    extra = {"judges": list(judges)} if judges else {}
    _run(folder, spec, resume=resume is not None, as_json=options["as_json"], **extra)


def _refine_parameters() -> list[inspect.Parameter]:
    """``ctx``, the inputs and models, the refine settings (from RefineContext), then the run options."""
    from gcr.cli.refine_flags import settings_parameters

    def keyword(func: Any) -> list[inspect.Parameter]:
        params = inspect.signature(func, eval_str=True).parameters.values()
        return [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]

    ctx = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    return [ctx, *keyword(_model_options), *settings_parameters(), *keyword(_run_options)]


refine_command.__signature__ = inspect.Signature(_refine_parameters())  # type: ignore[attr-defined]


def _default_run_dir(prompt: str) -> Path:
    from gcr.agent.context import new_run_dir

    return new_run_dir(prompt, datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))


def load_components(spec: Any) -> Any:
    """Load the run's generator, critic and refiner (a seam tests replace)."""
    from gcr.agent.components import load_components as load

    return load(spec)


def _run(folder: Any, spec: Any, *, resume: bool, as_json: bool, judges: list[str] | None = None) -> None:
    from gcr.agent.graph import build_graph
    from gcr.agent.runner import run_refine
    from gcr.cli.refine_view import RoundTable, ask_review

    if resume and not folder.file(folder.SETTINGS).is_file():
        raise RunError(f"{folder.path} holds no gcr run (run.json is missing)")
    if not resume:  # say so before any model loads
        _check_new_run_folder(folder)
    finished_rounds = folder.read_trajectory() if resume and not as_json else []
    with err_console.status("loading the generator and the critic (the first use may download weights) ..."):
        parts = load_components(spec)
    builder = build_graph(**parts.graph_kwargs())
    table = None if as_json else RoundTable(err_console)
    if table is not None and resume:
        table.preload(finished_rounds)

    def review(request: dict[str, Any]) -> dict[str, Any]:
        return ask_review(err_console, table, request)

    async def go() -> Any:
        try:
            return await run_refine(
                builder,
                folder,
                spec,
                resume=resume,
                on_event=table.on_event if table is not None else None,
                on_review=review,
            )
        finally:
            await parts.aclose()

    try:
        if table is not None:
            with table:
                outcome = asyncio.run(go())
        else:
            outcome = asyncio.run(go())
    except (GCRError, KeyboardInterrupt) as exc:
        if folder.file(folder.CHECKPOINTS).exists() and not isinstance(exc, RunError):
            err_console.print(
                plain(
                    ("the run is saved; continue it with: ", "yellow"), f"gcr refine --resume {folder.path}"
                ),
                highlight=False,
            )
        raise
    verdicts = _judge(folder, spec, outcome.values, judges or [])
    _finish(outcome.values, as_json, verdicts)


def _check_new_run_folder(folder: Any) -> None:
    """A new run goes into a new or empty folder: never over a file, a run, or someone's files."""
    path = folder.path
    if path.exists() and not path.is_dir():
        raise RunError(f"{path} is a file, not a folder: give --out a new (or empty) folder for the run")
    if folder.file(folder.CHECKPOINTS).exists() or folder.file(folder.SETTINGS).exists():
        raise RunError(f"{path} already holds a run; resume it (--resume) or choose another folder")
    if path.is_dir() and any(path.iterdir()):
        raise RunError(f"{path} is not empty and holds no gcr run: give --out a new (or empty) folder")


def _judge(folder: Any, spec: Any, values: dict[str, Any], specs: list[str]) -> list[dict[str, Any]] | None:
    """Re-score the round-0 and final best images with the --judge judges; saved as judges.json."""
    if not specs:
        return None
    from gcr.judges.compare import judge_run
    from gcr.judges.registry import load_judge

    judges = [load_judge(s) for s in specs]

    async def go() -> list[dict[str, Any]]:
        try:
            return await judge_run(values, judges, specs=specs, cache_dir=_cache_root(spec))
        finally:
            for j in judges:
                close = getattr(j, "aclose", None)
                if close is not None:
                    await close()

    with err_console.status("judging the round-0 and final images ..."):
        verdicts = asyncio.run(go())
    path = folder.path / "judges.json"
    path.write_text(json.dumps(verdicts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return verdicts


def _cache_root(spec: Any) -> str | None:
    if not spec.use_cache:
        return None
    from gcr.agent.cache import ArtifactCache

    return str(ArtifactCache(spec.cache_dir).root)


def _finish(values: dict[str, Any], as_json: bool, verdicts: list[dict[str, Any]] | None = None) -> None:
    summary = values.get("summary") or {}
    if verdicts is not None:
        summary = {**summary, "judges": verdicts}
    if as_json:
        console.out(json.dumps(summary, indent=2, ensure_ascii=False), highlight=False)
        return
    best = summary.get("best")
    if summary.get("start_reward") is not None and summary.get("final_reward") is not None:
        err_console.print(
            f"reward {summary['start_reward']:.3f} → {summary['final_reward']:.3f} over "
            f"{summary['rounds']} round(s); report: {Path(summary['run_dir']) / 'report.html'}",
            highlight=False,
        )
    for v in verdicts or []:
        err_console.print(Text(_verdict_line(v)), soft_wrap=True)
    if best is None:
        raise RunError("the run ended without a scored image")
    err_console.print(
        Text.assemble(("best image", "bold"), f" (round {best['round']}, reward {best['reward']:.3f}):")
    )
    console.print(best["image"], highlight=False, soft_wrap=True)


def _verdict_line(v: dict[str, Any]) -> str:
    before, after = v["initial"].get("score"), v["final"].get("score")
    if before is None or after is None:
        failed = v["initial"] if before is None else v["final"]
        return f"judge {v['spec']}: failed ({failed['error'].get('type')}: {failed['error'].get('message')})"
    flag = "  suspected reward hacking (critic up, judge down)" if v["suspected_reward_hacking"] else ""
    gains = f"{after - before:+.3f}; critic {v['critic_gain']:+.3f}"
    return f"judge {v['spec']}: {before:.3f} → {after:.3f} ({gains}){flag}"


def register(app: typer.Typer) -> None:
    app.command("refine")(refine_command)
