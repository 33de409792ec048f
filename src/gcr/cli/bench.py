"""``gcr bench``: run the refine loop over a prompt set and report what refinement adds.

* ``gcr bench PROMPTS [refine flags] [--baseline best-of-n] [--concurrency N] [--limit N] [--out DIR]``
  (also ``gcr bench run ...``): every flag ``gcr refine`` has for its settings and
  models is accepted here with the same meaning, because the definitions are
  ``gcr refine``'s own (read from its signature, not copied).
* ``gcr bench merge OUT``: build ``summary.json`` and ``report.html`` from a folder
  (for example after the shards of ``accelerate launch -m gcr bench ...``).
* ``gcr bench list-sets``: the built-in prompt sets.

Rerun the same command to continue an interrupted benchmark: finished prompts
are skipped and unfinished ones resume from their checkpoints.

Exit codes: 0 every prompt finished; 1 an error stopped the benchmark before or
during the run (nothing is reported as done that was not); 3 the benchmark ran to
the end but some prompts failed (listed in the report; rerun to retry).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from pathlib import Path
from typing import Any

import click
import typer
from rich.text import Text
from typer.core import TyperGroup

from gcr.cli.console import console, err_console, plain
from gcr.cli.refine import RUN_ONLY_OPTIONS, refine_command

#: ``gcr bench`` exit codes (explained in ``gcr bench --help``, the module docstring and docs/bench.md).
EXIT_OK, EXIT_ERROR, EXIT_FAILED_PROMPTS = 0, 1, 3


class _DefaultRunGroup(TyperGroup):
    """A group whose first argument, when it is not a subcommand, goes to ``run`` (``gcr bench FILE``).

    ``gcr bench`` and ``gcr bench --help`` show the help of that main form, with every run flag.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args in (["--help"], ["-h"]):
            args = ["run", "--help"]
        elif args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


bench_app = typer.Typer(
    name="bench",
    cls=_DefaultRunGroup,
    help="Refine every prompt of a prompt set, pipelined and resumably, and report the gains.",
    no_args_is_help=True,
)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "default"


def default_out(set_name: str, generator: str | None) -> Path:
    return Path("gcr-bench") / f"{_slug(set_name)}-{_slug(Path(generator).name if generator else 'default')}"


def load_components(spec: Any, task: Any) -> Any:
    """Load the generator, critic and refiner (a seam tests replace)."""
    from gcr.bench.pipeline import default_loader

    return default_loader(spec, task)


def run_command(**options: Any) -> None:
    """Refine every prompt of PROMPTS (a file, a folder of edit cases, or builtin:NAME) and report.

    Usage: gcr bench PROMPTS [OPTIONS] (or gcr bench run PROMPTS [OPTIONS]).

    Every gcr refine flag below means what it means there. Rerun the same command to continue.

    Also: gcr bench merge OUT (a report from a folder), gcr bench list-sets (built-in sets).

    Exit codes: 0 every prompt finished; 1 an error stopped the benchmark; 3 it finished with failed prompts.
    """
    from gcr.bench.folder import BenchFolder
    from gcr.bench.pipeline import BenchSettings
    from gcr.bench.prompt_files import load_prompt_set
    from gcr.bench.shard import parse_shard, shard_from_env
    from gcr.cli.dataclass_flags import given_options
    from gcr.cli.refine import run_spec_from_options

    given = given_options(options.pop("ctx"))
    prompt_set = load_prompt_set(options.pop("prompts"))
    judge_specs = list(options.get("judge") or [])
    shard = parse_shard(options["shard"]) if options["shard"] else shard_from_env()
    settings = BenchSettings(
        concurrency=options["concurrency"],
        in_flight=options["in_flight"],
        limit=options["limit"],
        baseline=options["baseline"],
        shard=shard,
    )
    # The template (no prompt) gcr refine builds from the same flags, through the same function.
    template = run_spec_from_options(options, given)
    judges = _load_judges(judge_specs, prompt_set.task)  # a bad judge fails now, not after the benchmark
    folder = BenchFolder(options["out"] or default_out(prompt_set.name, template.generator))
    quiet = options["as_json"] or shard.local_rank != 0
    if not quiet:
        scope = len(prompt_set.head(settings.limit))
        where = f" · shard {shard.rank + 1} of {shard.world_size}" if shard.sharded else ""
        err_console.print(
            plain(
                (prompt_set.name, "bold"),
                f" · {scope} of {len(prompt_set)} prompts · {prompt_set.task.value}{where} · results in "
                f"{folder.path}",
            ),
            highlight=False,
        )
    from gcr.cli.bench_view import BenchProgress

    progress = BenchProgress(err_console, disable=quiet)
    outcome = asyncio.run(_run(prompt_set, template, folder, settings, progress))
    complete = outcome.complete
    if judge_specs:
        _judge(folder, judges, judge_specs, [c.id for c in outcome.shard_cases], shard, template, quiet=quiet)
        # Other shards may still be judging (or may have finished since this one's runs did):
        # the report is written by the shard that sees every prompt finished and judged.
        complete = _finished_and_judged(folder, [c.id for c in outcome.cases], judges, settings.baseline)
    if not (complete or not shard.sharded):
        finished = len(folder.records("results"))
        err_console.print(
            f"shard {shard.label} done; {finished} of {len(outcome.cases)} prompts finished across shards. "
            f"The last shard to finish writes the report (or run: gcr bench merge {folder.path})",
            highlight=False,
        )
        if outcome.failed:
            raise typer.Exit(EXIT_FAILED_PROMPTS)
        return
    summary, report_path = _report(folder, as_json=options["as_json"])
    failed = _failed(summary)
    err_console.print(_summary_line(summary, failed, report_path), highlight=False)
    if failed:
        raise typer.Exit(EXIT_FAILED_PROMPTS)


