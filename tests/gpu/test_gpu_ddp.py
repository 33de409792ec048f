"""Data-parallel DiffusionNFT over NCCL: two GPU processes stay in step (needs at least 2 GPUs).

``torch.distributed.run`` starts two processes; accelerate picks NCCL because CUDA
is there. Each process samples its own prompts on its own GPU, the rewards are
gathered for the global std, and DDP averages the LoRA gradients, so both end
with bit-identical adapters and the same gathered metrics. Each process reports
its own peak GPU memory, which this test adds to its record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from gpukit import GPU, PeakMemory, free_port, gpu_count

pytestmark = [
    *GPU,
    pytest.mark.skipif(gpu_count() < 2, reason="data parallelism over NCCL needs at least 2 CUDA GPUs"),
]

SCRIPT = r"""
import json, sys
from pathlib import Path
import torch
from gcr.training.rl.adapters import trainable_parameters
from gcr.training.rl.config import RewardConfig, RLConfig
from gcr.training.rl.data import PromptRecord
from gcr.training.rl.trainer import DiffusionNFTTrainer

flux, out = Path(sys.argv[1]), Path(sys.argv[2])
prompts = ["a red cat", "a blue cup", "a lighthouse at sunset", "two apples in a bowl"]
cfg = RLConfig(
    pretrained_model=str(flux), train_prompts="in-memory", output_dir=str(out),
    rewards=[RewardConfig(name="brightness", function="gcr.training.rl.rewards:brightness")],
    resolution=32, num_inference_steps=3, group_size=4, prompts_per_epoch=2, sample_batch_size=8,
    train_batch_size=4, num_epochs=2, max_sequence_length=16, lora_rank=4, lora_alpha=8.0,
    learning_rate=1e-2, eval_every=0, save_every=0, log_with=[],
)
records = [PromptRecord(id=f"p{i}", prompt=p) for i, p in enumerate(prompts)]
trainer = DiffusionNFTTrainer(cfg, train_prompts=records)
result = trainer.train()
acc = trainer.accelerator
torch.cuda.synchronize()
report = {
    "rank": acc.process_index,
    "processes": acc.num_processes,
    "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
    "device": str(acc.device),
    "model": type(trainer.model).__name__,
    "checksum": sum(float(p.double().sum()) for p in trainable_parameters(trainer.transformer)),
    "history": [{k: h[k] for k in ("samples/total", "reward/mean")} for h in result.history],
    "global_step": result.global_step,
    "peak_allocated": torch.cuda.max_memory_allocated(),
}
(out / f"report-{acc.process_index}.json").write_text(json.dumps(report))
"""


def test_two_gpu_processes_stay_in_step(
    tiny_pipeline_dir: Callable[[str], Path], tmp_path: Path, peak_gpu_memory: PeakMemory
) -> None:
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_port", str(free_port()), str(script), str(tiny_pipeline_dir("flux")), str(out),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("data-parallel training over NCCL hung (processes out of step?)")
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads((out / f"report-{rank}.json").read_text()) for rank in (0, 1)]
    for rank, report in enumerate(reports):
        peak_gpu_memory.note(f"rank{rank}_peak_allocated", report["peak_allocated"])
    assert all(r["processes"] == 2 and r["model"] == "DistributedDataParallel" for r in reports)
    assert [r["backend"] for r in reports] == ["nccl", "nccl"]
    assert {r["device"] for r in reports} == {"cuda:0", "cuda:1"}  # one GPU per process
    assert reports[0]["checksum"] == reports[1]["checksum"]  # identical adapters after every step
    assert reports[0]["history"] == reports[1]["history"]  # metrics are gathered over both processes
    assert [e["samples/total"] for e in reports[0]["history"]] == [16.0, 16.0]
    assert reports[0]["global_step"] == 2
    assert (out / "lora" / "pytorch_lora_weights.safetensors").is_file()
