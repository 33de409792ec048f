"""``gcr train rl CONFIG.yaml``: end to end on a tiny FLUX pipeline, with a callable and a served critic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gcr.cli.app import app
from gcr.errors import ConfigError

runner = CliRunner()


def _write_run(tmp_path: Path, flux_dir: Path, reward: dict, **extra: object) -> Path:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        json.dumps({"prompt": "a red cat"}) + "\n" + json.dumps({"prompt": "a blue cup"}) + "\n"
    )
    settings = {
        "pretrained_model": str(flux_dir),
        "train_prompts": str(prompts),
        "output_dir": str(tmp_path / "out"),
        "rewards": [reward],
        "resolution": 16,
        "num_inference_steps": 2,
        "group_size": 3,
        "prompts_per_epoch": 1,
        "num_epochs": 1,
        "max_sequence_length": 16,
        "lora_rank": 4,
        "lora_alpha": 8,
        "eval_every": 0,
        "log_with": [],
        **extra,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def test_one_step_with_a_callable_reward(flux_dir: Path, tmp_path: Path) -> None:
    run = _write_run(tmp_path, flux_dir, {"name": "bright", "function": "gcr.training.rl.rewards:brightness"})
    result = runner.invoke(app, ["train", "rl", str(run), "--override", "learning_rate=1e-3"])
    assert result.exit_code == 0, result.output
    assert "optimizer steps" in result.output and "LoRA" in result.output
    assert (tmp_path / "out" / "lora" / "pytorch_lora_weights.safetensors").is_file()
    state = json.loads((tmp_path / "out" / "checkpoint-1" / "trainer_state.json").read_text())
    assert state["global_step"] == 1
    assert state["config"]["learning_rate"] == pytest.approx(1e-3)


def test_one_step_with_a_served_critic(flux_dir: Path, tmp_path: Path, critic_stub) -> None:
    from stubs.critic_server import GOOD_T2I_ANSWER, StubReply

    critic_stub.default = StubReply.ok(GOOD_T2I_ANSWER)
    critic_stub.enqueue(
        "I cannot judge this image.", "Still nothing to parse."
    )  # first sample: answer + re-ask
    reward = {
        "name": "critic",
        "critic": critic_stub.url,
        "critic_model": "stub-critic",
        "max_concurrency": 1,
    }
    run = _write_run(tmp_path, flux_dir, reward)
    result = runner.invoke(app, ["train", "rl", str(run)])
    assert result.exit_code == 0, result.output
    chats = critic_stub.chat_requests
    assert len(chats) == 4  # three samples, one of them asked twice
    assert all(
        len(r.image_urls()) == 1 and r.image_urls()[0].startswith("data:image/png;base64,") for r in chats
    )
    assert "a red cat" in chats[0].user_text() or "a blue cup" in chats[0].user_text()
    table = result.output
    assert "failed reward samples" in table
    assert "│ 1" in table.split("failed reward samples")[1].splitlines()[0]
    assert (tmp_path / "out" / "lora" / "pytorch_lora_weights.safetensors").is_file()


def test_print_config_applies_overrides(flux_dir: Path, tmp_path: Path) -> None:
    run = _write_run(tmp_path, flux_dir, {"name": "bright", "function": "gcr.training.rl.rewards:brightness"})
    result = runner.invoke(app, ["train", "rl", str(run), "-o", "rewards.0.weight=0.25", "--print-config"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["rewards"][0]["weight"] == 0.25 and printed["resolution"] == 16
    assert not (tmp_path / "out").exists()


def test_bad_override_is_a_config_error(flux_dir: Path, tmp_path: Path) -> None:
    run = _write_run(tmp_path, flux_dir, {"name": "bright", "function": "gcr.training.rl.rewards:brightness"})
    result = runner.invoke(app, ["train", "rl", str(run), "-o", "lora_rnak=8"])
    assert isinstance(result.exception, ConfigError)
    assert "did you mean 'lora_rank'" in str(result.exception)