def _finished_and_judged(folder: Any, case_ids: list[str], judges: list[Any], baseline: str | None) -> bool:
    """Whether every prompt of the benchmark (all shards) has finished, and has a verdict (or a
    recorded failure) from every judge."""
    from gcr.bench.judging import read_judgements

    finished = folder.records("results")
    base = folder.records("baseline") if baseline == "best-of-n" else None
    if not all(finished.get(i, {}).get("status") == "ok" for i in case_ids):
        return False
    if base is not None and not all(base.get(i, {}).get("status") == "ok" for i in case_ids):
        return False
    judged = read_judgements(folder)
    return all((i, judge.identity) in judged for i in case_ids for judge in judges)


def _failed(summary: dict[str, Any]) -> int:
    counts = summary["counts"]
    return int(counts.get("failed") or 0) + int(counts.get("baseline_failed") or 0)


def _summary_line(summary: dict[str, Any], failed: int, report: Path) -> Text:
    """The last line of a benchmark: what finished, what failed, where the report is."""
    text = f"bench: {summary['counts']['finished']} prompt(s) finished"
    if not failed:
        return plain((f"{text}, none failed; report: {report}", "green"))
    return plain(
        (f"{text}, {failed} run(s) failed", "yellow"),
        f" (exit code {EXIT_FAILED_PROMPTS}; rerun the same command to retry them); report: {report}",
    )


async def _run(prompt_set: Any, template: Any, folder: Any, settings: Any, progress: Any) -> Any:
    from gcr.bench.pipeline import run_bench

    started: list[bool] = []

    def on_start(runs: int, reused: int) -> None:
        started.append(True)
        progress.on_start(runs, reused)

    with progress:
        try:
            return await run_bench(
                prompt_set,
                template,
                str(folder.path),
                settings,
                load=load_components,
                on_start=on_start,
                on_result=progress.on_result,
                on_event=progress.on_event,
            )
        except BaseException:
            if started:  # the models loaded and work began; a load error has nothing to continue
                progress.console.print(
                    plain(("finished prompts are saved; rerun the same command to continue", "yellow"))
                )
            raise


def _load_judges(specs: list[str], task: Any) -> list[Any]:
    from gcr.errors import InputError
    from gcr.judges.base import check_judge_task
    from gcr.judges.registry import load_judge

    judges = [load_judge(s) for s in specs]
    for judge in judges:
        check_judge_task(judge, task)
    identities = [j.identity for j in judges]
    if len(set(identities)) != len(identities):
        raise InputError("the same --judge is given twice; give each judge once")
    return judges


def _judge(
    folder: Any, judges: list[Any], specs: list[str], case_ids: list[str], shard: Any, template: Any, *,
    quiet: bool,
) -> None:
    """Re-score this shard's round-0, final and baseline images with every --judge (see gcr.bench.judging)."""
    from gcr.bench.judging import judge_bench

    cache = None
    if template.use_cache:
        from gcr.agent.cache import ArtifactCache

        cache = str(ArtifactCache(template.cache_dir).root)

    async def go() -> Any:
        try:
            return await judge_bench(
                folder, judges, specs=specs, case_ids=case_ids, shard=shard, cache_dir=cache
            )
        finally:
            for j in judges:
                close = getattr(j, "aclose", None)
                if close is not None:
                    await close()

    if quiet:
        outcome = asyncio.run(go())
    else:
        with err_console.status(f"judging {len(case_ids)} prompt(s) with {len(judges)} judge(s) ..."):
            outcome = asyncio.run(go())
    if outcome.failed and not quiet:
        err_console.print(
            plain((
                f"{outcome.failed} judgement(s) failed and are left out of the figures; rerun the same "
                "command to retry them", "yellow",
            )),
            highlight=False,
        )


