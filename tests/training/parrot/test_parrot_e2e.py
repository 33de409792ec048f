"""PARROT end to end on CPU: scripted teacher server → anchor → filter → project → dataset → SFT → critic.

The teacher and predictor are a scripted OpenAI-compatible server reached through
the real HTTP backend and the real ``gcr train parrot run`` command. The script
includes inconsistent rationales on purpose (scores against the label, a
predictor that disagrees, a leaked label, a projection that flips the order, an
unreadable first answer), so the survivors are known exactly. The dataset then
trains the tiny Qwen3-VL for a few LoRA steps, and the saved folder is loaded by
the in-process critic backend.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from gcr.cli.app import app
from gcr.critic.backends.base import SamplingParams
from gcr.critic.backends.transformers_local import TransformersBackend
from gcr.critic.loading import load_critic
from gcr.critic.templates import load_template, render_pairwise
from gcr.training.parrot.data import load_preferences
from gcr.training.sft.config import SFTRunConfig
from gcr.training.sft.trainer import run_sft
from stubs.teacher_server import pairwise_answer, pointwise_answer, predictor_answer

T2I = {
    "A": [(3.5, 2.0), (3.0, 3.0), (None, None)],
    "B": [(2.0, 3.5), (3.0, 3.0), (None, None)],
    "tie": [(3.0, 3.0), (2.5, 2.5), (None, None)],
}
EDIT = {
    "A": [(3.5, 2.0), (3.0, 3.0), (3.0, 2.5), (None, None)],
    "B": [(2.0, 3.5), (3.0, 3.0), (2.5, 3.0), (None, None)],
}
SPECS = [
    {"id": "i1", "request": "i1: a red apple on a table", "label": "A"},
    {"id": "i2", "request": "i2: a blue car in the rain", "label": "B"},
    {"id": "i3", "request": "i3: a tall tree at dusk", "label": "A"},
    {"id": "i4", "request": "i4: a small dog on grass", "label": "B"},
    {"id": "i5", "request": "i5: a bowl of soup", "label": "tie"},
    {"id": "i6", "task": "edit", "request": "i6: make the sky purple", "label": "A"},
    {"id": "i7", "task": "edit", "request": "i7: add a red hat", "label": "B"},
    {"id": "i8", "request": "i8: a lighthouse by the sea", "label": "A"},
]


def _point(task: str, totals_high: bool) -> str:
    if task == "t2i":
        return pointwise_answer("t2i", [3.5, 3.0, None] if totals_high else [2.0, 3.0, None])
    return pointwise_answer("edit", [3.5, 3.0, 3.0, None] if totals_high else [2.0, 3.0, 2.5, None])


def _script(teacher) -> None:
    teacher.script("anchor", "i1:", pairwise_answer("t2i", T2I["A"]))
    teacher.script("anchor", "i2:", pairwise_answer("t2i", T2I["B"]))
    teacher.script("anchor", "i3:", pairwise_answer("t2i", T2I["B"]))  # scores contradict the label
    teacher.script("anchor", "i4:", pairwise_answer("t2i", T2I["B"]))
    teacher.script("anchor", "i5:", pairwise_answer("t2i", T2I["tie"]))
    teacher.script("anchor", "i6:", pairwise_answer("edit", EDIT["A"]))
    teacher.script("anchor", "i7:", "Sorry, I cannot help with that.", pairwise_answer("edit", EDIT["B"]))
    teacher.script("anchor", "i8:", pairwise_answer("t2i", T2I["A"], note="The raters liked A."))
    for key, winner in (("i1:", "A"), ("i2:", "B"), ("i4:", "A"), ("i5:", "tie"), ("i6:", "A"), ("i7:", "B")):
        teacher.script("predict", key, predictor_answer(winner))
    for key, task, winner in (("i1:", "t2i", "A"), ("i2:", "t2i", "B"), ("i7:", "edit", "B")):
        for cand in "AB":
            teacher.script("project", key, _point(task, cand == winner), candidate=cand)
    for cand in "AB":
        teacher.script("project", "i5:", _point("t2i", True), candidate=cand)
        teacher.script("project", "i6:", _point("edit", cand == "B"), candidate=cand)  # flips the order


def test_parrot_end_to_end_then_sft_then_critic(
    prefs_factory, teacher_stub, tiny_critic_dir, tmp_path
) -> None:
    server, teacher = teacher_stub
    _script(teacher)
    prefs_file = prefs_factory(SPECS)
    work = tmp_path / "work"
    args = [
        "train",
        "parrot",
        "run",
        str(prefs_file),
        "--workdir",
        str(work),
        "--teacher-url",
        server.url,
        "--teacher-model",
        "stub-teacher",
        "--concurrency",
        "3",
        "--max-retries",
        "0",
        "--val-fraction",
        "0.4",
        "--json",
    ]

    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["anchor"]["failed"] == 1 and summary["anchor"]["failed_keys"] == ["i7"]
    assert summary["filter"]["kept"] == 4

    second = CliRunner().invoke(app, args)  # resume: only i7 is anchored again
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout)
    assert summary["anchor"] == {"total": 8, "already_done": 7, "ok": 1, "failed": 0, "failed_keys": []}
    assert teacher.calls[("anchor", "i7:")] == 2 and teacher.calls[("anchor", "i1:")] == 1
    assert all(n == 1 for key, n in teacher.calls.items() if key[0] in ("predict", "project"))

    filt = summary["filter"]
    assert (filt["anchored"], filt["kept"], filt["dropped"], filt["pending"]) == (8, 5, 3, 0)
    assert filt["survival_rate"] == pytest.approx(5 / 8)
    assert sorted(filt["dropped_items"]) == ["i3", "i4", "i8"]
    assert "scores imply B" in filt["dropped_items"]["i3"]
    assert filt["dropped_items"]["i4"] == "predictor chose A, label is B"
    assert "raters" in filt["dropped_items"]["i8"]
    assert [json.loads(x)["id"] for x in (work / "kept.jsonl").read_text().splitlines()] == [
        "i1",
        "i2",
        "i5",
        "i6",
        "i7",
    ]

    proj = summary["project"]
    assert (proj["pairs"], proj["projected_pairs"], proj["violations"], proj["pointwise_critiques"]) == (
        5,
        4,
        1,
        8,
    )
    assert list(proj["violation_items"]) == ["i6"]

    counts = summary["dataset"]["counts"]
    assert counts["train"]["pairwise"] + counts["val"]["pairwise"] == 5
    assert counts["train"]["pointwise"] + counts["val"]["pointwise"] == 8
    train = [json.loads(x) for x in (work / "dataset" / "train.jsonl").read_text().splitlines()]
    val = [json.loads(x) for x in (work / "dataset" / "val.jsonl").read_text().splitlines()]
    assert {r["item_id"] for r in train}.isdisjoint(r["item_id"] for r in val)
    assert val and any(r["kind"] == "pairwise" for r in val)
    # raw teacher output is kept, including the failed first answer
    records = [json.loads(x) for x in (work / "anchored.jsonl").read_text().splitlines()]
    assert next(r["raw_text"] for r in records if r["key"] == "i7") == "Sorry, I cannot help with that."

    # -- SFT: a few LoRA steps of the tiny Qwen3-VL on that dataset --------------------------------
    out = tmp_path / "critic"
    config = SFTRunConfig(
        model=str(tiny_critic_dir),
        dataset=str(work / "dataset"),
        output_dir=str(out),
        finetune="lora",
        learning_rate=5e-3,
        max_steps=4,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        warmup_ratio=0.0,
        bf16=False,
        gradient_checkpointing=False,
        logging_steps=1,
        save_strategy="steps",
        save_steps=2,
        max_image_pixels=64 * 64,
        max_length=4096,
        lora_r=8,
        lora_alpha=16,
        eval_max_new_tokens=16,
        eval_batch_size=4,
    )
    result = run_sft(config)
    assert result.global_step == 4 and len(result.train_losses) == 4
    assert result.train_losses[-1] < result.train_losses[0]
    assert result.trainable_parameters["vision"] == 0 and result.trainable_parameters["projector"] == 0
    assert (out / "checkpoint-2").is_dir() and (out / "checkpoint-4").is_dir()

    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: every adapter was trained
    assert not any("visual" in k for k in adapter)
    merged = load_file(out / "model.safetensors")
    base = load_file(tiny_critic_dir / "model.safetensors")
    q_key = next(k for k in base if k.endswith("layers.0.self_attn.q_proj.weight"))
    assert not torch.equal(merged[q_key], base[q_key])
    for key in (k for k in base if ".visual." in k):
        assert torch.equal(merged[key], base[key]), key

    evaluation = result.eval
    assert evaluation is not None and evaluation["pairs"] == sum(r["kind"] == "pairwise" for r in val)
    overall = evaluation["overall"]
    assert overall["evaluated"] + overall["failed"] == evaluation["pairs"]
    saved = json.loads((out / "sft_result.json").read_text())
    assert saved["train_losses"] == result.train_losses and saved["config"]["finetune"] == "lora"
    assert len((out / "eval_predictions.jsonl").read_text().splitlines()) == evaluation["pairs"]

    # -- the result loads straight into the critic (as `--critic PATH` does) ---------------------
    prefs = load_preferences(prefs_file)
    item = prefs.by_id()["i1"]
    images = prefs.load_images(item)
    request = render_pairwise(load_template("pairwise", "t2i"), item.request, images.a, images.b)

    critic = load_critic(str(out), device="cpu", sampling=SamplingParams(temperature=0.0, max_tokens=8))
    assert isinstance(critic.backend, TransformersBackend)

    async def ask() -> str:
        try:
            return await critic.backend.complete(request, critic.sampling)
        finally:
            await critic.aclose()

    answer = asyncio.run(ask())
    assert isinstance(answer, str) and answer.strip()
