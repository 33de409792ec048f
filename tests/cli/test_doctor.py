"""``gcr doctor`` and the check that refuses default models a machine cannot run, before any download.

The hub reachability probe is always injected here: no test reaches the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gcr.doctor as doctor
from gcr.agent.components import load_components
from gcr.agent.runner import RunSpec
from gcr.errors import MachineError

ROOT = Path(__file__).resolve().parents[2]


def no_network(endpoint: str, timeout: float) -> bool:
    raise AssertionError(f"the hub probe must not run here ({endpoint})")


class Probe:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.calls: list[tuple[str, float]] = []

    def __call__(self, endpoint: str, timeout: float) -> bool:
        self.calls.append((endpoint, timeout))
        return self.answer


@pytest.fixture
def machine(monkeypatch):
    """A machine whose GPUs, cache and hub mode the test sets."""
    state = {"gpus": [], "cached": set()}
    monkeypatch.setattr(doctor, "gpus", lambda: list(state["gpus"]))
    monkeypatch.setattr(doctor, "is_cached", lambda repo: repo in state["cached"])
    monkeypatch.setattr(doctor, "probe_hub", no_network)
    return state


def gpu(free_gb: float) -> doctor.Gpu:
    return doctor.Gpu(0, "Test GPU", 80.0, free_gb, True)


def plan(**kw) -> doctor.DefaultsPlan:
    return doctor.defaults_plan(generator=None, critic=None, task="t2i", device=None, **kw)


def test_no_gpu_fails_with_the_needs_and_three_ways_forward(machine, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MachineError) as info:
        doctor.check_default_models(plan())
    message = str(info.value)
    assert "\n" not in message
    assert "no CUDA GPU is available" in message and "about 54 GB" in message
    assert "HF_HUB_OFFLINE forbids downloading" in message and "about 51 GB of disk" in message
    assert "--critic URL" in message and "--offload" in message and "gcr demo" in message


def test_enough_gpu_memory_and_cached_models_pass_without_probing(machine, monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    machine["gpus"] = [gpu(79.0)]
    machine["cached"] = {"black-forest-labs/FLUX.1-schnell", "TIGER-Lab/RationalRewards-8B-T2I"}
    doctor.check_default_models(plan(), probe=no_network)  # all cached: the hub is not asked
    machine["gpus"] = [gpu(40.0)]
    with pytest.raises(MachineError, match="has 40 GB free"):
        doctor.check_default_models(plan(), probe=no_network)
    # A served critic and --offload: only the offloaded generator's peak (24 GB) must fit.
    served = doctor.defaults_plan(
        generator=None, critic="http://h:8000/v1", task="t2i", device=None, offload=True
    )
    assert served.gpu_gb == 24.0 and served.critic_repo is None
    doctor.check_default_models(served, probe=no_network)


def test_cpu_asked_for_is_taken_at_its_word(machine, monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    machine["cached"] = {"black-forest-labs/FLUX.1-schnell", "TIGER-Lab/RationalRewards-8B-T2I"}
    doctor.check_default_models(
        doctor.defaults_plan(generator=None, critic=None, task="t2i", device="cpu"), probe=no_network
    )


def test_the_hub_is_probed_once_with_a_short_timeout_only_when_needed(machine, monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    machine["gpus"] = [gpu(79.0)]
    probe = Probe(False)
    with pytest.raises(MachineError, match="is unreachable"):
        doctor.check_default_models(plan(), probe=probe)
    assert len(probe.calls) == 1 and probe.calls[0][1] <= 5
    diagnosis = doctor.diagnose(probe=(probe := Probe(True)))
    assert len(probe.calls) == 1
    hub = next(c for c in diagnosis.checks if c.name == "Hugging Face Hub")
    assert hub.ok is True
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    diagnosis = doctor.diagnose(probe=no_network)
    assert "offline" in next(c for c in diagnosis.checks if c.name == "Hugging Face Hub").detail


def test_load_components_refuses_defaults_before_loading_anything(machine, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import gcr.critic.loading as loading

    def must_not_load(*a, **k):
        raise AssertionError("a model started loading")

    monkeypatch.setattr(loading, "load_critic", must_not_load)
    with pytest.raises(MachineError):
        load_components(RunSpec(prompt="a cat"))
    # Named models are the user's call: no check at all.
    with pytest.raises(AssertionError, match="a model started loading"):
        load_components(RunSpec(prompt="a cat", generator="x/y", critic="a/b"))


def test_diagnosis_lists_gpus_extras_and_disk(machine, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    machine["gpus"] = [gpu(12.0)]
    data = doctor.diagnose(probe=no_network).to_dict()
    names = [c["name"] for c in data["checks"]]
    assert {"torch", "GPU 0", "bf16", "vLLM", "Hugging Face Hub", "HF cache disk"} <= set(names)
    assert any(n.startswith("extra [") for n in names)
    gpu0 = next(c for c in data["checks"] if c["name"] == "GPU 0")
    assert gpu0["ok"] is False and "12.0 of 80.0 GB free" in gpu0["detail"] and gpu0["fix"]
    assert data["defaults_can_run"] is False


def piped(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env.update(HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=180, env=env
    )


def test_doctor_cli_piped_table_and_json(tmp_path: Path) -> None:
    done = piped("-m", "gcr", "doctor", "--json", cwd=tmp_path)
    data = json.loads(done.stdout)
    # The exit code says whether the default models can run here (a script's check).
    expected = 0 if data["defaults_can_run"] else 1
    assert done.returncode == expected, done.stderr
    hub = next(c for c in data["checks"] if c["name"] == "Hugging Face Hub")
    assert hub["ok"] is None and "offline" in hub["detail"]
    done = piped("-m", "gcr", "doctor", cwd=tmp_path)
    assert done.returncode == expected, done.stderr
    rows = [line for line in done.stdout.splitlines() if "default models (t2i)" in line]
    assert len(rows) == 1  # one row, one line: nothing wrapped


@pytest.mark.skipif(
    doctor.is_cached("black-forest-labs/FLUX.1-schnell"), reason="the default generator is cached here"
)
def test_refine_with_defaults_fails_fast_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    done = piped("-m", "gcr", "refine", "a cat on a mat", cwd=tmp_path)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: the default models cannot run"), done.stderr
    assert "gcr demo" in lines[0] and "--resume" not in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_a_hub_warning_is_printed_once(tmp_path: Path) -> None:
    code = (
        "import logging; from gcr.cli.app import _root; _root(verbose=0);"
        "logging.getLogger('huggingface_hub.utils._http').warning('Retrying in 1s [Retry 1/5].')"
    )
    done = piped("-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["WARNING: Retrying in 1s [Retry 1/5]."]


@pytest.mark.skipif(
    doctor.is_cached("TIGER-Lab/RationalRewards-8B-T2I"), reason="the default critic is cached here"
)
def test_critique_with_the_default_critic_fails_fast_offline(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    done = piped("-m", "gcr", "critique", str(tmp_path / "x.png"), "--prompt", "a cat", cwd=tmp_path)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "RationalRewards-8B-T2I not in the Hugging Face cache" in lines[0], done.stderr
