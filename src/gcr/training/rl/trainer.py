"""DiffusionNFT training of a flow-matching diffusers pipeline with (critic) rewards.

One epoch (docs/training.md):

1. pick ``prompts_per_epoch`` prompts per process (saturated prompts no longer drawn);
2. sample ``group_size`` images per prompt with the old adapter, recording x0 and
   the schedule times;
3. score them with the combined reward; failures are masked and counted;
4. group-relative advantages with the std of every process's rewards; NFT weights;
5. train the ``default`` adapter on the rollout times with the NFT loss plus the KL
   term to the reference (adapters off); AdamW, gradient clipping, accumulation to
   ``gradient_steps_per_epoch`` optimizer steps;
6. move the old adapter toward the new one: θ_old ← d·θ_old + (1 − d)·θ with
   d = min(rate · optimizer steps, cap).

Data parallelism and mixed precision come from ``accelerate``; every process
samples its own prompts, and all processes take the same number of backward
passes (padding with zero-weight samples) so DDP stays in step. All randomness
(prompt order, noise, timestep draws) comes from generators keyed by seed,
epoch and process, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gcr.errors import ConfigError, RewardError
from gcr.training.rl.adapters import (
    add_lora_adapters,
    old_adapter_decay,
    save_lora,
    trainable_parameters,
    update_old_adapter,
    use_old_adapter,
)
from gcr.training.rl.advantages import compute_advantages, population_std
from gcr.training.rl.checkpoint import TrainerState, load_checkpoint, resolve_resume, save_checkpoint
from gcr.training.rl.config import RLConfig
from gcr.training.rl.data import PromptRecord, epoch_prompts, load_prompts
from gcr.training.rl.evaluation import sample_eval_images
from gcr.training.rl.families import family_for_class, get_family
from gcr.training.rl.rewards import (
    CombinedReward,
    PendingRewards,
    RewardBatch,
    WeightedReward,
    build_rewards,
    summarize,
)
from gcr.training.rl.runtime import gather_all, load_pipeline, make_accelerator, resolve_dtype, tracker_config
from gcr.training.rl.sampling import sample_groups, seeded_generator
from gcr.training.rl.update import NFTUpdater

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run did: epochs and optimizer steps done, the final LoRA folder, per-epoch metrics."""

    epochs: int
    global_step: int
    lora_dir: Path | None
    history: list[dict[str, float]] = field(default_factory=list)
    evaluations: list[dict[str, float]] = field(default_factory=list)


