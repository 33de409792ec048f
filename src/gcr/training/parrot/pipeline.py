"""PARROT end to end: settings (one dataclass for YAML, CLI flags and Python) and the phase runner.

>>> settings = ParrotSettings(teacher_url="http://127.0.0.1:8000/v1", teacher_model="Qwen/Qwen3-VL-235B")
>>> pipeline = ParrotPipeline.create("work/", "my-prefs/", settings)
>>> summary = asyncio.run(pipeline.run())          # anchor → filter → project → dataset

Each phase can also run alone (``await pipeline.anchor()``, ...) and picks up
where the previous run stopped. Backends can be passed in (any
:class:`~gcr.critic.backends.base.ChatBackend`); otherwise they are
:class:`~gcr.critic.backends.openai_http.OpenAICompatibleBackend` instances
built from the settings. The predictor defaults to the teacher endpoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcr.critic.backends.base import ChatBackend, SamplingParams
from gcr.errors import ConfigError, RunError
from gcr.io import read_jsonl
from gcr.task import Task
from gcr.training.parrot.anchor import anchor_preferences, load_anchored
from gcr.training.parrot.dataset import DatasetSettings, build_sft_dataset
from gcr.training.parrot.filter import CHECKS, FilterSettings, filter_rationales, load_kept
from gcr.training.parrot.jobs import Progress
from gcr.training.parrot.pointwise_projection import load_pointwise, project_rationales
from gcr.training.parrot.workspace import ParrotWorkspace
from gcr.training.sft.config import setting
from gcr.typed_config import from_mapping, read_config_file, typed_fields

logger = logging.getLogger(__name__)

TEACHER_KEY_ENV = "GCR_TEACHER_API_KEY"


@dataclass
class ParrotSettings:
    """Settings of the PARROT phases (defaults are gcr's; the paper does not publish its teacher settings)."""

    teacher_url: str | None = setting(
        None, "OpenAI-compatible endpoint of the teacher VLM (vLLM or a hosted API)."
    )
    teacher_model: str | None = setting(
        None, "Served teacher model name (discovered from /v1/models when omitted)."
    )
    predictor_url: str | None = setting(
        None, "Endpoint of the consistency predictor (default: the teacher's)."
    )
    predictor_model: str | None = setting(None, "Predictor model name (default: the teacher model).")
    api_key_env: str = setting(
        TEACHER_KEY_ENV,
        "Environment variable holding the endpoints' API key (OPENAI_API_KEY is the fallback).",
    )
    concurrency: int = setting(8, "Model calls in flight at once, per phase.")
    timeout: float = setting(600.0, "Seconds one HTTP request may take.")
    max_retries: int = setting(3, "Retries of transient HTTP failures (the openai client's backoff).")
    max_pixels: int = setting(
        802_816, "Images sent to the teacher are downscaled to at most this many pixels."
    )
    teacher_temperature: float = setting(0.2, "Teacher sampling temperature.")
    teacher_max_tokens: int = setting(4096, "Teacher answer token limit (anchoring and projection).")
    predictor_temperature: float = setting(0.0, "Predictor sampling temperature.")
    predictor_max_tokens: int = setting(512, "Predictor answer token limit.")
    checks: list[str] = field(
        default_factory=lambda: list(CHECKS),
        metadata={
            "help": "Consistency checks, in order: scores (scores imply the label), leak (no mention of the "
            "raters or the given verdict), predictor (re-predicted without the label)."
        },
    )
    tie_tolerance: float = setting(
        0.0, "Score-sum difference still counted as a tie (filter and projection)."
    )
    pairwise_fraction: float | None = setting(
        None,
        "Share of pairwise examples in the training split (none: keep "
        "every example, about one pairwise per two pointwise).",
    )
    val_fraction: float = setting(0.05, "Share of requests held out for validation.")
    split_salt: str = setting("gcr-parrot", "Salt of the hash that assigns requests to train or validation.")
    templates_dir: str | None = setting(
        None,
        "Folder with your own teacher/predictor templates, named like the "
        "built-ins (teacher_anchor_t2i.md, teacher_project_edit.md, "
        "predictor_t2i.md, ...); files not found there use the built-ins.",
    )
    critic_templates_dir: str | None = setting(
        None,
        "Folder with the critic templates your critic will use "
        "(critic_pairwise_t2i.md, critic_pointwise_edit.md, ...) to "
        "render the SFT user turns; the built-ins otherwise.",
    )

    def __post_init__(self) -> None:
        unknown = [c for c in self.checks if c not in CHECKS]
        if unknown or not self.checks:
            raise ConfigError(f"unknown check(s) {unknown or '(none)'}: use some of {', '.join(CHECKS)}")
        if self.concurrency < 1:
            raise ConfigError("concurrency must be at least 1")

    @classmethod
    def from_yaml(cls, path: str | Path | None = None, **overrides: Any) -> ParrotSettings:
        data = typed_fields(cls, read_config_file(path), str(path)) if path is not None else {}
        data.update(typed_fields(cls, {k: v for k, v in overrides.items() if v is not None}, "the flags"))
        return from_mapping(cls, data, str(path) if path is not None else "the flags")

    def template_paths(self, kind: str) -> dict[Task, Path]:
        prefix = {"anchor": "teacher_anchor", "project": "teacher_project", "predict": "predictor"}[kind]
        return _found(self.templates_dir, {t: f"{prefix}_{t.value}.md" for t in Task})

    def critic_template_paths(self) -> dict[tuple[str, Task], Path]:
        names = {(m, t): f"critic_{m}_{t.value}.md" for m in ("pairwise", "pointwise") for t in Task}
        return _found(self.critic_templates_dir, names)


def _found(folder: str | None, names: dict[Any, str]) -> dict[Any, Path]:
    if folder is None:
        return {}
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ConfigError(f"template folder not found: {root}")
    return {key: root / name for key, name in names.items() if (root / name).is_file()}


class ParrotPipeline:
    """Runs the PARROT phases in one work folder."""

    def __init__(
        self,
        workspace: ParrotWorkspace,
        settings: ParrotSettings | None = None,
        *,
        teacher: ChatBackend | None = None,
        predictor: ChatBackend | None = None,
    ) -> None:
        self.ws = workspace
        self.settings = settings or ParrotSettings()
        self._teacher = teacher
        self._predictor = predictor

    @classmethod
    def create(
        cls,
        workdir: str | Path,
        preferences: str | Path,
        settings: ParrotSettings | None = None,
        **backends: Any,
    ) -> ParrotPipeline:
        return cls(ParrotWorkspace.create(workdir, preferences), settings, **backends)

    @classmethod
    def open(
        cls, workdir: str | Path, settings: ParrotSettings | None = None, **backends: Any
    ) -> ParrotPipeline:
        return cls(ParrotWorkspace.open(workdir), settings, **backends)

    # -- backends -------------------------------------------------------------------
    def _http(self, url: str | None, model: str | None, what: str) -> ChatBackend:
        from gcr.critic.backends.openai_http import OpenAICompatibleBackend

        if not url:
            raise ConfigError(
                f"no {what} endpoint: pass --teacher-url (and --teacher-model) or set teacher_url"
            )
        s = self.settings
        return OpenAICompatibleBackend(
            url,
            model,
            api_key_env=s.api_key_env,
            timeout=s.timeout,
            max_retries=s.max_retries,
            max_concurrency=s.concurrency,
            max_pixels=s.max_pixels,
        )

    def teacher(self) -> ChatBackend:
        if self._teacher is None:
            self._teacher = self._http(self.settings.teacher_url, self.settings.teacher_model, "teacher")
        return self._teacher

    def predictor(self) -> ChatBackend:
        if self._predictor is None:
            s = self.settings
            if s.predictor_url is None and s.predictor_model in (None, s.teacher_model):
                self._predictor = self.teacher()
            else:
                self._predictor = self._http(
                    s.predictor_url or s.teacher_url, s.predictor_model or s.teacher_model, "predictor"
                )
        return self._predictor

    async def aclose(self) -> None:
        for backend in {id(b): b for b in (self._teacher, self._predictor) if b is not None}.values():
            await backend.aclose()

    # -- phases -----------------------------------------------------------------------
    def _teacher_sampling(self) -> SamplingParams:
        return SamplingParams(
            temperature=self.settings.teacher_temperature, max_tokens=self.settings.teacher_max_tokens
        )

    async def anchor(self, progress: Progress | None = None) -> dict[str, Any]:
        stats = await anchor_preferences(
            self.ws.preferences(),
            self.teacher(),
            self.ws.anchored,
            sampling=self._teacher_sampling(),
            concurrency=self.settings.concurrency,
            template_paths=self.settings.template_paths("anchor"),
            progress=progress,
        )
        return stats.to_dict()

    async def filter(self, progress: Progress | None = None) -> dict[str, Any]:
        s = self.settings
        prefs = self.ws.preferences()
        anchored = load_anchored(self.ws.require(self.ws.anchored, "anchor"), prefs)
        settings = FilterSettings(
            checks=tuple(s.checks),
            tie_tolerance=s.tie_tolerance,
            concurrency=s.concurrency,
            sampling=SamplingParams(temperature=s.predictor_temperature, max_tokens=s.predictor_max_tokens),
        )
        report = await filter_rationales(
            prefs,
            anchored,
            predicted_log=self.ws.predicted,
            kept_path=self.ws.kept,
            report_path=self.ws.filter_report,
            predictor=self.predictor() if "predictor" in s.checks else None,
            settings=settings,
            template_paths=s.template_paths("predict"),
            progress=progress,
        )
        return report.to_dict()

    async def project(self, progress: Progress | None = None) -> dict[str, Any]:
        prefs = self.ws.preferences()
        kept = load_kept(self.ws.require(self.ws.kept, "filter"), prefs)
        report = await project_rationales(
            prefs,
            kept,
            self.teacher(),
            log_path=self.ws.projected,
            pointwise_path=self.ws.pointwise,
            report_path=self.ws.projection_report,
            sampling=self._teacher_sampling(),
            concurrency=self.settings.concurrency,
            tie_tolerance=self.settings.tie_tolerance,
            template_paths=self.settings.template_paths("project"),
            progress=progress,
        )
        return report.to_dict()

    def build_dataset(self, out_dir: str | Path | None = None) -> dict[str, Any]:
        s = self.settings
        prefs = self.ws.preferences()
        kept_path = self.ws.require(self.ws.kept, "filter")
        kept = {r["id"]: r["answer"] for _, r in read_jsonl(kept_path, error=RunError)}
        pointwise = load_pointwise(self.ws.pointwise) if self.ws.pointwise.is_file() else []
        if not pointwise:
            logger.warning(
                "no pointwise critiques (run `gcr train parrot project`); the dataset is pairwise only"
            )
        settings = DatasetSettings(
            pairwise_fraction=s.pairwise_fraction,
            val_fraction=s.val_fraction,
            salt=s.split_salt,
            critic_templates=s.critic_template_paths(),
        )
        return build_sft_dataset(prefs, kept, pointwise, out_dir or self.ws.dataset, settings).to_dict()

    async def run(self, progress: Progress | None = None) -> dict[str, Any]:
        """Every phase in order; returns each phase's summary."""
        try:
            summary = {"anchor": await self.anchor(progress)}
            summary["filter"] = await self.filter(progress)
            summary["project"] = await self.project(progress)
            summary["dataset"] = self.build_dataset()
        finally:
            await self.aclose()
        return summary
