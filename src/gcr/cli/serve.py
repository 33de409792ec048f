"""``gcr serve critic``: run the critic as an OpenAI-compatible server (vLLM, or transformers serve).

The command logic lives in :mod:`gcr.critic.serving`; this module parses flags
and shows what happens.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from rich.text import Text

from gcr.cli.console import console, err_console
from gcr.critic.defaults import (
    DEFAULT_MAX_IMAGES_PER_PROMPT,
    DEFAULT_MAX_MODEL_LEN,
    DEFAULT_MAX_PIXELS,
    DEFAULT_PORT,
    default_critic_model,
)
from gcr.task import Task

serve_app = typer.Typer(
    name="serve",
    help="Serve the critic behind an OpenAI-compatible API, or gcr itself to MCP clients.",
    no_args_is_help=True,
)


@serve_app.command(
    "critic",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def critic_command(
    ctx: typer.Context,
    model: str | None = typer.Option(
        None, "--model", "-m", help="Hub id or local folder; default: the released checkpoint for --task."
    ),
    task: str = typer.Option("t2i", "--task", help="Released checkpoint served by default: t2i or edit."),
    backend: str = typer.Option("vllm", "--backend", help="vllm (GPU) or transformers (CPU/any)."),
    served_model_name: str | None = typer.Option(
        None, "--served-model-name", help="Name clients use (vLLM); default: the model's last path part."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 0.0.0.0 for other machines."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port to listen on."),
    tensor_parallel: int | None = typer.Option(
        None, "--tp", "--tensor-parallel-size", help="GPUs per model replica (vLLM); default 1."
    ),
    data_parallel: int | None = typer.Option(
        None, "--dp", "--data-parallel-size", help="Model replicas (vLLM); default: visible GPUs / --tp."
    ),
    max_model_len: int = typer.Option(DEFAULT_MAX_MODEL_LEN, "--max-model-len", help="Context (vLLM)."),
    max_images: int = typer.Option(
        DEFAULT_MAX_IMAGES_PER_PROMPT, "--max-images", help="Images allowed per request (vLLM)."
    ),
    max_pixels: int = typer.Option(
        DEFAULT_MAX_PIXELS, "--max-pixels", help="Pixel budget per image for the vision processor (vLLM)."
    ),
    gpu_memory_utilization: float | None = typer.Option(
        None, "--gpu-memory-utilization", help="Fraction of each GPU's memory vLLM may use."
    ),
    device: str | None = typer.Option(None, "--device", help="transformers server device (cpu, cuda)."),
    dtype: str | None = typer.Option(None, "--dtype", help="Model dtype, e.g. bfloat16 or float32."),
    local_media: Path | None = typer.Option(
        None,
        "--local-media",
        help="Folder (e.g. where your runs go) the server may read images from by file:// URL (vLLM); "
        "clients on this machine then send images under it by path, not by bytes.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the server command and exit."),
    ready_timeout: float = typer.Option(
        900.0, "--ready-timeout", help="Seconds to wait for the server to answer before giving up."
    ),
) -> None:
    """Start the critic server, wait until it answers, and print the URL to pass as --critic.

    Arguments after the options (or after --) go to the server command unchanged.
    """
    from gcr.critic.serving import (
        CriticServer,
        ServeConfig,
        build_command,
        check_backend_available,
        client_image_settings,
        format_command,
    )
    from gcr.errors import GCRError

    config = ServeConfig(
        model=model or default_critic_model(Task.parse(task)),
        backend=backend.strip().lower(),  # type: ignore[arg-type]
        served_model_name=served_model_name,
        host=host,
        port=port,
        tensor_parallel_size=tensor_parallel,
        data_parallel_size=data_parallel,
        max_model_len=max_model_len,
        max_images=max_images,
        max_pixels=max_pixels,
        gpu_memory_utilization=gpu_memory_utilization,
        device=device,
        dtype=dtype,
        local_media_root=local_media,
        extra_args=tuple(ctx.args),
    )
    if dry_run:
        try:
            check_backend_available(config)
        except GCRError as exc:  # the command is still printed: it may be meant for another machine
            err_console.print(Text.assemble(("note: ", "yellow"), f"{exc}"), highlight=False)
        console.out(format_command(build_command(config)), highlight=False)
        return

    check_backend_available(config)  # a missing server program is said before any command is shown
    server = CriticServer(config)
    err_console.print(Text.assemble(("starting: ", "bold"), format_command(server.command)), highlight=False)
    server.start()
    try:
        waiting = f"waiting for the critic server at {server.url} ..."
        with err_console.status(Text(waiting)) as status:
            server.wait_ready(
                timeout=ready_timeout, on_wait=lambda s: status.update(Text(f"{waiting} {s:.0f}s"))
            )
    except BaseException:
        server.stop(grace=10.0)
        raise
    console.print(
        Text.assemble(
            ("critic ready: ", "bold green"),
            f"--critic {server.url} --model {config.model_name}",
        ),
        highlight=False,
    )
    settings = client_image_settings(config)
    if settings:
        lines = " ".join(f"{k}={shlex.quote(v)}" for k, v in settings.items())
        err_console.print(
            Text.assemble(
                "this server applies the pixel budget itself; for the fastest image transport set ",
                (f"export {lines}", "bold"),
                " in the shell that runs gcr",
            ),
            highlight=False,
        )
    err_console.print(Text("serving until Ctrl-C", style="dim"))
    code = server.wait()
    if code not in (0, -2, -15, 130, 143):
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    from gcr.cli.serve_mcp import mcp_command

    serve_app.command("mcp")(mcp_command)
    app.add_typer(serve_app, name="serve")
