"""The DiffusionNFT trainer end to end on a tiny FLUX pipeline (CPU)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rl_testkit import FakeCritic, records, tiny_config

from gcr.training.rl.adapters import OLD, TRAINED, adapter_pairs, old_adapter_decay
from gcr.training.rl.advantages import nft_weight
from gcr.training.rl.rewards import CombinedReward, CriticReward, WeightedReward, brightness
from gcr.training.rl.trainer import DiffusionNFTTrainer


def _lora_and_base(transformer: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    lora, base = {}, {}
    for name, p in transformer.named_parameters():
        (lora if ".lora_" in name else base)[name] = p.detach().clone()
    return lora, base


def test_one_epoch_changes_only_the_lora_and_moves_the_old_adapter(flux_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(flux_dir, tmp_path, gradient_checkpointing=True)
    trainer = DiffusionNFTTrainer(cfg, train_prompts=records(2))
    lora_before, base_before = _lora_and_base(trainer.transformer)
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(new) for new, _ in adapter_pairs(trainer.transformer)}
    seen: dict[str, Any] = {}
    train_on = trainer.updater.train_on

    def spy(rollout, cond, adv, epoch):
        seen.update(groups=rollout.prompt_index.numpy(), adv=adv)
        return train_on(rollout, cond, adv, epoch)

    trainer.updater.train_on = spy  # type: ignore[method-assign]
    metrics = trainer.run_epoch(0)

    # Before the epoch's one optimizer step the trained adapter is zero: the policy is the reference, no KL.
    assert metrics["loss/kl"] == 0.0 and metrics["loss/policy"] > 0
    expected = cfg.policy_loss_scale * metrics["loss/policy"] + cfg.kl_weight * metrics["loss/kl"]
    assert metrics["loss"] == pytest.approx(expected, rel=1e-6)
    # One reward (brightness, weight 1): the total is that reward, every sample scored.
    assert metrics["reward/mean"] == pytest.approx(metrics["reward/brightness"])
    assert 0.0 < metrics["reward/mean"] < 1.0 and metrics["reward/failed_samples"] == 0
    assert metrics["reward/std"] > 0 and metrics["advantage/abs_mean"] > 0
    # The advantages trained on are the rewards centred per prompt group, scaled by the epoch's std.
    groups, adv = seen["groups"], seen["adv"]
    assert sorted(np.bincount(groups)) == [4, 4] and adv.mask.all()
    for g in (0, 1):
        assert adv.advantages[groups == g].mean() == pytest.approx(0.0, abs=1e-9)
    rewards = adv.advantages * (adv.global_std + cfg.advantage_eps) + adv.group_mean[groups]
    assert rewards.mean() == pytest.approx(metrics["reward/mean"])
    assert rewards.std() == pytest.approx(adv.global_std) and adv.global_std == metrics["reward/std"]
    np.testing.assert_allclose(adv.nft_weight, nft_weight(adv.advantages, cfg.adv_clip_max))
    assert metrics["advantage/abs_mean"] == pytest.approx(np.abs(adv.advantages).mean())
    assert metrics["grad_norm"] > 0 and metrics["samples/trained"] == 8 and metrics["samples/total"] == 8
    assert trainer.state.global_step == 1
    lora_after, base_after = _lora_and_base(trainer.transformer)
    for name, value in base_before.items():
        assert torch.equal(value, base_after[name]), f"base weight {name} changed"
    trained = [n for n in lora_before if f".{TRAINED}." in n]
    assert any(not torch.equal(lora_before[n], lora_after[n]) for n in trained)
    decay = old_adapter_decay(1)  # one optimizer step so far: d = 0.001
    assert metrics["old_adapter/decay"] == pytest.approx(decay)
    for name in trained:
        old_name = name.replace(f".{TRAINED}.", f".{OLD}.")
        expected = decay * lora_before[old_name] + (1 - decay) * lora_after[name]
        torch.testing.assert_close(lora_after[old_name], expected)


def test_critic_failures_are_excluded_and_counted(flux_dir: Path, tmp_path: Path) -> None:
    critic = FakeCritic(fail=lambda i: i in (1, 6))
    reward = CombinedReward([WeightedReward("critic", 1.0, CriticReward(critic, max_concurrency=4))])
    trainer = DiffusionNFTTrainer(tiny_config(flux_dir, tmp_path), reward=reward, train_prompts=records(2))
    seen: dict[str, Any] = {}
    train_on = trainer.updater.train_on

    def spy(rollout, cond, adv, epoch):
        seen["adv"] = adv
        return train_on(rollout, cond, adv, epoch)

    trainer.updater.train_on = spy  # type: ignore[method-assign]
    metrics = trainer.run_epoch(0)

    assert critic.calls == 8
    assert metrics["reward/failed_samples"] == 2
    assert metrics["reward/critic/failures"] == 2
    assert metrics["failures/critic/CritiqueParseError"] == 2
    assert metrics["samples/trained"] == 6
    # The mean over the six scored samples: the fake's faithfulness follows brightness, quality is 2.5,
    # text rendering N/A; the reward is the normalized mean of the two scored dimensions.
    faithfulness = metrics["reward/critic/text_faithfulness"]
    assert 1.0 < faithfulness < 4.0 and metrics["reward/critic/physical_quality"] == 2.5
    assert metrics["reward/mean"] == pytest.approx(((faithfulness + 2.5) / 2 - 1) / 3)
    adv = seen["adv"]
    assert adv.failed_samples == 2
    np.testing.assert_array_equal(adv.mask, [True, False, True, True, True, True, False, True])
    assert adv.advantages[1] == 0.0 and adv.advantages[6] == 0.0


def test_an_epoch_where_nothing_could_be_scored_stops_the_run(flux_dir: Path, tmp_path: Path) -> None:
    from gcr.errors import RewardError

    critic = FakeCritic(fail=lambda i: True)
    reward = CombinedReward([WeightedReward("critic", 1.0, CriticReward(critic))])
    trainer = DiffusionNFTTrainer(tiny_config(flux_dir, tmp_path), reward=reward, train_prompts=records(2))
    with pytest.raises(RewardError, match=r"no sample could be scored \(critic/CritiqueParseError ×8\)"):
        trainer.run_epoch(0)
    assert trainer.state.global_step == 0


def test_saturated_prompts_are_masked_and_dropped(flux_dir: Path, tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def reward(images, prompts, sources):
        seen.append(list(prompts))
        return [
            0.97 if p == "a red cat" else b
            for p, b in zip(prompts, brightness(images, prompts, sources), strict=True)
        ]

    cfg = tiny_config(flux_dir, tmp_path, prompts_per_epoch=2)
    trainer = DiffusionNFTTrainer(cfg, reward=reward, train_prompts=records(3))
    for epoch in range(3):
        metrics = trainer.run_epoch(epoch)
        if "a red cat" in seen[-1]:
            break
    else:
        pytest.fail("the saturated prompt was never drawn")
    assert metrics["groups/saturated"] == 1 and metrics["samples/trained"] == 4
    assert trainer.state.dropped_prompts == ["p0"]
    for later in range(epoch + 1, epoch + 3):
        trainer.run_epoch(later)
        assert "a red cat" not in seen[-1]


def test_brightness_reward_is_learned(flux_dir: Path, tmp_path: Path) -> None:
    """A real learning signal: mean brightness on fixed held-out noise rises clearly.

    The tiny VAE's images are almost uniformly grey (per-image brightness std about 0.004
    at 16 px), so the settings make each update count: β = 0.2 amplifies the step of the
    implied policy (v_θ = v_old + Δ/β) and adv_clip_max = 2 spreads the NFT weights r.
    Measured here over seeds 1, 7, 42, 123 and 2024: +0.007 to +0.015 on the held-out images
    after 8 epochs (seed 42: +0.0145); the training reward of the last epochs beats the first
    ones by +0.003 to +0.010.
    """
    cfg = tiny_config(
        flux_dir,
        tmp_path,
        num_inference_steps=4,
        group_size=16,
        sample_batch_size=32,
        train_batch_size=8,
        timestep_fraction=0.5,
        learning_rate=3e-2,
        gradient_steps_per_epoch=4,
        num_epochs=8,
        beta=0.2,
        adv_clip_max=2.0,
        eval_every=100,
        eval_images_per_prompt=4,
        seed=42,
    )
    result = DiffusionNFTTrainer(cfg, train_prompts=records(4), eval_prompts=records(4)).train()
    before, after = (e["eval/reward/mean"] for e in (result.evaluations[0], result.evaluations[-1]))
    assert len(result.evaluations) == 2 and result.evaluations[0]["eval/samples"] == 16
    assert after - before > 0.005, (before, after)
    rewards = [h["reward/mean"] for h in result.history]
    assert np.mean(rewards[-3:]) > np.mean(rewards[:3]), rewards


@pytest.fixture(scope="module")
def trained_run(tiny_pipeline_dir: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Path]:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("rl-run")
    cfg = tiny_config(
        tiny_pipeline_dir("flux"),
        out,
        num_epochs=2,
        save_every=1,
        checkpoints_total_limit=1,
        eval_every=1,
        learning_rate=5e-2,
        log_with=["tensorboard"],
    )
    trainer = DiffusionNFTTrainer(cfg, train_prompts=records(2), eval_prompts=records(2))
    return trainer, trainer.train(), out


def test_run_writes_checkpoints_lora_and_tensorboard_logs(trained_run: Any) -> None:
    _, result, out = trained_run
    assert (result.epochs, result.global_step) == (2, 2)
    assert [len(result.history), len(result.evaluations)] == [2, 3]  # evals at epochs 0, 1 and the end
    # Epoch 0 trains from the reference (zero adapter: no KL); epoch 1 starts from the moved adapter.
    first, second = result.history
    assert first["loss/kl"] == 0.0 and second["loss/kl"] > 0.0
    assert second["loss"] != first["loss"] and all(h["grad_norm"] > 0 for h in result.history)
    # The evaluations see the policy change: same prompts and noise, other images, other rewards.
    evals = [e["eval/reward/mean"] for e in result.evaluations]
    assert evals[0] != evals[1] and evals[1] != evals[2] and all(0.0 < e < 1.0 for e in evals)
    assert result.lora_dir == out / "lora"
    assert (out / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]  # limit 1 pruned checkpoint-1
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert (state["epoch"], state["global_step"], state["family"]) == (2, 2, "flux")
    for name in ("adapters.safetensors", "optimizer.pt", "pytorch_lora_weights.safetensors"):
        assert (out / "checkpoint-2" / name).is_file()
    assert list((out / "logs").rglob("events.out.tfevents.*")), "no TensorBoard event file"


def _image(pipe: Any) -> np.ndarray:
    return pipe(
        "a red cat",
        num_inference_steps=2,
        height=16,
        width=16,
        max_sequence_length=16,
        generator=torch.Generator().manual_seed(3),
        output_type="np",
    ).images


def test_saved_lora_loads_in_a_plain_flux_pipeline(trained_run: Any, flux_dir: Path) -> None:
    from diffusers import FluxPipeline

    trainer, result, out = trained_run
    trainer.pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        trained = _image(trainer.pipe)
    for lora in (result.lora_dir, out / "checkpoint-2"):
        pipe = FluxPipeline.from_pretrained(flux_dir)
        pipe.set_progress_bar_config(disable=True)
        base = _image(pipe)
        pipe.load_lora_weights(lora)
        loaded = _image(pipe)
        assert np.abs(loaded - base).max() > 1e-3, "the LoRA did not change the output"
        np.testing.assert_allclose(loaded, trained, atol=1e-5)


def test_saved_lora_loads_in_the_generator(trained_run: Any, flux_dir: Path) -> None:
    generators = pytest.importorskip("gcr.generators.diffusers_adapter")
    from gcr.generators.base import GenerationRequest

    _, result, _ = trained_run
    request = GenerationRequest(prompt="a red cat", seed=3, width=16, height=16, steps=2)
    plain = generators.DiffusersGenerator(str(flux_dir), device="cpu", dtype="float32").generate(request)
    tuned = generators.DiffusersGenerator(
        str(flux_dir), device="cpu", dtype="float32", loras=[str(result.lora_dir)]
    ).generate(request)
    diff = np.abs(np.asarray(plain.images[0], dtype=float) - np.asarray(tuned.images[0], dtype=float))
    assert diff.max() > 0, "the generator's output did not change with the LoRA"


def test_resume_continues_exactly(flux_dir: Path, tmp_path: Path) -> None:
    straight = tiny_config(flux_dir, tmp_path / "a", num_epochs=2, learning_rate=5e-2)
    DiffusionNFTTrainer(straight, train_prompts=records(2)).train()
    first = tiny_config(flux_dir, tmp_path / "b", num_epochs=1, learning_rate=5e-2)
    DiffusionNFTTrainer(first, train_prompts=records(2)).train()
    resumed_cfg = tiny_config(
        flux_dir, tmp_path / "b", num_epochs=2, learning_rate=5e-2, resume_from="latest"
    )
    resumed = DiffusionNFTTrainer(resumed_cfg, train_prompts=records(2))
    assert (resumed.state.epoch, resumed.state.global_step) == (1, 1)
    result = resumed.train()
    assert (result.epochs, result.global_step, len(result.history)) == (2, 2, 1)

    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "a" / "checkpoint-2" / "adapters.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoint-2" / "adapters.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("old.") for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_kontext_trains_on_edits_and_checks_prompt_kinds(kontext_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    from gcr.errors import ConfigError
    from gcr.training.rl.data import PromptRecord

    paths = []
    for i, color in enumerate([(220, 40, 40), (40, 40, 220)]):
        paths.append(tmp_path / f"src{i}.png")
        Image.new("RGB", (40, 24), color).save(paths[-1])
    edits = [
        PromptRecord(id=f"e{i}", prompt=p, source_paths=(paths[i],))
        for i, p in enumerate(["make it green", "add a boat"])
    ]
    seen: list[tuple[int, tuple[int, int]]] = []

    def reward(images, prompts, sources):
        seen.extend((len(s), s[0].size) for s in sources)
        return brightness(images, prompts, sources)

    cfg = tiny_config(kontext_dir, tmp_path / "out", learning_rate=5e-2, eval_every=1)
    with pytest.raises(ConfigError, match="needs one source image per prompt"):
        DiffusionNFTTrainer(cfg, reward=reward, train_prompts=records(2))
    trainer = DiffusionNFTTrainer(cfg, reward=reward, train_prompts=edits, eval_prompts=edits)
    assert trainer.family.name == "flux-kontext" and trainer.family.guidance_scale == 2.5
    result = trainer.train()
    (metrics,) = result.history
    assert result.global_step == 1 and metrics["samples/trained"] == 8 and metrics["grad_norm"] > 0
    assert metrics["loss/kl"] == 0.0 and metrics["loss"] == pytest.approx(
        cfg.policy_loss_scale * metrics["loss/policy"]
    )
    assert set(seen) == {(1, (16, 16))}  # every sample is judged with its source, fitted to 16 px

    from diffusers import FluxKontextPipeline

    def image(pipe: Any) -> np.ndarray:
        return pipe(
            image=Image.open(paths[0]).convert("RGB").resize((16, 16)),
            prompt="make it green",
            height=16,
            width=16,
            num_inference_steps=2,
            guidance_scale=2.5,
            max_sequence_length=16,
            _auto_resize=False,
            max_area=256,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
        ).images

    trainer.pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        trained = image(trainer.pipe)
    fresh = FluxKontextPipeline.from_pretrained(kontext_dir)
    fresh.set_progress_bar_config(disable=True)
    fresh.load_lora_weights(result.lora_dir)
    np.testing.assert_allclose(image(fresh), trained, atol=1e-5)
