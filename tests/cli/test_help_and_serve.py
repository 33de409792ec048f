"""Small CLI promises: ``gcr bench --help`` shows the main form and its flags; ``gcr serve critic``
says vLLM is missing before it shows a command it cannot run."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

import gcr.critic.serving as serving
from gcr.cli.app import app, main


@pytest.mark.parametrize("args", [["bench", "--help"], ["bench"]])
def test_bench_help_shows_the_prompts_form_run_flags_and_exit_codes(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "gcr bench PROMPTS [OPTIONS]" in text
    for flag in ("--max-rounds", "--critic", "--concurrency", "--baseline", "--limit", "--out"):
        assert flag in text
    assert "gcr bench merge OUT" in text and "gcr bench list-sets" in text
    assert "Exit codes: 0 every prompt finished; 1 an error stopped the benchmark; 3" in text


def test_serve_critic_without_vllm_says_so_before_any_command(monkeypatch, capsys) -> None:
    monkeypatch.setattr(serving, "find_executable", lambda name: None)
    monkeypatch.setattr(sys, "argv", ["gcr", "serve", "critic", "--model", "org/critic"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: vLLM is not installed here"), err
    assert "starting:" not in err and "vllm serve" not in err


def test_serve_critic_dry_run_without_vllm_notes_it_and_still_prints_the_command(monkeypatch, capsys) -> None:
    monkeypatch.setattr(serving, "find_executable", lambda name: None)
    monkeypatch.setattr(sys, "argv", ["gcr", "serve", "critic", "--model", "org/critic", "--dry-run"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code in (0, None)
    captured = capsys.readouterr()
    assert captured.err.startswith("note: vLLM is not installed here")
    assert captured.out.startswith("vllm serve org/critic ")
