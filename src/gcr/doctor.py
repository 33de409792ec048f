"""What this machine can run: GPUs, hub access, cache disk, optional packages.

Two users: ``gcr doctor`` (a table of every check, or JSON) and the loader of the
default models (:func:`check_default_models`), which refuses, *before any
download*, to start models the machine cannot hold and says what to do instead.

The needs of the defaults are estimates from parameter counts (bf16 weights), not
measurements: FLUX.1 [schnell] or Kontext [dev] (12B transformer, T5-XXL, CLIP,
VAE) about 34 GB of GPU memory and 34 GB of download; a RationalRewards-8B critic
(Qwen3-VL-8B) about 17 GB of weights plus its KV cache, 20 GB of GPU memory, 17 GB
of download. With ``--offload`` the generator keeps only the component at work on
the GPU, the 12B transformer (about 24 GB) at its peak.

Nothing here touches the network unless asked: the hub probe is a parameter
(``probe``), called at most once per check with a short timeout, and skipped when
``HF_HUB_OFFLINE`` is set.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gcr.critic.defaults import default_critic_model
from gcr.errors import MachineError
from gcr.task import Task

logger = logging.getLogger(__name__)

GB = 1024**3
#: Seconds the hub reachability probe may take.
HUB_PROBE_TIMEOUT_S = 3.0

#: Estimated needs of the default models (see the module docstring).
GENERATOR_GPU_GB = 34.0
GENERATOR_OFFLOAD_GPU_GB = 24.0
CRITIC_GPU_GB = 20.0
DOWNLOAD_GB = {
    "black-forest-labs/FLUX.1-schnell": 34.0,
    "black-forest-labs/FLUX.1-Kontext-dev": 34.0,
    default_critic_model(Task.T2I): 17.0,
    default_critic_model(Task.EDIT): 17.0,
}

#: The ways forward when the defaults cannot run here (one sentence, used in every refusal).
WAYS_FORWARD = (
    "Ways forward: (1) --critic URL: use a critic served elsewhere (gcr serve critic on a GPU machine) "
    "so only the generator runs here; (2) --offload, or smaller models (--generator, --critic with a "
    "local folder or hub id), or --device cpu to run anyway on the CPU (very slow); (3) gcr demo: the "
    "whole loop offline in a minute on tiny random models with a scripted critic. "
    "Run gcr doctor to see what this machine has."
)

HubProbe = Callable[[str, float], bool]


def probe_hub(endpoint: str, timeout: float) -> bool:
    """Whether ``endpoint`` answers an HTTP request within ``timeout`` seconds (any status counts)."""
    import httpx

    try:
        httpx.head(endpoint, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError:
        return False
    return True


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set (read now, with huggingface_hub's notion of a true value)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cache_free_gb(path: Path | None = None) -> float:
    """Free disk space where the hub cache lives (its nearest existing parent folder)."""
    where = path or hub_cache_dir()
    while not where.exists() and where != where.parent:
        where = where.parent
    return shutil.disk_usage(where).free / GB


def is_cached(repo: str) -> bool:
    """Whether ``repo`` has a snapshot in the local hub cache (its index or config file is there)."""
    from huggingface_hub import try_to_load_from_cache

    for name in ("model_index.json", "config.json"):
        found = try_to_load_from_cache(repo, name)
        if isinstance(found, str):
            return True
    return False


@dataclass
class Gpu:
    index: int
    name: str
    total_gb: float
    free_gb: float
    bf16: bool


def gpus() -> list[Gpu]:
    """The CUDA GPUs torch sees, with their free memory now."""
    import torch

    if not torch.cuda.is_available():
        return []
    found = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        free, total = torch.cuda.mem_get_info(index)
        with torch.cuda.device(index):
            bf16 = torch.cuda.is_bf16_supported()
        found.append(Gpu(index, props.name, total / GB, free / GB, bool(bf16)))
    return found


def installed_extras() -> dict[str, bool]:
    """Each optional extra of gcr and whether every package it names is installed."""
    from packaging.requirements import Requirement

    try:
        requirements = importlib.metadata.requires("gcr") or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    extras: dict[str, bool] = {}
    for line in requirements:
        req = Requirement(line)
        if req.marker is None or "extra" not in str(req.marker):
            continue
        extra = str(req.marker).split("==")[-1].strip().strip("'\"")
        if req.name == "gcr":  # an extra made of other extras (dev)
            continue
        try:
            importlib.metadata.version(req.name)
            ok = True
        except importlib.metadata.PackageNotFoundError:
            ok = False
        extras[extra] = extras.get(extra, True) and ok
    return extras


# ---------------------------------------------------------------------------- the defaults


@dataclass
class DefaultsPlan:
    """Which default models a run would load in-process, and what they need."""

    task: Task
    generator_repo: str | None  # None: not a default (the user named a generator)
    critic_repo: str | None  # None: a served critic or one the user named
    offload: bool = False
    device: str | None = None

    @property
    def repos(self) -> list[str]:
        return [r for r in (self.generator_repo, self.critic_repo) if r is not None]

    @property
    def gpu_gb(self) -> float:
        need = 0.0
        if self.generator_repo is not None:
            need += GENERATOR_OFFLOAD_GPU_GB if self.offload else GENERATOR_GPU_GB
        if self.critic_repo is not None:
            need += CRITIC_GPU_GB
        return need

    def describe(self) -> str:
        parts = []
        if self.generator_repo:
            parts.append(f"the generator {self.generator_repo}")
        if self.critic_repo:
            parts.append(f"the critic {self.critic_repo} (in-process)")
        return " and ".join(parts)


def defaults_plan(
    *, generator: str | None, critic: str | None, task: Task | str, offload: bool = False, device: str | None
) -> DefaultsPlan:
    from gcr.agent.components import default_generator
    from gcr.generators.presets import alias_repo

    task = Task.parse(task)
    generator_repo = None
    if generator is None:
        generator_repo = alias_repo(default_generator(task)) or default_generator(task)
    return DefaultsPlan(
        task=task,
        generator_repo=generator_repo,
        critic_repo=default_critic_model(task) if critic is None else None,
        offload=offload,
        device=device,
    )


def default_model_problems(plan: DefaultsPlan, *, probe: HubProbe | None = None) -> list[str]:
    """What stops ``plan``'s default models from loading here (empty: nothing known)."""
    probe = probe if probe is not None else probe_hub
    if not plan.repos:
        return []
    problems = []
    on_cpu = (plan.device or "auto").lower() in ("cpu", "mps")
    if not on_cpu:
        found = gpus()
        if not found:
            problems.append("no CUDA GPU is available")
        else:
            best = max(found, key=lambda g: g.free_gb)
            if best.free_gb < plan.gpu_gb:
                problems.append(
                    f"the GPU with the most free memory ({best.name}) has {best.free_gb:.0f} GB free, "
                    f"{plan.describe()} need about {plan.gpu_gb:.0f} GB"
                )
    missing = [r for r in plan.repos if not is_cached(r)]
    if missing:
        names = ", ".join(missing)
        if hub_offline():
            problems.append(f"{names} not in the Hugging Face cache and HF_HUB_OFFLINE forbids downloading")
        elif not probe(hub_endpoint(), HUB_PROBE_TIMEOUT_S):
            problems.append(
                f"{names} not in the Hugging Face cache and the hub ({hub_endpoint()}) is unreachable"
            )
        need = sum(DOWNLOAD_GB.get(r, 0.0) for r in missing)
        free = cache_free_gb()
        if free < need:
            problems.append(
                f"downloading {names} takes about {need:.0f} GB but {hub_cache_dir()} has {free:.0f} GB free"
            )
    return problems


