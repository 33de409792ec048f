"""``gcr dev make-tiny`` writes tiny models that load like real checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoModelForImageTextToText, AutoProcessor
from typer.testing import CliRunner

from gcr.cli.app import app
from gcr.cli.dev import _parse_only, saved_parameter_count
from gcr.dev.tiny_critic import count_parameters
from gcr.errors import InputError


def test_make_tiny_critic_writes_a_loadable_critic(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dev", "make-tiny", str(tmp_path), "--only", "critic", "--seed", "1"])
    assert result.exit_code == 0, result.output
    critic = tmp_path / "critic"
    assert [p.name for p in tmp_path.iterdir()] == ["critic"]  # nothing else was built
    model = AutoModelForImageTextToText.from_pretrained(critic)
    assert AutoProcessor.from_pretrained(critic).tokenizer.convert_tokens_to_ids("<|image_pad|>") == (
        model.config.image_token_id
    )
    n = count_parameters(model)
    assert saved_parameter_count(critic) == n
    assert "critic" in result.output and f"{n:,}" in result.output


def test_make_tiny_refuses_unknown_kinds(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dev", "make-tiny", str(tmp_path), "--only", "critic,dalle"])
    assert isinstance(result.exception, InputError)
    assert "choose from critic, sd, flux, flux-kontext, instruct-pix2pix" in str(result.exception)
    assert not (tmp_path / "critic").exists()  # checked before building anything


def test_only_parses_lists_and_defaults_to_everything() -> None:
    assert _parse_only(None) == ["critic", "sd", "flux", "flux-kontext", "instruct-pix2pix"]
    assert _parse_only(" SD, critic,sd ") == ["sd", "critic"]
    with pytest.raises(InputError):
        _parse_only(" , ")
