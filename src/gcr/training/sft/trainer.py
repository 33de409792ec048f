"""PARROT phase 3: supervised fine-tuning of a critic with TRL's ``SFTTrainer``.

:func:`run_sft` loads the student (any ``AutoModelForImageTextToText`` checkpoint,
e.g. Qwen3-VL-8B), freezes the vision tower and projector unless told otherwise,
optionally wraps it with LoRA adapters (peft), trains on the PARROT dataset with
the prompt masked from the loss (:class:`~gcr.training.sft.collator.CritiqueSFTCollator`),
and saves a complete model folder (weights, processor, generation config) to
``output_dir``: it loads straight into the critic backends (``--critic PATH``,
``TransformersBackend(PATH)``, or a vLLM server). With LoRA the adapters are
merged into that folder and also kept under ``output_dir/adapter``. At the end
it measures pairwise accuracy on the validation split
(:func:`~gcr.training.sft.evaluate.evaluate_pairwise`) and writes everything to
``output_dir/sft_result.json``.

Multi-GPU: launch with ``accelerate launch --config_file examples/accelerate/...``;
saving runs on every rank (ZeRO-3 gathers the shards), merging and the
evaluation on the main process only.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gcr.errors import ConfigError, DatasetError, DependencyError, GCRError
from gcr.training.sft.collator import CritiqueSFTCollator
from gcr.training.sft.config import SFTRunConfig

logger = logging.getLogger(__name__)

#: Parameter-name parts that mark the vision encoder (Qwen-VL: ``visual``; LLaVA-style: ``vision_tower``).
VISION_KEYWORDS = ("visual", "vision_tower", "vision_model")
#: Parameter-name parts that mark the vision-language projector inside or next to the vision encoder.
PROJECTOR_KEYWORDS = ("merger", "multi_modal_projector", "mm_projector")
RESULT_FILE = "sft_result.json"


def parameter_group(name: str) -> str:
    """``"projector"``, ``"vision"`` or ``"language"`` for a parameter or module name."""
    parts = set(re.split(r"[.]", name))
    if parts & set(PROJECTOR_KEYWORDS) or any(p.startswith("deepstack_merger") for p in parts):
        return "projector"
    if parts & set(VISION_KEYWORDS):
        return "vision"
    return "language"


def freeze_parts(model: Any, *, vision_tower: bool, projector: bool) -> dict[str, int]:
    """Freeze the chosen groups; return the trainable parameter count per group afterwards."""
    counts = {"language": 0, "vision": 0, "projector": 0}
    for name, param in model.named_parameters():
        group = parameter_group(name)
        if (group == "vision" and vision_tower) or (group == "projector" and projector):
            param.requires_grad_(False)
        if param.requires_grad:
            counts[group] += param.numel()
    return counts


def lora_config(config: SFTRunConfig, model: Any) -> Any:
    """LoRA on the chosen linear layers of the language model (and of the vision tower when it is unfrozen).

    An unfrozen projector is trained in full (peft ``modules_to_save``) next to the adapters.
    """
    from peft import LoraConfig

    names = "|".join(re.escape(n) for n in config.lora_target_modules)
    skip = (
        "|".join(VISION_KEYWORDS + PROJECTOR_KEYWORDS)
        if config.freeze_vision_tower
        else "|".join(PROJECTOR_KEYWORDS)
    )
    target = rf"^(?!.*\b(?:{skip})\b).*\.(?:{names})$"
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=target,
        modules_to_save=None if config.freeze_projector else _projector_modules(model),
        task_type="CAUSAL_LM",
    )


def _projector_modules(model: Any) -> list[str]:
    """Name suffixes of the outermost projector modules, for peft ``modules_to_save``.

    peft wraps single modules, so a projector held in a ``ModuleList`` (Qwen3-VL's
    deepstack mergers) is listed by its members (``deepstack_merger_list.0``, ...).
    """
    import torch

    names: set[str] = set()
    for name, module in model.named_modules():
        last = name.rsplit(".", 1)[-1]
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        if parameter_group(last) != "projector" or parameter_group(parent) == "projector":
            continue
        if isinstance(module, (torch.nn.ModuleList, torch.nn.ModuleDict)):
            names.update(f"{last}.{child}" for child, _ in module.named_children())
        else:
            names.add(last)
    return sorted(names)


@dataclass
class SFTResult:
    """What :func:`run_sft` produced."""

    output_dir: str
    adapter_dir: str | None
    global_step: int
    train_losses: list[float]
    trainable_parameters: dict[str, int]
    total_parameters: int
    eval: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_sft_splits(path: str | Path) -> Any:
    """The ``DatasetDict`` at ``path`` (or at ``path/hf``); it must have a ``train`` split."""
    try:
        import datasets
    except ImportError:
        raise DependencyError("datasets", "train", "SFT") from None
    p = Path(path).expanduser()
    if (p / "hf").is_dir():
        p = p / "hf"
    if not p.is_dir():
        raise DatasetError(
            f"SFT dataset folder not found: {p} (build one with `gcr train parrot build-dataset`)"
        )
    try:
        data = datasets.load_from_disk(str(p))
    except FileNotFoundError:
        raise DatasetError(f"{p} is not a datasets save_to_disk folder") from None
    if not isinstance(data, datasets.DatasetDict) or "train" not in data:
        raise DatasetError(f"{p} must hold a DatasetDict with a 'train' split")
    missing = {"messages", "images"} - set(data["train"].column_names)
    if missing:
        raise DatasetError(f"{p} lacks the column(s) {', '.join(sorted(missing))}")
    return data


def student_dtype(config: SFTRunConfig, *, deepspeed: bool) -> Any:
    """The dtype the student's weights are loaded in for training.

    ``bf16`` is mixed precision: the forward and backward passes run in bf16 under
    autocast, but weights that the optimizer updates in place must stay fp32. In bf16
    an update of about ``learning_rate`` (1e-5 upstream) is far below the spacing of
    representable values around a typical weight (about 1e-4 at 0.02), so most updates
    would round away and a full fine-tune would barely move. DeepSpeed keeps fp32
    master weights itself (as the upstream runs did), and LoRA trains fp32 adapters
    (peft upcasts them) on a frozen base, so those load in bf16 and save the memory.
    """
    import torch

    if not config.bf16 or (config.finetune == "full" and not deepspeed):
        return torch.float32
    return torch.bfloat16


def _load_student(config: SFTRunConfig, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(config.model)
        model = AutoModelForImageTextToText.from_pretrained(config.model, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the student model {config.model}: {exc}") from None
    if getattr(processor, "chat_template", None) is None:
        raise ConfigError(f"{config.model} has no chat template; the critic prompt cannot be rendered")
    return processor, model


def _trl_args(config: SFTRunConfig, eval_split: bool) -> Any:
    from trl import SFTConfig

    return SFTConfig(
        output_dir=config.output_dir,
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a share of the steps in transformers 5
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        bf16=config.bf16,
        fp16=False,
        activation_checkpointing=config.gradient_checkpointing,
        max_length=config.max_length,
        seed=config.seed,
        logging_steps=config.logging_steps,
        save_strategy=config.save_strategy,
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        eval_strategy=config.eval_strategy if eval_split else "no",
        deepspeed=config.deepspeed,
        report_to=config.report_to,
        dataloader_num_workers=config.dataloader_num_workers,
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=True,
    )


def run_sft(config: SFTRunConfig) -> SFTResult:
    """Fine-tune ``config.model`` on ``config.dataset``; save, merge, evaluate; return the result."""
    import torch

    try:
        from trl import SFTTrainer
    except ImportError:
        raise DependencyError("trl", "train", "SFT") from None
    splits = load_sft_splits(config.dataset)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    has_val = "validation" in splits and len(splits["validation"]) > 0
    # The training arguments come first: under DeepSpeed ZeRO-3 they make from_pretrained load sharded.
    args = _trl_args(config, has_val)
    dtype = student_dtype(config, deepspeed=getattr(args, "deepspeed_plugin", None) is not None)
    processor, model = _load_student(config, dtype)
    total = sum(p.numel() for p in model.parameters())
    if config.finetune == "full":
        trainable = freeze_parts(
            model, vision_tower=config.freeze_vision_tower, projector=config.freeze_projector
        )
        peft_config = None
    else:
        peft_config = lora_config(config, model)
        trainable = {}
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"] if has_val and config.eval_strategy != "no" else None,
        processing_class=processor,
        data_collator=CritiqueSFTCollator(
            processor, max_length=config.max_length, max_pixels=config.max_image_pixels
        ),
        peft_config=peft_config,
    )
    if peft_config is not None:
        trainable = {"language": 0, "vision": 0, "projector": 0}
        for name, param in trainer.model.named_parameters():
            if param.requires_grad:
                trainable[parameter_group(name)] += param.numel()
    logger.info("trainable parameters: %s of %d", trainable, total)
    train_output = trainer.train()
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]

    adapter_dir = None
    if peft_config is not None:
        adapter_dir = str(out / "adapter")
        trainer.save_model(adapter_dir)
    else:
        if config.bf16 and trainer.model.dtype != torch.bfloat16:
            trainer.model.to(torch.bfloat16)  # trained with fp32 master weights; saved in bf16 as upstream
        trainer.save_model(str(out))
    trainer.accelerator.wait_for_everyone()
    result = SFTResult(
        output_dir=str(out),
        adapter_dir=adapter_dir,
        global_step=int(train_output.global_step),
        train_losses=losses,
        trainable_parameters=trainable,
        total_parameters=total,
        config=config.to_dict(),
    )
    if not trainer.is_world_process_zero():
        return result
    del trainer, model
    _release_memory()
    if adapter_dir is not None and config.merge_lora:
        _merge_adapter(config, adapter_dir, out)
    _save_inference_files(config, processor, out)
    if config.eval_pairwise and has_val and (adapter_dir is None or config.merge_lora):
        from gcr.training.sft.evaluate import evaluate_pairwise

        try:
            result.eval = evaluate_pairwise(
                out,
                splits["validation"],
                max_pairs=config.eval_max_pairs,
                max_new_tokens=config.eval_max_new_tokens,
                temperature=config.eval_temperature,
                batch_size=config.eval_batch_size,
                tie_tolerance=config.tie_tolerance,
                max_pixels=config.max_image_pixels,
                predictions_path=out / "eval_predictions.jsonl",
            )
        except GCRError as exc:  # the trained model is saved; report why it could not be evaluated
            logger.warning("pairwise evaluation failed: %s", exc)
            result.eval = {"error": str(exc)}
    (out / RESULT_FILE).write_text(
        json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8"
    )
    return result


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _merge_adapter(config: SFTRunConfig, adapter_dir: str, out: Path) -> None:
    """Reload the base model, apply the saved adapter, merge, and save a plain model folder."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    dtype = torch.bfloat16 if config.bf16 else torch.float32
    base = AutoModelForImageTextToText.from_pretrained(config.model, dtype=dtype)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out)
    logger.info("merged the LoRA adapter into %s", out)


def _save_inference_files(config: SFTRunConfig, processor: Any, out: Path) -> None:
    """Processor and generation config next to the weights, so the folder loads as a critic."""
    from transformers import GenerationConfig

    processor.save_pretrained(out)
    try:
        GenerationConfig.from_pretrained(config.model).save_pretrained(out)
    except OSError:
        logger.info("the student has no generation_config.json; the saved model keeps the default one")