def check_default_models(plan: DefaultsPlan, *, probe: HubProbe | None = None) -> None:
    """Raise :class:`MachineError` (one message: what is missing, what the defaults need, the ways
    forward) when ``plan``'s default models cannot run here; return quietly otherwise."""
    problems = default_model_problems(plan, probe=probe)
    if not problems:
        return
    download = sum(DOWNLOAD_GB.get(r, 0.0) for r in plan.repos)
    raise MachineError(
        f"the default models cannot run on this machine: {'; '.join(problems)}. "
        f"They ({plan.describe()}) need a CUDA GPU with about {plan.gpu_gb:.0f} GB free, access to the "
        f"Hugging Face Hub and about {download:.0f} GB of disk for the first download. {WAYS_FORWARD}"
    )


# ---------------------------------------------------------------------------- gcr doctor


@dataclass
class Check:
    """One line of ``gcr doctor``: ``ok`` True (fine), False (missing) or None (for information)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""


@dataclass
class Diagnosis:
    checks: list[Check] = field(default_factory=list)

    @property
    def defaults_ok(self) -> bool:
        return all(c.ok is not False for c in self.checks if c.name.startswith("default"))

    def to_dict(self) -> dict[str, Any]:
        return {"checks": [asdict(c) for c in self.checks], "defaults_can_run": self.defaults_ok}


def diagnose(*, probe: HubProbe | None = None) -> Diagnosis:
    """Every check of ``gcr doctor``; the hub is probed (once) only when not offline."""
    probe = probe if probe is not None else probe_hub
    import torch

    out = Diagnosis()
    add = out.checks.append
    cuda = torch.version.cuda
    add(
        Check(
            "torch",
            True,
            f"{torch.__version__} (CUDA build {cuda})" if cuda else f"{torch.__version__} (CPU build)",
        )
    )
    found = gpus()
    plan = defaults_plan(generator=None, critic=None, task=Task.T2I, device=None)
    if not found:
        add(
            Check(
                "CUDA GPU",
                False,
                "none available",
                "use --critic URL with a served critic, gcr demo, or --device cpu (very slow)",
            )
        )
    for gpu in found:
        add(
            Check(
                f"GPU {gpu.index}",
                gpu.free_gb >= plan.gpu_gb,
                f"{gpu.name}: {gpu.free_gb:.1f} of {gpu.total_gb:.1f} GB free "
                f"(defaults need about {plan.gpu_gb:.0f} GB)",
                "" if gpu.free_gb >= plan.gpu_gb else "use --offload, --critic URL, or smaller models",
            )
        )
    if found:
        bf16 = all(g.bf16 for g in found)
        add(
            Check(
                "bf16",
                bf16,
                "supported" if bf16 else "not supported on every GPU",
                "" if bf16 else "pass --dtype float16 or float32",
            )
        )
    vllm = importlib.util.find_spec("vllm") is not None
    add(
        Check(
            "vLLM",
            vllm if found else None,
            "installed" if vllm else "not installed",
            "" if vllm else "pip install vllm on a GPU machine to serve the critic (gcr serve critic)",
        )
    )
    if hub_offline():
        add(Check("Hugging Face Hub", None, "offline (HF_HUB_OFFLINE is set): only cached models load"))
    else:
        reachable = probe(hub_endpoint(), HUB_PROBE_TIMEOUT_S)
        add(
            Check(
                "Hugging Face Hub",
                reachable,
                f"{hub_endpoint()} {'reachable' if reachable else 'unreachable'}",
                "" if reachable else "check the network or proxy, or use cached models with HF_HUB_OFFLINE=1",
            )
        )
    for repo in plan.repos:
        cached = is_cached(repo)
        add(
            Check(
                f"default model {repo}",
                True if cached else None,
                "cached" if cached else f"not cached (about {DOWNLOAD_GB.get(repo, 0):.0f} GB to download)",
            )
        )
    free = cache_free_gb()
    need = sum(DOWNLOAD_GB.get(r, 0.0) for r in plan.repos if not is_cached(r))
    add(
        Check(
            "HF cache disk",
            free >= need,
            f"{free:.0f} GB free in {hub_cache_dir()}"
            + (f" (the uncached defaults need about {need:.0f} GB)" if need else ""),
            "" if free >= need else "free disk space or set HF_HOME to a larger disk",
        )
    )
    problems = default_model_problems(plan, probe=lambda *_: reachable_or_offline(out))
    add(
        Check(
            "default models (t2i)",
            not problems,
            "can run here" if not problems else "; ".join(problems),
            "" if not problems else "--critic URL, --offload or smaller models, or gcr demo (see below)",
        )
    )
    for extra, ok in sorted(installed_extras().items()):
        add(
            Check(
                f"extra [{extra}]",
                ok,
                "installed" if ok else "not installed",
                "" if ok else f"pip install 'gcr[{extra}]'",
            )
        )
    return out


def reachable_or_offline(diagnosis: Diagnosis) -> bool:
    """The hub answer already found by :func:`diagnose` (so the hub is probed once)."""
    hub = next((c for c in diagnosis.checks if c.name == "Hugging Face Hub"), None)
    return hub is not None and hub.ok is True
