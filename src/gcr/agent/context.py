"""Run settings of one refine run: the graph's ``context_schema``.

Everything here is plain, serializable data, so a run can be described in a
JSON file, passed by ``langgraph dev`` clients, and restored on ``--resume``.
Live objects (the generator, the critic, the refiner) are given to
:func:`gcr.agent.build_graph` instead.

Each field carries help text in its metadata; the CLI and the docs read it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gcr.errors import ConfigError
from gcr.limits import prompt_too_long
from gcr.typed_config import from_mapping, read_config_file

if TYPE_CHECKING:
    from gcr.critic.scoring import RewardSpec

SeedPolicy = Literal["fixed", "per-round"]

#: Where run folders go when no ``run_dir`` is given (relative to the working directory).
DEFAULT_RUNS_ROOT = "gcr-runs"


def _help(text: str, *flags: str, set_by: str | None = None) -> dict[str, Any]:
    """A field's metadata: its help text and how the command line sets it.

    ``flags``: the option names of ``gcr refine``/``gcr bench`` (default: ``--field-name``;
    ``--yes/--no`` for a bool); ``set_by``: the option that sets this field together with
    others (``--size``, ``--reward``) or the run option that sets it (``--out``).
    """
    meta: dict[str, Any] = {"help": text}
    if flags:
        meta["flags"] = flags
    if set_by:
        meta["set_by"] = set_by
    return meta


@dataclass(kw_only=True)
class RefineContext:
    """How one Generate-Critique-Refine run behaves.

    Stopping fields combine: the run stops at the first rule that fires (see
    :mod:`gcr.agent.stopping`). ``None`` switches an optional rule off.
    """

    run_dir: str = field(
        default="",
        metadata=_help(
            "Folder for this run's images, critiques and reports. Empty: a new folder under "
            "$GCR_RUNS_DIR (default ./gcr-runs).",
            set_by="--out",
        ),
    )
    candidates: int = field(
        default=1, metadata=_help("Images generated (and critiqued) per round.", "--candidates", "-n")
    )
    seed: int = field(default=0, metadata=_help("Base seed; candidate i of a round uses seed + i."))
    seed_policy: SeedPolicy = field(
        default="fixed",
        metadata=_help(
            "'fixed': every round reuses the same seeds, so the prompt is the only thing that "
            "changes; 'per-round': each round draws fresh seeds."
        ),
    )
    max_rounds: int = field(
        default=4, metadata=_help("Most rounds, counting the first generation from the user's prompt.")
    )
    target_reward: float | None = field(
        default=0.9,
        metadata=_help(
            "Stop once the best normalized reward (0-1) reaches this.", "--target", "--target-reward"
        ),
    )
    dimension_target: float | None = field(
        default=None, metadata=_help("Stop once every scored dimension of one image reaches this (1-4).")
    )
    min_delta: float = field(
        default=0.02, metadata=_help("Smallest gain in best reward that counts as an improvement.")
    )
    patience: int = field(
        default=2, metadata=_help("Stop after this many rounds in a row without an improvement.")
    )
    max_wall_s: float | None = field(
        default=None,
        metadata=_help(
            "Wall-time budget in seconds; no round starts that would likely run past it.",
            "--max-time",
            "--max-wall-s",
        ),
    )
    max_generations: int | None = field(
        default=None, metadata=_help("Budget of generated images; no round starts that would exceed it.")
    )
    dimensions: list[str] | None = field(
        default=None,
        metadata=_help(
            "Dimensions that make up the reward (keys); None: every dimension of the task.", set_by="--reward"
        ),
    )
    weights: dict[str, float] | None = field(
        default=None,
        metadata=_help("Weight per dimension key in the reward; None: equal weights.", set_by="--reward"),
    )
    width: int | None = field(
        default=None, metadata=_help("Image width; None: the model's default.", set_by="--size")
    )
    height: int | None = field(
        default=None, metadata=_help("Image height; None: the model's default.", set_by="--size")
    )
    steps: int | None = field(default=None, metadata=_help("Denoising steps; None: the model's default."))
    guidance: float | None = field(default=None, metadata=_help("Guidance scale; None: the model's default."))
    negative_prompt: str | None = field(
        default=None, metadata=_help("Negative prompt, where supported.", "--negative", "--negative-prompt")
    )
    interactive: bool = field(
        default=False,
        metadata=_help("Pause before each regeneration so a person can accept, edit or reject the prompt."),
    )
    write_report: bool = field(
        default=True, metadata=_help("Write report.html into the run folder.", "--write-report/--no-report")
    )
    veto_judge: str | None = field(
        default=None,
        metadata=_help(
            "Judge spec (KIND:TARGET,...) of the cross-judge veto: a new best image is kept only if this "
            "judge's score does not fall by more than veto_drop against the current best. None: no veto."
        ),
    )
    veto_drop: float = field(
        default=0.0,
        metadata=_help("Largest fall in the veto judge's score (0-1) a new best image may show."),
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.candidates < 1:
            problems.append(f"candidates must be at least 1 (got {self.candidates})")
        if self.max_rounds < 1:
            problems.append(f"max_rounds must be at least 1 (got {self.max_rounds})")
        if self.patience < 1:
            problems.append(f"patience must be at least 1 (got {self.patience})")
        if self.min_delta < 0:
            problems.append(f"min_delta must not be negative (got {self.min_delta})")
        if self.target_reward is not None and not 0.0 <= self.target_reward <= 1.0:
            problems.append(f"target_reward is a normalized reward in [0, 1] (got {self.target_reward})")
        if self.dimension_target is not None and not 1.0 <= self.dimension_target <= 4.0:
            problems.append(f"dimension_target is a score in [1, 4] (got {self.dimension_target})")
        if self.max_wall_s is not None and self.max_wall_s <= 0:
            problems.append(f"max_wall_s must be positive (got {self.max_wall_s})")
        if self.max_generations is not None and self.max_generations < self.candidates:
            problems.append(
                f"max_generations ({self.max_generations}) is smaller than one round of "
                f"{self.candidates} candidate(s)"
            )
        if not 0.0 <= self.veto_drop <= 1.0:
            problems.append(f"veto_drop is a fall in judge score, between 0 and 1 (got {self.veto_drop})")
        if self.seed_policy not in ("fixed", "per-round"):
            problems.append(f"seed_policy must be 'fixed' or 'per-round' (got {self.seed_policy!r})")
        for name in ("width", "height", "steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be positive (got {value})")
        if self.negative_prompt is not None and (too_long := prompt_too_long(self.negative_prompt)):
            problems.append(f"negative_prompt {too_long}")
        if problems:
            raise ConfigError("invalid refine settings: " + "; ".join(problems))

    def seed_for(self, round_index: int, candidate: int) -> int:
        """The seed of ``candidate`` in round ``round_index`` under :attr:`seed_policy`."""
        if self.seed_policy == "per-round":
            return self.seed + round_index * self.candidates + candidate
        return self.seed + candidate

    def generation_params(self) -> dict[str, Any]:
        """The generation settings that are set (``None`` ones are left to the model)."""
        params = {
            "width": self.width,
            "height": self.height,
            "steps": self.steps,
            "guidance": self.guidance,
            "negative_prompt": self.negative_prompt,
        }
        return {k: v for k, v in params.items() if v is not None}

    def reward_spec(self) -> RewardSpec:
        """The reward these settings select (dimensions and weights; checked when built)."""
        from gcr.critic.scoring import RewardSpec

        dims = tuple(self.dimensions) if self.dimensions is not None else None
        return RewardSpec(dimensions=dims, weights=self.weights)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "the refine settings") -> RefineContext:
        """Build from a mapping (a config file, ``run.json``, a client's context), every value
        type-checked; an unknown key or a wrong type is a :class:`ConfigError` naming it and ``source``."""
        return from_mapping(cls, data, source)

    @classmethod
    def from_file(cls, path: str | Path) -> RefineContext:
        """Read refine settings from a YAML or JSON file (keys are the field names)."""
        return cls.from_dict(read_config_file(path), str(path))


def new_run_dir(prompt: str, now: str) -> Path:
    """A fresh run folder path under ``$GCR_RUNS_DIR`` named after the time and the prompt."""
    root = Path(os.environ.get("GCR_RUNS_DIR", DEFAULT_RUNS_ROOT))
    words = "".join(ch if ch.isalnum() else "-" for ch in prompt.lower()).split("-")
    slug = "-".join(w for w in words if w)[:40].strip("-") or "run"
    candidate = root / f"{now}-{slug}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = root / f"{now}-{slug}-{n}"
    return candidate
