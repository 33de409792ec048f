"""Terminal rendering of a refine run: a live table of rounds and the review prompt."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.prompt import Prompt
from rich.table import Table
from rich.text import Text

from gcr.cli.console import panel
from gcr.errors import InputError

_SHORT = {
    "text_faithfulness": "TF",
    "image_faithfulness": "IF",
    "physical_quality": "PQ",
    "text_rendering": "TR",
}


class RoundTable:
    """Keeps one row per round up to date from the graph's stream events.

    In a terminal the rows are a live table. When the console is not a terminal (a
    pipe, a log file) a live table cannot redraw, so each finished step is printed
    instead as one plain line, and nothing is drawn when the run ends.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.rows: dict[int, dict[str, Any]] = {}
        self.header = ""
        self.footer: Text | None = None
        self.live: Live | None = None
        self.lines = not console.is_terminal

    # -- event intake ----------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        self._update(event)
        if self.lines:
            line = self.line(event)
            if line is not None:
                self.console.print(line, highlight=False)
        elif self.live is not None:
            self.live.update(self.render())

    def _update(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "run_started":
            self.header = (
                f"{event['task']} · {event['candidates']} candidate(s) per round · {event['run_dir']}"
            )
        elif kind == "round_started":
            self.rows[event["round"]] = {
                "prompt": event["prompt"],
                "origin": event["prompt_origin"],
                "done": 0,
                "total": len(event["seeds"]),
                "status": "generating",
            }
        elif kind in ("candidate_scored", "candidate_skipped"):
            row = self._row(event["round"])
            row["done"] = row.get("done", 0) + 1
            row["status"] = "critiquing"
        elif kind == "round_finished":
            row = self._row(event["round"])
            row.update(
                prompt=event["prompt"],
                status="done",
                rewards=event["rewards"],
                best=event["best_reward"],
                scores=event["best_scores"],
                new_best=event["new_best"],
                seconds=event["elapsed_s"],
            )
        elif kind == "refined":
            note = "next prompt proposed" if event["accepted"] else f"proposal turned down: {event['reason']}"
            self._row(event["round"])["note"] = note
        elif kind == "reviewed":
            self._row(event["round"])["note"] = f"reviewed: {event['action']}"
        elif kind == "stopped":
            self.footer = Text.assemble(("stopped: ", "bold"), f"{event['reason']} — {event['detail']}")

    def line(self, event: dict[str, Any]) -> Text | None:
        """The one-line account of ``event`` printed when the console is not a terminal."""
        kind = event["type"]
        if kind == "run_started":
            return Text(self.header)
        if kind == "round_started":
            count = len(event["seeds"])
            return Text(f"round {event['round']}: generating {count} image(s) for: {event['prompt']}")
        if kind == "round_finished":
            row = self.rows[event["round"]]
            mark = " (new best)" if row["new_best"] else ""
            return Text(
                f"round {event['round']} done: rewards {_rewards(row['rewards'])} · best {row['best']:.3f}"
                f"{mark} · {_scores(row['scores'])} · {row['seconds']:.1f} s"
            )
        if kind in ("refined", "reviewed"):
            return Text(f"round {event['round']}: {self.rows[event['round']]['note']}")
        if kind == "stopped":
            return self.footer
        return None

    def preload(self, trajectory: list[dict[str, Any]]) -> None:
        """Show the rounds a resumed run already finished (lines of trajectory.jsonl)."""
        for line in trajectory:
            self.rows[line["round"]] = {
                "prompt": line["prompt"],
                "status": "done",
                "rewards": line["rewards"],
                "best": line["best_reward"],
                "scores": line["best_scores"],
                "new_best": line["new_best"],
                "seconds": line["elapsed_s"],
                "note": "before the resume",
            }

    def _row(self, index: int) -> dict[str, Any]:
        return self.rows.setdefault(index, {"prompt": "", "status": "", "done": 0, "total": 0})

    # -- rendering -------------------------------------------------------------------
    def render(self) -> Group:
        table = Table(title=self.header or None, expand=False)
        table.add_column("round", justify="right")
        table.add_column("prompt", max_width=60, overflow="fold")
        table.add_column("rewards", justify="right")
        table.add_column("best", justify="right")
        table.add_column("scores (best)")
        table.add_column("s", justify="right")
        for index in sorted(self.rows):
            row = self.rows[index]
            if row.get("status") != "done":
                status = f"{row.get('status', '')} {row.get('done', 0)}/{row.get('total', 0)}"
                table.add_row(str(index), Text(row["prompt"]), status, "", "", "")
                continue
            rewards = _rewards(row["rewards"])
            best = Text(f"{row['best']:.3f}", style="bold green" if row["new_best"] else "")
            scores = _scores(row["scores"])
            prompt = Text(row["prompt"])
            if row.get("note"):
                prompt.append(f"\n{row['note']}", style="dim")
            table.add_row(str(index), prompt, rewards, best, scores, f"{row['seconds']:.1f}")
        parts: list[Any] = [table]
        if self.footer is not None:
            parts.append(self.footer)
        return Group(*parts)

    def __enter__(self) -> RoundTable:
        if self.lines:
            return self
        self.live = Live(self.render(), console=self.console, refresh_per_second=4, transient=False)
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self.render())
            self.live.__exit__(None, None, None)
            self.live = None


def _rewards(rewards: list[float | None]) -> str:
    return " ".join("skip" if r is None else f"{r:.3f}" for r in rewards)


def _scores(scores: dict[str, float | None]) -> str:
    return " ".join(f"{_SHORT.get(k, k)} {'N/A' if v is None else f'{v:g}'}" for k, v in scores.items())


def prompt_diff_text(before: str, after: str) -> Text:
    """The prompt diff for the terminal: removed text struck through in red, added text in green."""
    from gcr.agent.report import diff_prompts

    styles = {"same": "", "del": "strike red", "ins": "bold green"}
    out = Text()
    for kind, text in diff_prompts(before, after):
        out.append(text, style=styles[kind])
    return out


def ask_review(console: Console, table: RoundTable | None, request: dict[str, Any]) -> dict[str, Any]:
    """Show the proposed prompt and ask to accept, edit or reject it."""
    live = table.live if table is not None else None
    if live is not None:
        live.stop()
    try:
        body = Group(
            Text(f"best reward this round: {request['best_reward']:.3f}"),
            Text("next prompt (changes against the current one):", style="bold"),
            prompt_diff_text(request["current_prompt"], request["next_prompt"]),
            *(
                [Text(f"the refiner's proposal was turned down: {request['reason']}", style="yellow")]
                if not request["accepted_by_guard"]
                else []
            ),
            *([Text("this prompt was already tried", style="yellow")] if not request["is_new"] else []),
        )
        console.print(panel(body, title=f"review after round {request['round']}", title_align="left"))
        try:
            choice = Prompt.ask(
                Text("[a]ccept, [e]dit or [r]eject"), choices=["a", "e", "r"], default="a", console=console
            )
            if choice == "e":
                text = Prompt.ask("new prompt", default=request["next_prompt"], console=console)
                return {"action": "edit", "prompt": text}
        except EOFError:
            raise InputError(
                "--interactive needs answers on standard input, which is closed; the run waits for the "
                "review: resume it in a terminal"
            ) from None
        return {"action": "accept" if choice == "a" else "reject"}
    finally:
        if live is not None:
            live.start()
