"""``gcr doctor``: what this machine can run, and what to do about each missing piece."""

from __future__ import annotations

import json

import typer
from rich.table import Table
from rich.text import Text

from gcr.cli.console import console

_MARK = {True: ("ok", "green"), False: ("missing", "red"), None: ("info", "yellow")}


def doctor_command(
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON (for scripts)."),
) -> None:
    """Check torch and CUDA, GPU memory against the default models' needs, bf16, vLLM, hub access
    (HF_HUB_OFFLINE respected; otherwise one probe with a 3 s timeout), cache disk and extras.

    Exits 0 when the default models can run here and 1 when they cannot, so a script can
    check before it starts a long job.
    """
    from gcr import doctor

    diagnosis = doctor.diagnose(probe=doctor.probe_hub)
    if as_json:
        console.out(json.dumps(diagnosis.to_dict(), indent=2), highlight=False)
        raise typer.Exit(0 if diagnosis.defaults_ok else 1)
    table = Table(title="gcr doctor", title_justify="left")
    for name in ("check", "status", "detail", "what to do"):
        table.add_column(name)
    for check in diagnosis.checks:
        label, style = _MARK[check.ok]
        table.add_row(Text(check.name), Text(label, style=style), Text(check.detail), Text(check.fix))
    console.print(table)
    if diagnosis.defaults_ok:
        console.print(Text("the default models can run here", style="green"))
    else:
        console.print(Text.assemble(("the default models cannot run here. ", "yellow"), doctor.WAYS_FORWARD))
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor_command)