def _report(folder: Any, *, as_json: bool) -> tuple[dict[str, Any], Path]:
    from gcr.bench.report import write_bench_report
    from gcr.cli.bench_view import render_summary

    summary_path, report_path = write_bench_report(folder)
    summary = json.loads(summary_path.read_text("utf-8"))
    if as_json:
        console.out(json.dumps(summary, indent=2, ensure_ascii=False), highlight=False)
    else:
        render_summary(console, summary, report_path)
    return summary, report_path


def merge_command(
    out: Path = typer.Argument(..., help="The benchmark folder (the --out of gcr bench)."),
    as_json: bool = typer.Option(False, "--json", help="Print summary.json instead of tables."),
) -> None:
    """Build summary.json and report.html from every result in OUT (all shards)."""
    from gcr.bench.folder import BenchFolder

    folder = BenchFolder(out)
    folder.settings()  # a folder that holds no benchmark fails here with a clear message
    summary, report_path = _report(folder, as_json=as_json)
    failed = _failed(summary)
    if failed:
        err_console.print(
            plain(
                (f"{failed} run(s) failed and are left out of the figures", "yellow"),
                f"; rerun the gcr bench command that made {folder.path} to retry them; report: {report_path}",
            ),
            highlight=False,
        )


def list_sets_command() -> None:
    """List the prompt sets that ship with gcr (use them as builtin:NAME)."""
    from rich.table import Table

    from gcr.bench.builtin import BUILTIN_SETS
    from gcr.bench.prompt_files import load_prompt_set

    table = Table(title="Built-in prompt sets", title_justify="left")
    for column in ("name", "task", "prompts", "what it probes"):
        table.add_column(column, justify="right" if column == "prompts" else "left")
    for name, entry in BUILTIN_SETS.items():
        size = len(load_prompt_set(f"builtin:{name}"))
        table.add_row(f"builtin:{name}", entry.task.value, str(size), entry.description)
    console.print(table)


def _bench_parameters() -> list[inspect.Parameter]:
    """``PROMPTS``, then ``gcr refine``'s own option definitions, then the batch options."""
    refine = inspect.signature(refine_command, eval_str=True).parameters
    shared = [p for name, p in refine.items() if name not in RUN_ONLY_OPTIONS]

    def param(name: str, default: Any, annotation: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)

    prompts = param(
        "prompts",
        typer.Argument(
            ...,
            help="Prompt set: .jsonl/.json/.csv/.parquet/.txt file, a folder of edit cases, builtin:NAME, "
            "or a standard benchmark as NAME:PATH (geneval, dpg, t2icompbench, gedit[-en|-cn], imgedit).",
            show_default=False,
        ),
        str,
    )
    own = [
        param(
            "baseline",
            typer.Option(
                "none",
                "--baseline",
                help="best-of-n: also score as many plain generations as refinement used.",
            ),
            str,
        ),
        param(
            "concurrency",
            typer.Option(
                8,
                "--concurrency",
                min=1,
                help="Critic requests in flight at once.",
            ),
            int,
        ),
        param(
            "in_flight",
            typer.Option(
                None,
                "--in-flight",
                min=1,
                help="Prompts refined at once (default: concurrency + 2).",
            ),
            int | None,
        ),
        param("limit", typer.Option(None, "--limit", min=1, help="Only the first N prompts."), int | None),
        param(
            "out",
            typer.Option(
                None,
                "--out",
                "-o",
                help="Benchmark folder (default: gcr-bench/SET-GENERATOR); rerun resumes.",
            ),
            Path | None,
        ),
        param(
            "shard",
            typer.Option(
                None,
                "--shard",
                help="Run shard I of N (I/N); default from RANK/WORLD_SIZE (accelerate launch).",
            ),
            str | None,
        ),
        param("as_json", typer.Option(False, "--json", help="Print summary.json instead of tables."), bool),
    ]
    return [prompts, *[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in shared], *own]


run_command.__signature__ = inspect.Signature(_bench_parameters())  # type: ignore[attr-defined]
bench_app.command("run")(run_command)
bench_app.command("merge")(merge_command)
bench_app.command("list-sets")(list_sets_command)

from gcr.cli.bench_export import register_export  # noqa: E402  (gcr bench export, in its own module)

register_export(bench_app)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
