"""Data-parallel training through accelerate: two CPU processes (gloo) stay in step.

Each process samples its own prompts; rewards are gathered for the global std; a
process with fewer trainable samples pads with zero-weight ones so both take the
same backward passes. A hang or diverging adapters would fail this test.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import json, sys
import torch
torch.set_num_threads(1)
from pathlib import Path
from rl_testkit import records, tiny_config
from gcr.training.rl.adapters import trainable_parameters
from gcr.training.rl.rewards import brightness
from gcr.training.rl.trainer import DiffusionNFTTrainer

def reward(images, prompts, sources):
    # the first three samples of "a red cat" fail: that process has fewer samples to train on
    values = brightness(images, prompts, sources)
    return [None if i < 3 and p == "a red cat" else v for i, (p, v) in enumerate(zip(prompts, values))]

flux, out = Path(sys.argv[1]), Path(sys.argv[2])
cfg = tiny_config(flux, out, num_epochs=2, eval_every=1, train_batch_size=2, gradient_steps_per_epoch=2)
trainer = DiffusionNFTTrainer(cfg, reward=reward, train_prompts=records(4), eval_prompts=records(3))
result = trainer.train()
acc = trainer.accelerator
report = {
    "rank": acc.process_index,
    "processes": acc.num_processes,
    "model": type(trainer.model).__name__,
    "checksum": sum(float(p.double().sum()) for p in trainable_parameters(trainer.transformer)),
    "history": [{k: h[k] for k in ("samples/total", "samples/trained", "reward/failed_samples")}
                for h in result.history],
    "eval_samples": [e["eval/samples"] for e in result.evaluations],
    "global_step": result.global_step,
}
(out / f"report-{acc.process_index}.json").write_text(json.dumps(report))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_stay_in_step(flux_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "true",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        str(script),
        str(flux_dir),
        str(out),
    ]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("data-parallel training hung (processes out of step?)")
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads((out / f"report-{rank}.json").read_text()) for rank in (0, 1)]
    assert all(r["processes"] == 2 and r["model"] == "DistributedDataParallel" for r in reports)
    assert reports[0]["checksum"] == pytest.approx(reports[1]["checksum"], rel=0, abs=1e-9)
    assert reports[0]["history"] == reports[1]["history"]  # metrics are gathered over both processes
    epochs = reports[0]["history"]
    assert [e["samples/total"] for e in epochs] == [16.0, 16.0]
    # 3 failed samples leave that group with 1 scored sample (< 2): the whole group of 4 is masked
    assert all(e["samples/trained"] == 16 - 4 * (e["reward/failed_samples"] > 0) for e in epochs)
    assert any(e["reward/failed_samples"] == 3 for e in epochs)
    assert reports[0]["eval_samples"] == [3.0, 3.0, 3.0]  # 3 held-out prompts split over 2 processes
    assert reports[0]["global_step"] == 4
    assert (out / "lora" / "pytorch_lora_weights.safetensors").is_file()
