"""LoRA adapters saved by peft (either layout) stack on the base model and change its output."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import DiffusionPipeline, FluxPipeline
from gen_helpers import max_diff
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict

from gcr.errors import GeneratorLoadError, InputError
from gcr.generators.base import GenerationRequest
from gcr.generators.diffusers_adapter import DiffusersGenerator
from gcr.generators.loading import PipelineCache
from gcr.generators.lora import LoraSpec

# alpha / r = 4: an adapter loaded with the wrong alpha would be visibly off.
LORA_CONFIG = {"r": 4, "lora_alpha": 16, "target_modules": ["to_q", "to_k", "to_v", "to_out.0"]}
REQUEST = GenerationRequest("a red cat", width=32, height=32, steps=2, seed=3)


def _lora_config() -> LoraConfig:
    # init_lora_weights=False draws B at random too, so the adapter is not a no-op.
    return LoraConfig(**LORA_CONFIG, init_lora_weights=False)


@pytest.fixture(scope="module")
def flux_dir(tiny_pipeline_dir) -> Path:
    return tiny_pipeline_dir("flux")


@pytest.fixture(scope="module")
def diffusers_layout_lora(flux_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained the way the RL code saves: peft adapter on the transformer, written by save_lora_weights."""
    pipe = DiffusionPipeline.from_pretrained(flux_dir)
    torch.manual_seed(0)
    pipe.transformer.add_adapter(_lora_config())
    out = tmp_path_factory.mktemp("lora-diffusers")
    FluxPipeline.save_lora_weights(
        out,
        transformer_lora_layers=get_peft_model_state_dict(pipe.transformer),
        transformer_lora_adapter_metadata=_lora_config().to_dict(),
    )
    return out


@pytest.fixture(scope="module")
def peft_layout_lora(flux_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Saved by PeftModel.save_pretrained (adapter_config.json + adapter_model.safetensors)."""
    transformer = DiffusionPipeline.from_pretrained(flux_dir).transformer
    torch.manual_seed(1)
    out = tmp_path_factory.mktemp("lora-peft")
    get_peft_model(transformer, _lora_config()).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def cache() -> PipelineCache:
    return PipelineCache(max_entries=8)


def _image(flux_dir: Path, cache: PipelineCache, loras: list[str]) -> object:
    return DiffusersGenerator(str(flux_dir), loras=loras, cache=cache).generate(REQUEST).images[0]


def test_a_lora_saved_with_save_lora_weights_loads_and_changes_the_output(
    flux_dir: Path, diffusers_layout_lora: Path, cache: PipelineCache
) -> None:
    assert (diffusers_layout_lora / "pytorch_lora_weights.safetensors").is_file()
    base = _image(flux_dir, cache, [])
    tuned = _image(flux_dir, cache, [str(diffusers_layout_lora)])
    assert max_diff(base, tuned) > 10
    gen = DiffusersGenerator(str(flux_dir), loras=[str(diffusers_layout_lora)], cache=cache)
    assert gen.load().transformer.peft_config["gcr_lora_0"].lora_alpha == 16
    assert "+lora[" in gen.model_id


def test_a_peft_saved_adapter_matches_the_same_adapter_merged_into_the_weights(
    flux_dir: Path, peft_layout_lora: Path, cache: PipelineCache, tmp_path: Path
) -> None:
    stacked = _image(flux_dir, cache, [str(peft_layout_lora)])
    pipe = DiffusionPipeline.from_pretrained(flux_dir)
    pipe.transformer = PeftModel.from_pretrained(pipe.transformer, peft_layout_lora).merge_and_unload()
    pipe.save_pretrained(tmp_path / "merged")
    merged = _image(tmp_path / "merged", cache, [])
    assert max_diff(stacked, merged) <= 2  # same rank, alpha and targets as peft itself applies
    assert max_diff(stacked, _image(flux_dir, cache, [])) > 10


def test_scales_weigh_the_adapter(flux_dir: Path, peft_layout_lora: Path, cache: PipelineCache) -> None:
    base = _image(flux_dir, cache, [])
    assert max_diff(_image(flux_dir, cache, [f"{peft_layout_lora}:0"]), base) <= 1
    half = _image(flux_dir, cache, [f"{peft_layout_lora}:0.5"])
    full = _image(flux_dir, cache, [str(peft_layout_lora)])
    assert max_diff(half, base) > 5 and max_diff(half, full) > 5


def test_two_adapters_stack(
    flux_dir: Path, diffusers_layout_lora: Path, peft_layout_lora: Path, cache: PipelineCache
) -> None:
    both = _image(flux_dir, cache, [str(diffusers_layout_lora), str(peft_layout_lora)])
    assert max_diff(both, _image(flux_dir, cache, [str(diffusers_layout_lora)])) > 5
    assert max_diff(both, _image(flux_dir, cache, [str(peft_layout_lora)])) > 5


def test_a_retrained_adapter_at_the_same_path_gets_a_new_cache_key(
    peft_layout_lora: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "adapter"
    copy.mkdir()
    for f in peft_layout_lora.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    before = LoraSpec(str(copy)).fingerprint()
    (copy / "adapter_model.safetensors").write_bytes((copy / "adapter_model.safetensors").read_bytes() + b" ")
    assert LoraSpec(str(copy)).fingerprint() != before


def test_lora_specs_parse_paths_and_scales() -> None:
    assert LoraSpec.parse("runs/rl/adapter") == LoraSpec("runs/rl/adapter", 1.0)
    assert LoraSpec.parse("runs/rl/adapter:0.75") == LoraSpec("runs/rl/adapter", 0.75)
    assert LoraSpec.parse(r"C:\loras\style") == LoraSpec(r"C:\loras\style", 1.0)
    with pytest.raises(InputError, match="empty LoRA path"):
        LoraSpec.parse("  ")


def test_missing_or_empty_lora_folders_fail_clearly(flux_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(GeneratorLoadError, match="LoRA not found"):
        DiffusersGenerator(str(flux_dir), loras=["./no/such/adapter"], cache=PipelineCache()).load()
    with pytest.raises(GeneratorLoadError, match="no LoRA weights in"):
        DiffusersGenerator(str(flux_dir), loras=[str(tmp_path)], cache=PipelineCache()).load()


def test_a_missing_peft_names_the_extra_to_install(
    flux_dir: Path, peft_layout_lora: Path, monkeypatch
) -> None:
    from gcr.errors import DependencyError
    from gcr.generators import lora

    real = lora.importlib.util.find_spec
    monkeypatch.setattr(lora.importlib.util, "find_spec", lambda name: None if name == "peft" else real(name))
    with pytest.raises(DependencyError, match=r"pip install 'gcr\[train\]'"):
        DiffusersGenerator(str(flux_dir), loras=[str(peft_layout_lora)], cache=PipelineCache()).load()
