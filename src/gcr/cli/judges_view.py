"""Terminal table of the independent judges' figures in a benchmark summary (``gcr bench --judge``)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text


def _ci(figure: dict[str, Any] | None) -> str:
    if not figure or figure.get("mean") is None:
        return "–"
    if figure.get("ci_low") is None:
        return f"{figure['mean']:+.3f}"
    return f"{figure['mean']:+.3f} [{figure['ci_low']:+.3f}, {figure['ci_high']:+.3f}]"


def _share(figure: dict[str, Any] | None) -> str:
    if not figure or figure.get("rate") is None:
        return "–"
    return f"{figure['rate']:.0%} of {figure['n']}"


def render_judges(console: Console, summary: dict[str, Any]) -> None:
    """Each judge's gain next to the critic's, their agreement, and the suspected reward hacking."""
    figures = summary.get("judges")
    if figures:
        # One plain line per judge (specs are long URLs): never cut, whatever the terminal's width.
        console.print(Text("Independent judges (scores 0-1)", style="bold"))
        for j in figures["judges"]:
            console.print(
                Text(
                    f"  {j['spec']}: gain {_ci(j['gain'])} · critic {_ci(j['critic_gain'])} on the same "
                    f"{j['n']} prompt(s) · agrees with critic {_share(j['agreement'])} · suspected hacking "
                    f"{j['suspected_reward_hacking']['count']} · failed {j['failed']['count']}"
                ),
                soft_wrap=True,
            )
        hacked = figures["suspected_reward_hacking"]
        if hacked["count"]:
            console.print(
                Text(
                    f"suspected reward hacking (critic up, a judge down): {hacked['count']} prompt(s): "
                    + ", ".join(hacked["ids"]),
                    style="yellow",
                ),
                soft_wrap=True,
            )
    veto = summary.get("veto")
    if veto:
        console.print(
            Text(
                f"veto judge {veto['judge']}: {veto['checks']} check(s), {veto['vetoed']} vetoed, "
                f"{veto['failed']} failed"
            ),
            soft_wrap=True,
        )
