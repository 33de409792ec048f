"""``gcr train rl CONFIG.yaml``: fine-tune a diffusion model with critic rewards (DiffusionNFT).

::

    gcr train rl examples/rl_flux_kontext.yaml
    gcr train rl run.yaml --override learning_rate=1e-4 --override rewards.0.weight=0.5
    gcr train rl run.yaml --print-config          # the resolved settings, nothing run
    accelerate launch -m gcr train rl run.yaml    # data parallel over the visible GPUs

Settings are the fields of :class:`gcr.training.rl.config.RLConfig`; every one can
be overridden with ``--override key=value`` (dotted keys reach into lists).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import typer
from rich.table import Table

from gcr.cli.console import console, err_console, plain


def register(train_app: typer.Typer) -> None:
    train_app.command("rl")(rl)


def rl(
    config: Path = typer.Argument(
        ..., help="YAML file with the run's settings (see examples/rl_flux_kontext.yaml)."
    ),
    override: list[str] = typer.Option(
        [],
        "--override",
        "-o",
        help="Change one setting: key=value, e.g. learning_rate=1e-4 or rewards.0.weight=2 (repeatable).",
    ),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved settings and exit."),
) -> None:
    """Fine-tune a flow-matching diffusion model with LoRA (DiffusionNFT), with critic or callable rewards."""
    from gcr.training.rl.config import RLConfig

    cfg = RLConfig.from_yaml(config, override)
    if print_config:
        console.out(cfg.to_yaml(), end="", highlight=False)
        return
    cfg.check_runnable()
    rl_logger = logging.getLogger("gcr.training.rl")
    if rl_logger.getEffectiveLevel() > logging.INFO:
        rl_logger.setLevel(logging.INFO)  # per-epoch progress lines are the point of a training run

    from gcr.training.rl.trainer import DiffusionNFTTrainer

    trainer = DiffusionNFTTrainer(cfg)
    err_console.print(
        plain(
            ("DiffusionNFT", "bold"),
            f" {trainer.family.name} · {len(trainer.train_records)} prompts · "
            f"{cfg.num_epochs} epochs · output {cfg.output_dir}",
        )
    )
    result = trainer.train()
    if not trainer.accelerator.is_main_process:
        return
    table = Table(title="RL run", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("epochs", str(result.epochs))
    table.add_row("optimizer steps", str(result.global_step))
    if result.history:
        first, last = result.history[0], result.history[-1]
        table.add_row(
            "reward (first → last epoch)", f"{_fmt(first['reward/mean'])} → {_fmt(last['reward/mean'])}"
        )
        failed = sum(int(h.get("reward/failed_samples", 0)) for h in result.history)
        table.add_row("failed reward samples", str(failed))
    if result.evaluations:
        first_eval = result.evaluations[0]["eval/reward/mean"]
        last_eval = result.evaluations[-1]["eval/reward/mean"]
        table.add_row("eval reward (first → last)", f"{_fmt(first_eval)} → {_fmt(last_eval)}")
    table.add_row("LoRA", str(result.lora_dir))
    console.print(table)


def _fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"
