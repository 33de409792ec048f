"""``gcr dev``: developer tools, starting with the tiny offline models the tests use."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from gcr.cli.console import console, err_console
from gcr.errors import InputError

dev_app = typer.Typer(
    name="dev",
    help="Developer tools: tiny random models and a scripted critic server for tests and offline runs.",
    no_args_is_help=True,
)

CRITIC_KIND = "critic"


def _all_kinds() -> tuple[str, ...]:
    from gcr.dev.tiny_pipelines import PIPELINE_KINDS

    return (CRITIC_KIND, *PIPELINE_KINDS)


def _parse_only(only: str | None) -> list[str]:
    known = _all_kinds()
    if only is None:
        return list(known)
    chosen = [k.strip().lower() for k in only.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in known]
    if unknown or not chosen:
        raise InputError(f"--only {only!r}: choose from {', '.join(known)} (comma-separated)")
    return list(dict.fromkeys(chosen))


def saved_parameter_count(folder: Path) -> int:
    """Parameters stored in the safetensors files under ``folder`` (read from headers only)."""
    from safetensors import safe_open

    total = 0
    for file in sorted(folder.rglob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 - safe_open handles are not mappings
                shape = f.get_slice(name).get_shape()
                n = 1
                for dim in shape:
                    n *= dim
                total += n
    return total


def _build(kind: str, path: Path, seed: int) -> Path:
    if kind == CRITIC_KIND:
        from gcr.dev.tiny_critic import build_tiny_critic

        return build_tiny_critic(path, seed=seed)
    from gcr.dev.tiny_pipelines import build_tiny_pipeline

    return build_tiny_pipeline(kind, path, seed=seed)


@dev_app.command("make-tiny")
def make_tiny(
    directory: Path = typer.Argument(..., help="Folder to write into; each model goes to DIR/<kind>."),
    only: str | None = typer.Option(
        None,
        "--only",
        help="Comma-separated kinds: critic, sd, flux, flux-kontext, instruct-pix2pix (default: all).",
    ),
    seed: int = typer.Option(
        0, "--seed", help="Seed of the random weights; the same seed gives the same files."
    ),
) -> None:
    """Build tiny random models (Qwen3-VL critic, diffusers pipelines) that load like real checkpoints."""
    kinds = _parse_only(only)
    table = Table(title=f"Tiny models in {directory}")
    table.add_column("kind")
    table.add_column("path")
    table.add_column("parameters", justify="right")
    table.add_column("seconds", justify="right")
    for kind in kinds:
        target = directory / kind
        with err_console.status(Text(f"building tiny {kind} ...")):
            start = time.perf_counter()
            built = _build(kind, target, seed)
            elapsed = time.perf_counter() - start
        table.add_row(kind, str(built), f"{saved_parameter_count(built):,}", f"{elapsed:.1f}")
    console.print(table)


@dev_app.command("mock-critic")
def mock_critic(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on (0: any free port)."),
) -> None:
    """Serve a scripted critic (not a model) behind an OpenAI-compatible API, until Ctrl-C.

    Its answers follow the RationalRewards critique layout, so gcr reads them as it
    reads a real critic's; its scores follow fixed rules: each new image of a request
    is taken to follow one more round of its advice and gains one wanted detail
    (soft morning light, sharp focus, balanced composition, fine texture), plus a small
    jitter picked by the image's pixels. See gcr.dev.mock_critic for the full rules.
    """
    from gcr.dev.mock_critic import MODEL_NAME, MockCriticServer

    try:
        server = MockCriticServer(host, port)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None
    console.print(
        Text.assemble(
            ("scripted mock critic ready: ", "bold green"), f"--critic {server.url} --model {MODEL_NAME}"
        ),
        highlight=False,
    )
    err_console.print(Text("scores follow fixed rules, not the image; serving until Ctrl-C", style="dim"))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def register(app: typer.Typer) -> None:
    app.add_typer(dev_app, name="dev")
