"""``gcr critique IMAGE --prompt TEXT``: one structured critique (or an A/B comparison) on the terminal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from gcr.cli.console import console, err_console, panel, plain
from gcr.critic.defaults import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_S
from gcr.critic.schema import Critique, PairwiseCritique
from gcr.errors import InputError
from gcr.task import Task


def _score(value: float | None) -> str:
    return "N/A" if value is None else f"{value:g}"


def critique_command(
    image: Path = typer.Argument(..., help="The generated (or edited) image to judge.", show_default=False),
    prompt: str = typer.Option(..., "--prompt", "-p", help="The request the image was made for."),
    source: list[Path] = typer.Option(
        [], "--source", "-s", help="Source image of an edit (repeat for several); makes the task edit."
    ),
    against: Path | None = typer.Option(
        None, "--against", help="A second candidate: compare IMAGE (A) with it (B) instead."
    ),
    critic: str | None = typer.Option(
        None,
        "--critic",
        help="Server URL (http://host:8000/v1), local folder or Hub id; default: the released "
        "RationalRewards checkpoint for the task, loaded in-process.",
    ),
    model: str | None = typer.Option(None, "--model", help="Model name on the critic server."),
    task: str | None = typer.Option(None, "--task", help="t2i or edit; default: edit if --source is given."),
    template: Path | None = typer.Option(None, "--template", help="Your own prompt template file."),
    max_tokens: int = typer.Option(2048, "--max-tokens", help="Most tokens the critic may write."),
    temperature: float = typer.Option(0.1, "--temperature", help="Sampling temperature."),
    timeout: float = typer.Option(DEFAULT_TIMEOUT_S, "--timeout", help="Seconds per request to a server."),
    retries: int = typer.Option(
        DEFAULT_MAX_RETRIES, "--retries", help="Retries of failed server requests (with backoff)."
    ),
    reward: str = typer.Option(
        "all", "--reward", help="Dimensions and weights of the reward, e.g. 'tf=2,pq=1' (default: all equal)."
    ),
    device: str | None = typer.Option(None, "--device", help="Device of an in-process critic (cpu, cuda)."),
    dtype: str | None = typer.Option(None, "--dtype", help="Dtype of an in-process critic."),
    as_json: bool = typer.Option(False, "--json", help="Print the critique as JSON (the gcr schema)."),
) -> None:
    """Judge IMAGE for --prompt with the critic and show scores, reasons and a refined request."""
    from gcr.critic.backends.base import SamplingParams
    from gcr.critic.loading import is_server_url, load_critic
    from gcr.critic.scoring import RewardSpec, normalized_reward
    from gcr.images import load_image

    if not prompt.strip():
        raise InputError("--prompt is empty: give the request the image was made for")
    resolved = Task.parse(task) if task is not None else (Task.EDIT if source else Task.T2I)
    if max_tokens < 1:
        raise InputError(f"--max-tokens must be at least 1, got {max_tokens}")
    if temperature < 0:
        raise InputError(f"--temperature must be 0 or more, got {temperature}")
    spec = RewardSpec.parse(reward)
    candidate = load_image(image)
    other = load_image(against) if against is not None else None
    sources = [load_image(p) for p in source]
    mode = "pairwise" if other is not None else "pointwise"

    local = critic is None or not is_server_url(critic)
    if critic is None:  # the released 8B checkpoint: refuse before downloading what cannot run here
        from gcr import doctor

        plan = doctor.DefaultsPlan(resolved, None, doctor.default_critic_model(resolved), device=device)
        doctor.check_default_models(plan, probe=doctor.probe_hub)
    with err_console.status(Text("loading the critic ..." if local else f"connecting to {critic} ...")):
        loaded = load_critic(
            critic,
            model=model,
            task=resolved,
            sampling=SamplingParams(temperature=temperature, max_tokens=max_tokens),
            templates={(mode, resolved): template} if template is not None else None,
            timeout=timeout,
            max_retries=retries,
            **({"device": device, "dtype": dtype} if local else {}),
        )

    async def ask() -> Critique | PairwiseCritique:
        async with loaded:
            if other is not None:
                return await loaded.acompare(prompt, candidate, other, sources=sources, task=resolved)
            return await loaded.acritique(prompt, candidate, sources=sources, task=resolved)

    with err_console.status(Text(f"critiquing with {loaded.model_id} ...")):
        result = asyncio.run(ask())

    if as_json:
        console.out(result.model_dump_json(indent=2), highlight=False)
    elif isinstance(result, PairwiseCritique):
        _show_pairwise(result, image, against, loaded.model_id)
    else:
        _show_pointwise(result, image, loaded.model_id, lambda c: normalized_reward(c, spec))


def _show_pointwise(
    critique: Critique, image: Path, model_id: str, reward: Callable[[Critique], float]
) -> None:
    from gcr.errors import RewardError

    table = Table(title=f"{image.name} · {critique.task.value} · {model_id}", show_lines=True)
    table.add_column("Dimension", style="bold", no_wrap=True)
    table.add_column("Score", justify="right", no_wrap=True)
    table.add_column("Justification")
    for j in critique.judgements:
        table.add_row(j.dimension.header, _score(j.score), j.justification)
    console.print(table)
    try:
        console.print(Text.assemble(("Normalized reward: ", "bold"), f"{reward(critique):.3f}"))
    except RewardError as exc:
        console.print(Text.assemble(("Normalized reward: ", "bold"), ("n/a ", "yellow"), f"({exc})"))
    if critique.summary:
        console.print(Text.assemble(("Summary: ", "bold"), critique.summary))
    if critique.refinement_comments:
        console.print(Text.assemble(("Refinement comments: ", "bold"), critique.refinement_comments))
    if critique.refined_request:
        console.print(panel(critique.refined_request, title="Refined request", title_align="left"))
    _show_warnings(critique.warnings, critique.truncated)


def _show_pairwise(result: PairwiseCritique, image: Path, against: Path | None, model_id: str) -> None:
    name_b = against.name if against is not None else "B"
    title = f"A = {image.name} vs B = {name_b} · {result.task.value} · {model_id}"
    table = Table(title=title, show_lines=True)
    table.add_column("Dimension", style="bold", no_wrap=True)
    table.add_column("Score A", justify="right", no_wrap=True)
    table.add_column("Score B", justify="right", no_wrap=True)
    table.add_column("Winner", justify="center", no_wrap=True)
    table.add_column("Justification")
    for j in result.judgements:
        winner = j.winner or "N/A"
        table.add_row(j.dimension.header, _score(j.score_a), _score(j.score_b), winner, j.justification)
    console.print(table)
    total_a, total_b = result.totals()
    preference = result.preference()
    names = {"A": image.name, "B": name_b}
    verdict = "tie" if preference == "tie" else f"{preference} ({names[preference]})"
    console.print(
        Text.assemble(("Overall preference: ", "bold"), verdict, f"  (totals A {total_a:g} · B {total_b:g})")
    )
    if result.summary:
        console.print(Text.assemble(("Summary: ", "bold"), result.summary))
    _show_warnings(result.warnings, result.truncated)


def _show_warnings(warnings: list[str], truncated: bool) -> None:
    if truncated:
        err_console.print(plain(("the answer was cut off; raise --max-tokens to get it whole", "yellow")))
    for w in warnings:
        err_console.print(plain(("warning: ", "yellow"), w), highlight=False)


def register(app: typer.Typer) -> None:
    app.command("critique")(critique_command)
