"""``gcr serve mcp``: run gcr as an MCP server (stdio for desktop clients, streamable HTTP for services).

The collaborators come from the same ``GCR_*`` environment variables as the
LangGraph server (see :mod:`gcr.agent.app`); a flag given here wins over its
variable. Over stdio the protocol owns stdout, so everything this command says
goes to stderr.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from gcr.cli.console import err_console
from gcr.errors import DependencyError, InputError

TRANSPORTS = ("stdio", "streamable-http")


def mcp_command(
    transport: str = typer.Option("stdio", "--transport", "-t", help="stdio or streamable-http."),
    host: str = typer.Option("127.0.0.1", "--host", help="streamable-http: address to bind."),
    port: int = typer.Option(8765, "--port", help="streamable-http: port (the endpoint is /mcp)."),
    generator: str | None = typer.Option(
        None, "--generator", "-g", help="Generator model id/folder/family [env GCR_GENERATOR]."
    ),
    generator_kind: str | None = typer.Option(
        None, "--generator-kind", help="Generator from the registry [env GCR_GENERATOR_KIND; diffusers]."
    ),
    critic: str | None = typer.Option(
        None, "--critic", help="Critic server URL, folder or Hub id [env GCR_CRITIC; released model]."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Model name on the critic server [env GCR_CRITIC_MODEL]."
    ),
    task: str | None = typer.Option(None, "--task", help="t2i or edit: picks default models [env GCR_TASK]."),
    device: str | None = typer.Option(None, "--device", help="Generator device (auto, cpu, cuda, mps)."),
    dtype: str | None = typer.Option(None, "--dtype", help="Generator dtype (auto, float32, bfloat16)."),
    offload: bool = typer.Option(False, "--offload", help="Model CPU offload for the generator."),
    runs_dir: Path | None = typer.Option(
        None, "--runs-dir", help="Where run folders and images go [env GCR_RUNS_DIR; ./gcr-runs]."
    ),
    image_root: list[Path] = typer.Option(
        [], "--image-root", help="Only read image paths under this folder (repeat for several)."
    ),
    preload: bool = typer.Option(False, "--preload", help="Load the models at start, not on the first call."),
) -> None:
    """Serve refine_image, critique_image and generate_image to MCP clients until stopped."""
    from gcr.agent.app import spec_from_env

    if transport not in TRANSPORTS:
        raise InputError(f"--transport must be one of {', '.join(TRANSPORTS)} (got {transport!r})")
    try:
        from gcr.serve.mcp_server import create_server
        from gcr.serve.models import SharedModels
    except ImportError as exc:
        if "mcp" not in str(exc):
            raise
        raise DependencyError("mcp", "mcp", "gcr serve mcp") from exc

    spec, env_task = spec_from_env()
    overrides = {"generator": generator, "generator_kind": generator_kind, "critic": critic,
                 "critic_model": model}  # fmt: skip
    for name, value in overrides.items():
        if value is not None:
            setattr(spec, name, value)
    options = {"device": device, "dtype": dtype, "offload": offload or None}
    spec.generator_options = {k: v for k, v in options.items() if v is not None}
    roots = list(image_root) or None
    if roots is None and transport != "stdio":
        # Over the network, callers must not read the server's files: only its own runs folder.
        roots = [runs_dir or Path(os.environ.get("GCR_RUNS_DIR") or "gcr-runs")]
    # A server says what it loads; the root logger (set by `gcr -v`) decides what is shown.
    logging.getLogger("gcr").setLevel(min(logging.INFO, logging.getLogger().getEffectiveLevel()))
    server = create_server(
        SharedModels(spec, task or env_task),
        runs_dir=runs_dir,
        image_roots=roots,
        preload=preload,
    )
    where = "stdin/stdout" if transport == "stdio" else f"http://{host}:{port}/mcp"
    err_console.print(f"gcr MCP server on {where}", highlight=False, markup=False)
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port)
