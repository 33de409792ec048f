"""LoRA policies: the old-adapter schedule and update, adapter switching, and the saved format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gcr.training.rl.adapters import (
    OLD,
    TRAINED,
    adapter_pairs,
    adapter_state,
    add_lora_adapters,
    load_adapter_state,
    old_adapter_decay,
    save_lora,
    trainable_parameters,
    update_old_adapter,
    use_old_adapter,
    use_reference,
)
from gcr.training.rl.families import FluxFamily

TARGETS = FluxFamily.lora_targets


@pytest.mark.parametrize(
    ("step", "decay"),
    [(0, 0.0), (1, 0.001), (100, 0.1), (250, 0.25), (499, 0.499), (500, 0.5), (10_000, 0.5)],
)
def test_old_adapter_decay_schedule(step: int, decay: float) -> None:
    assert old_adapter_decay(step) == pytest.approx(decay)


def test_old_adapter_decay_custom_and_invalid() -> None:
    assert old_adapter_decay(10, rate=0.01, cap=0.05) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        old_adapter_decay(-1)


def _pipe(flux_dir: Path):
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(flux_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _run(pipe, **kwargs) -> np.ndarray:
    return pipe(
        "a red cat",
        num_inference_steps=2,
        height=16,
        width=16,
        max_sequence_length=16,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
        **kwargs,
    ).images


def test_update_moves_old_toward_new_by_hand(flux_dir: Path) -> None:
    transformer = _pipe(flux_dir).transformer
    add_lora_adapters(transformer, rank=2, alpha=4, target_modules=TARGETS)
    pairs = adapter_pairs(transformer)
    with torch.no_grad():
        for new, old in pairs:
            old.fill_(2.0)
            new.fill_(4.0)
    update_old_adapter(transformer, 0.25)
    for new, old in pairs:
        torch.testing.assert_close(old, torch.full_like(old, 0.25 * 2.0 + 0.75 * 4.0))  # 3.5
        torch.testing.assert_close(new, torch.full_like(new, 4.0))
    update_old_adapter(transformer, 0.0)  # d = 0 at step 0: the old adapter becomes a copy
    for new, old in pairs:
        torch.testing.assert_close(old, new)
    with pytest.raises(ValueError):
        update_old_adapter(transformer, 1.5)


def test_switching_keeps_only_the_trained_adapter_trainable(flux_dir: Path) -> None:
    pipe = _pipe(flux_dir)
    transformer = pipe.transformer
    base = _run(pipe)
    add_lora_adapters(transformer, rank=2, alpha=4, target_modules=TARGETS)
    params = trainable_parameters(transformer)
    assert params and all(p.dtype == torch.float32 for p in params)
    trainable = {id(p) for p in transformer.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in params}
    # B starts at zero: trained, old and reference policies are all the base model
    np.testing.assert_allclose(_run(pipe), base, atol=1e-6)
    with torch.no_grad():
        for p in params:
            p.add_(0.3 * torch.randn_like(p))
    trained = _run(pipe)
    with use_old_adapter(transformer):
        old = _run(pipe)
    with use_reference(transformer):
        ref = _run(pipe)
    assert np.abs(trained - base).max() > 1e-3
    np.testing.assert_allclose(old, base, atol=1e-6)  # old still equals the untouched copy
    np.testing.assert_allclose(ref, base, atol=1e-6)
    assert {id(p) for p in transformer.parameters() if p.requires_grad} == trainable
    assert transformer.active_adapters() == [TRAINED]


def test_adapter_state_round_trip(flux_dir: Path) -> None:
    transformer = _pipe(flux_dir).transformer
    add_lora_adapters(transformer, rank=2, alpha=4, target_modules=TARGETS)
    with torch.no_grad():
        for p in trainable_parameters(transformer):
            p.normal_()
    saved = adapter_state(transformer, TRAINED)
    load_adapter_state(transformer, OLD, saved)
    for new, old in adapter_pairs(transformer):
        torch.testing.assert_close(old, new)
    with pytest.raises(Exception, match="does not fit this model"):
        load_adapter_state(transformer, OLD, {"no.such.lora_A.weight": torch.zeros(1)})


def test_saved_lora_loads_with_rank_and_alpha(flux_dir: Path, tmp_path: Path) -> None:
    pipe = _pipe(flux_dir)
    transformer = pipe.transformer
    add_lora_adapters(transformer, rank=2, alpha=8, target_modules=TARGETS)  # scale alpha / r = 4
    with torch.no_grad():
        for p in trainable_parameters(transformer):
            p.add_(0.2 * torch.randn_like(p))
    trained = _run(pipe)
    out = save_lora(type(pipe), transformer, tmp_path / "lora")
    assert (out / "pytorch_lora_weights.safetensors").is_file()
    fresh = _pipe(flux_dir)
    base = _run(fresh)
    fresh.load_lora_weights(out)
    loaded = _run(fresh)
    assert np.abs(loaded - base).max() > 1e-3
    np.testing.assert_allclose(loaded, trained, atol=1e-5)  # same outputs: alpha came with the file


def test_no_matching_modules_is_a_clear_error(flux_dir: Path) -> None:
    from gcr.errors import ConfigError

    transformer = _pipe(flux_dir).transformer
    with pytest.raises(ConfigError):
        add_lora_adapters(transformer, rank=2, alpha=4, target_modules=["no_such_module"])
