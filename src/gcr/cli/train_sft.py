"""``gcr train sft``: fine-tune a critic on a PARROT dataset with TRL.

::

    gcr train sft examples/sft_qwen3vl.yaml --dataset work/dataset --output-dir critic/

The flags are made from :class:`~gcr.training.sft.config.SFTRunConfig`
(:mod:`gcr.cli.dataclass_flags`): a flag, a YAML key and a Python keyword are the
same setting with the same help text; flags win over the YAML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gcr.cli.console import console, err_console, plain
from gcr.cli.dataclass_flags import dataclass_flags, fixed_param, flag_overrides, with_signature
from gcr.cli.train_view import kv_table, print_json
from gcr.training.sft.config import SFTRunConfig


def _sft(*, config: Path | None = None, dry_run: bool = False, **flags: Any) -> None:
    """Fine-tune a critic on a PARROT dataset with TRL (settings: YAML, then flags)."""
    settings = SFTRunConfig.from_yaml(config, **flag_overrides(SFTRunConfig, flags))
    if dry_run:
        print_json(settings.to_dict())
        return
    from gcr.training.sft.trainer import run_sft

    err_console.print(
        plain("training ", (str(settings.model), "bold"), f" ({settings.finetune}) on {settings.dataset}")
    )
    result = run_sft(settings).to_dict()
    rows = [
        ("model folder", result["output_dir"]),
        ("steps", result["global_step"]),
        (
            "first / last loss",
            " / ".join(f"{x:.4f}" for x in result["train_losses"][:1] + result["train_losses"][-1:]),
        ),
    ]
    evaluation = result.get("eval") or {}
    if evaluation.get("error"):
        rows.append(("val pairwise accuracy", f"not measured: {evaluation['error']}"))
    overall = evaluation.get("overall") or {}
    if overall:
        acc = overall.get("accuracy")
        rows.append(("val pairwise accuracy", "n/a" if acc is None else f"{acc:.1%}"))
        rows.append(("val pairs evaluated / failed", f"{overall.get('evaluated')} / {overall.get('failed')}"))
    console.print(kv_table("SFT", rows))
    console.print(plain("load it as a critic with ", (f"--critic {result['output_dir']}", "bold")))


def register(train_app: typer.Typer) -> None:
    """Add ``sft`` to ``gcr train``."""
    fixed = [
        fixed_param(
            "config",
            Annotated[Path | None, typer.Argument(help="YAML config (see examples/sft_qwen3vl.yaml).")],
            None,
        ),
        fixed_param(
            "dry_run",
            Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and stop.")],
            False,
        ),
    ]
    command = with_signature(_sft, fixed, dataclass_flags(SFTRunConfig))
    train_app.command("sft", help=_sft.__doc__)(command)
