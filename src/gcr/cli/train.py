"""``gcr train``: the training command group (PARROT critic making, SFT, diffusion RL).

Each training family registers its commands from its own module listed in
``TRAIN_MODULES``; each exposes ``register(train_app: typer.Typer) -> None``.
"""

from __future__ import annotations

import importlib

import typer

train_app = typer.Typer(
    name="train",
    help="Train critics (PARROT, SFT) and fine-tune generators with critic rewards (RL).",
    no_args_is_help=True,
)

#: Modules under ``gcr.cli`` that add ``gcr train ...`` commands.
TRAIN_MODULES: tuple[str, ...] = ("train_parrot", "train_sft", "train_rl")

for _name in TRAIN_MODULES:
    importlib.import_module(f"gcr.cli.{_name}").register(train_app)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