class DiffusionNFTTrainer:
    """Fine-tune a pipeline's transformer with LoRA by DiffusionNFT.

    Args:
        config: the run settings.
        reward: a :class:`CombinedReward` or a plain callable ``(images, prompts, sources) ->
            list[float | None]``; default: built from ``config.rewards``.
        pipeline: an already loaded pipeline on the accelerator's device (default: loaded from
            ``config.pretrained_model`` and moved there).
        train_prompts / eval_prompts: prompt records (default: read from the config's files).
        accelerator: an ``accelerate.Accelerator`` (default: made from the config).
    """

    def __init__(
        self,
        config: RLConfig,
        *,
        reward: CombinedReward | Callable[..., Sequence[float | None]] | None = None,
        pipeline: Any | None = None,
        train_prompts: Sequence[PromptRecord] | None = None,
        eval_prompts: Sequence[PromptRecord] | None = None,
        accelerator: Any | None = None,
    ) -> None:
        self.config = config
        if pipeline is None and not config.pretrained_model:
            raise ConfigError("set pretrained_model (a diffusers pipeline folder or Hub id)")
        if train_prompts is None and not config.train_prompts:
            raise ConfigError("set train_prompts (a JSONL file of prompts)")
        if reward is None and not config.rewards:
            raise ConfigError("set at least one reward under `rewards`")
        self.accelerator = accelerator or make_accelerator(config)
        device = self.accelerator.device
        if pipeline is None:
            self.pipe, family_cls = load_pipeline(config, device, resolve_dtype(config, device))
        else:
            self.pipe = pipeline
            name = type(pipeline).__name__
            family_cls = family_for_class(name) if config.family == "auto" else get_family(config.family)
            if name not in family_cls.pipeline_classes:
                raise ConfigError(
                    f"family {family_cls.name!r} expects {', '.join(family_cls.pipeline_classes)}, "
                    f"got a {name}"
                )
            for component in pipeline.components.values():
                if isinstance(component, torch.nn.Module):
                    component.requires_grad_(False)
        self.family = family_cls(
            self.pipe,
            resolution=config.resolution,
            guidance_scale=config.guidance_scale,
            max_sequence_length=config.max_sequence_length,
        )
        self.train_records = (
            list(train_prompts) if train_prompts is not None else load_prompts(config.train_prompts)
        )
        self.eval_records: list[PromptRecord] = (
            list(eval_prompts)
            if eval_prompts is not None
            else (load_prompts(config.eval_prompts) if config.eval_prompts else [])
        )
        for records, what in ((self.train_records, "training"), (self.eval_records, "evaluation")):
            if any(r.is_edit != self.family.is_edit for r in records):
                kind = "one source image per prompt" if self.family.is_edit else "no source images"
                raise ConfigError(f"{self.family.name} needs {kind}; the {what} prompts do not match")

        self._owns_reward = reward is None
        if reward is None:
            reward = build_rewards(config.rewards)
        elif not isinstance(reward, CombinedReward):
            reward = CombinedReward([WeightedReward("reward", 1.0, reward)])
        self.reward: CombinedReward = reward

        self.transformer = self.pipe.transformer
        add_lora_adapters(
            self.transformer,
            rank=config.lora_rank,
            alpha=config.lora_alpha,
            target_modules=config.lora_target_modules or family_cls.lora_targets,
            dropout=config.lora_dropout,
            init=config.lora_init,
            seed=config.seed,
        )
        if config.gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        self.params = trainable_parameters(self.transformer)
        self.learning_rate = config.learning_rate or family_cls.default_learning_rate
        optimizer = torch.optim.AdamW(
            self.params,
            lr=self.learning_rate,
            betas=(config.adam_beta1, config.adam_beta2),
            weight_decay=config.adam_weight_decay,
            eps=config.adam_epsilon,
        )
        self.model, self.optimizer = self.accelerator.prepare(self.transformer, optimizer)
        self.updater = NFTUpdater(
            config, self.accelerator, self.family, self.transformer, self.model, self.optimizer, self.params
        )
        self.state = TrainerState(family=self.family.name, config=config.to_dict())
        if config.resume_from:
            folder = resolve_resume(config.resume_from, config.output_dir)
            self.state = load_checkpoint(folder, transformer=self.transformer, optimizer=self.optimizer)
            self.state.config = config.to_dict()
        self.accelerator.init_trackers(config.project_name, config=tracker_config(config))

    # -- the run -----------------------------------------------------------------------
    def train(self) -> TrainResult:
        """Run the remaining epochs; return the history and where the final LoRA is."""
        cfg = self.config
        result = TrainResult(epochs=self.state.epoch, global_step=self.state.global_step, lora_dir=None)
        try:
            for epoch in range(self.state.epoch, cfg.num_epochs):
                if cfg.eval_every and epoch % cfg.eval_every == 0 and self.eval_records:
                    result.evaluations.append(self.evaluate())
                metrics = self.run_epoch(epoch)
                if metrics is None:
                    break
                self.state.epoch = epoch + 1
                result.history.append(metrics)
                if cfg.save_every and self.state.epoch % cfg.save_every == 0:
                    self.save_checkpoint()
            if cfg.eval_every and self.eval_records:
                result.evaluations.append(self.evaluate())
            if not (cfg.save_every and self.state.epoch % cfg.save_every == 0):
                self.save_checkpoint()
            result.lora_dir = self.save_lora(Path(cfg.output_dir) / "lora")
        finally:
            self.accelerator.end_training()
            if self._owns_reward:
                self.reward.close()
        result.epochs, result.global_step = self.state.epoch, self.state.global_step
        return result

    def run_epoch(self, epoch: int) -> dict[str, float] | None:
        """Sample, score and train one epoch; None when every prompt has been dropped."""
        cfg, acc = self.config, self.accelerator
        started = time.perf_counter()
        records = epoch_prompts(
            self.train_records,
            dropped=set(self.state.dropped_prompts),
            seed=cfg.seed,
            epoch=epoch,
            per_process=cfg.prompts_per_epoch,
            num_processes=acc.num_processes,
            process_index=acc.process_index,
        )
        if records is None:
            logger.warning(
                "every training prompt is saturated and was dropped; stopping after %d epochs", epoch
            )
            return None
        sources = self._sources(records)
        # With overlap_scoring each rollout batch is scored (in the reward's background loop)
        # while the next one samples; reward_s is then only the wait after sampling ends.
        pending: list[PendingRewards] = []

        def score(images: list[Any], index: torch.Tensor) -> None:
            ids = index.tolist()
            pending.append(
                self.reward.submit(images, [records[i].prompt for i in ids], [sources[i] for i in ids])
            )

        phase = time.perf_counter()
        with torch.no_grad(), acc.autocast():
            cond = self.family.encode([r.prompt for r in records], sources if self.family.is_edit else None)
            with use_old_adapter(self.transformer):
                rollout = sample_groups(
                    self.family,
                    self.transformer,
                    cond,
                    group_size=cfg.group_size,
                    num_steps=cfg.num_inference_steps,
                    batch_size=cfg.sample_batch_size,
                    generator=seeded_generator(cfg.seed, epoch, acc.process_index, 0),
                    on_images=score if cfg.overlap_scoring else None,
                )
        timings = {"time/sample_s": time.perf_counter() - phase}
        phase = time.perf_counter()
        if cfg.overlap_scoring:
            batch = RewardBatch.concat([p.result() for p in pending])
        else:
            index = rollout.prompt_index.tolist()
            batch = self.reward(
                rollout.images, [records[i].prompt for i in index], [sources[i] for i in index]
            )
        timings["time/reward_s"] = time.perf_counter() - phase
        everyone = RewardBatch.concat(gather_all(acc, batch))
        if everyone.total and everyone.failed == len(everyone.total):
            kinds = ", ".join(f"{k} ×{n}" for k, n in everyone.failure_kinds.most_common(3))
            raise RewardError(
                f"epoch {epoch}: no sample could be scored ({kinds}); check the reward (is the critic "
                "server up and answering in the critique layout?)"
            )
        adv = compute_advantages(
            batch.as_array(),
            rollout.prompt_index.numpy(),
            global_std=population_std(everyone.as_array()),
            eps=cfg.advantage_eps,
            clip_max=cfg.adv_clip_max,
            safeguard_std=cfg.safeguard_std,
            safeguard_mean=cfg.safeguard_mean,
            min_valid=cfg.min_valid_per_group,
        )
        saturated = [i for ids in gather_all(acc, [records[g].id for g in adv.saturated_groups]) for i in ids]
        if cfg.drop_saturated_prompts and saturated:
            self.state.dropped_prompts = sorted(set(self.state.dropped_prompts) | set(saturated))
        phase = time.perf_counter()
        train_stats, steps = self.updater.train_on(rollout, cond, adv, epoch)
        self.state.global_step += steps
        timings["time/train_s"] = time.perf_counter() - phase
        decay = old_adapter_decay(self.state.global_step, cfg.old_decay_rate, cfg.old_decay_max)
        update_old_adapter(self.transformer, decay)

        counts = gather_all(acc, [adv.trained_samples, len(adv.saturated_groups), len(adv.sparse_groups)])
        metrics = dict(summarize(everyone))
        metrics.update(train_stats)
        metrics.update(timings)
        metrics.update(
            {
                "epoch": float(epoch),
                "reward/std": adv.global_std,
                "samples/total": float(len(everyone.total)),
                "samples/trained": float(sum(c[0] for c in counts)),
                "groups/saturated": float(sum(c[1] for c in counts)),
                "groups/too_few_scored": float(sum(c[2] for c in counts)),
                "prompts/dropped": float(len(self.state.dropped_prompts)),
                "old_adapter/decay": decay,
                "lr": self.learning_rate,
                "time/epoch_s": time.perf_counter() - started,
            }
        )
        for kind, count in everyone.failure_kinds.items():
            metrics[f"failures/{kind}"] = float(count)
        self._log(metrics, f"epoch {epoch}")
        return metrics

    # -- evaluation, checkpoints ---------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """Mean reward of the current policy on the held-out prompts (fixed noise per prompt)."""
        cfg, acc = self.config, self.accelerator
        images, prompts, sources = sample_eval_images(
            self.family,
            self.transformer,
            self.eval_records,
            list(range(acc.process_index, len(self.eval_records), acc.num_processes)),
            seed=cfg.seed,
            num_steps=cfg.eval_num_inference_steps or cfg.num_inference_steps,
            per_prompt=cfg.eval_images_per_prompt,
            batch_size=cfg.sample_batch_size,
            autocast=acc.autocast,
        )
        batch = self.reward(images, prompts, sources) if images else self.reward.empty_batch()
        everyone = RewardBatch.concat(gather_all(acc, batch))
        metrics = {f"eval/{k}": v for k, v in summarize(everyone).items()}
        metrics["eval/samples"] = float(len(everyone.total))
        self._log(metrics, "eval")
        return metrics

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint (main process); every process waits for it."""
        acc = self.accelerator
        acc.wait_for_everyone()
        folder = None
        if acc.is_main_process:
            folder = save_checkpoint(
                self.config.output_dir,
                pipeline_cls=type(self.pipe),
                transformer=self.transformer,
                optimizer=self.optimizer,
                state=self.state,
                keep=self.config.checkpoints_total_limit,
            )
        acc.wait_for_everyone()
        return folder

    def save_lora(self, out_dir: str | Path) -> Path:
        """Write the trained adapter in diffusers' LoRA format (main process)."""
        acc = self.accelerator
        acc.wait_for_everyone()
        if acc.is_main_process:
            save_lora(type(self.pipe), self.transformer, out_dir)
            logger.info("saved the LoRA to %s", out_dir)
        acc.wait_for_everyone()
        return Path(out_dir)

    # -- helpers -------------------------------------------------------------------------------
    def _sources(self, records: Sequence[PromptRecord]) -> list[list[Any]]:
        if not self.family.is_edit:
            return [[] for _ in records]
        return [r.load_sources(self.family.source_size) for r in records]

    def _log(self, metrics: dict[str, float], label: str) -> None:
        self.accelerator.log(metrics, step=self.state.global_step)
        if not self.accelerator.is_main_process:
            return
        prefix = "eval/" if label == "eval" else ""
        logger.info(
            "%s (step %d): reward %.4f, failed %d%s",
            label,
            self.state.global_step,
            metrics.get(f"{prefix}reward/mean", math.nan),
            int(metrics.get(f"{prefix}reward/failed_samples", 0)),
            ""
            if label == "eval"
            else (
                f", loss {metrics.get('loss', math.nan):.4g}, kl {metrics.get('loss/kl', math.nan):.3g}, "
                f"trained {int(metrics.get('samples/trained', 0))}/{int(metrics.get('samples/total', 0))}"
            ),
        )
