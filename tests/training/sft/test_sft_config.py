"""SFTRunConfig: one dataclass for YAML, CLI flags and Python; upstream defaults; clear errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gcr.cli.app import app
from gcr.errors import ConfigError
from gcr.training.sft.config import SFTRunConfig

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
REQUIRED = {"model": "m", "dataset": "d", "output_dir": "o"}


def test_defaults_are_the_upstream_settings() -> None:
    cfg = SFTRunConfig(**REQUIRED)
    assert cfg.finetune == "full"
    assert cfg.freeze_vision_tower and cfg.freeze_projector
    assert (cfg.learning_rate, cfg.num_train_epochs, cfg.lr_scheduler_type, cfg.warmup_ratio) == (
        1e-5,
        3.0,
        "cosine",
        0.05,
    )
    assert cfg.bf16 and cfg.max_image_pixels == 802_816 and cfg.max_length == 32_768
    for f in dataclasses.fields(SFTRunConfig):
        assert f.metadata.get("help"), f"{f.name} has no help text"


def test_example_yaml_matches_the_documented_defaults() -> None:
    raw = yaml.safe_load((EXAMPLES / "sft_qwen3vl.yaml").read_text())
    cfg = SFTRunConfig.from_yaml(EXAMPLES / "sft_qwen3vl.yaml")
    defaults = SFTRunConfig(**REQUIRED)
    for key in raw:
        if key not in REQUIRED:
            assert getattr(cfg, key) == getattr(defaults, key), key
    assert cfg.model == "Qwen/Qwen3-VL-8B-Instruct"


def test_yaml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "model: a\ndataset: b\noutput_dir: c\nlearning_rate: 2e-5\nnum_train_epochs: 1\n"
        "lora_target_modules: q_proj\nsave_total_limit: null\n"
    )
    cfg = SFTRunConfig.from_yaml(path, finetune="lora", learning_rate=None)
    assert cfg.learning_rate == 2e-5 and isinstance(cfg.num_train_epochs, float)
    assert cfg.lora_target_modules == ["q_proj"] and cfg.save_total_limit is None
    assert cfg.finetune == "lora"
    cfg.to_yaml(tmp_path / "out.yaml")
    assert SFTRunConfig.from_yaml(tmp_path / "out.yaml") == cfg


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model: a\ndataset: b\noutput_dir: c\nlerning_rate: 1\n", "unknown setting.*lerning_rate"),
        ("model: a\ndataset: b\noutput_dir: c\nbf16: maybe\n", "bf16 .* must be true or false"),
        ("model: a\ndataset: b\noutput_dir: c\nfinetune: qlora\n", "finetune must be one of full, lora"),
        ("model: a\ndataset: b\n", "output_dir is required"),
        ("model: a\ndataset: b\noutput_dir: c\nmax_length: 0\n", "max_length must be at least 1"),
        ("- a\n- b\n", "must hold a mapping"),
        ("model: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_configs_say_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        SFTRunConfig.from_yaml(path)


def test_cli_flags_override_the_file() -> None:
    result = CliRunner().invoke(
        app,
        [
            "train",
            "sft",
            str(EXAMPLES / "sft_qwen3vl.yaml"),
            "--dry-run",
            "--finetune",
            "lora",
            "--learning-rate",
            "0.0001",
            "--no-freeze-projector",
            "--lora-target-modules",
            "q_proj,v_proj",
            "--lora-target-modules",
            "o_proj",
            "--output-dir",
            "elsewhere",
        ],
    )
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.stdout)
    assert cfg["finetune"] == "lora" and cfg["learning_rate"] == 1e-4
    assert cfg["freeze_projector"] is False and cfg["freeze_vision_tower"] is True
    assert cfg["lora_target_modules"] == ["q_proj", "v_proj", "o_proj"]
    assert cfg["output_dir"] == "elsewhere" and cfg["num_train_epochs"] == 3.0


def test_cli_without_required_settings_fails_cleanly() -> None:
    result = CliRunner().invoke(app, ["train", "sft", "--dry-run"])
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert "model is required" in str(result.exception)


def test_accelerate_configs_load() -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    for name in ("multi_gpu", "deepspeed_zero2", "deepspeed_zero3"):
        cfg = load_config_from_file(str(EXAMPLES / "accelerate" / f"{name}.yaml"))
        assert cfg.num_processes == 8 and cfg.mixed_precision == "bf16"
        if name.startswith("deepspeed"):
            assert cfg.deepspeed_config["zero_stage"] == int(name[-1])
