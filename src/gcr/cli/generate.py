"""``gcr generate``: make or edit images with any registered generator, saved with their parameters."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from gcr.cli.console import console, err_console
from gcr.cli.progress import progress_display
from gcr.errors import ConfigError, InputError

# Options that only some generators take, by the keyword each built-in expects.
_GENERATOR_OPTIONS: dict[str, frozenset[str]] = {
    "diffusers": frozenset({"family", "device", "dtype", "offload", "loras", "edit_longest_edge"}),
    "openai-images": frozenset({"task", "base_url", "api_key_env"}),
}
_OPTION_FLAGS = {
    "family": "--family",
    "device": "--device",
    "dtype": "--dtype",
    "offload": "--offload",
    "loras": "--lora",
    "edit_longest_edge": "--longest-edge",
    "base_url": "--base-url",
    "api_key_env": "--api-key-env",
}


def parse_size(text: str | None) -> tuple[int | None, int | None]:
    """``"WxH"`` (or ``"N"`` for a square) as ``(width, height)``; signs are checked by the request."""
    if text is None:
        return None, None
    match = re.fullmatch(r"\s*(-?\d+)\s*(?:[xX×]\s*(-?\d+)\s*)?", text)
    if not match:
        raise InputError(f"--size {text!r}: write WIDTHxHEIGHT (e.g. 1024x768) or one number for a square")
    width = int(match.group(1))
    return width, int(match.group(2)) if match.group(2) else width


def parse_extra(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a value that reads as JSON (numbers, true, lists) is used as such."""
    extra: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--extra {item!r}: write KEY=VALUE, e.g. --extra true_cfg_scale=4.0")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        extra[key.strip()] = value
    return extra


def generate(
    prompt: str = typer.Argument(..., help="What to generate, or for an editing model, what to change."),
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="Hugging Face id, local pipeline folder, or family name (flux-dev, flux-kontext, "
        "qwen-image-edit, ...); for --generator openai-images, the model name the server knows.",
    ),
    image: list[Path] = typer.Option(
        [], "--image", "-i", help="Source image to edit (repeat for multi-image editing models)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the first image; image i uses seed + i."),
    steps: int | None = typer.Option(None, "--steps", help="Denoising steps (default: the family's)."),
    guidance: float | None = typer.Option(None, "--guidance", help="Guidance scale (default: the family's)."),
    size: str | None = typer.Option(None, "--size", help="Output size WIDTHxHEIGHT, or N for a square."),
    num_images: int = typer.Option(1, "--num-images", "-n", help="How many images to make."),
    negative: str | None = typer.Option(None, "--negative", help="Negative prompt, if the model takes one."),
    lora: list[str] = typer.Option([], "--lora", help="LoRA to stack: PATH[:SCALE] (repeatable)."),
    family: str | None = typer.Option(None, "--family", help="Override the detected model family preset."),
    device: str | None = typer.Option(None, "--device", help="auto (default), cpu, cuda, cuda:N or mps."),
    dtype: str | None = typer.Option(None, "--dtype", help="auto (default), float32, bfloat16 or float16."),
    offload: bool = typer.Option(False, "--offload", help="Model CPU offload, for GPUs short of memory."),
    longest_edge: int | None = typer.Option(
        None, "--longest-edge", help="Longest edge of source images (default: the family's, 1024)."
    ),
    extra: list[str] = typer.Option(
        [], "--extra", help="Extra pipeline argument KEY=VALUE (repeatable), e.g. true_cfg_scale=4.0."
    ),
    generator: str = typer.Option("diffusers", "--generator", "-g", help="Generator name from the registry."),
    base_url: str | None = typer.Option(None, "--base-url", help="openai-images: server URL (…/v1)."),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="openai-images: environment variable holding the key (OPENAI_API_KEY)."
    ),
    out: Path = typer.Option(Path("gcr-images"), "--out", "-o", help="Folder for the images and their JSON."),
) -> None:
    """Generate or edit images, writing each as PNG with a JSON sidecar of the exact parameters."""
    from gcr.generators.base import GenerationRequest
    from gcr.generators.registry import create_generator
    from gcr.images import load_image

    width, height = parse_size(size)
    sources = [load_image(path) for path in image]
    request = GenerationRequest(
        prompt=prompt,
        negative_prompt=negative,
        seed=seed,
        width=width,
        height=height,
        steps=steps,
        guidance=guidance,
        num_images=num_images,
        source_images=sources,
        extra=parse_extra(extra),
    )
    request.validate()  # what needs no model: fail before any weights load
    set_options: dict[str, Any] = {
        "family": family,
        "device": device,
        "dtype": dtype,
        "offload": offload or None,
        "loras": lora or None,
        "edit_longest_edge": longest_edge,
        "base_url": base_url,
        "api_key_env": api_key_env,
    }
    options = _generator_options(generator, {k: v for k, v in set_options.items() if v is not None}, sources)
    with err_console.status(Text(f"loading {model} (the first use may download weights) ...")):
        gen = create_generator(generator, model, **options)
        if hasattr(gen, "load"):
            gen.load()

    started = time.perf_counter()
    with progress_display(
        err_console,
        "denoising",
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as bar:
        task_id = bar.add_task(f"{num_images} image(s)", total=None)

        def on_step(step: int, total: int) -> None:
            bar.update(task_id, completed=step, total=total)

        generate_kwargs = {"progress": on_step} if _takes_progress(gen) else {}
        result = gen.generate(request, **generate_kwargs)
    written = _write_outputs(result, out, prompt, [str(p) for p in image])
    for path in written:
        console.print(str(path), highlight=False, soft_wrap=True)  # one path per line, never wrapped
    err_console.print(
        f"wrote {len(written)} image(s) to {out} in {time.perf_counter() - started:.1f} s "
        f"(seeds {result.seeds[0]}..{result.seeds[-1]})",
        highlight=False,
    )


def _generator_options(name: str, options: dict[str, Any], sources: list[Any]) -> dict[str, Any]:
    """Keep the options ``name`` takes; an option it does not take is an error, not silently dropped."""
    allowed = _GENERATOR_OPTIONS.get(name.strip().lower())
    if allowed is not None and "task" in allowed:
        options = {**options, "task": "edit" if sources else "t2i"}
    if allowed is None:
        return options  # a plugin: it gets what the user set and may refuse it itself
    unknown = [_OPTION_FLAGS.get(k, k) for k in options if k not in allowed]
    if unknown:
        raise ConfigError(f"{', '.join(unknown)} does not apply to the {name} generator: drop it")
    return options


def _takes_progress(gen: Any) -> bool:
    import inspect

    try:
        return "progress" in inspect.signature(gen.generate).parameters
    except (TypeError, ValueError):
        return False


def _write_outputs(result: Any, out: Path, prompt: str, source_paths: list[str]) -> list[Path]:
    """Save each image as PNG next to a JSON file with how it was made; never overwrite."""
    out.mkdir(parents=True, exist_ok=True)
    stem = _slug(prompt)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    written: list[Path] = []
    for i, img in enumerate(result.images):
        base = f"{stem}-seed{result.seeds[i]}"
        path = out / f"{base}.png"
        n = 2
        while path.exists() or path.with_suffix(".json").exists():
            path = out / f"{base}-{n}.png"
            n += 1
        img.save(path, format="PNG")
        record = {**result.metadata(i), "image": path.name, "source_paths": source_paths, "created": created}
        path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def _slug(text: str, limit: int = 40) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    slug = "-".join(words)[:limit].strip("-")
    return slug or "image"


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
