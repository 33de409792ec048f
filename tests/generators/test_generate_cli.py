"""``gcr generate`` writes the images with a JSON sidecar of the parameters, and refuses bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gen_helpers import source_image
from PIL import Image
from typer.testing import CliRunner

from gcr.cli.app import COMMAND_MODULES, app
from gcr.cli.generate import parse_extra, parse_size
from gcr.errors import ConfigError, ImageError, InputError
from stubs.images_server import StubImagesServer


def _run(*args: str):
    return CliRunner().invoke(app, ["generate", *args])


def test_generate_is_registered() -> None:
    assert "generate" in COMMAND_MODULES


def test_text_to_image_writes_pngs_and_sidecars(tiny_pipeline_dir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _run(
        "a red cat",
        "--model",
        str(tiny_pipeline_dir("flux")),
        "--size",
        "48x32",
        "--steps",
        "2",
        "--num-images",
        "2",
        "--seed",
        "5",
        "--guidance",
        "2.0",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == ["a-red-cat-seed5.png", "a-red-cat-seed6.png"]
    for png, seed in zip(pngs, (5, 6), strict=True):
        with Image.open(png) as img:
            assert img.size == (48, 32)
        record = json.loads(png.with_suffix(".json").read_text())
        assert record["seed"] == seed and record["image"] == png.name
        assert (record["width"], record["height"], record["steps"], record["guidance"]) == (48, 32, 2, 2.0)
        assert record["family"] == "flux-dev" and record["model_id"] == str(tiny_pipeline_dir("flux"))
        assert record["prompt"] == "a red cat" and "generate_s" in record["timings"]
    assert str(pngs[0]) in result.stdout


def test_a_second_run_does_not_overwrite(tiny_pipeline_dir, tmp_path: Path) -> None:
    args = (
        "a red cat",
        "-m",
        str(tiny_pipeline_dir("sd")),
        "--size",
        "32",
        "--steps",
        "1",
        "-o",
        str(tmp_path),
    )
    assert _run(*args).exit_code == 0
    assert _run(*args).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a-red-cat-seed0-2.json",
        "a-red-cat-seed0-2.png",
        "a-red-cat-seed0.json",
        "a-red-cat-seed0.png",
    ]


def test_editing_reads_the_source_image_and_records_its_path(tiny_pipeline_dir, tmp_path: Path) -> None:
    src = tmp_path / "src.png"
    source_image(3, (40, 32)).save(src)
    out = tmp_path / "out"
    result = _run(
        "make it blue",
        "-m",
        str(tiny_pipeline_dir("flux-kontext")),
        "--image",
        str(src),
        "--steps",
        "2",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    (png,) = out.glob("*.png")
    record = json.loads(png.with_suffix(".json").read_text())
    assert record["source_paths"] == [str(src)] and record["task"] == "edit"
    assert (record["width"], record["height"]) == (40, 32)  # no size: the output follows the source


def test_the_openai_images_generator_is_reachable_from_the_cli(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GCR_CLI_KEY", "k")
    with StubImagesServer() as stub:
        result = _run(
            "a red cat",
            "-g",
            "openai-images",
            "-m",
            "stub",
            "--base-url",
            stub.base_url,
            "--api-key-env",
            "GCR_CLI_KEY",
            "--size",
            "24x16",
            "-o",
            str(tmp_path),
        )
    assert result.exit_code == 0, result.output
    (png,) = tmp_path.glob("*.png")
    assert json.loads(png.with_suffix(".json").read_text())["endpoint"] == "images.generate"


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (["--size", "big"], InputError, "write WIDTHxHEIGHT"),
        (["--size", "-32x32"], InputError, "width must be a positive number of pixels, got -32"),
        (["--size", "33x32"], InputError, "width 33 is not a multiple of 8"),
        (["--num-images", "0"], InputError, "num_images must be at least 1"),
        (["--image", "/no/such/source.png"], ImageError, "image file not found"),
        (["--extra", "oops"], InputError, "write KEY=VALUE"),
        (["--base-url", "http://x/v1"], ConfigError, "--base-url does not apply to the diffusers generator"),
    ],
)
def test_bad_input_is_refused_with_its_message(
    args, error, message, tiny_pipeline_dir, tmp_path: Path
) -> None:
    result = _run("a red cat", "-m", str(tiny_pipeline_dir("sd")), "-o", str(tmp_path), *args)
    assert isinstance(result.exception, error), result.output
    assert message in str(result.exception)
    assert not list(tmp_path.glob("*.png"))


def test_empty_prompt_and_unknown_model_are_refused(tmp_path: Path) -> None:
    assert "the prompt is empty" in str(_run(" ", "-m", "flux-dev", "-o", str(tmp_path)).exception)
    assert "unknown model 'nonsense'" in str(_run("a cat", "-m", "nonsense", "-o", str(tmp_path)).exception)


def test_size_and_extra_parsing() -> None:
    assert parse_size("1024x768") == (1024, 768)
    assert parse_size("512") == (512, 512)
    assert parse_size(None) == (None, None)
    assert parse_extra(["true_cfg_scale=4.0", "style=vivid", "ids=[1, 2]"]) == {
        "true_cfg_scale": 4.0,
        "style": "vivid",
        "ids": [1, 2],
    }
