"""RLConfig: upstream defaults, YAML round trip, overrides, and clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gcr.errors import ConfigError
from gcr.training.rl.config import RewardConfig, RLConfig, field_help
from gcr.typed_config import apply_overrides

REPO = Path(__file__).resolve().parents[3]


def test_defaults_follow_the_upstream_recipe() -> None:
    cfg = RLConfig()
    assert (cfg.lora_rank, cfg.lora_alpha, cfg.lora_init) == (32, 64.0, "gaussian")
    assert (cfg.resolution, cfg.group_size, cfg.num_inference_steps) == (512, 8, 15)
    assert (cfg.beta, cfg.kl_weight, cfg.adv_clip_max, cfg.advantage_eps) == (1.0, 1e-4, 5.0, 1e-4)
    assert (cfg.old_decay_rate, cfg.old_decay_max) == (0.001, 0.5)
    assert (cfg.safeguard_std, cfg.safeguard_mean) == (0.05, 0.9)
    assert (cfg.max_grad_norm, cfg.adam_beta1, cfg.adam_beta2, cfg.adam_weight_decay) == (
        1.0,
        0.9,
        0.999,
        1e-4,
    )
    assert cfg.learning_rate is None  # the family's: 2e-4 FLUX Kontext, 3e-4 Qwen-Image-Edit
    assert cfg.mixed_precision == "auto" and cfg.seed == 42


def test_every_field_has_help_text() -> None:
    for cls in (RLConfig, RewardConfig):
        helps = field_help(cls)
        assert set(helps) == {f.name for f in dataclasses.fields(cls)}
        assert all(len(text) > 10 for text in helps.values()), [k for k, v in helps.items() if len(v) <= 10]


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = RLConfig(
        pretrained_model="some/model",
        train_prompts="p.jsonl",
        rewards=[
            RewardConfig(
                name="critic",
                critic="http://127.0.0.1:8000/v1",
                critic_model="rr",
                dimensions={"text_faithfulness": 2.0, "physical_quality": 1.0},
                weight=0.7,
            ),
            RewardConfig(name="bright", function="gcr.training.rl.rewards:brightness", weight=0.3),
        ],
        learning_rate=3e-4,
        lora_target_modules=["attn.to_q", "attn.to_k"],
        eval_prompts=None,
    )
    path = tmp_path / "run.yaml"
    cfg.to_yaml(path)
    again = RLConfig.from_yaml(path)
    assert again == cfg
    assert isinstance(again.rewards[0], RewardConfig)
    assert again.rewards[0].dimensions == {"text_faithfulness": 2.0, "physical_quality": 1.0}


def test_overrides_parse_types_and_reach_into_lists(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "pretrained_model: m\ntrain_prompts: p.jsonl\n"
        "rewards:\n  - {name: b, function: 'gcr.training.rl.rewards:brightness'}\n",
        encoding="utf-8",
    )
    cfg = RLConfig.from_yaml(
        path,
        [
            "learning_rate=2e-4",  # YAML 1.1 reads this as a string; the float field converts it
            "rewards.0.weight=0.5",
            "lora_target_modules=[attn.to_q, attn.to_v]",
            "gradient_checkpointing=false",
            "eval_prompts=held.jsonl",
            "num_epochs=3",
        ],
    )
    assert cfg.learning_rate == pytest.approx(2e-4)
    assert cfg.rewards[0].weight == 0.5
    assert cfg.lora_target_modules == ["attn.to_q", "attn.to_v"]
    assert cfg.gradient_checkpointing is False
    assert cfg.eval_prompts == "held.jsonl"
    assert cfg.num_epochs == 3


def test_apply_overrides_leaves_the_input_alone() -> None:
    data = {"rewards": [{"name": "a", "weight": 1.0}]}
    out = apply_overrides(data, ["rewards.0.weight=3"])
    assert out["rewards"][0]["weight"] == 3
    assert data["rewards"][0]["weight"] == 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["learnig_rate=1e-4"], "did you mean 'learning_rate'"),
        (["num_epochs=many"], "num_epochs in "),
        (["group_size=1"], "group_size must be at least 2"),
        (["timestep_fraction=1.5"], "timestep_fraction must be in (0, 1]"),
        (["rewards.3.weight=1"], "not an index of a list of 1"),
        (["noequals"], "must look like key=value"),
        (["mixed_precision=fp8"], "mixed_precision must be one of"),
        (["gradient_checkpointing=maybe"], "must be true or false"),
    ],
)
def test_bad_values_name_the_setting(tmp_path: Path, overrides: list[str], message: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "rewards:\n  - {name: b, function: 'gcr.training.rl.rewards:brightness'}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        RLConfig.from_yaml(path, overrides)
    assert message in str(info.value)


def test_reward_entries_are_checked() -> None:
    with pytest.raises(ConfigError, match="exactly one of `function` or `critic`"):
        RewardConfig(name="x")
    with pytest.raises(ConfigError, match="exactly one of `function` or `critic`"):
        RewardConfig(name="x", function="a:b", critic="http://h/v1")
    with pytest.raises(ConfigError, match=r"'package\.module:attribute'"):
        RewardConfig(name="x", function="gcr.training.rl.rewards.brightness")
    with pytest.raises(ConfigError, match="`dimensions` and `critic_model` apply to a `critic` reward"):
        RewardConfig(name="x", function="a:b", dimensions={"text_faithfulness": 1.0})
    with pytest.raises(ConfigError, match="reward names must be unique"):
        RLConfig(rewards=[RewardConfig(name="x", function="a:b"), RewardConfig(name="x", function="a:c")])


def test_runnable_needs_model_prompts_and_a_reward(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pretrained_model"):
        RLConfig().check_runnable()
    with pytest.raises(ConfigError, match="train_prompts"):
        RLConfig(pretrained_model="m").check_runnable()
    with pytest.raises(ConfigError, match="at least one reward"):
        RLConfig(pretrained_model="m", train_prompts="p").check_runnable()


def test_missing_or_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        RLConfig.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping of settings"):
        RLConfig.from_yaml(bad)


def test_example_config_loads() -> None:
    cfg = RLConfig.from_yaml(REPO / "examples" / "rl_flux_kontext.yaml")
    cfg.check_runnable()
    assert cfg.family in ("auto", "flux-kontext")
    assert cfg.learning_rate == pytest.approx(2e-4)
    assert cfg.rewards[0].critic is not None
